//! What a room actor is asked and what it answers: its messages and their results.

use crate::delivery::Subscriber;
use crate::room::{Command, Rejection};
use ractor::RpcReplyPort;

/// Why a room command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The room's rules refused it.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The log could not take it, or its answer was lost on the way (the database went
    /// away during the commit): a retry with the same id is answered with what was stored.
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

/// Result of an edit, deletion or reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// The room's version at the change (the message's current version when it changed
    /// nothing).
    pub version: u64,
    /// The time of an edit.
    pub edited_at: Option<i64>,
    /// Global position of its event (or of the room's newest); a reader that waits for this
    /// position sees it.
    pub position: u64,
}

/// Result of a command other than a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Global position of its last event, or of the room's newest event when it changed
    /// nothing; a reader that waits for this position sees its effect.
    pub position: u64,
    /// The room's version after it.
    pub version: u64,
    /// Whether it appended anything.
    pub changed: bool,
}

/// Result of a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribed {
    /// Newest seq at the time of the answer.
    pub last_seq: u64,
    /// The room's version at the time of the answer.
    pub last_version: u64,
    /// Whether everything after the resume point was delivered (false without one).
    pub recovered: bool,
}

/// Where a subscriber resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Nothing to replay.
    No,
    /// Every message after this seq.
    Seq(u64),
    /// Every change after this version.
    Version(u64),
}

/// Most messages (or changes) replayed on resume; beyond that the client reloads history
/// instead.
pub const MAX_REPLAY: u64 = 1000;

/// Messages of a room actor.
pub enum Msg {
    /// Anything but a post: written alone, after the posts already waiting.
    Command {
        /// What.
        command: Command,
        /// Answer, once durable.
        reply: RpcReplyPort<Result<Applied, Error>>,
    },
    /// Post a message.
    Post {
        /// Author.
        user_id: String,
        /// Client id.
        message_id: String,
        /// Text.
        text: String,
        /// The message it answers.
        reply_to: Option<u64>,
        /// Answer, once durable.
        reply: RpcReplyPort<Result<Posted, Error>>,
    },
    /// An edit, deletion or reaction: batched with posts.
    Change {
        /// What.
        command: Command,
        /// Answer, once durable.
        reply: RpcReplyPort<Result<Changed, Error>>,
    },
    /// Subscribe a sink, replaying what it missed, then send a join notice.
    Subscribe {
        /// The sink.
        subscriber: Subscriber,
        /// Where it resumes.
        resume: Resume,
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

impl Msg {
    /// Whether the room decides this against its state, which must then be settled first.
    pub(crate) fn decides(&self) -> bool {
        matches!(
            self,
            Msg::Command { .. } | Msg::Post { .. } | Msg::Change { .. } | Msg::Subscribe { .. }
        )
    }

    /// Answers it `Unavailable(why)` without doing it.
    pub(crate) fn refuse(self, why: &str) {
        let no = || Error::Unavailable(why.to_owned());
        match self {
            Msg::Command { reply, .. } => drop(reply.send(Err(no()))),
            Msg::Post { reply, .. } => drop(reply.send(Err(no()))),
            Msg::Change { reply, .. } => drop(reply.send(Err(no()))),
            Msg::Subscribe { reply, .. } => drop(reply.send(Err(no()))),
            Msg::Unsubscribe { .. } | Msg::Observe { .. } | Msg::Flush | Msg::Tick => {}
        }
    }
}
