//! The read tables behind one handle, whichever database holds them.

use crate::postgres;
use crate::projection::Projection;
use crate::sqlite::{self, Error, ReadDb, RecordRow, RoomRow, UserRow};
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

    /// The rooms of a user, most recently active first.
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

    /// Turns every message older than `cutoff` (ms) into a placeholder (retention); how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn scrub_before(&self, cutoff: i64) -> Result<u64, Error> {
        match self {
            Reads::Sqlite(db) => {
                db.with_writer(move |c| {
                    Ok(c.execute(
                        "update room_record set message = '', search_text = '', deleted = 1
                         where time < ?1 and deleted = 0",
                        [cutoff],
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
                     where time < $1 and not deleted",
                    &[&cutoff],
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
