//! Read markers: how far each member has read each room, and the unread counts the room
//! object shows from them.
//!
//! A marker is state beside the log, not a projection: the server writes it in place, only
//! forward (the database's `max`/`greatest` on conflict), clamped to the room's newest `seq`.
//! Its table is no projection's, so rebuilding the read tables from the log keeps it. The
//! same SQL runs on SQLite and PostgreSQL where both accept it.

use crate::error::{Error, pg};
use crate::read::Reads;
use events::migrate::Migration;
use rusqlite::{OptionalExtension, params};

/// The read markers and the presence tables, for PostgreSQL.
pub const POSTGRES_MIGRATION: Migration = Migration {
    version: 12,
    name: "read_state",
    sql: include_str!("../../migrations/postgres/0012_read_state.sql"),
};

/// The caller's marker and unread count of `room r`, for member `m` (joined by [`READ_JOIN`]).
/// The count walks the room's records after the marker by their key.
pub(crate) const READ_COLUMNS: &str = "coalesce(k.last_read_seq, 0), \
     (select count(*) from room_record x where x.room_id = r.id \
      and x.seq > coalesce(k.last_read_seq, 0) and x.user_id <> m.user_id and not x.deleted)";

/// The marker of member `m` in `room r`.
pub(crate) const READ_JOIN: &str =
    "left join read_marker k on k.user_id = m.user_id and k.room_id = r.id";

/// What a `mark_read` found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// No such room.
    NoRoom,
    /// The caller is not a member.
    NotMember,
    /// The marker, before and after (equal when it did not move).
    Marked {
        /// The marker before.
        before: u64,
        /// The marker now.
        now: u64,
        /// The room's newest `seq` as the read tables know it (the clamp).
        last_seq: u64,
    },
}

const SQLITE_LOOK: &str = "select r.last_seq,
            exists(select 1 from room_member m where m.room_id = r.id and m.user_id = ?2),
            (select last_read_seq from read_marker where user_id = ?2 and room_id = ?1)
     from room r where r.id = ?1";

const SQLITE_MOVE: &str = "insert into read_marker (user_id, room_id, last_read_seq)
     values (?1, ?2, ?3)
     on conflict (user_id, room_id) do update
     set last_read_seq = max(last_read_seq, excluded.last_read_seq)
     returning last_read_seq";

/// One statement: the room, the membership, the marker before, and the marker moved forward
/// when the clamped `seq` is past it (nothing is written otherwise).
const POSTGRES_MARK: &str = "with room as (select last_seq from room where id = $1),
     member as (select exists(select 1 from room_member where room_id = $1 and user_id = $2) as yes),
     old as (select last_read_seq from read_marker where user_id = $2 and room_id = $1),
     up as (insert into read_marker (user_id, room_id, last_read_seq)
            select $2, $1, least($3, room.last_seq) from room, member
            where member.yes
              and least($3, room.last_seq) > coalesce((select last_read_seq from old), 0)
            on conflict (user_id, room_id) do update
            set last_read_seq = greatest(read_marker.last_read_seq, excluded.last_read_seq)
            returning last_read_seq)
     select (select last_seq from room), (select yes from member),
            (select last_read_seq from old), (select last_read_seq from up)";

fn outcome(last_seq: Option<i64>, member: bool, old: Option<i64>, up: Option<i64>) -> Mark {
    match (last_seq, member) {
        (None, _) => Mark::NoRoom,
        (Some(_), false) => Mark::NotMember,
        (Some(last), true) => {
            let before = old.unwrap_or(0) as u64;
            Mark::Marked {
                before,
                now: up.map_or(before, |n| n as u64),
                last_seq: last as u64,
            }
        }
    }
}

