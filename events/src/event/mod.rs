//! The facts of chatroom. Each event carries who, what, and the ids it is about; the time is
//! in the envelope. Streams: `log` (its first event says which rules the log follows),
//! `user-<id>` (also the blocks the user puts on others), `username-<name hash>` (uniqueness
//! of names, see [`Keys::name_hash`](crate::keys::Keys::name_hash)), `room-<id>` (group rooms
//! and direct rooms alike).
//!
//! Personal data (names, avatars, message texts, join codes) is only ever [`Sealed`] here, under
//! the key of its [`Subject`]; see [`crate::seal`]. Password hashes are not in the log at all.

use crate::seal::{Sealed, Subject};
use serde::{Deserialize, Serialize};

mod direct;
mod governance;
mod messages;
pub use direct::*;
pub use governance::*;
pub use messages::*;

/// The rules a log written today follows: personal data sealed, no credentials. A log whose
/// first event is not [`LogStarted`] of this format was written by an earlier version and is
/// upgraded by `chatroom upgrade`.
pub const LOG_FORMAT: u32 = 2;

/// The stream of [`Event::LogStarted`].
pub const LOG_STREAM: &str = "log";

/// Every event chatroom records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The log's first event (stream `log`): the rules it follows.
    LogStarted(LogStarted),
    /// A user name was claimed for a user id (stream `username-<name hash>`).
    UserNameClaimed(UserNameClaimed),
    /// A user name was let go (rename or erasure) and may be claimed again.
    UserNameReleased(UserNameReleased),
    /// A user registered (stream `user-<id>`).
    UserRegistered(UserRegistered),
    /// A user changed their name.
    UserRenamed(UserRenamed),
    /// A user changed their avatar.
    AvatarChanged(AvatarChanged),
    /// A user changed their password (the hash lives in the credentials table).
    PasswordChanged(PasswordChanged),
    /// A user was erased: their keys are destroyed and may never be used again.
    UserErased(UserErased),
    /// A room was created (stream `room-<id>`, always its first event).
    RoomCreated(RoomCreated),
    /// A direct room of two users was opened (stream `room-<id>`, always its first event).
    DirectRoomOpened(DirectRoomOpened),
    /// A user became a member of a room.
    MemberJoined(MemberJoined),
    /// A member left a room, of their own accord or because their account was erased.
    MemberLeft(MemberLeft),
    /// A moderator removed a member.
    MemberKicked(MemberKicked),
    /// A moderator banned a user (a member is removed too).
    MemberBanned(MemberBanned),
    /// A ban was lifted.
    MemberUnbanned(Lifted),
    /// A moderator muted a member for a while.
    MemberMuted(MemberMuted),
    /// A mute was lifted.
    MemberUnmuted(Lifted),
    /// A member's role changed.
    RoleChanged(RoleChanged),
    /// Room settings changed.
    RoomUpdated(RoomUpdated),
    /// The room became read-only.
    RoomArchived(Archival),
    /// The room became writable again.
    RoomUnarchived(Archival),
    /// The standing join code was replaced.
    JoinCodeRotated(JoinCodeRotated),
    /// An extra invite was made.
    InviteCreated(InviteCreated),
    /// An extra invite was revoked.
    InviteRevoked(InviteRevoked),
    /// A member posted a message; `seq` is its gap-free position in the room.
    MessagePosted(MessagePosted),
    /// An author changed their message's text.
    MessageEdited(MessageEdited),
    /// A message was deleted: a placeholder from now on.
    MessageDeleted(MessageDeleted),
    /// A member reacted to a message.
    ReactionAdded(Reaction),
    /// A member took a reaction back.
    ReactionRemoved(Reaction),
    /// A user blocked another (stream `user-<by>`).
    UserBlocked(Block),
    /// A user lifted their block of another.
    UserUnblocked(Block),
}

/// Payload of [`Event::LogStarted`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStarted {
    /// [`LOG_FORMAT`] when it was written.
    pub format: u32,
}

/// Payload of [`Event::UserNameClaimed`], schema version 2 (version 1 held the name in clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNameClaimed {
    /// The user who holds the name.
    pub user_id: String,
}

/// Payload of [`Event::UserNameReleased`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNameReleased {
    /// The user who held the name.
    pub user_id: String,
}

/// Payload of [`Event::UserRegistered`], schema version 2 (version 1 held the name in clear
/// and the password's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The new user's id.
    pub user_id: String,
    /// The name as registered (case kept), sealed for [`Subject::User`].
    pub name: Sealed,
}

/// Payload of [`Event::UserRenamed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRenamed {
    /// The user.
    pub user_id: String,
    /// The new name, sealed for [`Subject::User`].
    pub name: Sealed,
}

/// Payload of [`Event::AvatarChanged`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarChanged {
    /// The user.
    pub user_id: String,
    /// Path of the new avatar under `/media/`, or empty, sealed for [`Subject::User`].
    pub avatar: Sealed,
}

/// Payload of [`Event::PasswordChanged`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    /// The user.
    pub user_id: String,
}

/// Payload of [`Event::UserErased`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserErased {
    /// The user.
    pub user_id: String,
    /// Whether an operator erased them (`chatroom erase-user`) rather than they themselves.
    pub by_operator: bool,
}

/// Payload of [`Event::RoomCreated`], schema version 2 (version 1 held the join code in
/// clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCreated {
    /// The room's id.
    pub room_id: String,
    /// Display name.
    pub name: String,
    /// Free text description.
    pub description: String,
    /// The creator, who is also its first member.
    pub owner: String,
    /// Path of the avatar under `/media/`, or empty.
    pub avatar_image: String,
    /// [`join_code_hash`] of the join code: how a code finds its room.
    pub join_code_hash: [u8; 32],
    /// The join code, sealed for [`Subject::Room`], so members can be shown it again.
    pub join_code: Sealed,
}

