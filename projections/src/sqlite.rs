//! The read tables in SQLite: the sink that applies [`Change`]s with the checkpoint in the
//! same transaction; the queries the server answers from those tables are in `queries`.

use crate::plan::Plan;
use crate::projection::{Projection, Target};
use events::keys::Keys;
use events::migrate::{self, Migration};
use events::{Event, Recorded};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use crate::error::Error;

mod apply;
mod changes;
mod queries;
mod rows;
use apply::apply_change;
pub(crate) use queries::{
    INVITES, MEMBERS, OWN_MESSAGES, RECORD_COLUMNS, RECORDS, ROOM_COLUMNS, add_reactions,
    own_messages, reactions_sql,
};
pub use queries::{
    InviteRow, MemberRow, OwnMessage, RecordRow, RoomRow, TextVersion, UserRow, invites, is_member,
    member_role, members, message, messages, messages_by, retention_rooms, room_by_code,
    room_by_id, room_for, room_of_code, rooms_of, search, user_by_id, user_by_name,
};

/// The read tables' migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "read_tables",
        sql: include_str!("../../migrations/sqlite/read/0001_read_tables.sql"),
    },
    Migration {
        version: 2,
        name: "search_text",
        sql: include_str!("../../migrations/sqlite/read/0002_search_text.sql"),
    },
    Migration {
        version: 3,
        name: "sealed_log",
        sql: include_str!("../../migrations/sqlite/read/0003_sealed_log.sql"),
    },
    Migration {
        version: 4,
        name: "governance",
        sql: include_str!("../../migrations/sqlite/read/0004_governance.sql"),
    },
    Migration {
        version: 5,
        name: "message_changes",
        sql: include_str!("../../migrations/sqlite/read/0005_message_changes.sql"),
    },
    Migration {
        version: 6,
        name: "read_marker",
        sql: include_str!("../../migrations/sqlite/read/0006_read_marker.sql"),
    },
    Migration {
        version: 7,
        name: "direct",
        sql: include_str!("../../migrations/sqlite/read/0007_direct.sql"),
    },
    Migration {
        version: 8,
        name: "dead_letter",
        sql: include_str!("../../migrations/sqlite/read/0008_dead_letter.sql"),
    },
];

/// The read database: a file, a writer connection per worker, and a pool of readers.
#[derive(Clone)]
pub struct ReadDb {
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
    writer: Arc<Mutex<Option<Connection>>>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    events::stable_plans(conn)?;
    // The read tables can be rebuilt from the log, so they need not be synced on every
    // commit; WAL keeps each transaction (rows + checkpoint) atomic across a crash.
    conn.execute_batch(
        "pragma journal_mode = wal;
         pragma synchronous = normal;
         pragma busy_timeout = 10000;
         pragma cache_size = -32768;
         pragma foreign_keys = off;
         pragma secure_delete = on;",
    )
}

