//! The events of messages that change after they are posted (stream `room-<id>`): edits,
//! deletions and reactions. An edit's text is sealed under the same key as the message it
//! edits ([`crate::event::MessagePosted::subject`]: its author, room and the period of its
//! first posting), so erasure and retention make every version of a message unreadable at
//! once. Reactions are short symbols (at most 32 code points, no white space), not free text,
//! and are kept in clear, as room names are.

use crate::seal::{Sealed, Subject};
use serde::{Deserialize, Serialize};

/// Payload of `MessageEdited`: the message's new text; the old ones stay in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEdited {
    /// The room.
    pub room_id: String,
    /// The message edited.
    pub seq: u64,
    /// Its author, the only one who may edit it.
    pub user_id: String,
    /// The new text, sealed for [`MessageEdited::subject`].
    pub text: Sealed,
    /// The period of the message's first posting, which names its key.
    pub period: i64,
}

impl MessageEdited {
    /// The subject its text is sealed for: the edited message's own.
    pub fn subject(&self) -> Subject {
        Subject::Text {
            user: self.user_id.clone(),
            room: self.room_id.clone(),
            period: self.period,
        }
    }
}

/// Payload of `MessageDeleted`: the message becomes a placeholder (its `seq` stays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeleted {
    /// The room.
    pub room_id: String,
    /// The message deleted.
    pub seq: u64,
    /// Its author, or the admin or owner who deleted it.
    pub by: String,
}

/// Payload of `ReactionAdded` and `ReactionRemoved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The room.
    pub room_id: String,
    /// The message reacted to.
    pub seq: u64,
    /// Who reacted.
    pub user_id: String,
    /// The symbol.
    pub emoji: String,
}
