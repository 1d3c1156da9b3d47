//! What a room is asked ([`Command`]), what it may answer ([`Decision`], [`Rejection`]),
//! and the message changes a batch has decided but not yet written ([`Pending`]).

use super::MAX_TEXT_CHARS;
use events::Event;
use events::event::Role;
use events::seal::Sealed;
use std::collections::HashMap;

/// A command to a room. Personal data in it (reasons, codes) is already sealed: the rules
/// never see it in clear, and neither does the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Make `user_id` a member with the code whose hash is `code_hash`.
    Join {
        /// The joining user.
        user_id: String,
        /// [`join_code_hash`](events::event::join_code_hash) of the code they gave.
        code_hash: [u8; 32],
    },
    /// One of a direct room's pair opens it again: a member already, or back after leaving.
    Reopen {
        /// Who.
        user_id: String,
    },
    /// Post a message.
    Post {
        /// The author.
        user_id: String,
        /// The client's message id.
        message_id: String,
        /// The text as sent.
        text: String,
        /// The message it answers.
        reply_to: Option<u64>,
    },
    /// The author changes a message's text.
    Edit {
        /// Who asks.
        user_id: String,
        /// The message.
        seq: u64,
        /// The new text.
        text: String,
    },
    /// The author, or an admin or the owner, deletes a message.
    Delete {
        /// Who asks.
        by: String,
        /// The message.
        seq: u64,
    },
    /// A member adds (`on`) or takes back a reaction.
    React {
        /// Who.
        user_id: String,
        /// The message.
        seq: u64,
        /// The symbol.
        emoji: String,
        /// Add or remove.
        on: bool,
    },
    /// A member leaves of their own accord.
    Leave {
        /// Who.
        user_id: String,
    },
    /// A user's account was erased: their membership ends, and an owner's room passes on.
    Erase {
        /// Who.
        user_id: String,
    },
    /// A moderator acts on a user.
    Moderate {
        /// The moderator.
        by: String,
        /// The user acted on.
        user_id: String,
        /// What they do.
        act: Act,
    },
    /// The owner changes a member's role; [`Role::Owner`] transfers ownership.
    SetRole {
        /// The owner.
        by: String,
        /// The member.
        user_id: String,
        /// The new role.
        role: Role,
    },
    /// An admin (or, for archive and retention, the owner) changes settings.
    Update {
        /// Who.
        by: String,
        /// What changes.
        change: Change,
    },
    /// An admin replaces the standing join code.
    RotateCode {
        /// Who.
        by: String,
        /// Hash of the new code.
        join_code_hash: [u8; 32],
        /// The new code, sealed for the room.
        join_code: Sealed,
    },
    /// An admin makes an extra invite.
    CreateInvite {
        /// Who.
        by: String,
        /// Its id.
        invite_id: String,
        /// Hash of its code.
        code_hash: [u8; 32],
        /// Its code, sealed for the room.
        code: Sealed,
        /// Most joins it allows.
        max_uses: Option<u32>,
        /// When it stops working (ms).
        expires_at: Option<i64>,
    },
    /// An admin revokes an extra invite.
    RevokeInvite {
        /// Who.
        by: String,
        /// The invite.
        invite_id: String,
    },
}

/// What a moderator does to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Remove a member; they may rejoin.
    Kick {
        /// Sealed for the moderator.
        reason: Option<Sealed>,
    },
    /// Remove and refuse every rejoin until `until` (ms; `None`: until lifted).
    Ban {
        /// Sealed for the moderator.
        reason: Option<Sealed>,
        /// End of the ban.
        until: Option<i64>,
    },
    /// Lift a ban.
    Unban,
    /// Refuse a member's posts until `until` (ms).
    Mute {
        /// End of the mute.
        until: i64,
    },
    /// Lift a mute.
    Unmute,
}

/// Settings a [`Command::Update`] changes; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Name, 1 to 64 characters.
    pub name: Option<String>,
    /// Description, at most 256.
    pub description: Option<String>,
    /// Avatar path or empty.
    pub avatar_image: Option<String>,
    /// Archived (owner).
    pub archived: Option<bool>,
    /// Retention in days; `Some(None)` turns it off (owner).
    pub retention_days: Option<Option<u32>>,
}

