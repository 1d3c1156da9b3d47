//! A live read of the log that continues from a position, over any [`Store`].

use crate::envelope::Recorded;
use crate::store::{Error, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Follows the log from a position: each [`next`](Self::next) returns the events after the last
/// one returned, waiting for new ones when caught up.
///
/// It wakes on the store's head watch and also polls every `poll` interval, so a lost
/// notification (another process, a dropped NOTIFY) only delays delivery.
pub struct Subscription {
    store: Arc<dyn Store>,
    after: u64,
    head: watch::Receiver<u64>,
    batch: usize,
    poll: Duration,
}

impl Subscription {
    /// Starts after `after` (0: from the beginning), reading up to `batch` events at a time.
    pub fn new(store: Arc<dyn Store>, after: u64, batch: usize) -> Self {
        let head = store.head();
        Self::waking_on(store, after, batch, head)
    }

    /// As [`new`](Self::new), waking when `wake` moves (and on the poll) instead of on every
    /// move of the store's head; it still reads every event.
    pub fn waking_on(
        store: Arc<dyn Store>,
        after: u64,
        batch: usize,
        head: watch::Receiver<u64>,
    ) -> Self {
        Self {
            store,
            after,
            head,
            batch: batch.max(1),
            poll: Duration::from_millis(500),
        }
    }

    /// The position of the last event returned.
    pub fn position(&self) -> u64 {
        self.after
    }

    /// The next events, waiting until at least one exists.
    ///
    /// # Errors
    /// What the store's `read_all` returns; the subscription may be retried after an error.
    pub async fn next(&mut self) -> Result<Vec<Recorded>, Error> {
        loop {
            // Mark the current head as seen before reading, so an append that lands after
            // the read still wakes the wait below.
            self.head.borrow_and_update();
            let events = self.store.read_all(self.after, self.batch).await?;
            if let Some(last) = events.last() {
                self.after = last.position;
                return Ok(events);
            }
            if let Ok(Err(_)) = tokio::time::timeout(self.poll, self.head.changed()).await {
                // The store is gone: keep polling, slowly, until the owner drops us.
                tokio::time::sleep(self.poll).await;
            }
        }
    }
}
