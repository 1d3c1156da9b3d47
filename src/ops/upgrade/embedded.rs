//! The upgrade of a data folder. The old `events.db` is only read, through a read-only
//! connection; the new log is written to `events-upgrading.db`, verified, flushed and renamed
//! `events-upgraded.db` once complete. Only then are the old files moved aside, each by one
//! rename: `events.db` → `events-format-1.db`, `read.db` → `read-format-1.db` (its tables hold
//! names and texts in clear), `events-ids.db` → `events-format-1-ids.db`; `snapshots.db` is
//! removed (its hashes name the old log's events), and the new log becomes `events.db`. A run
//! that finds `events-upgraded.db` finishes those renames.

use super::{Copied, NewLog, check, copy};
use crate::auth::Sessions;
use anyhow::{Context, bail};
use async_trait::async_trait;
use events::{Error, Expected, NewEvent, Recorded, SqliteStore, Store};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::watch;
use uuid::Uuid;

/// The old log, once moved aside.
const OLD_LOG: &str = "events-format-1.db";
/// The old read tables, once moved aside.
pub(super) const OLD_READ: &str = "read-format-1.db";
/// The new log while it is being written.
const WRITING: &str = "events-upgrading.db";
/// The new log, complete, before it takes the old one's place.
const COMPLETE: &str = "events-upgraded.db";

/// A SQLite database's companion files.
pub(super) const COMPANIONS: [&str; 3] = ["", "-wal", "-shm"];

/// Upgrades the data folder `dir`.
pub async fn upgrade(dir: &Path) -> anyhow::Result<i32> {
    let log = dir.join("events.db");
    if dir.join(COMPLETE).exists() {
        if log.exists() && !is_old(&log).await? {
            bail!(
                "{} holds a complete upgraded log but events.db is not the old log: move one of \
                 them away",
                dir.join(COMPLETE).display()
            );
        }
        println!("finishing an upgrade that was interrupted after its new log was complete");
        return swap(dir, None);
    }
    if !log.exists() {
        bail!(
            "no log at {}: nothing to upgrade (is --data-dir right?)",
            log.display()
        );
    }
    checkpoint_old(&log)?;
    let old = OldLog::open(&log)?;
    let total = match check(&old, &format!("the log in {}", dir.display())).await? {
        Ok(events) => events,
        Err(code) => return Ok(code),
    };
    for kept in [OLD_LOG, OLD_READ] {
        if dir.join(kept).exists() {
            bail!(
                "{} is already there, from an earlier upgrade: move it away first",
                dir.join(kept).display()
            );
        }
    }
    let writing = dir.join(WRITING);
    remove_all(&writing)?;
    // Creates the file with today's schema, as the server would.
    SqliteStore::open(&writing)
        .context("creating the new log")?
        .close();
    let keys = events::keys::Keys::open_file(&dir.join("keys.db"))
        .context("opening the key store (keys.db)")?;
    let sessions = Sessions::open(&dir.join("sessions.db"), std::time::Duration::ZERO)
        .context("opening the sessions")?;
    let mut new = FileLog(Connection::open(&writing).context("opening the new log")?);
    let copied = copy(&old, total, &keys, &sessions, &mut new).await?;
    drop((new, old));
    verify_new(&writing).await?;
    // A log out of WAL mode is one file, which one rename moves whole; the server turns WAL
    // back on when it opens it.
    Connection::open(&writing)?.pragma_update(None, "journal_mode", "delete")?;
    std::fs::File::open(&writing)?.sync_all()?;
    std::fs::rename(&writing, dir.join(COMPLETE))?;
    sync_dir(dir)?;
    swap(dir, Some(copied))
}

/// Moves the old files aside and the complete new log in; each step is a rename or a removal
/// that a second run skips once done.
fn swap(dir: &Path, copied: Option<Copied>) -> anyhow::Result<i32> {
    let read = dir.join("read.db");
    if dir.join(OLD_READ).exists() {
        // Left by a server that refused the old log after this upgrade began: derived, empty.
        remove_all(&read)?;
    } else {
        move_all(&read, &dir.join(OLD_READ))?;
    }
    remove_all(&dir.join("snapshots.db"))?;
    move_all(
        &dir.join("events-ids.db"),
        &dir.join("events-format-1-ids.db"),
    )?;
    move_all(&dir.join("events.db"), &dir.join(OLD_LOG))?;
    std::fs::rename(dir.join(COMPLETE), dir.join("events.db")).context("moving the new log in")?;
    sync_dir(dir)?;
    let d = dir.display();
    match copied {
        Some(c) => println!(
            "upgraded the log in {d} to format {}: {c}",
            events::event::LOG_FORMAT
        ),
        None => println!("upgraded the log in {d}"),
    }
    println!(
        "kept for you to remove once the server runs on the new log (they hold names, \
         passwords' hashes and texts in clear):"
    );
    for kept in [OLD_LOG, OLD_READ, "events-format-1-ids.db"] {
        for suffix in COMPANIONS {
            let f = dir.join(format!("{kept}{suffix}"));
            if f.exists() {
                println!("  {}", f.display());
            }
        }
    }
    println!(
        "removed snapshots.db (rooms take new snapshots); the server rebuilds read.db from the \
         log at its next start"
    );
    println!(
        "back up {} now: the sealed names and texts cannot be read without it",
        dir.join("keys.db").display()
    );
    Ok(0)
}

