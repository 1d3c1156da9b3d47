//! Users and rooms made over REST as a client would: register each user, let the first member
//! of each room create it, and the others join with its code. Registration hashes a password
//! with argon2id on the server, so it is the slow part of a large setup; it runs a bounded
//! number of requests at once.

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    /// Its bearer token.
    pub token: String,
}

/// A created room and its members (indexes into the user list).
#[derive(Debug, Clone)]
pub struct Room {
    /// Its id.
    pub id: String,
    /// Users that are members, the creator first.
    pub members: Vec<usize>,
}

/// The REST side of a server.
pub struct Rest {
    base: String,
    http: reqwest::Client,
    concurrency: usize,
}

impl Rest {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str, concurrency: usize) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(concurrency)
                .build()?,
            concurrency: concurrency.max(1),
        })
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("POST {path}: body"))?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {}", v["message"]);
        }
        Ok(v["data"].clone())
    }

    /// Registers `n` users named `<prefix>-<i>`.
    ///
    /// # Errors
    /// The first refused registration.
    pub async fn users(&self, prefix: &str, n: usize) -> anyhow::Result<Vec<User>> {
        stream::iter(0..n)
            .map(|i| async move {
                let data = self
                    .post(
                        "/api/register",
                        None,
                        json!({"username": format!("{prefix}-{i}"), "password": "bench-password"}),
                    )
                    .await?;
                let token = data["token"]
                    .as_str()
                    .context("register answered no token")?
                    .to_owned();
                Ok::<_, anyhow::Error>(User { token })
            })
            .buffered(self.concurrency)
            .try_collect()
            .await
    }

    /// Creates one room per group of `members` (user indexes): the first creates, the rest join.
    ///
    /// # Errors
    /// The first refused call.
    pub async fn rooms(
        &self,
        users: &[User],
        groups: Vec<Vec<usize>>,
    ) -> anyhow::Result<Vec<Room>> {
        let rooms = self.rooms_with_codes(users, groups).await?;
        Ok(rooms.into_iter().map(|(room, _)| room).collect())
    }

    /// Like [`Rest::rooms`], with each room's join code beside it.
    ///
    /// # Errors
    /// The first refused call.
    pub async fn rooms_with_codes(
        &self,
        users: &[User],
        groups: Vec<Vec<usize>>,
    ) -> anyhow::Result<Vec<(Room, String)>> {
        let rooms: Vec<(Room, String)> = stream::iter(groups.into_iter().enumerate())
            .map(|(r, members)| async move {
                let owner = &users[members[0]].token;
                let data = self
                    .post(
                        "/api/room/create",
                        Some(owner),
                        json!({"name": format!("bench room {r}"), "description": "", "avatarImage": ""}),
                    )
                    .await?;
                let room = &data["room"];
                let id = room["id"].as_str().context("room without id")?.to_owned();
                let code = room["room_hash_id"]
                    .as_str()
                    .context("room without code")?
                    .to_owned();
                Ok::<_, anyhow::Error>((Room { id, members }, code))
            })
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        let joins: Vec<(usize, String)> = rooms
            .iter()
            .flat_map(|(room, code)| room.members[1..].iter().map(|&u| (u, code.clone())))
            .collect();
        self.join(users, joins).await?;
        Ok(rooms)
    }

    /// Lets each `(user index, join code)` pair's user join that room.
    ///
    /// # Errors
    /// The first refused join.
    pub async fn join(&self, users: &[User], joins: Vec<(usize, String)>) -> anyhow::Result<()> {
        stream::iter(joins)
            .map(|(u, code)| async move {
                self.post(
                    "/api/room/join",
                    Some(&users[u].token),
                    json!({"roomIdHash": code}),
                )
                .await
                .map(|_| ())
            })
            .buffer_unordered(self.concurrency)
            .try_collect::<()>()
            .await
    }
}
