//! The embedded log's index of event ids, in a file of its own beside the log.
//!
//! Every append proves its event ids new: a retried message carries the id of its first try
//! and gets the first try's record back, however long ago that was. Event ids are hashes, so
//! an index of them takes its inserts at random places, and a lookup of a new id lands on a
//! page of its own. In one B-tree over the whole history both grew with the log: once the tree
//! outgrew memory, each batch of ids rewrote about one page per id, and each append's lookups
//! read pages back from the operating system (at 100 million events the index cost 12 µs a
//! message against 1.7 µs at 1.3 million).
//!
//! So the index is kept the way log-structured stores keep theirs:
//! - The ids appended since the last batch are held in memory ([`Pending`]).
//! - Batches of them, sorted, go to the young table (`event_id`), which holds at most
//!   [`Options::young_max`] ids: small enough that a batch finds its pages in memory.
//! - A full young table is sealed into a run (`event_id_run_<n>`), which never changes again.
//!   [`Options::fan_in`] runs of one level are merged, in id order, into one run of the next
//!   level, written front to back; runs of [`TOP_LEVEL`] are not merged further.
//! - Each run, and the young table, has a Bloom filter in memory (about 12 bits an id; a run's
//!   is stored with it). A new id, the usual case, is proven absent by the filters alone; only
//!   a retry, or about one id in 200 a filter, reads a table.
//!
//! Per appended id, the work is one filter probe per run (at most `fan_in - 1` runs a level,
//! three levels) and, spread over its life, one write to the young table and one per merge.
//!
//! A lookup checks memory, then the filters, then the tables a filter names; a batch leaves
//! memory only after its transaction has committed, and its ids are in the young filter before
//! it commits, so an id is always where a lookup finds it. Sealing and merging change the set
//! of tables under a lock that every lookup holds throughout.
//!
//! Nothing here has to be durable: the log holds every event's id. The file records, in the
//! same transaction as the ids, the position of the last event it has indexed and that event's
//! id (the mark). On open, the ids after the mark are read back from the log into the file. A
//! file that is missing, cannot be read, or does not match the log (its mark is past the log's
//! head, or the event at the mark has another id, as after restoring the log from a backup) is
//! thrown away and built again from the log. A merge cut short by a stop leaves a table no run
//! names; the next open drops it.

use crate::migrate::{self, Migration};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
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

/// Runs of this level are not merged further. With the default options a run of level 2
/// holds about 128 million ids; its filter (192 MB) is still one value SQLite can store.
pub(crate) const TOP_LEVEL: u32 = 2;

/// Ids read from each run per step of a merge.
const MERGE_CHUNK: usize = 32_768;

/// Filter bits per id, and the bits set for each id within its 512-bit block.
const BITS_PER_ID: u64 = 12;
const PROBES: u32 = 7;

/// The layout of stored filters; a run whose filter has another is filtered again on open.
pub(crate) const FILTER_FORMAT: i64 = 1;

/// The shape of the index: how large the young table grows and how many runs are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Ids the young table holds before it is sealed into a run.
    pub young_max: u64,
    /// Runs of one level merged into one run of the next (at least 2).
    pub fan_in: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            young_max: 2_000_000,
            fan_in: 8,
        }
    }
}

const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: 2,
        name: "event_id_runs",
        sql: "create table run (
                  id            integer primary key,
                  level         integer not null,
                  ids           integer not null,
                  filter_format integer not null,
                  filter        blob    not null
              );",
    },
];

/// The statement that makes a table of ids named `name`: the young table, or a run a merge
/// writes.
fn id_table(name: &str) -> String {
    format!(
        "create table {name} (
             id       blob    primary key,
             position integer not null
         ) without rowid"
    )
}

fn run_table(id: i64) -> String {
    format!("event_id_run_{id}")
}

/// Lists a run, with its stored filter, in the file's `run` table.
fn list_run(
    conn: &Connection,
    id: i64,
    level: u32,
    ids: u64,
    filter: &[u8],
) -> rusqlite::Result<()> {
    conn.execute(
        "insert into run (id, level, ids, filter_format, filter) values (?1, ?2, ?3, ?4, ?5)",
        params![id, level, ids as i64, FILTER_FORMAT, filter],
    )
    .map(|_| ())
}

