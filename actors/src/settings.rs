//! How room actors run: idle stop, snapshots, who blocks whom, and the counters of how they
//! started.

use events::Snapshots;
use events::keys::Keys;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Who blocks whom: the binary answers it from the read side (the blocks are in users'
/// streams, which a room does not fold). A room asks only for posts in a direct room, so
/// group rooms never wait for it.
pub trait Blocks: Send + Sync {
    /// Whether `by` blocks `user`; `Err` with a reason when that cannot be read now.
    fn blocks<'a>(
        &'a self,
        by: &'a str,
        user: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;
}

/// Settings of a room actor.
#[derive(Clone)]
pub struct Settings {
    /// Stop after this long with no subscriber and no command.
    pub idle_after: Duration,
    /// Where the room's state is snapshotted, so that starting the room again reads only the
    /// events after its newest snapshot. `None`: every start reads the whole stream.
    pub snapshots: Option<Arc<dyn Snapshots>>,
    /// The key store: message texts are sealed with it before they are appended and opened
    /// with it when they are replayed from the log.
    pub keys: Arc<Keys>,
    /// Who blocks whom, asked before a post in a direct room. `None`: nobody blocks anyone.
    pub blocks: Option<Arc<dyn Blocks>>,
}

/// How room actors started (counters for metrics).
#[derive(Debug, Default)]
pub struct Starts {
    /// Starts from a snapshot.
    pub from_snapshot: std::sync::atomic::AtomicU64,
    /// Starts that read the stream from its beginning.
    pub from_log: std::sync::atomic::AtomicU64,
    /// Events read from the log by starting rooms.
    pub events_read: std::sync::atomic::AtomicU64,
}

/// A room saves a snapshot of its state once its stream has grown by this many events since
/// the last one (or since the start of a room that had none), or by as many as its window
/// holds messages when that is more: a snapshot carries the window, so saving one every
/// window's worth of events keeps its cost per event the same however full the window is.
pub const SNAPSHOT_EVERY: u64 = 1000;

impl Settings {
    /// No snapshots; stop after `idle_after` with nothing to do; seal with `keys`.
    pub fn new(idle_after: Duration, keys: Arc<Keys>) -> Self {
        Self {
            idle_after,
            snapshots: None,
            keys,
            blocks: None,
        }
    }

    /// The same settings, asking `blocks` before posts in direct rooms.
    pub fn with_blocks(self, blocks: Arc<dyn Blocks>) -> Self {
        Self {
            blocks: Some(blocks),
            ..self
        }
    }

    /// The same settings, snapshotting to `snapshots`.
    pub fn with_snapshots(self, snapshots: Arc<dyn Snapshots>) -> Self {
        Self {
            snapshots: Some(snapshots),
            ..self
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("idle_after", &self.idle_after)
            .field("snapshots", &self.snapshots.is_some())
            .field("blocks", &self.blocks.is_some())
            .finish()
    }
}
