//! The embedded log's index of event ids, in a file of its own beside the log.
//!
//! Every append proves its event ids new: a retried message carries the id of its first try
//! and gets the first try's record back, however long ago that was. Event ids are hashes, so
//! an index of them takes its inserts at random places. Inside the log's file, once that index
//! outgrew a commit group, every appended event dirtied a 4 KiB leaf of its own, which the
//! commit wrote to the WAL and the checkpoint wrote again: the bytes written per message grew
//! with the log, and at saturation they were most of what the log wrote.
//!
//! Here the index lives in `<log>-ids.db` and takes ids in large sorted batches, so a leaf is
//! written once for all the ids of a batch that land on it. The ids appended since the last
//! batch are held in memory ([`Pending`]). A lookup checks memory, then the file; a batch leaves
//! memory only after its transaction has committed, so an id is always in one or the other.
//!
//! Nothing here has to be durable: the log holds every event's id. The file records, in the
//! same transaction as the ids, the position of the last event it has indexed and that event's
//! id (the mark). On open, the ids after the mark are read back from the log into the file. A
//! file that is missing, cannot be read, or does not match the log (its mark is past the log's
//! head, or the event at the mark has another id, as after restoring the log from a backup) is
//! thrown away and built again from the log.

use crate::migrate::{self, Migration};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use uuid::Uuid;

/// Ids held in memory before the flusher is woken to write them to the file.
pub(crate) const FLUSH_AT: usize = 100_000;

/// How often the flusher writes whatever ids are held, however few.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Ids read from the log per transaction when the file catches up on open.
const CATCH_UP_CHUNK: usize = 250_000;

/// Bytes the index's WAL is cut back to after a checkpoint.
const WAL_LIMIT: i64 = 64 << 20;

/// SQLite page cache of each of the two connections (KiB, as `cache_size` takes it).
const CACHE_KIB: i64 = 65_536;

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "event_id_index",
    sql: "create table event_id (
              id       blob    primary key,
              position integer not null
          ) without rowid;
          create table mark (
              only     integer primary key check (only = 1),
              position integer not null,
              event_id blob    not null
          );",
}];

/// Ids appended since the last batch reached the file.
#[derive(Default)]
struct Pending {
    /// Ids committed to the log since the flusher last took a batch.
    current: HashMap<Uuid, u64>,
    /// The batch the flusher is writing (or failed to write and will try again); empty
    /// otherwise. Cleared only once the batch is committed to the file.
    sealed: Arc<HashMap<Uuid, u64>>,
}

/// The log writer's side: lookups, and the ids of each committed group.
pub(crate) struct Ids {
    handle: Handle,
    conn: Connection,
}

/// What the store keeps to ask for a batch now. The flusher stops, after a last batch, once
/// every handle (the writer's included) is dropped.
#[derive(Clone)]
pub(crate) struct Handle {
    pending: Arc<Mutex<Pending>>,
    wake: mpsc::SyncSender<()>,
}

/// The file name of the index that belongs to the log at `log`.
pub(crate) fn path_for(log: &Path) -> PathBuf {
    let stem = log
        .file_stem()
        .map_or_else(|| "events".into(), |s| s.to_string_lossy().into_owned());
    log.with_file_name(format!("{stem}-ids.db"))
}

fn open_file(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    // The file can be rebuilt from the log, so a commit need not reach the disk before it
    // returns; WAL mode with `synchronous = normal` still keeps the file whole after a crash.
    // A batch into a large index writes many pages at once: once checkpointed, the WAL is cut
    // back to 64 MiB rather than keeping the size of the largest batch.
    conn.execute_batch(&format!(
        "pragma busy_timeout = 5000;
         pragma journal_mode = wal;
         pragma synchronous = normal;
         pragma journal_size_limit = {WAL_LIMIT};
         pragma cache_size = -{CACHE_KIB};"
    ))?;
    migrate::apply(&mut conn, MIGRATIONS)?;
    Ok(conn)
}