impl ReadDb {
    /// Opens (creating if needed) the read database and applies its migrations.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        migrate::apply(&mut conn, MIGRATIONS)?;
        Ok(Self {
            path,
            readers: Arc::new(Mutex::new(vec![conn])),
            writer: Arc::new(Mutex::new(None)),
        })
    }

    /// Runs `f` on the projections' shared write connection, on the blocking pool.
    ///
    /// # Errors
    /// What `f` returns, or a task failure.
    pub async fn with_writer<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = db
                .writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(db.writer()?);
            }
            f(slot.as_mut().expect("just opened"))
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Empties the write-ahead log into the database and truncates it, so that no file keeps
    /// rows as they were before an erasure (`secure_delete` zeroes them in the database).
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn truncate_wal(&self) -> Result<(), Error> {
        self.with_writer(|c| {
            c.query_row("pragma wal_checkpoint(truncate)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// A new read-write connection (for a worker).
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn writer(&self) -> Result<Connection, Error> {
        let conn = Connection::open(&self.path)?;
        configure(&conn)?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection on the blocking pool.
    ///
    /// # Errors
    /// What `f` returns, or a task failure.
    pub async fn with<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.lock().expect("reader pool").pop();
            let conn = match conn {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    configure(&c)?;
                    c
                }
            };
            let out = f(&conn);
            let mut pool = readers.lock().expect("reader pool");
            if pool.len() < 16 {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }
}

/// The checkpoint of `projection` (0 when it has applied nothing).
///
/// # Errors
/// SQLite errors.
pub fn checkpoint(conn: &Connection, projection: Projection) -> Result<u64, Error> {
    checkpoint_of(conn, &Target::Live.checkpoint(projection))
}

/// The stored checkpoint called `name` (0 when there is none).
///
/// # Errors
/// SQLite errors.
pub fn checkpoint_of(conn: &Connection, name: &str) -> Result<u64, Error> {
    let p: Option<i64> = conn
        .query_row(
            "select position from projection_checkpoint where projection = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(p.unwrap_or(0) as u64)
}

/// Applies a batch of events to `projections` in `target`'s tables, moving each one's
/// checkpoint to the last event, in one transaction of its own; their checkpoints, in the
/// order of `projections`. Events at or below a projection's checkpoint are skipped, so a
/// batch read twice (after a crash between read and commit) is applied once.
///
/// # Errors
/// SQLite errors or an undecodable event; nothing of the batch is applied then.
pub fn commit_batch(
    keys: &Keys,
    conn: &mut Connection,
    projections: &[Projection],
    target: Target,
    batch: &[Recorded],
) -> Result<Vec<u64>, Error> {
    // Immediate: take the write lock up front. A deferred transaction that reads first and
    // then writes fails at once with "database is locked" when another worker writes between.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = apply_in_transaction(keys, &tx, projections, target, batch)?;
    tx.commit()?;
    Ok(at)
}

/// [`commit_batch`] inside a transaction the caller holds, decoding each event once. Each
/// projection skips the events at or below its own checkpoint, so projections that stand at
/// different positions (one just rebuilt, say) each apply every event once. The projections
/// write disjoint tables, so applying them event by event gives the rows that applying them
/// one after the other would.
///
/// # Errors
/// SQLite errors or an undecodable event.
pub fn apply_in_transaction(
    keys: &Keys,
    tx: &Connection,
    projections: &[Projection],
    target: Target,
    batch: &[Recorded],
) -> Result<Vec<u64>, Error> {
    let names: Vec<String> = projections.iter().map(|p| target.checkpoint(*p)).collect();
    let mut at = names
        .iter()
        .map(|n| checkpoint_of(tx, n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut changes = Vec::new();
    for rec in batch {
        if at.iter().all(|a| rec.position <= *a) {
            continue;
        }
        let event: Event = rec.decode().map_err(|e| Error::Decode {
            position: rec.position,
            reason: e.to_string(),
        })?;
        // The key store beside SQLite read tables is SQLite too, which never waits: it is
        // asked from this synchronous transaction without a runtime.
        let clear = futures::executor::block_on(open_sealed(keys, rec, &event))?;
        for (projection, at) in projections.iter().zip(at.iter_mut()) {
            if rec.position <= *at {
                continue;
            }
            changes.extend(projection.changes(rec, &event, clear.as_deref()));
            *at = rec.position;
        }
    }
    // Each room's updates in the batch as one (see `Plan`): a message used to cost an update
    // of its room's row besides the insert of its record.
    let plan = Plan::new(changes);
    for change in &plan.inserts {
        apply_change(tx, change, target)?;
    }
    for update in &plan.rooms {
        // `last_seq` stays as it is when the room had no messages in the batch.
        tx.prepare_cached(&format!(
            "update {} set last_seq = coalesce(max(last_seq, ?2), last_seq),
                             update_time = max(update_time, ?3)
             where id = ?1",
            target.table("room")
        ))?
        .execute(params![update.room_id, update.last_seq, update.update_time])?;
    }
    for (name, at) in names.iter().zip(&at) {
        tx.execute(
            "insert into projection_checkpoint (projection, position) values (?1, ?2)
             on conflict (projection) do update set position = excluded.position",
            params![name, *at as i64],
        )?;
    }
    Ok(at)
}

/// The sealed field of `event` opened with `keys`, `None` when its key is gone. A key store
/// that cannot be read is a failure to retry ([`Error::Task`]); sealed bytes that the key
/// does not open never will ([`Error::Decode`]).
pub(crate) async fn open_sealed(
    keys: &Keys,
    rec: &Recorded,
    event: &Event,
) -> Result<Option<String>, Error> {
    let Some((subject, sealed)) = event.sealed() else {
        return Ok(None);
    };
    let key = keys
        .key(&subject)
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    match key {
        None => Ok(None),
        Some(key) => key
            .open(&subject, sealed)
            .map(Some)
            .ok_or_else(|| Error::Decode {
                position: rec.position,
                reason: format!("the sealed bytes of {subject} do not open with its key"),
            }),
    }
}
