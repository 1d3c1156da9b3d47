//! Projection workers following the log, and the wait that lets a caller read its own writes.
//!
//! The projections follow the log together: one task reads each batch once and applies it to
//! every projection it runs in one transaction, each projection keeping its own checkpoint.
//! Four workers each reading the log, decoding every event and committing their own
//! transaction (two of them only to move a checkpoint past messages they ignore) cost more
//! than the work itself under a steady stream of small batches.
//!
//! On SQLite (one process) that task runs every projection. With PostgreSQL several server
//! processes share the read tables: each projection is run by one process at a time, the one
//! holding that projection's session advisory lock, and a process's task runs the
//! projections whose locks it holds. For the others it stands by: it watches their stored
//! checkpoints (for its callers' read-your-writes waits) and tries their locks again every
//! 100 ms, so that a standby takes over when the holder dies.

use crate::projection::{ALL, Projection, Target};
use crate::read::Reads;
use crate::sqlite::{Error, ReadDb};
use events::keys::Keys;
use events::{Store, Subscription};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Events applied per transaction at most.
const BATCH: usize = 2000;

/// After a batch smaller than this, a worker waits [`GATHER`] before reading the log again.
const SMALL: usize = 256;

/// How long a worker lets events gather after a small batch. Without it, under a steady few
/// thousand appends a second every worker read the log and committed its table once per
/// append, which cost more CPU than the appends; a caller's read-your-writes wait grows by
/// at most this much.
const GATHER: Duration = Duration::from_millis(5);

/// The projections' checkpoints as they move, to wait on.
#[derive(Clone)]
pub struct Checkpoints(Vec<watch::Receiver<u64>>);

impl Checkpoints {
    /// Waits until every projection has applied `position`; `false` on timeout.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let wait = async {
            for rx in &self.0 {
                let mut rx = rx.clone();
                if rx.wait_for(|p| *p >= position).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }
}

/// The running projection workers.
pub struct Workers {
    checkpoints: HashMap<Projection, watch::Receiver<u64>>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts one worker per projection, each from its stored checkpoint.
    ///
    /// # Errors
    /// When a checkpoint cannot be read.
    pub async fn start(
        store: Arc<dyn Store>,
        reads: Reads,
        keys: Arc<Keys>,
    ) -> Result<Self, Error> {
        let (stop, _) = watch::channel(false);
        let mut checkpoints = HashMap::new();
        // In the order of `ALL`.
        let mut senders = Vec::new();
        for projection in ALL {
            let at = reads.checkpoint(projection).await?;
            let (tx, rx) = watch::channel(at);
            checkpoints.insert(projection, rx);
            senders.push(tx);
        }
        let tasks = match &reads {
            // One process, one write connection: the projections follow the log together.
            Reads::Sqlite(db) => vec![tokio::spawn(follow_together(
                store.clone(),
                keys.clone(),
                db.clone(),
                senders,
                stop.subscribe(),
            ))],
            Reads::Postgres(pool) => vec![tokio::spawn(lead_together(
                store.clone(),
                keys.clone(),
                pool.clone(),
                senders,
                stop.subscribe(),
            ))],
        };
        Ok(Self {
            checkpoints,
            stop,
            tasks: std::sync::Mutex::new(tasks),
        })
    }

    /// The checkpoint each projection has reached.
    pub fn positions(&self) -> Vec<(Projection, u64)> {
        ALL.iter()
            .map(|p| (*p, *self.checkpoints[p].borrow()))
            .collect()
    }

    /// The lowest checkpoint of all projections.
    pub fn low_water(&self) -> u64 {
        self.checkpoints
            .values()
            .map(|r| *r.borrow())
            .min()
            .unwrap_or(0)
    }

    /// Waits until every projection has applied `position`; `false` on timeout.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.checkpoints().wait_for(position, timeout).await
    }

    /// A handle that waits for the projections' checkpoints, for callers that do not hold the
    /// workers.
    pub fn checkpoints(&self) -> Checkpoints {
        Checkpoints(self.checkpoints.values().cloned().collect())
    }

    /// Tells every worker to stop after its current batch and waits for them.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks"));
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Key of the session advisory lock that makes one process the worker of `projection`.
fn lock_key(projection: Projection) -> i64 {
    0x6368_6174_7072_6f00 + ALL.iter().position(|p| *p == projection).unwrap_or(0) as i64
}

