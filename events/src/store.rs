//! The `Store` trait every log backend implements, and its error type.

use crate::envelope::{NewEvent, Recorded};
use async_trait::async_trait;
use tokio::sync::watch;

/// What the writer expects a stream to look like before its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

/// Errors of the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The stream was not at the expected version; nothing was written.
    #[error("version conflict on {stream}: expected {expected:?}, stream is at {actual:?}")]
    Conflict {
        /// The stream appended to.
        stream: String,
        /// What the writer expected.
        expected: Expected,
        /// The stream's version (None: no stream).
        actual: Option<u64>,
    },
    /// An append must carry at least one event.
    #[error("an append needs at least one event")]
    Empty,
    /// The backend cannot be reached or refused to work (disk full, database down, ...).
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// The backend holds data it cannot read.
    #[error("the event log is corrupt: {0}")]
    Corrupt(String),
}

/// An append-only event log.
///
/// Positions start at 1 and increase with every event; a stream's versions start at 1 and have
/// no gaps. When `append` returns `Ok` the events are durable.
///
/// An event id names an event for its readers; it is not a key of the log. A store never
/// refuses, skips or merges an event for its id, even one already stored: idempotent writes
/// are the writer's (a room keeps its recent client ids, `actors::recent`), which keeps an
/// append's cost free of any index over every id ever written.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically, if the stream is at `expected`.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the stream is not at `expected`; [`Error::Unavailable`] when
    /// nothing could be written.
    async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error>;

    /// Reads up to `limit` events of `stream` with version `>= from_version`, in order.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Corrupt`].
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Recorded>, Error>;

    /// Reads up to `limit` events of the whole log with position `> after`, in order, never
    /// skipping an event that a later read could still see below the last one returned.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Corrupt`].
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error>;

    /// The version of the stream's last event, or `None` when the stream does not exist.
    ///
    /// # Errors
    /// [`Error::Unavailable`].
    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error>;

    /// A watch of the newest position known to be readable. Subscriptions wait on it, and
    /// also poll, so a missed wake-up delays and never loses.
    fn head(&self) -> watch::Receiver<u64>;

    /// A watch that moves when other processes sharing the log append, for a follower that
    /// needs only their events: with it, it reads the log when they write (and on its poll),
    /// not after every append of its own. A store that cannot tell the writers apart gives
    /// [`head`](Self::head).
    fn others_head(&self) -> watch::Receiver<u64> {
        self.head()
    }
}
