//! Who blocks whom, read from the `user_block` table on either engine.

use crate::error::pg;
use crate::read::Reads;
use crate::sqlite::{Error, UserRow};

/// The users a user blocks, with their profiles, in the order they were blocked.
const BLOCKED: &str = "select u.id, u.name, u.erased_at is not null, u.avatar_image
     from user_block b join \"user\" u on u.id = b.blocked_id
     where b.blocker_id = $1 order by b.blocked_at, b.blocked_id";

/// Whether a user blocks another.
const BLOCKS: &str =
    "select exists(select 1 from user_block where blocker_id = $1 and blocked_id = $2)";

/// The statement for SQLite, whose numbered parameters are `?1`, `?2`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace("$1", "?1").replace("$2", "?2")
}

impl Reads {
    /// Whether `by` blocks `user_id`.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn blocks(&self, by: &str, user_id: &str) -> Result<bool, Error> {
        match self {
            Reads::Sqlite(db) => {
                let (by, user) = (by.to_owned(), user_id.to_owned());
                db.with(move |c| {
                    Ok(c.prepare_cached(&sqlite_sql(BLOCKS))?
                        .query_row([by, user], |r| r.get(0))?)
                })
                .await
            }
            Reads::Postgres(p) => {
                let c = p.get().await.map_err(pg)?;
                let row = c.query_one(BLOCKS, &[&by, &user_id]).await.map_err(pg)?;
                Ok(row.get(0))
            }
        }
    }

    /// The users `by` blocks, in the order they were blocked.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn blocked_by(&self, by: &str) -> Result<Vec<UserRow>, Error> {
        match self {
            Reads::Sqlite(db) => {
                let by = by.to_owned();
                db.with(move |c| {
                    let mut s = c.prepare_cached(&sqlite_sql(BLOCKED))?;
                    let rows = s.query_map([by], |r| {
                        Ok(UserRow {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            erased: r.get(2)?,
                            avatar_image: r.get(3)?,
                        })
                    })?;
                    Ok(rows.collect::<Result<_, _>>()?)
                })
                .await
            }
            Reads::Postgres(p) => {
                let c = p.get().await.map_err(pg)?;
                let rows = c.query(BLOCKED, &[&by]).await.map_err(pg)?;
                Ok(rows
                    .iter()
                    .map(|r| UserRow {
                        id: r.get(0),
                        name: r.get(1),
                        erased: r.get(2),
                        avatar_image: r.get(3),
                    })
                    .collect())
            }
        }
    }
}
