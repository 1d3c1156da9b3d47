//! The embedded log: one SQLite file in WAL mode, written by one thread that commits in groups.
//!
//! Every append goes to a single writer thread. It takes whatever appends are waiting (up to
//! [`MAX_GROUP`]) and runs them in one transaction, an append of several events inside a
//! savepoint of its own (so a failure in one does not undo the others). It commits once, and
//! only then answers them all. With `synchronous = full` a commit is on disk when it returns,
//! so an answered append survives a crash or power loss, and under load many appends share one
//! fsync. Reads use a small pool of read-only connections, which WAL lets run beside the
//! writer. The writer keeps 64 MiB of pages cached (SQLite's default is 2 MiB), so the index an
//! append walks (each stream's head) stays in memory as the log grows.
//!
//! The log's file has no index but `(stream_id, version)`, so every page an append writes is
//! at the end of the file or of a stream, however large the log: event ids are not looked up
//! (see [`Store`]). A data folder of an earlier version held an index of them beside the log,
//! `events-ids.db`; opening the log removes it.
//!
//! Checkpoints (copying committed pages from the WAL into the database file) are mostly done
//! by a thread of their own, four times a second. SQLite's default makes the committing
//! connection checkpoint whenever the WAL passes 1,000 pages, which under load meant every few
//! commits: the writer stalled on the copy and its fsync, and a page dirtied by many commits
//! was copied once per checkpoint, many times a second. A
//! passive checkpoint blocks neither the writer nor readers, but under steady load it never
//! catches up with the newest commit, and the WAL only starts over from its beginning once a
//! checkpoint has copied all of it. So the writer still checkpoints when the WAL passes
//! 64 MiB: by then the thread has copied all but the last quarter second, which is all the
//! writer has left to copy. Durability does not depend on checkpoints: a commit is durable
//! once its WAL frames are synced.

use crate::envelope::{GENESIS, NewEvent, Recorded, seal};
use crate::memory::check_expected;
use crate::migrate::{self, Migration};
use crate::store::{Error, Expected, Store};
use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

/// Most appends committed together in one transaction.
const MAX_GROUP: usize = 1024;

/// How often the checkpoint thread copies newly committed pages into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

struct WriteRequest {
    stream: String,
    expected: Expected,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<Recorded>, Error>>,
}

/// A [`Store`] in a SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Dropping the sender stops the checkpoint thread.
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    head: watch::Sender<u64>,
}

/// Turns on SQLite's query planner stability guarantee for `conn`. The bundled SQLite is built
/// with STAT4, so a cached statement whose plan looked at a bound value re-prepares itself
/// (parses its SQL again) whenever that value changes: every `read_all` from a new position
/// did, which cost more CPU than the reads themselves at a few thousand appends a second.
///
/// # Errors
/// When SQLite refuses the setting.
pub fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(|_| ())
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

