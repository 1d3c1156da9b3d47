//! Password hashes, beside the sessions (`sessions.db`, or the `credential` table in
//! PostgreSQL), and revoking all of a user's tokens. Credentials are changed in place and
//! never enter the log: the log only records that a password changed.

use crate::auth::{Db, Sessions};
use rusqlite::{OptionalExtension, params};

impl Sessions {
    /// Stores (or replaces) `user_id`'s password hash.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn set_password(&self, user_id: &str, hash: &str) -> anyhow::Result<()> {
        let now = events::now_ms();
        match &self.db {
            Db::Sqlite(conn) => {
                conn.lock().expect("sessions").execute(
                    "insert into credential (user_id, password_hash, updated_at) values (?1, ?2, ?3)
                     on conflict (user_id) do update set password_hash = excluded.password_hash,
                                                         updated_at = excluded.updated_at",
                    params![user_id, hash, now],
                )?;
            }
            Db::Postgres(pool) => {
                pool.get()
                    .await?
                    .execute(
                        "insert into credential (user_id, password_hash, updated_at) values ($1, $2, $3)
                         on conflict (user_id) do update set password_hash = excluded.password_hash,
                                                             updated_at = excluded.updated_at",
                        &[&user_id, &hash, &now],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// `user_id`'s password hash, if they have one.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn password_of(&self, user_id: &str) -> anyhow::Result<Option<String>> {
        Ok(match &self.db {
            Db::Sqlite(conn) => conn
                .lock()
                .expect("sessions")
                .query_row(
                    "select password_hash from credential where user_id = ?1",
                    [user_id],
                    |r| r.get(0),
                )
                .optional()?,
            Db::Postgres(pool) => pool
                .get()
                .await?
                .query_opt(
                    "select password_hash from credential where user_id = $1",
                    &[&user_id],
                )
                .await?
                .map(|r| r.get(0)),
        })
    }

    /// Deletes `user_id`'s password hash (erasure).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn forget_password(&self, user_id: &str) -> anyhow::Result<()> {
        match &self.db {
            Db::Sqlite(conn) => {
                let conn = conn.lock().expect("sessions");
                // The write-ahead log still holds the page as it was; the sweep asks again for
                // every erased user and mostly finds nothing to delete.
                if conn.execute("delete from credential where user_id = ?1", [user_id])? > 0 {
                    conn.query_row("pragma wal_checkpoint(truncate)", [], |_| Ok(()))?;
                }
            }
            Db::Postgres(pool) => {
                pool.get()
                    .await?
                    .execute("delete from credential where user_id = $1", &[&user_id])
                    .await?;
            }
        }
        Ok(())
    }

    /// Revokes every live token of `user_id` but `keep`; the hashes of those revoked (for
    /// disconnecting their sockets).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn revoke_user(
        &self,
        user_id: &str,
        keep: Option<&[u8; 32]>,
    ) -> anyhow::Result<Vec<[u8; 32]>> {
        let keep: &[u8] = keep.map_or(&[], |k| k.as_slice());
        let hashes: Vec<Vec<u8>> = match &self.db {
            Db::Sqlite(conn) => {
                let conn = conn.lock().expect("sessions");
                let mut stmt = conn.prepare(
                    "update session set revoked = 1
                     where user_id = ?1 and revoked = 0 and token_hash != ?2
                     returning token_hash",
                )?;
                stmt.query_map(params![user_id, keep], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            }
            Db::Postgres(pool) => pool
                .get()
                .await?
                .query(
                    "update session set revoked = true
                     where user_id = $1 and not revoked and token_hash != $2
                     returning token_hash",
                    &[&user_id, &keep],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        };
        let hashes: Vec<[u8; 32]> = hashes
            .into_iter()
            .filter_map(|h| h.try_into().ok())
            .collect();
        for h in &hashes {
            self.remember(*h, None);
        }
        Ok(hashes)
    }
}
