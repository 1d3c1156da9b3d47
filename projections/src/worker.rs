//! Projection workers: one task per projection following the log, and the wait that lets a
//! caller read its own writes.

use crate::projection::{ALL, Projection};
use crate::sqlite::{self, ReadDb};
use events::{Store, Subscription};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Events applied per transaction at most.
const BATCH: usize = 2000;

/// The running projection workers.
pub struct Workers {
    checkpoints: HashMap<Projection, watch::Receiver<u64>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts one worker per projection, each from its stored checkpoint.
    ///
    /// # Errors
    /// When a checkpoint cannot be read.
    pub async fn start(store: Arc<dyn Store>, db: ReadDb) -> Result<Self, sqlite::Error> {
        let (stop, _) = watch::channel(false);
        let mut checkpoints = HashMap::new();
        let mut tasks = Vec::new();
        for projection in ALL {
            let at = db.with(move |c| sqlite::checkpoint(c, projection)).await?;
            let (tx, rx) = watch::channel(at);
            checkpoints.insert(projection, rx);
            let conn = db.writer()?;
            tasks.push(tokio::spawn(run(
                store.clone(),
                conn,
                projection,
                at,
                tx,
                stop.subscribe(),
            )));
        }
        Ok(Self {
            checkpoints,
            stop,
            tasks,
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
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    conn: rusqlite::Connection,
    projection: Projection,
    from: u64,
    checkpoint: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sub = Subscription::new(store, from, BATCH);
    let conn = Arc::new(std::sync::Mutex::new(conn));
    loop {
        let batch = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            b = sub.next() => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(projection = projection.name(), error = %e, "reading the log failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // Retry the same batch until it applies: the checkpoint only moves with its rows.
        loop {
            let conn = conn.clone();
            let events = batch.clone();
            let applied = tokio::task::spawn_blocking(move || {
                let mut c = conn.lock().expect("projection connection");
                sqlite::apply_batch(&mut c, projection, &events)
            })
            .await;
            match applied {
                Ok(Ok(at)) => {
                    checkpoint.send_replace(at);
                    break;
                }
                Ok(Err(e)) => {
                    tracing::error!(projection = projection.name(), error = %e, "applying a batch failed; retrying");
                }
                Err(e) => {
                    tracing::error!(projection = projection.name(), error = %e, "projection task failed; retrying");
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
