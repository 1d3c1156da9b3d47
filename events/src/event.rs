//! The facts of chatroom. Each event carries who, what, and the ids it is about; the time is
//! in the envelope. Streams: `user-<id>`, `username-<lowercase name>` (uniqueness of names),
//! `room-<id>`.

use serde::{Deserialize, Serialize};

/// Every event chatroom records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A user name was claimed for a user id (stream `username-<lowercase name>`).
    UserNameClaimed(UserNameClaimed),
    /// A user registered (stream `user-<id>`).
    UserRegistered(UserRegistered),
    /// A room was created (stream `room-<id>`, always its first event).
    RoomCreated(RoomCreated),
    /// A user became a member of a room.
    MemberJoined(MemberJoined),
    /// A member posted a message; `seq` is its gap-free position in the room.
    MessagePosted(MessagePosted),
}

/// Payload of [`Event::UserNameClaimed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNameClaimed {
    /// The user who holds the name.
    pub user_id: String,
    /// The name as typed.
    pub name: String,
}

/// Payload of [`Event::UserRegistered`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The new user's id.
    pub user_id: String,
    /// The name as registered (case kept).
    pub name: String,
    /// The argon2id PHC string of the password; never the password itself.
    pub password_hash: String,
}

/// Payload of [`Event::RoomCreated`].
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
    /// The join code: 32 lowercase hex characters from a random source.
    pub join_code: String,
}

/// Payload of [`Event::MemberJoined`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberJoined {
    /// The room joined.
    pub room_id: String,
    /// The member.
    pub user_id: String,
}

/// Payload of [`Event::MessagePosted`], schema version 2 (version 1 had no `kind`; see
/// [`codec`](crate::codec) for its upcaster).
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
    /// The text exactly as sent.
    pub text: String,
    /// What kind of message it is: `"input"` (typed text) is the only kind today; a new kind
    /// needs no new schema version.
    pub kind: String,
}

/// The kind of every message written before kinds were recorded.
pub const INPUT: &str = "input";

impl Event {
    /// The event's type name as stored in the envelope.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::UserNameClaimed(_) => "UserNameClaimed",
            Event::UserRegistered(_) => "UserRegistered",
            Event::RoomCreated(_) => "RoomCreated",
            Event::MemberJoined(_) => "MemberJoined",
            Event::MessagePosted(_) => "MessagePosted",
        }
    }
}

/// The stream of a user.
pub fn user_stream(user_id: &str) -> String {
    format!("user-{user_id}")
}

/// The stream that makes a user name unique, ignoring case.
pub fn username_stream(name: &str) -> String {
    format!("username-{}", name.to_lowercase())
}

/// The stream of a room.
pub fn room_stream(room_id: &str) -> String {
    format!("room-{room_id}")
}
