//! Projection workers following the log, and the wait that lets a caller read its own writes.
//!
//! On SQLite (one process) a single task follows the log for every projection: it reads each
//! batch once and applies it to all the read tables in one transaction, each projection
//! keeping its own checkpoint.
//!
//! With PostgreSQL several server processes share the read tables: each projection has a
//! worker of its own, which runs in one process at a time, the one holding that projection's
//! session advisory lock; the others stand by, watch the stored checkpoint (for their
//! callers' read-your-writes waits), and try the lock again every 100 ms, so a standby takes
//! over when the holder dies.

use crate::projection::{ALL, Projection};
use crate::read::Reads;
use crate::sqlite::{self, Error, ReadDb};
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
    pub async fn start(store: Arc<dyn Store>, reads: Reads) -> Result<Self, Error> {
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
                db.clone(),
                senders,
                stop.subscribe(),
            ))],
            Reads::Postgres(_) => ALL
                .into_iter()
                .zip(senders)
                .map(|(projection, tx)| {
                    tokio::spawn(run(
                        store.clone(),
                        reads.clone(),
                        projection,
                        tx,
                        stop.subscribe(),
                    ))
                })
                .collect(),
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
        let wait = async {
            for rx in self.checkpoints.values() {
                let mut rx = rx.clone();
                if rx.wait_for(|p| *p >= position).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
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

/// One projection's worker on PostgreSQL: leads while it holds the projection's lock, stands
/// by otherwise.
async fn run(
    store: Arc<dyn Store>,
    reads: Reads,
    projection: Projection,
    checkpoint: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let Reads::Postgres(pool) = &reads else {
        return;
    };
    loop {
        // Leadership: a session lock on a connection held for as long as we work.
        match try_lead(pool, projection).await {
            Ok(Some(held)) => {
                tracing::info!(
                    projection = projection.name(),
                    "this process runs the projection"
                );
                let lost =
                    follow_while(&store, &reads, projection, &checkpoint, &mut stop, &held).await;
                drop(held);
                if !lost {
                    return;
                }
            }
            Ok(None) | Err(_) => {
                // Standby: keep the checkpoint fresh for read-your-writes, try again soon.
                if let Ok(at) = reads.checkpoint(projection).await {
                    checkpoint.send_if_modified(|c| {
                        let moved = at > *c;
                        *c = (*c).max(at);
                        moved
                    });
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Tries the projection's lock on a connection of its own; `Some(connection)` when won.
async fn try_lead(
    pool: &deadpool_postgres::Pool,
    projection: Projection,
) -> Result<Option<deadpool_postgres::Object>, Error> {
    let conn = pool.get().await.map_err(crate::postgres::pg)?;
    let won: bool = conn
        .query_one("select pg_try_advisory_lock($1)", &[&lock_key(projection)])
        .await
        .map_err(crate::postgres::pg)?
        .get(0);
    Ok(won.then_some(conn))
}

/// Follows the log for every projection at once until stopped (SQLite): each batch is read
/// from the log once and applied to all the tables in one transaction. Four workers each
/// reading the log, decoding every event and committing their own transaction (two of them
/// only to move a checkpoint past messages they ignore) cost more than the work itself under
/// a steady stream of small batches.
async fn follow_together(
    store: Arc<dyn Store>,
    db: ReadDb,
    checkpoints: Vec<watch::Sender<u64>>,
    mut stop: watch::Receiver<bool>,
) {
    let from = checkpoints.iter().map(|c| *c.borrow()).min().unwrap_or(0);
    let mut sub = Subscription::new(store, from, BATCH);
    while let Some(batch) = next_batch(&mut sub, "all", &mut stop).await {
        let small = batch.len() < SMALL;
        let batch: Arc<[events::Recorded]> = batch.into();
        let Some(applied) = retrying("all", &mut stop, || {
            let batch = batch.clone();
            db.with_writer(move |c| sqlite::apply_batch_together(c, &ALL, &batch))
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
    if !small {
        return true;
    }
    tokio::select! {
        _ = stop.wait_for(|s| *s) => false,
        _ = tokio::time::sleep(GATHER) => true,
    }
}

/// Follows the log while holding the lock; `true` when the lock's connection was lost.
async fn follow_while(
    store: &Arc<dyn Store>,
    reads: &Reads,
    projection: Projection,
    checkpoint: &watch::Sender<u64>,
    stop: &mut watch::Receiver<bool>,
    held: &deadpool_postgres::Object,
) -> bool {
    // The stored checkpoint is the truth: another process may have moved it.
    let from = match reads.checkpoint(projection).await {
        Ok(at) => at,
        Err(_) => return true,
    };
    let mut sub = Subscription::new(store.clone(), from, BATCH);
    loop {
        if held.is_closed() {
            tracing::warn!(
                projection = projection.name(),
                "lost the projection lock's connection"
            );
            return true;
        }
        let Some(batch) = next_batch(&mut sub, projection.name(), stop).await else {
            return false;
        };
        let small = batch.len() < SMALL;
        if !apply(reads, projection, batch, checkpoint, stop).await || !gather(small, stop).await {
            return false;
        }
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
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return None,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

/// Applies one batch, retrying until it lands; `false` when told to stop first.
async fn apply(
    reads: &Reads,
    projection: Projection,
    batch: Vec<events::Recorded>,
    checkpoint: &watch::Sender<u64>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let applied = retrying(projection.name(), stop, || {
        reads.apply_batch(projection, batch.clone())
    })
    .await;
    applied.map(|at| checkpoint.send_replace(at)).is_some()
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
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