/// How often a process tries the locks of the projections it does not run, and reads their
/// stored checkpoints.
const STANDBY: Duration = Duration::from_millis(100);

/// Runs the projections whose locks this process holds (PostgreSQL), together; stands by for
/// the others. `checkpoints` are in the order of [`ALL`].
async fn lead_together(
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    pool: deadpool_postgres::Pool,
    checkpoints: Vec<watch::Sender<u64>>,
    mut stop: watch::Receiver<bool>,
) {
    // The lock's connection of each projection this process runs, in the order of `ALL`.
    let mut held: Vec<Option<deadpool_postgres::Object>> = ALL.iter().map(|_| None).collect();
    // Reading the log for the projections run; none when that set changed.
    let mut sub: Option<Subscription> = None;
    let mut upkeep = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= upkeep {
            if stand_by(&pool, &mut held, &checkpoints).await {
                sub = None;
            }
            upkeep = tokio::time::Instant::now() + STANDBY;
        }
        let led: Vec<usize> = (0..ALL.len()).filter(|i| held[*i].is_some()).collect();
        if led.is_empty() {
            let wait = upkeep.saturating_duration_since(tokio::time::Instant::now());
            if !pause(&mut stop, wait).await {
                return;
            }
            continue;
        }
        let projections: Vec<Projection> = led.iter().map(|i| ALL[*i]).collect();
        let reading = match &mut sub {
            Some(reading) => reading,
            // The stored checkpoints are the truth: another process may have moved them.
            None => match lowest_checkpoint(&pool, &projections).await {
                Ok(from) => sub.insert(Subscription::new(store.clone(), from, BATCH)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the checkpoints failed; retrying");
                    if !pause(&mut stop, RETRY_READ).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let after = reading.position();
        let batch = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            // Waiting for the log, not reading it: a read cut short is read again.
            _ = tokio::time::sleep_until(upkeep) => continue,
            b = reading.next() => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "reading the log failed; retrying");
                if !pause(&mut stop, RETRY_READ).await {
                    return;
                }
                continue;
            }
        };
        let small = batch.len() < SMALL;
        let batch: Arc<[events::Recorded]> = batch.into();
        let Some(applied) = retrying("all", &mut stop, || {
            apply_live(&keys, &pool, &projections, after, batch.clone())
        })
        .await
        else {
            return;
        };
        let applied = match applied {
            Ok(applied) => applied,
            Err(behind) => {
                tracing::warn!(error = %behind, "reading the log again from the stored checkpoints");
                sub = None;
                continue;
            }
        };
        for (i, at) in led.iter().zip(applied) {
            checkpoints[*i].send_replace(at);
        }
        if !gather(small, &mut stop).await {
            return;
        }
    }
}

/// Applies a batch read after `after` to the live tables. A stored checkpoint behind `after`
/// (the database lost commits) is not retried: it is answered `Ok(Err(..))`, and the caller
/// reads the log again from the stored checkpoints.
async fn apply_live(
    keys: &Arc<Keys>,
    pool: &deadpool_postgres::Pool,
    projections: &[Projection],
    after: u64,
    batch: Arc<[events::Recorded]>,
) -> Result<Result<Vec<u64>, Error>, Error> {
    let reads = Reads::Postgres(pool.clone());
    match crate::dead::apply(&reads, keys, projections, Target::Live, after, batch).await {
        Ok(applied) => Ok(Ok(applied)),
        Err(behind @ Error::Behind { .. }) => Ok(Err(behind)),
        Err(e) => Err(e),
    }
}

/// The lowest stored checkpoint of `projections`.
async fn lowest_checkpoint(
    pool: &deadpool_postgres::Pool,
    projections: &[Projection],
) -> Result<u64, Error> {
    let c = pool.get().await.map_err(crate::error::pg)?;
    let mut lowest = u64::MAX;
    for p in projections {
        lowest = lowest.min(crate::postgres::checkpoint(&c, *p).await?);
    }
    Ok(lowest)
}