impl Reads {
    /// Moves `user_id`'s marker in `room_id` forward to `seq`, clamped to the room's newest
    /// `seq`; a lower `seq` changes nothing.
    ///
    /// # Errors
    /// When the database cannot be read or written.
    pub async fn mark_read(&self, room_id: &str, user_id: &str, seq: u64) -> Result<Mark, Error> {
        let asked = i64::try_from(seq).unwrap_or(i64::MAX);
        match self {
            Reads::Sqlite(db) => {
                let (room, user) = (room_id.to_owned(), user_id.to_owned());
                let look = {
                    let (room, user) = (room.clone(), user.clone());
                    db.with(move |c| {
                        Ok(c.prepare_cached(SQLITE_LOOK)?
                            .query_row(params![room, user], |r| {
                                Ok((
                                    r.get::<_, i64>(0)?,
                                    r.get::<_, bool>(1)?,
                                    r.get::<_, Option<i64>>(2)?,
                                ))
                            })
                            .optional()?)
                    })
                    .await?
                };
                let Some((last, member, old)) = look else {
                    return Ok(Mark::NoRoom);
                };
                let target = asked.min(last);
                if !member || target <= old.unwrap_or(0) {
                    return Ok(outcome(Some(last), member, old, None));
                }
                let up: i64 = db
                    .with_writer(move |c| {
                        Ok(c.prepare_cached(SQLITE_MOVE)?
                            .query_row(params![user, room, target], |r| r.get(0))?)
                    })
                    .await?;
                Ok(outcome(Some(last), true, old, Some(up)))
            }
            Reads::Postgres(p) => {
                let c = p.get().await.map_err(pg)?;
                let statement = c.prepare_cached(POSTGRES_MARK).await.map_err(pg)?;
                let row = c
                    .query_one(&statement, &[&room_id, &user_id, &asked])
                    .await
                    .map_err(pg)?;
                Ok(outcome(
                    row.get(0),
                    row.get::<_, Option<bool>>(1).unwrap_or(false),
                    row.get(2),
                    row.get(3),
                ))
            }
        }
    }

    /// Every read marker of `user_id`, by room id (for their export).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn read_markers(&self, user_id: &str) -> Result<Vec<(String, u64)>, Error> {
        const SQL: &str =
            "select room_id, last_read_seq from read_marker where user_id = $1 order by room_id";
        match self {
            Reads::Sqlite(db) => {
                let user = user_id.to_owned();
                db.with(move |c| {
                    let mut s = c.prepare_cached(&SQL.replace("$1", "?1"))?;
                    let rows = s.query_map([user], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                    })?;
                    Ok(rows.collect::<Result<_, _>>()?)
                })
                .await
            }
            Reads::Postgres(p) => Ok(p
                .get()
                .await
                .map_err(pg)?
                .query(SQL, &[&user_id])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
                .collect()),
        }
    }

    /// Removes every read marker of `user_id` (erasure); how many there were.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn forget_markers(&self, user_id: &str) -> Result<u64, Error> {
        match self {
            Reads::Sqlite(db) => {
                let user = user_id.to_owned();
                db.with_writer(move |c| {
                    Ok(c.execute("delete from read_marker where user_id = ?1", [user])? as u64)
                })
                .await
            }
            Reads::Postgres(p) => p
                .get()
                .await
                .map_err(pg)?
                .execute("delete from read_marker where user_id = $1", &[&user_id])
                .await
                .map_err(pg),
        }
    }

    /// The ids of the rooms `user_id` is a member of (for presence, which each of them
    /// hears of).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn room_ids_of(&self, user_id: &str) -> Result<Vec<String>, Error> {
        const SQL: &str = "select room_id from room_member where user_id = $1";
        match self {
            Reads::Sqlite(db) => {
                let user = user_id.to_owned();
                db.with(move |c| {
                    let mut s = c.prepare_cached(&SQL.replace("$1", "?1"))?;
                    let rows = s.query_map([user], |r| r.get(0))?;
                    Ok(rows.collect::<Result<_, _>>()?)
                })
                .await
            }
            Reads::Postgres(p) => Ok(p
                .get()
                .await
                .map_err(pg)?
                .query(SQL, &[&user_id])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Mark, outcome};

    #[test]
    fn outcomes_read_as_the_contract_answers() {
        assert_eq!(outcome(None, true, None, None), Mark::NoRoom);
        assert_eq!(outcome(Some(4), false, None, None), Mark::NotMember);
        assert_eq!(
            outcome(Some(9), true, None, None),
            Mark::Marked {
                before: 0,
                now: 0,
                last_seq: 9
            }
        );
        assert_eq!(
            outcome(Some(9), true, Some(3), Some(8)),
            Mark::Marked {
                before: 3,
                now: 8,
                last_seq: 9
            }
        );
    }
}