/// A Bloom filter of event ids, in blocks of one cache line: each id sets [`PROBES`] bits of
/// one block, so a probe reads one line. Bits are set with atomic `or`, so the young table's
/// filter takes a batch's ids while the writer probes it.
pub(crate) struct Filter {
    blocks: Box<[Block]>,
}

#[repr(align(64))]
struct Block([AtomicU64; 8]);

/// The murmur3 finaliser: event ids are hashes already, but two of their bytes are fixed
/// (the UUID's version and variant).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Filter {
    pub(crate) fn for_ids(ids: u64) -> Self {
        Self::with_bits(ids, BITS_PER_ID)
    }

    /// A filter of `bits` bits an id for `ids` ids (the layout, and so the stored format, is
    /// the same at any size).
    pub(crate) fn with_bits(ids: u64, bits: u64) -> Self {
        let blocks = (ids.max(1) * bits.max(1)).div_ceil(512) as usize;
        Self {
            blocks: (0..blocks)
                .map(|_| Block(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// The block and the bits within it (word and bit, 9 bits a probe) for `id`.
    fn place(&self, id: &Uuid) -> (&Block, u64) {
        let v = id.as_u128();
        let h1 = mix(v as u64);
        let h2 = mix((v >> 64) as u64 ^ 0x9e37_79b9_7f4a_7c15);
        let block = ((u128::from(h1) * self.blocks.len() as u128) >> 64) as usize;
        (&self.blocks[block], h2)
    }

    pub(crate) fn insert(&self, id: &Uuid) {
        let (block, h) = self.place(id);
        for i in 0..PROBES {
            let bits = h >> (i * 9);
            block.0[(bits & 7) as usize].fetch_or(1 << ((bits >> 3) & 63), Ordering::Relaxed);
        }
    }

    pub(crate) fn may_hold(&self, id: &Uuid) -> bool {
        let (block, h) = self.place(id);
        (0..PROBES).all(|i| {
            let bits = h >> (i * 9);
            block.0[(bits & 7) as usize].load(Ordering::Relaxed) & (1 << ((bits >> 3) & 63)) != 0
        })
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.blocks.len() * 64);
        for block in &*self.blocks {
            for word in &block.0 {
                out.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
        }
        out
    }

    /// A stored filter, or `None` when `bytes` is not whole blocks.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(64) {
            return None;
        }
        let blocks = bytes
            .chunks_exact(64)
            .map(|b| {
                Block(std::array::from_fn(|i| {
                    AtomicU64::new(u64::from_le_bytes(
                        b[i * 8..i * 8 + 8].try_into().expect("8 bytes"),
                    ))
                }))
            })
            .collect();
        Some(Self { blocks })
    }
}

/// A sealed table of ids and its filter.
struct Run {
    id: i64,
    level: u32,
    ids: u64,
    filter: Filter,
}

/// The tables a lookup reads and their filters. Lookups hold it for reading throughout;
/// sealing and merging change it (and the file's set of tables) holding it for writing.
struct Tables {
    runs: Vec<Arc<Run>>,
    young: Arc<Filter>,
}

/// Ids appended since the last batch reached the file.
#[derive(Default)]
struct Pending {
    /// Ids committed to the log since the flusher last took a batch.
    current: HashMap<Uuid, u64>,
    /// The batch the flusher is writing (or failed to write and will try again); empty
    /// otherwise. Cleared only once the batch is committed to the file.
    sealed: Arc<HashMap<Uuid, u64>>,
}

struct Shared {
    pending: Mutex<Pending>,
    tables: RwLock<Tables>,
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
    shared: Arc<Shared>,
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
        let rows: i64 = conn.query_row(
            "select (select count(*) from event_id) + (select count(*) from run)",
            [],
            |r| r.get(0),
        )?;
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

/// Writes `rows` (sorted by id) and moves the mark to `mark`, in one transaction; returns how
/// many ids were new to the table.
fn write_batch(
    conn: &mut Connection,
    rows: &[(Uuid, u64)],
    mark: (u64, &[u8]),
) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut added = 0;
    {
        let mut insert =
            tx.prepare_cached("insert or ignore into event_id (id, position) values (?1, ?2)")?;
        for (id, position) in rows {
            added += insert.execute(params![id.as_bytes().as_slice(), *position as i64])? as u64;
        }
        tx.execute(
            "insert into mark (only, position, event_id) values (1, ?1, ?2)
             on conflict (only) do update set position = excluded.position,
                 event_id = excluded.event_id
             where excluded.position > mark.position",
            params![mark.0 as i64, mark.1],
        )?;
    }
    tx.commit()?;
    Ok(added)
}

/// A filter of every id in `table`, made for at least `room_for` ids. An id that is not 16
/// bytes (a log altered by hand) is left out.
fn filter_table(conn: &Connection, table: &str, room_for: u64) -> rusqlite::Result<(Filter, u64)> {
    let ids: i64 = conn.query_row(&format!("select count(*) from {table}"), [], |r| r.get(0))?;
    let ids = ids.max(0) as u64;
    let filter = Filter::for_ids(room_for.max(ids));
    let mut select = conn.prepare(&format!("select id from {table}"))?;
    let mut rows = select.query([])?;
    while let Some(r) = rows.next()? {
        if let Ok(id) = Uuid::from_slice(r.get_ref(0)?.as_blob().unwrap_or_default()) {
            filter.insert(&id);
        }
    }
    Ok((filter, ids))
}

/// The thread that writes batches, seals the young table and merges runs; it owns the
/// file's writing connection.
struct Flusher {
    conn: Connection,
    shared: Arc<Shared>,
    options: Options,
    /// Ids in the young table.
    young_ids: u64,
    /// The number the next run's table takes.
    next_run: i64,
    /// Wake-ups from the store; `None` while the file catches up on open.
    woken: Option<mpsc::Receiver<()>>,
    /// Every handle is gone: write what is held and stop.
    stopping: bool,
}

impl Flusher {
    /// Reads the runs, their filters and the young table's ids from the file, and drops
    /// tables no run names (a merge cut short).
    fn load(conn: Connection, options: Options) -> rusqlite::Result<Self> {
        let mut runs = Vec::new();
        let mut refilter = Vec::new();
        {
            let mut select =
                conn.prepare("select id, level, ids, filter_format, filter from run order by id")?;
            let mut rows = select.query([])?;
            while let Some(r) = rows.next()? {
                let (id, level, ids, format): (i64, i64, i64, i64) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let stored = if format == FILTER_FORMAT {
                    r.get_ref(4)?.as_blob().ok().and_then(Filter::from_bytes)
                } else {
                    None
                };
                let filter = match stored {
                    Some(f) => f,
                    None => {
                        refilter.push(id);
                        Filter::for_ids(1)
                    }
                };
                runs.push(Run {
                    id,
                    level: level.clamp(0, i64::from(TOP_LEVEL)) as u32,
                    ids: ids.max(0) as u64,
                    filter,
                });
            }
        }
        let tables: Vec<String> = conn
            .prepare("select name from sqlite_master where type = 'table' and name like 'event_id_run_%'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut next_run = runs.last().map_or(1, |r| r.id + 1);
        if let Some(run) = runs.iter().find(|r| !tables.contains(&run_table(r.id))) {
            // Lookups would fail on it: the file is treated as damaged and built again.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(format!(
                    "the index lists run {} but has no table for it",
                    run.id
                )),
            ));
        }
        for run in runs.iter_mut().filter(|r| refilter.contains(&r.id)) {
            tracing::info!(run = run.id, "filtering a run of the event-id index again");
            run.filter = filter_table(&conn, &run_table(run.id), 0)?.0;
            conn.execute(
                "update run set filter_format = ?2, filter = ?3 where id = ?1",
                params![run.id, FILTER_FORMAT, run.filter.to_bytes()],
            )?;
        }
        for table in tables {
            let n: Option<i64> = table
                .strip_prefix("event_id_run_")
                .and_then(|n| n.parse().ok());
            next_run = next_run.max(n.map_or(0, |n| n + 1));
            if !n.is_some_and(|n| runs.iter().any(|r| r.id == n)) {
                tracing::info!(
                    table,
                    "dropping a table of an unfinished merge of the event-id index"
                );
                conn.execute_batch(&format!("drop table \"{table}\""))?;
            }
        }
        let (young, young_ids) = filter_table(&conn, "event_id", young_room(&options))?;
        Ok(Self {
            conn,
            shared: Arc::new(Shared {
                pending: Mutex::new(Pending::default()),
                tables: RwLock::new(Tables {
                    runs: runs.into_iter().map(Arc::new).collect(),
                    young: Arc::new(young),
                }),
            }),
            options,
            young_ids,
            next_run,
            woken: None,
            stopping: false,
        })
    }

    /// Writes `rows` (sorted) to the young table, its ids to the young filter first.
    /// A young table that the rows would take past the ids its filter was made for is
    /// sealed first, so no filter holds more ids than it was made for.
    fn write_young(&mut self, rows: &[(Uuid, u64)], mark: (u64, &[u8])) -> rusqlite::Result<()> {
        let room = young_room(&self.options);
        if self.young_ids > 0 && self.young_ids + rows.len() as u64 > room {
            self.seal()?;
        }
        if self.young_ids == 0 && rows.len() as u64 > room {
            self.shared.tables.write().expect("tables").young =
                Arc::new(Filter::for_ids(rows.len() as u64));
        }
        let young = self.shared.tables.read().expect("tables").young.clone();
        for (id, _) in rows {
            young.insert(id);
        }
        self.young_ids += write_batch(&mut self.conn, rows, mark)?;
        Ok(())
    }

    /// Indexes every event of the log after the file's mark, a chunk per transaction. An
    /// event whose id is not 16 bytes (a log altered by hand) is left out with a warning
    /// rather than failing the open: `chatroom verify` is how such a log is examined, and it
    /// must open.
    fn catch_up(&mut self, log: &Connection) -> rusqlite::Result<()> {
        let mut after = read_mark(&self.conn)?.map_or(0, |(p, _)| p);
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
            self.write_young(&rows, (last, &last_id))?;
            self.tidy()?;
            after = last;
        }
    }

    /// Writes the held ids as one batch. A batch that failed is written again before a new
    /// one is taken; until then its ids stay in memory, where lookups find them.
    fn flush(&mut self) -> rusqlite::Result<()> {
        let batch = {
            let mut p = self.shared.pending.lock().expect("pending ids");
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
        self.write_young(&rows, (last, last_id.as_bytes()))?;
        self.shared.pending.lock().expect("pending ids").sealed = Arc::default();
        Ok(())
    }

    /// Seals a full young table, then merges runs while a level holds `fan_in` of them.
    fn tidy(&mut self) -> rusqlite::Result<()> {
        self.seal_if_full()?;
        loop {
            let full = {
                let tables = self.shared.tables.read().expect("tables");
                (0..TOP_LEVEL).find(|l| {
                    tables.runs.iter().filter(|r| r.level == *l).count() >= self.options.fan_in
                })
            };
            match full {
                Some(level) if !self.stopping => self.merge(level)?,
                _ => return Ok(()),
            }
        }
    }

    fn seal_if_full(&mut self) -> rusqlite::Result<()> {
        if self.young_ids >= self.options.young_max {
            self.seal()?;
        }
        Ok(())
    }

    /// Renames the young table into a run, stores its filter with it, and starts an empty
    /// young table.
    fn seal(&mut self) -> rusqlite::Result<()> {
        let id = self.next_run;
        let level = level_for(self.young_ids, &self.options);
        // Only this thread adds to the young filter, so its bytes are read before the lock:
        // lookups wait only for the rename.
        let bytes = self.shared.tables.read().expect("tables").young.to_bytes();
        let mut tables = self.shared.tables.write().expect("tables");
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(&format!(
            "alter table event_id rename to {}; {};",
            run_table(id),
            id_table("event_id")
        ))?;
        list_run(&tx, id, level, self.young_ids, &bytes)?;
        tx.commit()?;
        let filter = std::mem::replace(
            &mut tables.young,
            Arc::new(Filter::for_ids(young_room(&self.options))),
        );
        let filter = Arc::try_unwrap(filter).unwrap_or_else(|_| {
            // A flusher's own clone is the only other holder, and it has ended by now.
            Filter::from_bytes(&bytes).expect("a filter's own bytes")
        });
        tables.runs.push(Arc::new(Run {
            id,
            level,
            ids: self.young_ids,
            filter,
        }));
        self.next_run += 1;
        self.young_ids = 0;
        Ok(())
    }

    /// Merges the `fan_in` oldest runs of `level` into one run of the next, in steps of
    /// [`MERGE_CHUNK`] ids a run, writing the held ids between steps. A stop cuts it short.
    fn merge(&mut self, level: u32) -> rusqlite::Result<()> {
        let sources: Vec<Arc<Run>> = {
            let tables = self.shared.tables.read().expect("tables");
            tables
                .runs
                .iter()
                .filter(|r| r.level == level)
                .take(self.options.fan_in)
                .cloned()
                .collect()
        };
        let id = self.next_run;
        self.next_run += 1;
        let table = run_table(id);
        self.conn.execute_batch(&id_table(&table))?;
        let merged = self.merge_into(level, &sources, id, &table);
        if merged.is_err() {
            // No run names the table; the next merge makes another.
            let _ = self
                .conn
                .execute_batch(&format!("drop table if exists {table}"));
        }
        merged
    }

    /// The body of [`Flusher::merge`], writing into `table`, which it made.
    fn merge_into(
        &mut self,
        level: u32,
        sources: &[Arc<Run>],
        id: i64,
        table: &str,
    ) -> rusqlite::Result<()> {
        let filter = Filter::for_ids(sources.iter().map(|r| r.ids).sum());
        let mut ids = 0u64;
        let mut after: Vec<u8> = Vec::new();
        loop {
            // The next ids of every run; those up to the smallest last id of a run that had
            // more are written now (the others come again in the next step).
            let mut rows: Vec<(Vec<u8>, i64)> = Vec::new();
            let mut bound: Option<Vec<u8>> = None;
            for run in sources {
                let mut select = self.conn.prepare_cached(&format!(
                    "select id, position from {} where id > ?1 order by id limit ?2",
                    run_table(run.id)
                ))?;
                let got = select
                    .query_map(params![after, MERGE_CHUNK as i64], |r| {
                        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                if got.len() == MERGE_CHUNK {
                    let last = &got.last().expect("a full step").0;
                    if bound.as_ref().is_none_or(|b| last < b) {
                        bound = Some(last.clone());
                    }
                }
                rows.extend(got);
            }
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            rows.dedup_by(|a, b| a.0 == b.0);
            if let Some(bound) = &bound {
                rows.retain(|(id, _)| id <= bound);
            }
            let tx = self.conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(&format!(
                    "insert into {table} (id, position) values (?1, ?2)"
                ))?;
                for (id, position) in &rows {
                    insert.execute(params![id, position])?;
                    if let Ok(id) = Uuid::from_slice(id) {
                        filter.insert(&id);
                    }
                }
            }
            tx.commit()?;
            ids += rows.len() as u64;
            let Some(bound) = bound else { break };
            after = bound;
            if let Some(woken) = &self.woken
                && matches!(woken.try_recv(), Err(mpsc::TryRecvError::Disconnected))
            {
                // The table is left for the next open to drop.
                self.stopping = true;
                return Ok(());
            }
            if self
                .shared
                .pending
                .lock()
                .expect("pending ids")
                .current
                .len()
                >= FLUSH_AT
            {
                self.flush()?;
                self.seal_if_full()?;
            }
        }
        // Lookups go by the runs in memory, never by the file's list, so the list changes
        // without the lock (a filter of the top level is 192 MB to write); the lock is held
        // only while memory changes, and the merged runs' tables are dropped after.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for run in sources {
            tx.execute("delete from run where id = ?1", [run.id])?;
        }
        list_run(&tx, id, level + 1, ids, &filter.to_bytes())?;
        tx.commit()?;
        {
            let mut tables = self.shared.tables.write().expect("tables");
            tables
                .runs
                .retain(|r| !sources.iter().any(|s| s.id == r.id));
            tables.runs.push(Arc::new(Run {
                id,
                level: level + 1,
                ids,
                filter,
            }));
        }
        // No lookup names the merged runs any more.
        for run in sources {
            self.conn
                .execute_batch(&format!("drop table {}", run_table(run.id)))?;
        }
        Ok(())
    }

    fn run(mut self) {
        loop {
            let woken = self.woken.as_ref().expect("a running flusher is woken");
            if matches!(
                woken.recv_timeout(FLUSH_EVERY),
                Err(mpsc::RecvTimeoutError::Disconnected)
            ) {
                self.stopping = true;
            }
            if let Err(e) = self.flush() {
                tracing::warn!(error = %e, "writing the event-id index failed; the ids stay in memory and the next batch retries");
            }
            if let Err(e) = self.tidy() {
                tracing::warn!(error = %e, "sealing or merging the event-id index failed; the next batch tries again");
            }
            if self.stopping {
                // What a merge cut short held back.
                if let Err(e) = self.flush() {
                    tracing::warn!(error = %e, "writing the event-id index failed at stop; the next open reads the ids from the log");
                }
                break;
            }
        }
    }
}

