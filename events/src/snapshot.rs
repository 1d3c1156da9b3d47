//! Snapshots of a stream's folded state, so that whoever folds a long stream (a room actor)
//! can start from the newest snapshot and read only the events after it.
//!
//! A snapshot is derived data, never a source of truth: it names the stream version it was
//! taken at and the chain hash of the event at that version. A reader checks that hash against
//! the log before trusting the snapshot, so a snapshot from another log (a restored backup, a
//! copied data folder) or one that is simply lost only costs a full read of the stream.
//! Snapshots live beside the read tables: their own SQLite file in the data folder, or the
//! `snapshot` table in PostgreSQL.

use crate::migrate::Migration;
use crate::store::Error;
use async_trait::async_trait;
use deadpool_postgres::Pool;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The state of `stream` after its events up to `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream.
    pub stream: String,
    /// The version of the last event folded in.
    pub version: u64,
    /// The chain hash of that event, as the log holds it.
    pub hash: [u8; 32],
    /// The encoding of `state`, chosen by whoever folds the stream; a reader ignores a
    /// snapshot in a format it does not know.
    pub format: u32,
    /// The folded state.
    pub state: Vec<u8>,
}

/// Where snapshots are kept. Only the newest snapshot of each stream is kept: saving one
/// older than the one stored changes nothing.
#[async_trait]
pub trait Snapshots: Send + Sync + 'static {
    /// The newest snapshot of `stream`, if any.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the snapshots cannot be read.
    async fn load(&self, stream: &str) -> Result<Option<Snapshot>, Error>;

    /// Keeps `snapshot` unless a snapshot of a later (or the same) version is stored.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it cannot be written.
    async fn save(&self, snapshot: Snapshot) -> Result<(), Error>;
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

fn bad_hash(stream: &str) -> Error {
    Error::Corrupt(format!(
        "the snapshot of {stream} has a hash of the wrong length"
    ))
}

/// Snapshots in memory, for tests and the in-memory log.
#[derive(Default)]
pub struct MemorySnapshots {
    by_stream: Mutex<HashMap<String, Snapshot>>,
}

impl MemorySnapshots {
    /// No snapshots yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Snapshots for MemorySnapshots {
    async fn load(&self, stream: &str) -> Result<Option<Snapshot>, Error> {
        Ok(self
            .by_stream
            .lock()
            .expect("snapshots lock")
            .get(stream)
            .cloned())
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), Error> {
        let mut map = self.by_stream.lock().expect("snapshots lock");
        match map.get(&snapshot.stream) {
            Some(old) if old.version >= snapshot.version => {}
            _ => {
                map.insert(snapshot.stream.clone(), snapshot);
            }
        }
        Ok(())
    }
}

/// The embedded snapshots' migrations, in order.
pub const SQLITE_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "snapshot",
    sql: include_str!("../../migrations/sqlite/snapshot/0001_snapshot.sql"),
}];

/// The PostgreSQL migration that creates the `snapshot` table.
pub const POSTGRES_MIGRATION: Migration = Migration {
    version: 5,
    name: "snapshot",
    sql: include_str!("../../migrations/postgres/0005_snapshot.sql"),
};

/// Snapshots in a SQLite file of their own.
pub struct SqliteSnapshots {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteSnapshots {
    /// Opens (creating if needed) the snapshot file at `path`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let mut conn = Connection::open(path).map_err(unavailable)?;
        crate::stable_plans(&conn).map_err(unavailable)?;
        // A snapshot lost in a crash is only a longer start for its room: no fsync per save.
        conn.execute_batch(
            "pragma journal_mode = wal; pragma synchronous = normal; pragma busy_timeout = 5000;",
        )
        .map_err(unavailable)?;
        crate::migrate::apply(&mut conn, SQLITE_MIGRATIONS).map_err(unavailable)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(unavailable)?
    }
}

#[async_trait]
impl Snapshots for SqliteSnapshots {
    async fn load(&self, stream: &str) -> Result<Option<Snapshot>, Error> {
        let stream = stream.to_owned();
        self.with(move |c| {
            let row = c
                .prepare_cached(
                    "select version, hash, format, state from snapshot where stream_id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&stream], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                        ))
                    })
                    .optional()
                })
                .map_err(unavailable)?;
            row.map(|(version, hash, format, state)| {
                Ok(Snapshot {
                    hash: hash.try_into().map_err(|_| bad_hash(&stream))?,
                    stream: stream.clone(),
                    version: version as u64,
                    format: format as u32,
                    state,
                })
            })
            .transpose()
        })
        .await
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), Error> {
        self.with(move |c| {
            c.prepare_cached(
                "insert into snapshot (stream_id, version, hash, format, state, saved_at) \
                 values (?1, ?2, ?3, ?4, ?5, ?6) \
                 on conflict (stream_id) do update set version = excluded.version, \
                 hash = excluded.hash, format = excluded.format, state = excluded.state, \
                 saved_at = excluded.saved_at where excluded.version > snapshot.version",
            )
            .and_then(|mut s| {
                s.execute(params![
                    snapshot.stream,
                    snapshot.version as i64,
                    snapshot.hash.as_slice(),
                    snapshot.format,
                    snapshot.state,
                    crate::now_ms(),
                ])
            })
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }
}

/// Snapshots in the PostgreSQL `snapshot` table (see [`POSTGRES_MIGRATION`]).
pub struct PostgresSnapshots {
    pool: Pool,
}

impl PostgresSnapshots {
    /// Snapshots in the database behind `pool`, already migrated.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl Snapshots for PostgresSnapshots {
    async fn load(&self, stream: &str) -> Result<Option<Snapshot>, Error> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let row = client
            .query_opt(
                "select version, hash, format, state from snapshot where stream_id = $1",
                &[&stream],
            )
            .await
            .map_err(unavailable)?;
        row.map(|r| {
            let hash: Vec<u8> = r.get(1);
            Ok(Snapshot {
                stream: stream.to_owned(),
                version: r.get::<_, i64>(0) as u64,
                hash: hash.try_into().map_err(|_| bad_hash(stream))?,
                format: r.get::<_, i32>(2) as u32,
                state: r.get(3),
            })
        })
        .transpose()
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), Error> {
        let client = self.pool.get().await.map_err(unavailable)?;
        client
            .execute(
                "insert into snapshot (stream_id, version, hash, format, state, saved_at) \
                 values ($1, $2, $3, $4, $5, $6) \
                 on conflict (stream_id) do update set version = excluded.version, \
                 hash = excluded.hash, format = excluded.format, state = excluded.state, \
                 saved_at = excluded.saved_at where excluded.version > snapshot.version",
                &[
                    &snapshot.stream,
                    &(snapshot.version as i64),
                    &snapshot.hash.as_slice(),
                    &(snapshot.format as i32),
                    &snapshot.state,
                    &crate::now_ms(),
                ],
            )
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

/// Checks that a [`Snapshots`] keeps the newest snapshot of each stream apart from the
/// others and never goes back to an older one. Every implementation's tests run it.
///
/// # Panics
/// When the implementation does not behave.
pub async fn conformance(snapshots: &dyn Snapshots) {
    let snap = |stream: &str, version: u64, fill: u8| Snapshot {
        stream: stream.to_owned(),
        version,
        hash: [fill; 32],
        format: 1,
        state: vec![fill; 3 + version as usize],
    };
    assert_eq!(snapshots.load("room-a").await.unwrap(), None);
    snapshots.save(snap("room-a", 10, 1)).await.unwrap();
    snapshots.save(snap("room-b", 3, 2)).await.unwrap();
    assert_eq!(
        snapshots.load("room-a").await.unwrap(),
        Some(snap("room-a", 10, 1))
    );
    snapshots.save(snap("room-a", 20, 3)).await.unwrap();
    assert_eq!(
        snapshots.load("room-a").await.unwrap(),
        Some(snap("room-a", 20, 3))
    );
    // An older snapshot (a slower saver, another process) does not replace a newer one, and
    // neither does one of the same version.
    snapshots.save(snap("room-a", 15, 4)).await.unwrap();
    snapshots.save(snap("room-a", 20, 5)).await.unwrap();
    assert_eq!(
        snapshots.load("room-a").await.unwrap(),
        Some(snap("room-a", 20, 3))
    );
    assert_eq!(
        snapshots.load("room-b").await.unwrap(),
        Some(snap("room-b", 3, 2))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_snapshots_conform() {
        conformance(&MemorySnapshots::new()).await;
    }

    #[tokio::test]
    async fn sqlite_snapshots_conform_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshots.db");
        conformance(&SqliteSnapshots::open(&path).unwrap()).await;
        let again = SqliteSnapshots::open(&path).unwrap();
        assert_eq!(again.load("room-a").await.unwrap().unwrap().version, 20);
    }
}
