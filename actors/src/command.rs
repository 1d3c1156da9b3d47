//! What a room actor is asked and what it answers: its messages and their results.

use crate::delivery::Subscriber;
use crate::room::Rejection;
use ractor::RpcReplyPort;

/// Why a room command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The room's rules refused it.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The log could not take it; nothing was stored.
    #[error("the room is unavailable: {0}")]
    Unavailable(String),
    /// The room has too many commands waiting; nothing was queued. Retry shortly.
    #[error("the room is too busy right now; retry shortly")]
    Busy,
}

/// A stored (or already stored) message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    /// Its seq.
    pub seq: u64,
    /// Its time, milliseconds since the epoch.
    pub time_ms: i64,
    /// Whether this was a retry of a message already stored.
    pub duplicate: bool,
    /// Global position of its event.
    pub position: u64,
}

/// Result of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// Global position of the join event, or of the room's newest event when the user was
    /// already a member; a reader that waits for this position sees the membership.
    pub position: u64,
}

/// Result of a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribed {
    /// Newest seq at the time of the answer.
    pub last_seq: u64,
    /// Whether everything after `since` was delivered (false without `since`).
    pub recovered: bool,
}

/// Most messages replayed on resume; beyond that the client reloads history instead.
pub const MAX_REPLAY: u64 = 1000;

/// Messages of a room actor.
pub enum Msg {
    /// Make a user a member.
    Join {
        /// Who.
        user_id: String,
        /// Answer.
        reply: RpcReplyPort<Result<Joined, Error>>,
    },
    /// Post a message.
    Post {
        /// Author.
        user_id: String,
        /// Client id.
        message_id: String,
        /// Text.
        text: String,
        /// Answer, once durable.
        reply: RpcReplyPort<Result<Posted, Error>>,
    },
    /// Subscribe a sink, replaying what it missed after `since`, then send a join notice.
    Subscribe {
        /// The sink.
        subscriber: Subscriber,
        /// Last seq the subscriber saw.
        since: Option<u64>,
        /// Answer.
        reply: RpcReplyPort<Result<Subscribed, Error>>,
    },
    /// Remove a sink.
    Unsubscribe {
        /// Its id.
        id: u64,
    },
    /// Another process wrote the room's stream up to `version`: catch up and deliver.
    Observe {
        /// The stream version seen in the log.
        version: u64,
    },
    /// Write what is parked.
    Flush,
    /// Periodic check for idleness.
    Tick,
}
