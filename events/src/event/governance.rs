//! The events of a room's governance (stream `room-<id>`): roles, moderation, settings and
//! invites. Each names who did it (`by`); `by` is `None` only where the server acts on its
//! own (an erased owner's room passing on, or archived when nobody is left). Reasons and codes
//! are [`Sealed`]: a reason for [`Subject::User`] of the moderator who wrote it, a code for
//! [`Subject::Room`].
//!
//! [`Subject::User`]: crate::seal::Subject::User
//! [`Subject::Room`]: crate::seal::Subject::Room

use crate::seal::Sealed;
use serde::{Deserialize, Serialize};

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Exactly one per group room: may do anything.
    Owner,
    /// Moderates members and edits the room's settings.
    Admin,
    /// Reads and posts.
    Member,
}

impl Role {
    /// The name of the role on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// The role named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// Payload of `MemberKicked`: removed, may rejoin with a valid code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberKicked {
    /// The room.
    pub room_id: String,
    /// The member removed.
    pub user_id: String,
    /// The moderator.
    pub by: String,
    /// Why, if they said, sealed for the moderator.
    pub reason: Option<Sealed>,
}

/// Payload of `MemberBanned`: removed if a member, and refused every rejoin until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberBanned {
    /// The room.
    pub room_id: String,
    /// The user banned (member or not).
    pub user_id: String,
    /// The moderator.
    pub by: String,
    /// Why, if they said, sealed for the moderator.
    pub reason: Option<Sealed>,
    /// End of the ban, milliseconds since the epoch; `None`: until lifted.
    pub until: Option<i64>,
}

/// Payload of `MemberUnbanned`, `MemberUnmuted`: a ban or mute lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifted {
    /// The room.
    pub room_id: String,
    /// The user.
    pub user_id: String,
    /// The moderator.
    pub by: String,
}

/// Payload of `MemberMuted`: the member still reads; posts are refused until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMuted {
    /// The room.
    pub room_id: String,
    /// The member.
    pub user_id: String,
    /// The moderator.
    pub by: String,
    /// End of the mute, milliseconds since the epoch.
    pub until: i64,
}

/// Payload of `RoleChanged`. A transfer of ownership is two: the new owner, then the old one
/// as admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChanged {
    /// The room.
    pub room_id: String,
    /// The member.
    pub user_id: String,
    /// The owner who changed it; `None` when the server passed on an erased owner's room.
    pub by: Option<String>,
    /// The new role.
    pub role: Role,
}

/// Payload of `RoomUpdated`: the settings that changed (`None`: unchanged). Room names and
/// descriptions are not personal data (DESIGN.md), so they are in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomUpdated {
    /// The room.
    pub room_id: String,
    /// The admin who changed them.
    pub by: String,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New avatar path under `/media/`, or empty.
    pub avatar_image: Option<String>,
    /// New retention: `Some(None)` turns the room's own limit off.
    pub retention_days: Option<Option<u32>>,
}

/// Payload of `RoomArchived` and `RoomUnarchived`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archival {
    /// The room.
    pub room_id: String,
    /// The owner; `None` when the server archived a room left with nobody.
    pub by: Option<String>,
}

/// Payload of `JoinCodeRotated`: the standing code replaced; the old one is gone at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinCodeRotated {
    /// The room.
    pub room_id: String,
    /// The admin.
    pub by: String,
    /// [`join_code_hash`](crate::event::join_code_hash) of the new code.
    pub join_code_hash: [u8; 32],
    /// The new code, sealed for the room.
    pub join_code: Sealed,
}

/// Payload of `InviteCreated`: an extra code with limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCreated {
    /// The room.
    pub room_id: String,
    /// The invite's id.
    pub invite_id: String,
    /// The admin.
    pub by: String,
    /// [`join_code_hash`](crate::event::join_code_hash) of its code.
    pub code_hash: [u8; 32],
    /// Its code, sealed for the room.
    pub code: Sealed,
    /// How many joins it allows; `None`: any number.
    pub max_uses: Option<u32>,
    /// When it stops working, milliseconds since the epoch; `None`: never.
    pub expires_at: Option<i64>,
}

/// Payload of `InviteRevoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRevoked {
    /// The room.
    pub room_id: String,
    /// The invite.
    pub invite_id: String,
    /// The admin.
    pub by: String,
}