/// Lets go of the projections whose lock's connection was lost, tries the locks of those this
/// process does not run, and reads the stored checkpoints of those it still does not;
/// `true` when the set of projections it runs changed.
async fn stand_by(
    pool: &deadpool_postgres::Pool,
    held: &mut [Option<deadpool_postgres::Object>],
    checkpoints: &[watch::Sender<u64>],
) -> bool {
    let mut changed = false;
    for (i, projection) in ALL.into_iter().enumerate() {
        if held[i].as_ref().is_some_and(|c| c.is_closed()) {
            tracing::warn!(
                projection = projection.name(),
                "lost the projection lock's connection"
            );
            held[i] = None;
            changed = true;
        }
        if held[i].is_some() {
            continue;
        }
        if let Ok(Some(won)) = try_lead(pool, projection).await {
            tracing::info!(
                projection = projection.name(),
                "this process runs the projection"
            );
            held[i] = Some(won);
            changed = true;
            continue;
        }
        // Standby: keep the checkpoint fresh for read-your-writes.
        if let Ok(c) = pool.get().await
            && let Ok(at) = crate::postgres::checkpoint(&c, projection).await
        {
            checkpoints[i].send_if_modified(|c| {
                let moved = at > *c;
                *c = (*c).max(at);
                moved
            });
        }
    }
    changed
}

/// Tries the projection's lock on a connection of its own; `Some(connection)` when won.
async fn try_lead(
    pool: &deadpool_postgres::Pool,
    projection: Projection,
) -> Result<Option<deadpool_postgres::Object>, Error> {
    let conn = pool.get().await.map_err(crate::error::pg)?;
    let won: bool = conn
        .query_one("select pg_try_advisory_lock($1)", &[&lock_key(projection)])
        .await
        .map_err(crate::error::pg)?
        .get(0);
    Ok(won.then_some(conn))
}

/// Follows the log for every projection at once until stopped (SQLite): each batch is read
/// from the log once and applied to all the tables in one transaction.
async fn follow_together(
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    db: ReadDb,
    checkpoints: Vec<watch::Sender<u64>>,
    mut stop: watch::Receiver<bool>,
) {
    let from = checkpoints.iter().map(|c| *c.borrow()).min().unwrap_or(0);
    let mut sub = Subscription::new(store, from, BATCH);
    while let Some(batch) = next_batch(&mut sub, "all", &mut stop).await {
        let small = batch.len() < SMALL;
        let batch: Arc<[events::Recorded]> = batch.into();
        let reads = Reads::Sqlite(db.clone());
        let Some(applied) = retrying("all", &mut stop, || {
            // Every batch of the log is read after the last one's end: the SQLite sink needs
            // no `after`.
            crate::dead::apply(&reads, &keys, &ALL, Target::Live, 0, batch.clone())
        })
        .await
        else {
            return;
        };
        for (checkpoint, at) in checkpoints.iter().zip(applied) {
            checkpoint.send_replace(at);
        }
        if !gather(small, &mut stop).await {
            return;
        }
    }
}

/// Waits [`GATHER`] after a small batch; `false` when told to stop meanwhile.
async fn gather(small: bool, stop: &mut watch::Receiver<bool>) -> bool {
    !small || pause(stop, GATHER).await
}

/// How long a worker waits before reading the log again after a failed read.
const RETRY_READ: Duration = Duration::from_millis(500);

/// Waits `wait`; `false` when told to stop first.
async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

async fn next_batch(
    sub: &mut Subscription,
    projection: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<events::Recorded>> {
    loop {
        let batch = tokio::select! {
            _ = stop.wait_for(|s| *s) => return None,
            b = sub.next() => b,
        };
        match batch {
            Ok(b) => return Some(b),
            Err(e) => {
                tracing::warn!(projection, error = %e, "reading the log failed; retrying");
                if !pause(stop, RETRY_READ).await {
                    return None;
                }
            }
        }
    }
}

/// Runs `attempt` until it succeeds, a second apart; `None` when told to stop first.
async fn retrying<T, F>(
    projection: &str,
    stop: &mut watch::Receiver<bool>,
    mut attempt: impl FnMut() -> F,
) -> Option<T>
where
    F: std::future::Future<Output = Result<T, Error>>,
{
    loop {
        match attempt().await {
            Ok(done) => return Some(done),
            Err(e) => {
                tracing::error!(projection, error = %e, "applying a batch failed; retrying");
            }
        }
        if !pause(stop, Duration::from_secs(1)).await {
            return None;
        }
    }
}