/// Whether `log` is a log of an earlier format.
async fn is_old(log: &Path) -> anyhow::Result<bool> {
    Ok(crate::storage::format(&OldLog::open(log)?).await? == crate::storage::Format::Old)
}

/// Copies what the old log's WAL holds into its file, so that moving the file moves the whole
/// log: a checkpoint, which changes no event.
fn checkpoint_old(log: &Path) -> anyhow::Result<()> {
    let wal = PathBuf::from(format!("{}-wal", log.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        let conn = Connection::open(log).context("opening the old log")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query_row("pragma wal_checkpoint(truncate)", [], |_| Ok(()))
            .context("checkpointing the old log (is a server still running on it?)")?;
    }
    Ok(())
}

/// Verifies the new log as `chatroom verify` would.
async fn verify_new(path: &Path) -> anyhow::Result<()> {
    let store = SqliteStore::open(path).context("opening the new log")?;
    let (_, finding) = crate::ops::verify::check(&store, |_| {}).await?;
    store.close();
    if let Some(f) = finding {
        bail!(
            "the new log does not verify at position {} ({}); the old log is untouched",
            f.position,
            f.problem
        );
    }
    Ok(())
}

pub(super) fn move_all(from: &Path, to: &Path) -> anyhow::Result<()> {
    for suffix in COMPANIONS {
        let src = PathBuf::from(format!("{}{suffix}", from.display()));
        let dst = PathBuf::from(format!("{}{suffix}", to.display()));
        match std::fs::rename(&src, &dst) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("moving {} aside", src.display()));
            }
        }
    }
    Ok(())
}

pub(super) fn remove_all(db: &Path) -> anyhow::Result<()> {
    for suffix in COMPANIONS {
        let f = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", f.display())),
        }
    }
    Ok(())
}

/// Makes the folder's renames durable.
pub(super) fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The new log's file, written one transaction per batch.
struct FileLog(Connection);

impl NewLog for FileLog {
    async fn write(&mut self, events: &[Recorded]) -> anyhow::Result<()> {
        let tx = self.0.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "insert into event (stream_id, version, event_id, event_type, schema_version, \
                 recorded_at, payload, hash) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for e in events {
                insert.execute(params![
                    e.stream_id,
                    e.version as i64,
                    e.event_id.as_bytes().as_slice(),
                    e.event_type,
                    i64::from(e.schema_version),
                    e.recorded_at,
                    e.payload,
                    e.hash.as_slice(),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The old log, read through a read-only connection so that nothing of it changes (opening it
/// as today's store would apply today's migrations to it).
pub(super) struct OldLog {
    conn: Mutex<Connection>,
    head: watch::Sender<u64>,
}

const COLUMNS: &str = "position, stream_id, version, event_id, event_type, schema_version, \
                       recorded_at, payload, hash";

impl OldLog {
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {} to read", path.display()))?;
        let head: i64 = conn
            .query_row("select coalesce(max(position), 0) from event", [], |r| {
                r.get(0)
            })
            .context("reading the old log")?;
        Ok(Self {
            conn: Mutex::new(conn),
            head: watch::channel(head as u64).0,
        })
    }

    fn query(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Recorded>, Error> {
        let conn = self.conn.lock().expect("old log");
        let mut stmt = conn.prepare_cached(sql).map_err(corrupt)?;
        let rows = stmt.query_map(args, row).map_err(corrupt)?;
        rows.collect::<Result<_, _>>().map_err(corrupt)
    }
}

fn corrupt(e: rusqlite::Error) -> Error {
    Error::Corrupt(e.to_string())
}

/// An old row; a value of the wrong type reads as bytes, so `verify` names the event.
fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Recorded> {
    let bytes = |i: usize| -> rusqlite::Result<Vec<u8>> {
        Ok(match r.get_ref(i)? {
            rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => b.to_vec(),
            rusqlite::types::ValueRef::Null => Vec::new(),
            other => format!("{other:?}").into_bytes(),
        })
    };
    Ok(Recorded {
        position: r.get::<_, i64>(0)? as u64,
        stream_id: r.get(1)?,
        version: r.get::<_, i64>(2)? as u64,
        event_id: Uuid::from_slice(&bytes(3)?).unwrap_or_default(),
        event_type: r.get(4)?,
        schema_version: r.get::<_, i64>(5)? as u16,
        recorded_at: r.get(6)?,
        payload: bytes(7)?,
        hash: bytes(8)?.try_into().unwrap_or([0; 32]),
    })
}

#[async_trait]
impl Store for OldLog {
    async fn append(
        &self,
        _stream: &str,
        _expected: Expected,
        _events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
        Err(Error::Unavailable(
            "the old log is read-only during an upgrade".into(),
        ))
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Recorded>, Error> {
        self.query(
            &format!(
                "select {COLUMNS} from event where stream_id = ?1 and version >= ?2 \
                 order by version limit ?3"
            ),
            params![stream, from_version as i64, limit as i64],
        )
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        self.query(
            &format!("select {COLUMNS} from event where position > ?1 order by position limit ?2"),
            params![after as i64, limit as i64],
        )
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        let conn = self.conn.lock().expect("old log");
        conn.query_row(
            "select max(version) from event where stream_id = ?1",
            [stream],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()
        .map(|v| v.flatten().map(|v| v as u64))
        .map_err(corrupt)
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}
