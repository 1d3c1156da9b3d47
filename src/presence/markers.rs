//! `mark_read` and `POST /api/room/{roomId}/read`: a member's read marker moved forward in
//! the read-side database, and `read_updated` to their other sockets on every node.

use crate::own_writes::OwnWrites;
use crate::signals::{Bus, Signal};
use events::Store;
use projections::{Checkpoints, Mark, Reads};
use std::sync::Arc;
use std::time::Duration;

/// How long a marker waits for the read tables to reach the caller's writes, or the log's
/// head when it asks past the newest message they know.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Why a marker was not moved.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    /// No such room.
    #[error("no such room")]
    NotFound,
    /// The caller is not a member.
    #[error("only members can mark a room read")]
    NotMember,
    /// The database failed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// What moves read markers.
pub struct ReadMarkers {
    reads: Reads,
    checkpoints: Checkpoints,
    store: Arc<dyn Store>,
    written: Arc<OwnWrites>,
    bus: Bus,
}

impl ReadMarkers {
    /// Markers in `reads`, told on `bus`.
    pub fn new(
        reads: Reads,
        checkpoints: Checkpoints,
        store: Arc<dyn Store>,
        written: Arc<OwnWrites>,
        bus: Bus,
    ) -> Self {
        Self {
            reads,
            checkpoints,
            store,
            written,
            bus,
        }
    }

    async fn caught_up(&self, position: u64) {
        if position > 0 && !self.checkpoints.wait_for(position, CATCH_UP).await {
            tracing::warn!(
                position,
                "read tables are behind; a read marker may be clamped"
            );
        }
    }

    async fn mark_once(&self, room: &str, user: &str, seq: u64) -> Result<Mark, MarkError> {
        self.reads
            .mark_read(room, user, seq)
            .await
            .map_err(|e| MarkError::Unavailable(e.to_string()))
    }

    /// Moves `user`'s marker in `room` forward to `seq` (clamped to the room's newest
    /// message); the marker now. When it moved, the user's other sockets are told, all but
    /// socket `except` of this node.
    ///
    /// # Errors
    /// [`MarkError`]; nothing changes then.
    pub async fn mark(
        &self,
        room: &str,
        user: &str,
        seq: u64,
        except: Option<u64>,
    ) -> Result<u64, MarkError> {
        // A member who just joined reads their own join.
        self.caught_up(self.written.newest(user)).await;
        let mut outcome = self.mark_once(room, user, seq).await?;
        // Past the newest message the read tables know, or a room or membership they do not
        // know: what the caller was shown may not be in them yet (another process wrote it).
        // Ask again once they hold the log as it is now.
        let behind = match outcome {
            Mark::Marked { last_seq, .. } => seq > last_seq,
            Mark::NoRoom | Mark::NotMember => true,
        };
        if behind {
            let head = (*self.store.head().borrow()).max(*self.store.others_head().borrow());
            self.caught_up(head).await;
            let first = outcome;
            outcome = self.mark_once(room, user, seq).await?;
            if let (Mark::Marked { before, .. }, Mark::Marked { now, last_seq, .. }) =
                (first, outcome)
            {
                outcome = Mark::Marked {
                    before,
                    now,
                    last_seq,
                };
            }
        }
        match outcome {
            Mark::NoRoom => Err(MarkError::NotFound),
            Mark::NotMember => Err(MarkError::NotMember),
            Mark::Marked { before, now, .. } => {
                if now > before {
                    self.bus.publish(Signal::ReadUpdated {
                        user: user.to_owned(),
                        room: room.to_owned(),
                        seq: now,
                        except,
                    });
                }
                Ok(now)
            }
        }
    }
}