fn remove_file(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

fn read_mark(conn: &Connection) -> rusqlite::Result<Option<(u64, Vec<u8>)>> {
    conn.query_row(
        "select position, event_id from mark where only = 1",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
    )
    .optional()
}

/// Whether the file's mark names an event the log holds, with the same id.
fn matches_log(conn: &Connection, log: &Connection) -> rusqlite::Result<bool> {
    let Some((position, id)) = read_mark(conn)? else {
        let rows: i64 = conn.query_row("select count(*) from event_id", [], |r| r.get(0))?;
        return Ok(rows == 0);
    };
    let at_mark: Option<Vec<u8>> = log
        .query_row(
            "select event_id from event where position = ?1",
            [position as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(at_mark.as_deref() == Some(id.as_slice()))
}

/// Writes `rows` (sorted by id) and moves the mark to `mark`, in one transaction.
fn write_batch(
    conn: &mut Connection,
    rows: &[(Uuid, u64)],
    mark: (u64, &[u8]),
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert =
            tx.prepare_cached("insert or ignore into event_id (id, position) values (?1, ?2)")?;
        for (id, position) in rows {
            insert.execute(params![id.as_bytes().as_slice(), *position as i64])?;
        }
        tx.execute(
            "insert into mark (only, position, event_id) values (1, ?1, ?2)
             on conflict (only) do update set position = excluded.position,
                 event_id = excluded.event_id
             where excluded.position > mark.position",
            params![mark.0 as i64, mark.1],
        )?;
    }
    tx.commit()
}

/// Indexes every event of the log after the file's mark, a chunk per transaction. An event
/// whose id is not 16 bytes (a log altered by hand) is left out with a warning rather than
/// failing the open: `chatroom verify` is how such a log is examined, and it must open.
fn catch_up(conn: &mut Connection, log: &Connection) -> rusqlite::Result<()> {
    let mut after = read_mark(conn)?.map_or(0, |(p, _)| p);
    let mut read = log.prepare(
        "select position, event_id from event where position > ?1 order by position limit ?2",
    )?;
    loop {
        let read_rows = read
            .query_map(params![after as i64, CATCH_UP_CHUNK as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let Some((last, last_id)) = read_rows.last().cloned() else {
            return Ok(());
        };
        let mut rows: Vec<(Uuid, u64)> = read_rows
            .into_iter()
            .filter_map(|(position, id)| match Uuid::from_slice(&id) {
                Ok(id) => Some((id, position)),
                Err(_) => {
                    tracing::warn!(
                        position,
                        "the event at this position has no valid id; it is not indexed"
                    );
                    None
                }
            })
            .collect();
        rows.sort_unstable();
        write_batch(conn, &rows, (last, &last_id))?;
        after = last;
    }
}

/// Opens the index of the log whose writer connection is `log`, brings it level with the log
/// (rebuilding it when it does not match), and starts the thread that writes batches to it.
/// Returns the writer's side and that thread, which stops, after a last batch, once the
/// writer's side and every [`Handle`] are dropped.
pub(crate) fn open(
    path: &Path,
    log: &Connection,
) -> rusqlite::Result<(Ids, std::thread::JoinHandle<()>)> {
    // Only a file that is not a database, or a damaged one, is thrown away: an error such as
    // a lock held too long fails the open instead, so a tool run beside a live server never
    // deletes the server's file.
    let damaged = |e: &rusqlite::Error| {
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        )
    };
    let existed = path.exists();
    let usable = match open_file(path).and_then(|conn| matches_log(&conn, log).map(|m| (conn, m))) {
        Ok((conn, true)) => Some(conn),
        Ok((_, false)) => {
            tracing::warn!(file = %path.display(), "the event-id index does not match the log; rebuilding it");
            None
        }
        Err(e) if damaged(&e) => {
            tracing::warn!(file = %path.display(), error = %e, "the event-id index is damaged; rebuilding it");
            None
        }
        Err(e) => return Err(e),
    };
    let mut conn = match usable {
        Some(conn) => conn,
        None => {
            remove_file(path);
            open_file(path)?
        }
    };
    if !existed {
        tracing::info!(file = %path.display(), "building the event-id index from the log");
    }
    catch_up(&mut conn, log)?;
    let lookup = Connection::open(path)?;
    lookup.execute_batch(&format!(
        "pragma busy_timeout = 5000; pragma cache_size = -{CACHE_KIB};"
    ))?;
    let pending = Arc::new(Mutex::new(Pending::default()));
    let (wake, woken) = mpsc::sync_channel(1);
    let flusher_pending = pending.clone();
    let thread = std::thread::Builder::new()
        .name("sqlite-id-index".into())
        .spawn(move || flush_loop(conn, &flusher_pending, &woken))
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok((
        Ids {
            handle: Handle { pending, wake },
            conn: lookup,
        },
        thread,
    ))
}

impl Ids {
    /// The positions of those of `ids` the log holds (as of the last commit), found in one
    /// read of the file: a lookup of its own took and released the file's read lock each time,
    /// which cost twice the search itself.
    pub(crate) fn find_all<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a Uuid>,
    ) -> rusqlite::Result<HashMap<Uuid, u64>> {
        let mut found = HashMap::new();
        let mut unknown = Vec::new();
        {
            let p = self.handle.pending.lock().expect("pending ids");
            for id in ids {
                match p.current.get(id).or_else(|| p.sealed.get(id)) {
                    Some(position) => {
                        found.insert(*id, *position);
                    }
                    None => unknown.push(*id),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(found);
        }
        // The file is read after memory, and its snapshot is taken at the first read below,
        // after every memory check: a batch leaves memory only once it is in the file, so an
        // id memory no longer had is in this snapshot.
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut select = tx.prepare_cached("select position from event_id where id = ?1")?;
            for id in unknown {
                if let Some(position) = select
                    .query_row([id.as_bytes().as_slice()], |r| r.get::<_, i64>(0))
                    .optional()?
                {
                    found.insert(id, position as u64);
                }
            }
        }
        tx.commit()?;
        Ok(found)
    }

    /// Records the ids of a committed group.
    pub(crate) fn add(&self, ids: impl IntoIterator<Item = (Uuid, u64)>) {
        let full = {
            let mut p = self.handle.pending.lock().expect("pending ids");
            p.current.extend(ids);
            p.current.len() >= FLUSH_AT
        };
        if full {
            let _ = self.handle.wake.try_send(());
        }
    }

    /// A handle for the store.
    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

impl Handle {
    /// Asks the flusher to write what is held now and waits until memory holds no ids (or
    /// `timeout` passes); true if it got there.
    pub(crate) fn flush_now(&self, timeout: Duration) -> bool {
        let _ = self.wake.try_send(());
        let deadline = std::time::Instant::now() + timeout;
        loop {
            {
                let p = self.pending.lock().expect("pending ids");
                if p.current.is_empty() && p.sealed.is_empty() {
                    return true;
                }
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            let _ = self.wake.try_send(());
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Writes the held ids as one batch. A batch that failed is written again before a new one
/// is taken; until then its ids stay in memory, where lookups find them.
fn flush(conn: &mut Connection, pending: &Mutex<Pending>) -> rusqlite::Result<()> {
    let batch = {
        let mut p = pending.lock().expect("pending ids");
        if p.sealed.is_empty() {
            if p.current.is_empty() {
                return Ok(());
            }
            p.sealed = Arc::new(std::mem::take(&mut p.current));
        }
        p.sealed.clone()
    };
    let mut rows: Vec<(Uuid, u64)> = batch.iter().map(|(id, p)| (*id, *p)).collect();
    let (last, last_id) = rows
        .iter()
        .max_by_key(|(_, p)| *p)
        .map(|(id, p)| (*p, *id))
        .expect("a batch is never empty");
    rows.sort_unstable();
    write_batch(conn, &rows, (last, last_id.as_bytes()))?;
    pending.lock().expect("pending ids").sealed = Arc::default();
    Ok(())
}

fn flush_loop(mut conn: Connection, pending: &Mutex<Pending>, woken: &mpsc::Receiver<()>) {
    loop {
        let stopping = matches!(
            woken.recv_timeout(FLUSH_EVERY),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        if let Err(e) = flush(&mut conn, pending) {
            tracing::warn!(error = %e, "writing the event-id index failed; the ids stay in memory and the next batch retries");
        }
        if stopping {
            break;
        }
    }
}