/// The ids the young table's filter is made for: a batch or a chunk of the catch-up can
/// take the table somewhat past `young_max` before it is sealed.
fn young_room(options: &Options) -> u64 {
    options.young_max + options.young_max / 4
}

/// The level of a run of `ids` sealed from the young table: 0, unless the table had grown
/// larger than a merge would make (the first table of an older file holds every id).
pub(crate) fn level_for(ids: u64, options: &Options) -> u32 {
    let mut level = 0;
    let mut size = options.young_max.max(1) * options.fan_in as u64;
    while level < TOP_LEVEL && ids >= size {
        level += 1;
        size = size.saturating_mul(options.fan_in as u64);
    }
    level
}

/// Opens the index of the log whose writer connection is `log`, brings it level with the log
/// (rebuilding it when it does not match), and starts the thread that writes batches to it.
/// Returns the writer's side and that thread, which stops, after a last batch, once the
/// writer's side and every [`Handle`] are dropped.
pub(crate) fn open(
    path: &Path,
    log: &Connection,
    options: Options,
) -> rusqlite::Result<(Ids, std::thread::JoinHandle<()>)> {
    let options = Options {
        young_max: options.young_max.max(1),
        fan_in: options.fan_in.max(2),
    };
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
    let usable = match open_file(path)
        .and_then(|conn| matches_log(&conn, log).map(|m| (conn, m)))
        .and_then(|(conn, m)| Ok((Flusher::load(conn, options)?, m)))
    {
        Ok((flusher, true)) => Some(flusher),
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
    let mut flusher = match usable {
        Some(flusher) => flusher,
        None => {
            remove_file(path);
            Flusher::load(open_file(path)?, options)?
        }
    };
    if !existed {
        tracing::info!(file = %path.display(), "building the event-id index from the log");
    }
    flusher.catch_up(log)?;
    let lookup = Connection::open(path)?;
    lookup.execute_batch(&format!(
        "pragma busy_timeout = 5000; pragma cache_size = -{CACHE_KIB};"
    ))?;
    lookup.set_prepared_statement_cache_capacity(64);
    let shared = flusher.shared.clone();
    let (wake, woken) = mpsc::sync_channel(1);
    flusher.woken = Some(woken);
    let thread = std::thread::Builder::new()
        .name("sqlite-id-index".into())
        .spawn(move || flusher.run())
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok((
        Ids {
            handle: Handle { shared, wake },
            conn: lookup,
        },
        thread,
    ))
}

impl Ids {
    /// The positions of those of `ids` the log holds (as of the last commit). Memory and the
    /// filters answer for most; the tables a filter names are read in one transaction: a
    /// lookup of its own took and released the file's read lock each time, which cost twice
    /// the search itself.
    pub(crate) fn find_all<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a Uuid>,
    ) -> rusqlite::Result<HashMap<Uuid, u64>> {
        // Held throughout: no table is sealed, merged or dropped under this lookup.
        let tables = self.handle.shared.tables.read().expect("tables");
        let mut found = HashMap::new();
        let mut unknown = Vec::new();
        {
            let p = self.handle.shared.pending.lock().expect("pending ids");
            for id in ids {
                match p.current.get(id).or_else(|| p.sealed.get(id)) {
                    Some(position) => {
                        found.insert(*id, *position);
                    }
                    None => unknown.push(*id),
                }
            }
        }
        // The tables each id may be in, by the filters (newest first).
        let mut reads: Vec<(Uuid, Vec<Option<i64>>)> = Vec::new();
        for id in unknown {
            let mut tables_of_id: Vec<Option<i64>> = Vec::new();
            if tables.young.may_hold(&id) {
                tables_of_id.push(None);
            }
            tables_of_id.extend(
                tables
                    .runs
                    .iter()
                    .rev()
                    .filter(|r| r.filter.may_hold(&id))
                    .map(|r| Some(r.id)),
            );
            if !tables_of_id.is_empty() {
                reads.push((id, tables_of_id));
            }
        }
        if reads.is_empty() {
            return Ok(found);
        }
        // The file is read after memory, and its snapshot is taken at the first read below,
        // after every memory check: a batch leaves memory only once it is in the file, so an
        // id memory no longer had is in this snapshot.
        let tx = self.conn.unchecked_transaction()?;
        for (id, in_tables) in reads {
            for table in in_tables {
                let name = table.map_or_else(|| "event_id".to_owned(), run_table);
                let mut select =
                    tx.prepare_cached(&format!("select position from {name} where id = ?1"))?;
                if let Some(position) = select
                    .query_row([id.as_bytes().as_slice()], |r| r.get::<_, i64>(0))
                    .optional()?
                {
                    found.insert(id, position as u64);
                    break;
                }
            }
        }
        tx.commit()?;
        Ok(found)
    }

    /// Records the ids of a committed group.
    pub(crate) fn add(&self, ids: impl IntoIterator<Item = (Uuid, u64)>) {
        let full = {
            let mut p = self.handle.shared.pending.lock().expect("pending ids");
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
                let p = self.shared.pending.lock().expect("pending ids");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_holds_every_id_put_in_it_and_few_others() {
        let filter = Filter::for_ids(100_000);
        let ids: Vec<Uuid> = (0..100_000u64)
            .map(|i| Uuid::new_v5(&Uuid::NAMESPACE_OID, &i.to_le_bytes()))
            .collect();
        for id in &ids {
            filter.insert(id);
        }
        assert!(ids.iter().all(|id| filter.may_hold(id)));
        let stored = Filter::from_bytes(&filter.to_bytes()).unwrap();
        assert!(ids.iter().all(|id| stored.may_hold(id)));
        let others = (100_000..200_000u64)
            .map(|i| Uuid::new_v5(&Uuid::NAMESPACE_OID, &i.to_le_bytes()))
            .filter(|id| filter.may_hold(id))
            .count();
        // About 0.4 % at 12 bits an id; a filter that said yes to everything would fail.
        assert!(others < 1_500, "{others} of 100,000 other ids pass");
    }

    #[test]
    fn more_bits_an_id_let_fewer_other_ids_pass() {
        let passing = |bits: u64| {
            let filter = Filter::with_bits(200_000, bits);
            for i in 0..200_000u64 {
                filter.insert(&Uuid::new_v5(&Uuid::NAMESPACE_OID, &i.to_le_bytes()));
            }
            (200_000..1_200_000u64)
                .filter(|i| filter.may_hold(&Uuid::new_v5(&Uuid::NAMESPACE_OID, &i.to_le_bytes())))
                .count()
        };
        let (twelve, sixteen, twenty_four) = (passing(12), passing(16), passing(24));
        eprintln!(
            "of 1,000,000 other ids: {twelve} pass at 12 bits an id, {sixteen} at 16, \
             {twenty_four} at 24"
        );
        // The PostgreSQL log's filters (24 bits an id): about 0.012 %, a sixth of 16 bits'.
        assert!(
            twenty_four < 250 && twenty_four * 5 < sixteen && sixteen * 3 < twelve,
            "{twelve} {sixteen} {twenty_four}"
        );
    }

    #[test]
    fn levels_follow_the_size_a_sealed_table_reached() {
        let options = Options {
            young_max: 10,
            fan_in: 4,
        };
        assert_eq!(level_for(10, &options), 0);
        assert_eq!(level_for(39, &options), 0);
        assert_eq!(level_for(40, &options), 1);
        assert_eq!(level_for(1_000_000, &options), TOP_LEVEL);
    }
}
