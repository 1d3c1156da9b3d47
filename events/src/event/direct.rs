//! The events of direct conversations: a room of exactly two people (stream `room-<id>`, its
//! id derived from the pair, see [`Keys::direct_room_id`](crate::keys::Keys::direct_room_id)),
//! and the blocks one user puts on another (stream `user-<blocker>`). They hold ids only: the
//! room's name is the other person's name, read when it is shown, so nothing here needs
//! sealing (DESIGN.md: ids are not personal data).

use serde::{Deserialize, Serialize};

/// Payload of `DirectRoomOpened`: the first event of a direct room's stream, followed in the
/// same append by the two users' `MemberJoined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectRoomOpened {
    /// The room's id.
    pub room_id: String,
    /// The two users, in the order of their ids: the only people who may ever be members.
    pub users: [String; 2],
    /// Which of them opened it.
    pub by: String,
}

impl DirectRoomOpened {
    /// The one of the pair who is not `user_id`, if `user_id` is one of them.
    pub fn other(&self, user_id: &str) -> Option<&str> {
        other_of(&self.users, user_id)
    }
}

/// The one of `users` who is not `user_id`, if `user_id` is one of them.
pub fn other_of<'a>(users: &'a [String; 2], user_id: &str) -> Option<&'a str> {
    match users {
        [a, b] if a == user_id => Some(b),
        [a, b] if b == user_id => Some(a),
        _ => None,
    }
}

/// Payload of `UserBlocked` and `UserUnblocked` (stream `user-<by>`): a block is one-way and
/// concerns direct rooms only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The user who blocks.
    pub by: String,
    /// The user blocked.
    pub user_id: String,
}
