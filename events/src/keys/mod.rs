//! The key store: the keys of [`Subject`]s, kept outside the log, and the legal holds that
//! stop keys from being destroyed.
//!
//! It lives in `keys.db` in the data folder (SQLite, `secure_delete` on, its write-ahead log
//! truncated after every destruction so no file keeps a destroyed key), or in PostgreSQL
//! beside the read tables. It is small and not append-only: destroying a key is a `delete`.
//! It also holds the server's secret for name hashes ([`Keys::name_hash`]). Losing it loses
//! every sealed text of the log, so it is backed up on its own ([`Keys::backup`]).
//!
//! Keys are kept in memory once read. A key is always stored before the first event sealed
//! with it is appended, so a subject whose key is not found was destroyed: that answer is kept
//! too. With PostgreSQL, every destruction bumps `key_epoch`, and [`Keys::refresh`] (run every
//! second by each process) forgets what it kept when another process destroyed keys.

use crate::migrate::{self, Migration};
use crate::seal::{Key, Sealed, Subject};
use dashmap::DashMap;
use deadpool_postgres::Pool;
use hmac::{KeyInit, Mac};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

mod backup;

/// The SQLite key store's migrations.
pub const SQLITE_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "keys",
    sql: include_str!("../../../migrations/sqlite/keys/0001_keys.sql"),
}];

/// The PostgreSQL migration of the key store's tables.
pub const POSTGRES_MIGRATION: Migration = Migration {
    version: 8,
    name: "keys",
    sql: include_str!("../../../migrations/postgres/0008_keys.sql"),
};

/// Why the key store failed.
#[derive(Debug, thiserror::Error)]
#[error("key store: {0}")]
pub struct Error(pub String);

fn err(e: impl std::fmt::Display) -> Error {
    Error(e.to_string())
}

/// A legal hold: while it exists, no key it covers is destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Its id.
    pub id: String,
    /// What it covers.
    pub covers: Covers,
    /// Why, as the operator wrote it (kept here, never in the log).
    pub reason: String,
    /// When it was placed, milliseconds since the epoch.
    pub created_at: i64,
}

/// What a hold covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Covers {
    /// Every key of a room: the texts written in it.
    Room(String),
    /// Every key of a user: their name, avatar and texts.
    User(String),
}

/// Which keys to destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destroy {
    /// Every key of an erased user.
    User(String),
    /// The text keys of periods before this one (retention), in one room or in all.
    TextsBefore {
        /// The first period kept.
        period: i64,
        /// Only this room, or every room.
        room: Option<String>,
    },
}

enum Db {
    Sqlite(Mutex<Connection>),
    Postgres(Pool),
}

/// The key store, with what it has read kept in memory.
pub struct Keys {
    db: Db,
    cache: DashMap<String, Option<Arc<Key>>>,
    name_secret: std::sync::RwLock<[u8; 32]>,
    epoch: AtomicI64,
}

/// Kept keys at most before the memory is cleared and refilled from the store.
const CACHE_MAX: usize = 200_000;

/// The `where` clause that spares held keys (same SQL on both engines).
const NOT_HELD: &str = "(user_id is null or user_id not in (select user_id from legal_hold where user_id is not null)) \
     and (room_id is null or room_id not in (select room_id from legal_hold where room_id is not null))";

impl Keys {
    /// Opens (creating) the SQLite key store at `path`.
    ///
    /// # Errors
    /// When it cannot be opened or migrated.
    pub fn open_file(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open(path).map_err(err)?;
        Self::sqlite(conn)
    }

    /// A key store in memory, for tests and the in-memory log.
    pub fn memory() -> Self {
        Self::sqlite(Connection::open_in_memory().expect("an in-memory SQLite database"))
            .expect("an in-memory key store")
    }

