//! Backing the key store up to a SQLite key-store file, and restoring from one.

use super::{Db, Error, Keys, SQLITE_MIGRATIONS, err};
use crate::migrate;
use rusqlite::{Connection, params};
use std::path::Path;

impl Keys {
    /// Writes every key, hold and the name secret to a new SQLite key store file at `path`
    /// (the same format as `keys.db`, whichever engine this store is in).
    ///
    /// # Errors
    /// When `path` exists or cannot be written, or the store cannot be read.
    pub async fn backup(&self, path: &Path) -> Result<u64, Error> {
        if path.exists() {
            return Err(Error(format!("{} exists already", path.display())));
        }
        let rows = self.rows().await?;
        let mut out = Connection::open(path).map_err(err)?;
        migrate::apply(&mut out, SQLITE_MIGRATIONS).map_err(err)?;
        let tx = out.transaction().map_err(err)?;
        let n = rows.keys.len() as u64;
        write_rows(&tx, &rows).map_err(err)?;
        tx.commit().map_err(err)?;
        out.execute_batch("pragma journal_mode = delete;")
            .map_err(err)?;
        Ok(n)
    }

    /// Adds what the backup at `path` holds and this store lacks (keys, holds); the name
    /// secret must be the same, or the store must have no keys yet. Returns the keys added.
    /// Keys of subjects erased since the backup come back with it: the server destroys them
    /// again at its next start (and every few minutes), as the log says they were erased.
    ///
    /// # Errors
    /// When the file is not a key store backup or the secrets differ.
    pub async fn restore(&self, path: &Path) -> Result<u64, Error> {
        if !path.exists() {
            return Err(Error(format!("{} does not exist", path.display())));
        }
        let src = Keys::open_file(path)?;
        let rows = src.rows().await?;
        let mine = self.rows().await?;
        if *src.secret() != *self.secret() && !mine.keys.is_empty() {
            return Err(Error(
                "the backup belongs to another key store (its name secret differs)".into(),
            ));
        }
        let before = mine.keys.len();
        match &self.db {
            Db::Sqlite(_) => {
                let mut conn = self.conn().expect("sqlite");
                let tx = conn.transaction().map_err(err)?;
                tx.execute("delete from key_secret", []).map_err(err)?;
                write_rows(&tx, &rows).map_err(err)?;
                tx.commit().map_err(err)?;
            }
            Db::Postgres(pool) => {
                let mut client = pool.get().await.map_err(err)?;
                let tx = client.transaction().await.map_err(err)?;
                tx.execute("delete from key_secret", &[])
                    .await
                    .map_err(err)?;
                tx.execute(
                    "insert into key_secret (name, value) values ('name', $1)",
                    &[&rows.secret.as_slice()],
                )
                .await
                .map_err(err)?;
                for k in &rows.keys {
                    tx.execute(
                        "insert into subject_key (subject, user_id, room_id, period, key, created_at)
                         values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
                        &[&k.0, &k.1, &k.2, &k.3, &k.4, &k.5],
                    )
                    .await
                    .map_err(err)?;
                }
                for h in &rows.holds {
                    tx.execute(
                        "insert into legal_hold (id, room_id, user_id, reason, created_at)
                         values ($1, $2, $3, $4, $5) on conflict do nothing",
                        &[&h.0, &h.1, &h.2, &h.3, &h.4],
                    )
                    .await
                    .map_err(err)?;
                }
                tx.commit().await.map_err(err)?;
            }
        }
        self.cache.clear();
        *self
            .name_secret
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = rows.secret;
        let after = self.rows().await?.keys.len();
        Ok((after - before) as u64)
    }

    async fn rows(&self) -> Result<Rows, Error> {
        const KEYS: &str = "select subject, user_id, room_id, period, key, created_at from subject_key order by subject";
        const HOLDS: &str = "select id, room_id, user_id, reason, created_at from legal_hold";
        match &self.db {
            Db::Sqlite(_) => {
                let conn = self.conn().expect("sqlite");
                let keys = conn
                    .prepare(KEYS)
                    .and_then(|mut s| {
                        s.query_map([], |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                            ))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(err)?;
                let holds = conn
                    .prepare(HOLDS)
                    .and_then(|mut s| {
                        s.query_map([], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(err)?;
                Ok(Rows {
                    secret: *self.secret(),
                    keys,
                    holds,
                })
            }
            Db::Postgres(pool) => {
                let client = pool.get().await.map_err(err)?;
                let keys = client
                    .query(KEYS, &[])
                    .await
                    .map_err(err)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
                    .collect();
                let holds = client
                    .query(HOLDS, &[])
                    .await
                    .map_err(err)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                    .collect();
                Ok(Rows {
                    secret: *self.secret(),
                    keys,
                    holds,
                })
            }
        }
    }
}

type KeyRow = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Vec<u8>,
    i64,
);
type HoldRow = (String, Option<String>, Option<String>, String, i64);

struct Rows {
    secret: [u8; 32],
    keys: Vec<KeyRow>,
    holds: Vec<HoldRow>,
}

fn write_rows(tx: &rusqlite::Transaction<'_>, rows: &Rows) -> rusqlite::Result<()> {
    tx.execute(
        "insert or replace into key_secret (name, value) values ('name', ?1)",
        params![rows.secret.as_slice()],
    )?;
    for k in &rows.keys {
        tx.execute(
            "insert or ignore into subject_key (subject, user_id, room_id, period, key, created_at)
             values (?1, ?2, ?3, ?4, ?5, ?6)",
            params![k.0, k.1, k.2, k.3, k.4, k.5],
        )?;
    }
    for h in &rows.holds {
        tx.execute(
            "insert or ignore into legal_hold (id, room_id, user_id, reason, created_at)
             values (?1, ?2, ?3, ?4, ?5)",
            params![h.0, h.1, h.2, h.3, h.4],
        )?;
    }
    Ok(())
}
