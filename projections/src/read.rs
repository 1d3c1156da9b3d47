//! The read tables behind one handle, whichever database holds them.

use crate::postgres;
use crate::projection::Projection;
use crate::sqlite::{self, Error, InviteRow, MemberRow, ReadDb, RecordRow, RoomRow, UserRow};
use deadpool_postgres::Pool;

/// The read tables: in SQLite (embedded) or PostgreSQL.
#[derive(Clone)]
pub enum Reads {
    /// `read.db` in the data folder.
    Sqlite(ReadDb),
    /// Tables in the PostgreSQL database, beside the log.
    Postgres(Pool),
}

impl Reads {
    /// The user named `name`, ignoring case.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let name = name.to_owned();
                db.with(move |c| sqlite::user_by_name(c, &name)).await
            }
            Reads::Postgres(p) => postgres::user_by(p, "name_lower", &name.to_lowercase()).await,
        }
    }

    /// The user with this id.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let id = id.to_owned();
                db.with(move |c| sqlite::user_by_id(c, &id)).await
            }
            Reads::Postgres(p) => postgres::user_by(p, "id", id).await,
        }
    }

    /// The room with this id.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn room_by_id(&self, id: &str) -> Result<Option<RoomRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let id = id.to_owned();
                db.with(move |c| sqlite::room_by_id(c, &id)).await
            }
            Reads::Postgres(p) => postgres::room_by(p, "id", id).await,
        }
    }

    /// The room with this join code.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn room_by_code(&self, code: &str) -> Result<Option<RoomRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let code = code.to_owned();
                db.with(move |c| sqlite::room_by_code(c, &code)).await
            }
            Reads::Postgres(p) => postgres::room_by(p, "room_hash_id", code).await,
        }
    }

    /// The room with this id, with the role `user_id` has in it (none when not a member).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn room_for(&self, room_id: &str, user_id: &str) -> Result<Option<RoomRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let (room, user) = (room_id.to_owned(), user_id.to_owned());
                db.with(move |c| sqlite::room_for(c, &room, &user)).await
            }
            Reads::Postgres(p) => postgres::room_for(p, room_id, user_id).await,
        }
    }

    /// The id of the room a join code ever belonged to, found by the code's
    /// [`join_code_hash`](events::event::join_code_hash): standing or extra, working or
    /// rotated, revoked, expired, used up (the room actor tells which).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn room_of_code(&self, hash: &[u8; 32]) -> Result<Option<String>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let hash = *hash;
                db.with(move |c| sqlite::room_of_code(c, &hash)).await
            }
            Reads::Postgres(p) => postgres::room_of_code(p, hash).await,
        }
    }

    /// The members of a room: the owner, the admins, then the members, each by join time.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn members(&self, room_id: &str) -> Result<Vec<MemberRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let room = room_id.to_owned();
                db.with(move |c| sqlite::members(c, &room)).await
            }
            Reads::Postgres(p) => postgres::members(p, room_id).await,
        }
    }

    /// The role of `user_id` in `room_id` (`owner`, `admin` or `member`), `None` when not a
    /// member.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn member_role(&self, room_id: &str, user_id: &str) -> Result<Option<String>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let (room, user) = (room_id.to_owned(), user_id.to_owned());
                db.with(move |c| sqlite::member_role(c, &room, &user)).await
            }
            Reads::Postgres(p) => postgres::member_role(p, room_id, user_id).await,
        }
    }

    /// The invites of a room that still work at `now_ms` (not revoked, expired or used up),
    /// oldest first.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn invites(&self, room_id: &str, now_ms: i64) -> Result<Vec<InviteRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let room = room_id.to_owned();
                db.with(move |c| sqlite::invites(c, &room, now_ms)).await
            }
            Reads::Postgres(p) => postgres::invites(p, room_id, now_ms).await,
        }
    }

    /// Every room with a retention limit of its own, with that limit in days.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn retention_rooms(&self) -> Result<Vec<(String, u32)>, Error> {
        match self {
            Reads::Sqlite(db) => db.with(sqlite::retention_rooms).await,
            Reads::Postgres(p) => postgres::retention_rooms(p).await,
        }
    }

    /// The rooms of a user, most recently active first, with their role.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn rooms_of(&self, user_id: &str) -> Result<Vec<RoomRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let user = user_id.to_owned();
                db.with(move |c| sqlite::rooms_of(c, &user)).await
            }
            Reads::Postgres(p) => postgres::rooms_of(p, user_id).await,
        }
    }

    /// The ids of every erased user.
    ///
    /// # Errors
    /// Database errors.
    pub async fn erased_users(&self) -> Result<Vec<String>, Error> {
        match self {
            Reads::Sqlite(db) => {
                db.with(|c| {
                    let mut s =
                        c.prepare_cached("select id from user where erased_at is not null")?;
                    let ids = s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                    Ok(ids)
                })
                .await
            }
            Reads::Postgres(p) => Ok(p
                .get()
                .await
                .map_err(crate::error::pg)?
                .query("select id from \"user\" where erased_at is not null", &[])
                .await
                .map_err(crate::error::pg)?
                .iter()
                .map(|r| r.get(0))
                .collect()),
        }
    }

    /// Turns every message older than `cutoff` (ms) into a placeholder (retention), of `room`
    /// only or of every room; how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn scrub_before(&self, cutoff: i64, room: Option<&str>) -> Result<u64, Error> {
        match self {
            Reads::Sqlite(db) => {
                let room = room.map(str::to_owned);
                db.with_writer(move |c| {
                    Ok(c.execute(
                        "update room_record set message = '', search_text = '', deleted = 1
                         where time < ?1 and deleted = 0 and (?2 is null or room_id = ?2)",
                        rusqlite::params![cutoff, room],
                    )? as u64)
                })
                .await
            }
            Reads::Postgres(p) => p
                .get()
                .await
                .map_err(crate::error::pg)?
                .execute(
                    "update room_record set message = '', search_text = '', deleted = true
                     where time < $1 and not deleted and ($2::text is null or room_id = $2)",
                    &[&cutoff, &room],
                )
                .await
                .map_err(crate::error::pg),
        }
    }

    /// Every message `user_id` wrote, in every room, oldest first (for their export).
    ///
    /// # Errors
    /// Database errors.
    pub async fn messages_by(&self, user_id: &str) -> Result<Vec<RecordRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let user = user_id.to_owned();
                db.with(move |c| sqlite::messages_by(c, &user)).await
            }
            Reads::Postgres(p) => postgres::messages_by(p, user_id).await,
        }
    }

    /// A page of a room's history, or `None` when `user_id` is not a member.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn member_messages(
        &self,
        room_id: &str,
        user_id: &str,
        before: Option<u64>,
        limit: u64,
    ) -> Result<Option<Vec<RecordRow>>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let (room, user) = (room_id.to_owned(), user_id.to_owned());
                db.with(move |c| {
                    if !sqlite::is_member(c, &room, &user)? {
                        return Ok(None);
                    }
                    sqlite::messages(c, &room, before, limit).map(Some)
                })
                .await
            }
            Reads::Postgres(p) => {
                postgres::member_messages(p, room_id, user_id, before, limit).await
            }
        }
    }

    /// Message `seq` of `room_id` as it is now, if there is one.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn message(&self, room_id: &str, seq: u64) -> Result<Option<RecordRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let room = room_id.to_owned();
                let rows = db
                    .with(move |c| sqlite::messages(c, &room, Some(seq.saturating_add(1)), 1))
                    .await?;
                Ok(rows.into_iter().find(|r| r.seq == seq))
            }
            Reads::Postgres(p) => postgres::message(p, room_id, seq).await,
        }
    }

    /// Messages of a room matching `query`, newest first, or `None` when `user_id` is not a
    /// member.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn search(
        &self,
        room_id: &str,
        user_id: &str,
        query: &str,
        limit: u64,
    ) -> Result<Option<Vec<RecordRow>>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let (room, user, q) = (room_id.to_owned(), user_id.to_owned(), query.to_owned());
                db.with(move |c| {
                    if !sqlite::is_member(c, &room, &user)? {
                        return Ok(None);
                    }
                    sqlite::search(c, &room, &q, limit).map(Some)
                })
                .await
            }
            Reads::Postgres(p) => {
                let c = p.get().await.map_err(crate::error::pg)?;
                let member: bool = c
                    .query_one(
                        "select exists(select 1 from room_member where room_id = $1 and user_id = $2)",
                        &[&room_id, &user_id],
                    )
                    .await
                    .map_err(crate::error::pg)?
                    .get(0);
                drop(c);
                if !member {
                    return Ok(None);
                }
                postgres::search(p, room_id, query, limit).await.map(Some)
            }
        }
    }

    /// The checkpoint of a projection as stored.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn checkpoint(&self, projection: Projection) -> Result<u64, Error> {
        match self {
            Reads::Sqlite(db) => db.with(move |c| sqlite::checkpoint(c, projection)).await,
            Reads::Postgres(p) => {
                let c = p.get().await.map_err(crate::error::pg)?;
                postgres::checkpoint(&c, projection).await
            }
        }
    }
}