    fn sqlite(mut conn: Connection) -> Result<Self, Error> {
        conn.execute_batch(
            "pragma journal_mode = wal; pragma synchronous = full; pragma busy_timeout = 5000;
             pragma secure_delete = on;",
        )
        .map_err(err)?;
        migrate::apply(&mut conn, SQLITE_MIGRATIONS).map_err(err)?;
        let fresh: [u8; 32] = rand::random();
        conn.execute(
            "insert or ignore into key_secret (name, value) values ('name', ?1)",
            params![fresh.as_slice()],
        )
        .map_err(err)?;
        let secret: Vec<u8> = conn
            .query_row(
                "select value from key_secret where name = 'name'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        Ok(Self::with(Db::Sqlite(Mutex::new(conn)), &secret))
    }

    /// The key store in PostgreSQL (already migrated).
    ///
    /// # Errors
    /// When it cannot be read.
    pub async fn postgres(pool: Pool) -> Result<Self, Error> {
        let client = pool.get().await.map_err(err)?;
        let fresh: [u8; 32] = rand::random();
        client
            .execute(
                "insert into key_secret (name, value) values ('name', $1) on conflict do nothing",
                &[&fresh.as_slice()],
            )
            .await
            .map_err(err)?;
        let row = client
            .query_one("select value from key_secret where name = 'name'", &[])
            .await
            .map_err(err)?;
        let epoch: i64 = client
            .query_one("select epoch from key_epoch", &[])
            .await
            .map_err(err)?
            .get(0);
        let secret: Vec<u8> = row.get(0);
        drop(client);
        let keys = Self::with(Db::Postgres(pool), &secret);
        keys.epoch.store(epoch, Ordering::Relaxed);
        Ok(keys)
    }

    fn with(db: Db, secret: &[u8]) -> Self {
        let mut name_secret = [0; 32];
        name_secret.copy_from_slice(&secret[..32]);
        Self {
            db,
            cache: DashMap::new(),
            name_secret: std::sync::RwLock::new(name_secret),
            epoch: AtomicI64::new(0),
        }
    }

    fn secret(&self) -> std::sync::RwLockReadGuard<'_, [u8; 32]> {
        self.name_secret
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn conn(&self) -> Option<std::sync::MutexGuard<'_, Connection>> {
        match &self.db {
            Db::Sqlite(c) => Some(c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
            Db::Postgres(_) => None,
        }
    }

    /// The name of a user name's stream part: HMAC-SHA256 under the server's secret of the
    /// name folded to lower case, in hex. Equal names ignoring case give equal hashes; the
    /// hash does not give the name back, not even by trying names, without the secret.
    pub fn name_hash(&self, name: &str) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&*self.secret())
            .expect("HMAC takes a key of any length");
        mac.update(name.trim().to_lowercase().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The id of the one direct room of two users: HMAC-SHA256 under the server's secret of
    /// the pair (in the order of their ids, so either may ask), made a UUID. Every process
    /// computes the same id, so the room's stream itself makes it unique; nobody without the
    /// secret can tell from two user ids whether they share a room.
    pub fn direct_room_id(&self, a: &str, b: &str) -> String {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&*self.secret())
            .expect("HMAC takes a key of any length");
        // Lengths first: no two pairs of ids read as the same bytes.
        for part in [first, second] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(b"direct room");
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    fn remember(&self, name: String, key: Option<Arc<Key>>) {
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(name, key);
    }

    /// Seals `clear` for `subject`, creating the subject's key if it has none.
    ///
    /// # Errors
    /// When the key store cannot be written, or the subject's key was destroyed (nothing may
    /// be sealed for an erased subject).
    pub async fn seal(&self, subject: &Subject, clear: &str) -> Result<Sealed, Error> {
        // The subject's name is both the cache's key and the seal's associated data: made once.
        let name = subject.to_string();
        let key = self.sealing_key(subject, &name).await?;
        Ok(key.seal_named(&name, clear))
    }

    /// The key that [`Keys::seal`] uses, created and stored if the subject has none.
    ///
    /// # Errors
    /// As [`Keys::seal`].
    pub async fn key_for_sealing(&self, subject: &Subject) -> Result<Arc<Key>, Error> {
        self.sealing_key(subject, &subject.to_string()).await
    }

    async fn sealing_key(&self, subject: &Subject, name: &str) -> Result<Arc<Key>, Error> {
        if let Some(found) = self.cache.get(name).map(|k| k.clone()) {
            return found.ok_or_else(|| Error(format!("the key of {name} was destroyed")));
        }
        let fresh = Key::random();
        let now = crate::now_ms();
        // Of two processes creating the key at once, the first insert wins and both read it.
        match &self.db {
            Db::Sqlite(_) => {
                self.conn()
                    .expect("sqlite")
                    .execute(
                        "insert or ignore into subject_key (subject, user_id, room_id, period, key, created_at)
                         values (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![name, subject.user(), subject.room(), subject.period(), fresh.0.as_slice(), now],
                    )
                    .map_err(err)?;
            }
            Db::Postgres(pool) => {
                pool.get()
                    .await
                    .map_err(err)?
                    .execute(
                        "insert into subject_key (subject, user_id, room_id, period, key, created_at)
                         values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
                        &[&name, &subject.user(), &subject.room(), &subject.period(), &fresh.0.as_slice(), &now],
                    )
                    .await
                    .map_err(err)?;
            }
        }
        let key = self
            .stored(name)
            .await?
            .ok_or_else(|| Error(format!("the key of {name} was destroyed")))?;
        self.remember(name.to_owned(), Some(key.clone()));
        Ok(key)
    }

    /// The key of `subject`, `None` when it was destroyed (or never existed).
    ///
    /// # Errors
    /// When the key store cannot be read.
    pub async fn key(&self, subject: &Subject) -> Result<Option<Arc<Key>>, Error> {
        self.key_named(&subject.to_string()).await
    }

    async fn key_named(&self, name: &str) -> Result<Option<Arc<Key>>, Error> {
        if let Some(found) = self.cache.get(name).map(|k| k.clone()) {
            return Ok(found);
        }
        let key = self.stored(name).await?;
        self.remember(name.to_owned(), key.clone());
        Ok(key)
    }

    /// The key stored under `name`, read from the database.
    async fn stored(&self, name: &str) -> Result<Option<Arc<Key>>, Error> {
        let stored: Option<Vec<u8>> = match &self.db {
            Db::Sqlite(_) => self
                .conn()
                .expect("sqlite")
                .query_row(
                    "select key from subject_key where subject = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?,
            Db::Postgres(pool) => pool
                .get()
                .await
                .map_err(err)?
                .query_opt("select key from subject_key where subject = $1", &[&name])
                .await
                .map_err(err)?
                .map(|r| r.get(0)),
        };
        Ok(stored.map(|k| key_of(&k)).transpose()?.map(Arc::new))
    }

    /// Opens what was sealed for `subject`: `None` when its key was destroyed.
    ///
    /// # Errors
    /// When the key store cannot be read, or the key exists and the bytes do not open with it
    /// (they were changed).
    pub async fn open(&self, subject: &Subject, sealed: &Sealed) -> Result<Option<String>, Error> {
        let name = subject.to_string();
        match self.key_named(&name).await? {
            None => Ok(None),
            Some(key) => key
                .open_named(&name, sealed)
                .map(Some)
                .ok_or_else(|| Error(format!("sealed bytes of {name} do not open"))),
        }
    }

    /// Destroys the keys that `what` names, except those a legal hold covers, and returns how
    /// many were destroyed.
    ///
    /// # Errors
    /// When the key store cannot be written.
    pub async fn destroy(&self, what: &Destroy) -> Result<u64, Error> {
        let (user, period, room) = what.params();
        let filter = FILTER;
        let n = match &self.db {
            Db::Sqlite(_) => {
                let conn = self.conn().expect("sqlite");
                let sql = format!(
                    "delete from subject_key where {} and {NOT_HELD}",
                    sqlite_sql(filter)
                );
                let n = conn
                    .execute(&sql, params![user, period, room])
                    .map_err(err)?;
                // The write-ahead log still holds the pages as they were: empty it. The sweep
                // asks again for every erased user, and mostly finds nothing to delete.
                if n > 0 {
                    conn.query_row("pragma wal_checkpoint(truncate)", [], |_| Ok(()))
                        .map_err(err)?;
                }
                n as u64
            }
            Db::Postgres(pool) => {
                let mut client = pool.get().await.map_err(err)?;
                let tx = client.transaction().await.map_err(err)?;
                let sql = format!("delete from subject_key where {filter} and {NOT_HELD}");
                let n = tx
                    .execute(&sql, &[&user, &period, &room])
                    .await
                    .map_err(err)?;
                if n > 0 {
                    tx.execute("update key_epoch set epoch = epoch + 1", &[])
                        .await
                        .map_err(err)?;
                }
                tx.commit().await.map_err(err)?;
                n
            }
        };
        if n > 0 {
            self.cache.clear();
        }
        Ok(n)
    }

    /// How many keys `what` names that a hold keeps (the erasures and expiries pending).
    ///
    /// # Errors
    /// When the key store cannot be read.
    pub async fn held(&self, what: &Destroy) -> Result<u64, Error> {
        let (user, period, room) = what.params();
        let filter = FILTER;
        match &self.db {
            Db::Sqlite(_) => {
                let sql = format!(
                    "select count(*) from subject_key where {} and not ({NOT_HELD})",
                    sqlite_sql(filter)
                );
                let n: i64 = self
                    .conn()
                    .expect("sqlite")
                    .query_row(&sql, params![user, period, room], |r| r.get(0))
                    .map_err(err)?;
                Ok(n as u64)
            }
            Db::Postgres(pool) => {
                let sql =
                    format!("select count(*) from subject_key where {filter} and not ({NOT_HELD})");
                let n: i64 = pool
                    .get()
                    .await
                    .map_err(err)?
                    .query_one(&sql, &[&user, &period, &room])
                    .await
                    .map_err(err)?
                    .get(0);
                Ok(n as u64)
            }
        }
    }

    /// With PostgreSQL: forgets the keys kept in memory when another process destroyed keys
    /// since the last call.
    ///
    /// # Errors
    /// When the key store cannot be read.
    pub async fn refresh(&self) -> Result<(), Error> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(());
        };
        let epoch: i64 = pool
            .get()
            .await
            .map_err(err)?
            .query_one("select epoch from key_epoch", &[])
            .await
            .map_err(err)?
            .get(0);
        if self.epoch.swap(epoch, Ordering::Relaxed) != epoch {
            self.cache.clear();
        }
        Ok(())
    }

    /// Places a hold.
    ///
    /// # Errors
    /// When the key store cannot be written.
    pub async fn add_hold(&self, covers: Covers, reason: &str) -> Result<Hold, Error> {
        let hold = Hold {
            id: uuid::Uuid::now_v7().to_string(),
            covers,
            reason: reason.to_owned(),
            created_at: crate::now_ms(),
        };
        let (room, user) = match &hold.covers {
            Covers::Room(r) => (Some(r.as_str()), None),
            Covers::User(u) => (None, Some(u.as_str())),
        };
        match &self.db {
            Db::Sqlite(_) => {
                self.conn()
                    .expect("sqlite")
                    .execute(
                        "insert into legal_hold (id, room_id, user_id, reason, created_at) values (?1, ?2, ?3, ?4, ?5)",
                        params![hold.id, room, user, hold.reason, hold.created_at],
                    )
                    .map_err(err)?;
            }
            Db::Postgres(pool) => {
                pool.get()
                    .await
                    .map_err(err)?
                    .execute(
                        "insert into legal_hold (id, room_id, user_id, reason, created_at) values ($1, $2, $3, $4, $5)",
                        &[&hold.id, &room, &user, &hold.reason, &hold.created_at],
                    )
                    .await
                    .map_err(err)?;
            }
        }
        Ok(hold)
    }

    /// Lifts a hold; `false` when there is none with that id.
    ///
    /// # Errors
    /// When the key store cannot be written.
    pub async fn remove_hold(&self, id: &str) -> Result<bool, Error> {
        let n = match &self.db {
            Db::Sqlite(_) => self
                .conn()
                .expect("sqlite")
                .execute("delete from legal_hold where id = ?1", params![id])
                .map_err(err)? as u64,
            Db::Postgres(pool) => pool
                .get()
                .await
                .map_err(err)?
                .execute("delete from legal_hold where id = $1", &[&id])
                .await
                .map_err(err)?,
        };
        Ok(n > 0)
    }

    /// Every hold, oldest first.
    ///
    /// # Errors
    /// When the key store cannot be read.
    pub async fn holds(&self) -> Result<Vec<Hold>, Error> {
        const SQL: &str = "select id, room_id, user_id, reason, created_at from legal_hold order by created_at, id";
        type Row = (String, Option<String>, Option<String>, String, i64);
        let rows: Vec<Row> = match &self.db {
            Db::Sqlite(_) => {
                let conn = self.conn().expect("sqlite");
                let mut stmt = conn.prepare(SQL).map_err(err)?;
                stmt.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?
            }
            Db::Postgres(pool) => pool
                .get()
                .await
                .map_err(err)?
                .query(SQL, &[])
                .await
                .map_err(err)?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect(),
        };
        Ok(rows
            .into_iter()
            .map(|(id, room, user, reason, created_at)| Hold {
                id,
                covers: match (room, user) {
                    (Some(r), _) => Covers::Room(r),
                    (None, u) => Covers::User(u.unwrap_or_default()),
                },
                reason,
                created_at,
            })
            .collect())
    }
}

/// PostgreSQL's numbered parameters and casts, as SQLite spells them.
fn sqlite_sql(sql: &str) -> String {
    sql.replace("::text", "")
        .replace("::bigint", "")
        .replace('$', "?")
}

/// The keys a [`Destroy`] names, given its [`Destroy::params`].
const FILTER: &str = "(($1::text is not null and user_id = $1) or \
     ($1::text is null and period < $2::bigint and ($3::text is null or room_id = $3)))";

impl Destroy {
    fn params(&self) -> (Option<&str>, Option<i64>, Option<&str>) {
        match self {
            Destroy::User(u) => (Some(u), None, None),
            Destroy::TextsBefore { period, room } => (None, Some(*period), room.as_deref()),
        }
    }
}

fn key_of(bytes: &[u8]) -> Result<Key, Error> {
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error("a stored key is not 32 bytes long".into()))?;
    Ok(Key(raw))
}

#[cfg(test)]
mod tests;