impl SqliteStore {
    /// The log's migrations, in order.
    pub const MIGRATIONS: &'static [Migration] = &[
        Migration {
            version: 1,
            name: "event_log",
            sql: include_str!("../../migrations/sqlite/log/0001_event_log.sql"),
        },
        Migration {
            version: 2,
            name: "event_id_index_apart",
            sql: include_str!("../../migrations/sqlite/log/0002_event_id_index_apart.sql"),
        },
    ];

    /// WAL pages after which the writer checkpoints after its commit (4 KiB pages: 64 MiB),
    /// which lets the WAL start over under steady load.
    pub const WRITER_CHECKPOINT_PAGES: u32 = 16_384;

    /// Opens (creating if needed) the log at `path`, applies its migrations and starts the
    /// writer thread.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        remove_old_id_index(&path).map_err(unavailable)?;
        let mut conn = Connection::open(&path).map_err(unavailable)?;
        stable_plans(&conn).map_err(unavailable)?;
        conn.execute_batch(
            "pragma journal_mode = wal;
             pragma synchronous = full;
             pragma busy_timeout = 5000;
             pragma cache_size = -65536;",
        )
        .map_err(unavailable)?;
        conn.pragma_update(None, "wal_autocheckpoint", Self::WRITER_CHECKPOINT_PAGES)
            .map_err(unavailable)?;
        migrate::apply(&mut conn, Self::MIGRATIONS).map_err(unavailable)?;
        let head_pos: i64 = conn
            .query_row("select coalesce(max(position), 0) from event", [], |r| {
                r.get(0)
            })
            .map_err(unavailable)?;
        let (head, _) = watch::channel(head_pos as u64);
        let (tx, rx) = mpsc::channel();
        let head_tx = head.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-log-writer".into())
            .spawn(move || writer_loop(conn, rx, head_tx))
            .map_err(unavailable)?;
        let checkpoint_conn = Connection::open(&path).map_err(unavailable)?;
        checkpoint_conn
            .execute_batch("pragma synchronous = full;")
            .map_err(unavailable)?;
        let (stop, stopped) = mpsc::channel();
        let written = head.subscribe();
        let checkpoint_thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &stopped, written))
            .map_err(unavailable)?;
        Ok(Self {
            path,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some((stop, checkpoint_thread))),
            readers: Arc::new(Mutex::new(Vec::new())),
            head,
        })
    }

    /// The file this log lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops taking appends, lets the writer finish what it has, and waits for it. Appends
    /// after this fail as unavailable.
    pub fn close(&self) {
        // Idle readers go first: the last connection to close checkpoints the WAL and removes
        // it, which a reader left open until the process exits would prevent.
        self.readers.lock().expect("reader pool").clear();
        self.writer.lock().expect("writer lock").take();
        if let Some(t) = self.writer_thread.lock().expect("writer lock").take() {
            let _ = t.join();
        }
        if let Some((stop, t)) = self.checkpointer.lock().expect("checkpointer lock").take() {
            drop(stop);
            let _ = t.join();
        }
    }

    async fn with_reader<T, F>(&self, f: F) -> Result<T, Error>
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
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(unavailable)?;
                    c.busy_timeout(std::time::Duration::from_secs(5))
                        .map_err(unavailable)?;
                    stable_plans(&c).map_err(unavailable)?;
                    c.execute_batch("pragma cache_size = -16384; pragma mmap_size = 268435456;")
                        .map_err(unavailable)?;
                    c
                }
            };
            let out = f(&conn);
            let mut pool = readers.lock().expect("reader pool");
            if pool.len() < 8 {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(unavailable)?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

const COLUMNS: &str = "position, stream_id, version, event_id, event_type, schema_version, \
                       recorded_at, payload, hash";

fn row_to_recorded(r: &rusqlite::Row<'_>) -> rusqlite::Result<Recorded> {
    // Bytes are read whatever their stored type, so a value altered by hand into text still
    // reads, and `verify` reports the event rather than failing to read it.
    let bytes = |i: usize| -> rusqlite::Result<Vec<u8>> {
        match r.get_ref(i)? {
            rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                Ok(b.to_vec())
            }
            rusqlite::types::ValueRef::Null => Ok(Vec::new()),
            other => Ok(format!("{other:?}").into_bytes()),
        }
    };
    let id = bytes(3)?;
    let hash = bytes(8)?;
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            format!("{what} has the wrong length").into(),
        )
    };
    Ok(Recorded {
        position: r.get::<_, i64>(0)? as u64,
        stream_id: r.get(1)?,
        version: r.get::<_, i64>(2)? as u64,
        event_id: Uuid::from_slice(&id).map_err(|_| bad("event_id"))?,
        event_type: r.get(4)?,
        schema_version: r.get::<_, i64>(5)? as u16,
        recorded_at: r.get(6)?,
        payload: bytes(7)?,
        hash: hash.try_into().unwrap_or([0; 32]),
    })
}

fn read_error(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..) => Error::Corrupt(e.to_string()),
        other => unavailable(other),
    }
}

/// Removes the index of event ids that versions before the room's idempotency window kept
/// beside the log (`events.db` → `events-ids.db`, with its WAL files): nothing reads it now,
/// and it held a copy of every event id. Nothing of the log itself changes.
fn remove_old_id_index(log: &Path) -> std::io::Result<()> {
    let stem = log
        .file_stem()
        .map_or_else(|| "events".into(), |s| s.to_string_lossy().into_owned());
    let index = log.with_file_name(format!("{stem}-ids.db"));
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", index.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {
                tracing::info!(file = %file.display(), "removed the event-id index of an earlier version")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<WriteRequest>, head: watch::Sender<u64>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let results = write_group(&mut conn, &group);
        let newest = results
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|v| v.last()).map(|e| e.position))
            .max();
        if let Some(p) = newest {
            head.send_if_modified(|h| {
                let moved = p > *h;
                *h = (*h).max(p);
                moved
            });
        }
        for (req, result) in group.into_iter().zip(results) {
            let _ = req.reply.send(result);
        }
    }
    tracing::debug!("sqlite log writer stopped");
}

/// Every [`CHECKPOINT_EVERY`], if the writer has committed since the last look, copies what it
/// can of the WAL into the database file (a passive checkpoint: it waits for no one, and a
/// page left behind is copied next time). Once the whole WAL has been copied, the writer's
/// next commit starts it again from its beginning. Stops when `stop` is dropped.
fn checkpoint_loop(
    conn: &Connection,
    stop: &mpsc::Receiver<()>,
    mut written: watch::Receiver<u64>,
) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if !written.has_changed().unwrap_or(false) {
            continue;
        }
        written.mark_unchanged();
        if let Err(e) = conn.query_row("pragma wal_checkpoint(passive)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "log checkpoint failed; the next one will retry");
        }
    }
}