/// Why a room refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The room's stream does not exist.
    #[error("no such room")]
    NotFound,
    /// Only members may do this.
    #[error("you are not a member of this room")]
    NotMember,
    /// The user acted on is not a member.
    #[error("that user is not a member of this room")]
    NoSuchMember,
    /// No live invite has this id.
    #[error("no such invite")]
    NoSuchInvite,
    /// The caller's role does not allow it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The user is banned from the room.
    #[error("you are banned from this room")]
    Banned,
    /// The code was rotated, revoked, has expired or is used up.
    #[error("this code no longer works: it was replaced, revoked, has expired or is used up")]
    Gone,
    /// The room is read-only.
    #[error("the room is archived")]
    Archived,
    /// The member may not post for now.
    #[error("you are muted in this room")]
    Muted,
    /// The owner must hand the room on before leaving.
    #[error("the owner cannot leave: transfer ownership first")]
    OwnerMustTransfer,
    /// A setting out of range.
    #[error("{0}")]
    Invalid(&'static str),
    /// The text is empty after trimming.
    #[error("a message needs some text")]
    Empty,
    /// The text is longer than [`MAX_TEXT_CHARS`].
    #[error("a message may have at most {MAX_TEXT_CHARS} characters")]
    TooLong,
    /// The client message id is empty or too long.
    #[error("a message needs an id of 1 to 128 characters")]
    BadId,
    /// No message of the room has this `seq`.
    #[error("no message of this room has that seq")]
    NoSuchMessage,
    /// `replyTo` names no message of the room.
    #[error("replyTo must be the seq of a message of this room")]
    BadReply,
    /// Not an emoji the contract allows.
    #[error("an emoji is 1 to {MAX_EMOJI_CHARS} characters without white space")]
    BadEmoji,
    /// The change conflicts with the message as it is.
    #[error("{0}")]
    Conflict(&'static str),
}

/// Longest reaction symbol, in code points.
pub const MAX_EMOJI_CHARS: usize = 32;
/// Most distinct symbols one message may hold.
pub const MAX_EMOJI: usize = 20;

impl Rejection {
    /// The contract's error code for it.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NotFound
            | Rejection::NoSuchMember
            | Rejection::NoSuchInvite
            | Rejection::NoSuchMessage => "not_found",
            Rejection::NotMember => "not_member",
            Rejection::Forbidden(_) => "forbidden",
            Rejection::Banned => "banned",
            Rejection::Gone => "gone",
            Rejection::Archived => "archived",
            Rejection::Muted => "muted",
            Rejection::OwnerMustTransfer | Rejection::Conflict(_) => "conflict",
            Rejection::TooLong => "too_large",
            Rejection::Invalid(_)
            | Rejection::Empty
            | Rejection::BadId
            | Rejection::BadReply
            | Rejection::BadEmoji => "bad_request",
        }
    }
}

/// What a decision produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Append these events, in order.
    Append(Vec<Event>),
    /// Post the message as `seq` (the actor seals its text as it appends it).
    Post(u64),
    /// Edit message `seq`, whose texts are sealed in `period` (the actor seals the new text
    /// as it appends it).
    Edit {
        /// The message.
        seq: u64,
        /// The period of its posting.
        period: i64,
    },
    /// Nothing to do: already true (a second join, a lift of what is not there) or already
    /// stored (a retried post, with the first `seq`).
    AlreadyDone(Option<u64>),
}

/// Changes to messages decided but not yet written (the actor's batch), which the commands
/// after them in the same batch must see: deletions, and reactions as they will stand.
#[derive(Debug, Default)]
pub struct Pending {
    pub(super) deleted: std::collections::HashSet<u64>,
    /// Per message, (symbol, user) and whether it will be on.
    pub(super) reactions: HashMap<u64, HashMap<(String, String), bool>>,
}

impl Pending {
    /// Notes an event decided for the batch.
    pub fn note(&mut self, event: &Event) {
        match event {
            Event::MessageDeleted(d) => {
                self.deleted.insert(d.seq);
            }
            Event::ReactionAdded(r) | Event::ReactionRemoved(r) => {
                let on = matches!(event, Event::ReactionAdded(_));
                self.reactions
                    .entry(r.seq)
                    .or_default()
                    .insert((r.emoji.clone(), r.user_id.clone()), on);
            }
            _ => {}
        }
    }

    /// Forgets everything (the batch was written or given up).
    pub fn clear(&mut self) {
        self.deleted.clear();
        self.reactions.clear();
    }
}