/// Payload of [`Event::MemberJoined`], schema version 2 (version 1 had no `invite`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberJoined {
    /// The room joined.
    pub room_id: String,
    /// The member.
    pub user_id: String,
    /// The extra invite whose code they joined with (it counts as one use); `None` for the
    /// standing code.
    pub invite: Option<String>,
}

/// Payload of [`Event::MemberLeft`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLeft {
    /// The room left.
    pub room_id: String,
    /// The member who left.
    pub user_id: String,
}

/// Payload of [`Event::MessagePosted`], schema version 4 (version 3 had no `reply_to`;
/// versions 1 and 2 held the text in clear; see [`codec`](crate::codec)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePosted {
    /// The room posted to.
    pub room_id: String,
    /// Position of the message in its room: 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// The client's own id for the message, the key of idempotent retries.
    pub message_id: String,
    /// The author.
    pub user_id: String,
    /// The text exactly as sent, sealed for [`MessagePosted::subject`].
    pub text: Sealed,
    /// What kind of message it is: `"input"` (typed text) is the only kind today; a new kind
    /// needs no new schema version.
    pub kind: String,
    /// The [`period`](crate::seal::period_of) of its time, which names its key.
    pub period: i64,
    /// The `seq` of the message of the same room it answers, if any.
    pub reply_to: Option<u64>,
}

impl MessagePosted {
    /// The subject its text is sealed for.
    pub fn subject(&self) -> Subject {
        Subject::Text {
            user: self.user_id.clone(),
            room: self.room_id.clone(),
            period: self.period,
        }
    }
}

/// The SHA-256 of a join code: 128 random bits need no slower hash.
pub fn join_code_hash(code: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(code.as_bytes()).into()
}

/// The kind of every message written before kinds were recorded.
pub const INPUT: &str = "input";

impl Event {
    /// The event's type name as stored in the envelope.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::LogStarted(_) => "LogStarted",
            Event::UserNameClaimed(_) => "UserNameClaimed",
            Event::UserNameReleased(_) => "UserNameReleased",
            Event::UserRegistered(_) => "UserRegistered",
            Event::UserRenamed(_) => "UserRenamed",
            Event::AvatarChanged(_) => "AvatarChanged",
            Event::PasswordChanged(_) => "PasswordChanged",
            Event::UserErased(_) => "UserErased",
            Event::RoomCreated(_) => "RoomCreated",
            Event::DirectRoomOpened(_) => "DirectRoomOpened",
            Event::MemberJoined(_) => "MemberJoined",
            Event::MemberLeft(_) => "MemberLeft",
            Event::MemberKicked(_) => "MemberKicked",
            Event::MemberBanned(_) => "MemberBanned",
            Event::MemberUnbanned(_) => "MemberUnbanned",
            Event::MemberMuted(_) => "MemberMuted",
            Event::MemberUnmuted(_) => "MemberUnmuted",
            Event::RoleChanged(_) => "RoleChanged",
            Event::RoomUpdated(_) => "RoomUpdated",
            Event::RoomArchived(_) => "RoomArchived",
            Event::RoomUnarchived(_) => "RoomUnarchived",
            Event::JoinCodeRotated(_) => "JoinCodeRotated",
            Event::InviteCreated(_) => "InviteCreated",
            Event::InviteRevoked(_) => "InviteRevoked",
            Event::MessagePosted(_) => "MessagePosted",
            Event::MessageEdited(_) => "MessageEdited",
            Event::MessageDeleted(_) => "MessageDeleted",
            Event::ReactionAdded(_) => "ReactionAdded",
            Event::ReactionRemoved(_) => "ReactionRemoved",
            Event::UserBlocked(_) => "UserBlocked",
            Event::UserUnblocked(_) => "UserUnblocked",
        }
    }

    /// The event's one sealed field and the subject it is sealed for, if it has one.
    pub fn sealed(&self) -> Option<(Subject, &Sealed)> {
        match self {
            Event::UserRegistered(UserRegistered { user_id, name })
            | Event::UserRenamed(UserRenamed { user_id, name }) => {
                Some((Subject::User(user_id.clone()), name))
            }
            Event::AvatarChanged(a) => Some((Subject::User(a.user_id.clone()), &a.avatar)),
            Event::RoomCreated(r) => Some((Subject::Room(r.room_id.clone()), &r.join_code)),
            Event::JoinCodeRotated(r) => Some((Subject::Room(r.room_id.clone()), &r.join_code)),
            Event::InviteCreated(i) => Some((Subject::Room(i.room_id.clone()), &i.code)),
            Event::MemberKicked(MemberKicked {
                by,
                reason: Some(reason),
                ..
            })
            | Event::MemberBanned(MemberBanned {
                by,
                reason: Some(reason),
                ..
            }) => Some((Subject::User(by.clone()), reason)),
            Event::MessagePosted(m) => Some((m.subject(), &m.text)),
            Event::MessageEdited(m) => Some((m.subject(), &m.text)),
            _ => None,
        }
    }
}

/// The stream of a user.
pub fn user_stream(user_id: &str) -> String {
    format!("user-{user_id}")
}

/// The stream that makes a user name unique, ignoring case, named by the name's
/// [`Keys::name_hash`](crate::keys::Keys::name_hash).
pub fn username_stream(name_hash: &str) -> String {
    format!("username-{name_hash}")
}

/// The stream of a room.
pub fn room_stream(room_id: &str) -> String {
    format!("room-{room_id}")
}