/// Runs a statement that takes no parameters from the connection's statement cache: the
/// transaction and savepoint statements of every group were parsed again each time.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Writes a group in one transaction; returns one result per request. When the commit itself
/// fails, every request fails as unavailable and nothing is written.
fn write_group(conn: &mut Connection, group: &[WriteRequest]) -> Vec<Result<Vec<Recorded>, Error>> {
    let all_fail = |e: &dyn std::fmt::Display| {
        group
            .iter()
            .map(|_| Err(unavailable(e)))
            .collect::<Vec<_>>()
    };
    if let Err(e) = run(conn, "begin immediate") {
        return all_fail(&e);
    }
    let mut results = Vec::with_capacity(group.len());
    for req in group {
        // A request of one event writes at most one row, and a statement that fails undoes
        // itself, so only a request of several events needs a savepoint to be undone whole.
        // (The two statements a savepoint costs were about a fifth of this thread's time.)
        let whole = req.events.len() > 1;
        let result = if whole {
            run(conn, "savepoint one")
                .map_err(unavailable)
                .and_then(|()| append_one(conn, req))
        } else {
            append_one(conn, req)
        };
        let end = match (whole, result.is_ok()) {
            (true, true) => run(conn, "release one").map_err(|e| e.to_string()),
            (true, false) => run(conn, "rollback to one")
                .and_then(|()| run(conn, "release one"))
                .map_err(|e| e.to_string()),
            // Some failures (an I/O error, a full disk) make SQLite roll the whole transaction
            // back; the group's other requests must not then go on outside it.
            (false, false) if conn.is_autocommit() => {
                Err("the transaction was rolled back".to_owned())
            }
            (false, _) => Ok(()),
        };
        if let Err(e) = end {
            let _ = conn.execute_batch("rollback");
            return all_fail(&e);
        }
        results.push(result);
    }
    if let Err(e) = run(conn, "commit") {
        let _ = conn.execute_batch("rollback");
        return all_fail(&e);
    }
    results
}

/// Appends one request's events.
fn append_one(conn: &Connection, req: &WriteRequest) -> Result<Vec<Recorded>, Error> {
    if req.events.is_empty() {
        return Err(Error::Empty);
    }
    let current: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "select version, hash from event where stream_id = ?1 order by version desc limit 1",
        )
        .and_then(|mut s| {
            s.query_row([&req.stream], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(unavailable)?;
    let actual = current.as_ref().map(|(v, _)| *v as u64);
    check_expected(&req.stream, req.expected, actual)?;
    let previous = match current {
        Some((_, h)) => h
            .try_into()
            .map_err(|_| Error::Corrupt(format!("stream {} has a bad hash", req.stream)))?,
        None => GENESIS,
    };
    let mut insert = conn
        .prepare_cached(
            "insert into event (stream_id, version, event_id, event_type, schema_version, \
             recorded_at, payload, hash) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(unavailable)?;
    let mut out = seal(&req.stream, actual.map(|v| (v, previous)), &req.events);
    for rec in &mut out {
        insert
            .execute(params![
                rec.stream_id,
                rec.version as i64,
                rec.event_id.as_bytes().as_slice(),
                rec.event_type,
                rec.schema_version as i64,
                rec.recorded_at,
                rec.payload,
                rec.hash.as_slice(),
            ])
            .map_err(unavailable)?;
        rec.position = conn.last_insert_rowid() as u64;
    }
    Ok(out)
}

#[async_trait]
impl Store for SqliteStore {
    async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
        let (reply, answer) = oneshot::channel();
        let request = WriteRequest {
            stream: stream.to_owned(),
            expected,
            events,
            reply,
        };
        {
            let writer = self.writer.lock().expect("writer lock");
            let Some(tx) = writer.as_ref() else {
                return Err(Error::Unavailable("the log is closed".into()));
            };
            tx.send(request)
                .map_err(|_| Error::Unavailable("the log writer stopped".into()))?;
        }
        answer
            .await
            .map_err(|_| Error::Unavailable("the log writer stopped".into()))?
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Recorded>, Error> {
        let stream = stream.to_owned();
        self.with_reader(move |c| {
            let mut s = c
                .prepare_cached(&format!(
                    "select {COLUMNS} from event where stream_id = ?1 and version >= ?2 \
                     order by version limit ?3"
                ))
                .map_err(unavailable)?;
            let rows = s
                .query_map(
                    params![
                        stream,
                        from_version as i64,
                        limit.min(i64::MAX as usize) as i64
                    ],
                    row_to_recorded,
                )
                .map_err(read_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(read_error)
        })
        .await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        self.with_reader(move |c| {
            let mut s = c
                .prepare_cached(&format!(
                    "select {COLUMNS} from event where position > ?1 order by position limit ?2"
                ))
                .map_err(unavailable)?;
            let rows = s
                .query_map(
                    params![after as i64, limit.min(i64::MAX as usize) as i64],
                    row_to_recorded,
                )
                .map_err(read_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(read_error)
        })
        .await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        let stream = stream.to_owned();
        self.with_reader(move |c| {
            c.prepare_cached("select max(version) from event where stream_id = ?1")
                .and_then(|mut s| s.query_row([stream], |r| r.get::<_, Option<i64>>(0)))
                .map(|v| v.map(|v| v as u64))
                .map_err(unavailable)
        })
        .await
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}
