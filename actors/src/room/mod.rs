//! The rules of a room, as plain data: [`State`] is what the room's stream says so far,
//! [`decide`] turns a command into the events it causes (or a refusal), and [`State::apply`]
//! folds an event in. The actor only adds mailboxes, batching and fan-out around these.
//!
//! Rights are checked here, against the stream, never against a read table: the owner may do
//! anything but act on itself, an admin acts on members only, a member on nobody.

use crate::recent::Recent;
use events::Event;
use events::event::Role;
use events::seal::Sealed;
use std::collections::HashMap;

mod decide;
pub use decide::{check_text, decide};

/// Longest message text, in Unicode code points, after trimming.
pub const MAX_TEXT_CHARS: usize = 4000;

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
    /// Post a message.
    Post {
        /// The author.
        user_id: String,
        /// The client's message id.
        message_id: String,
        /// The text as sent.
        text: String,
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
}

impl Rejection {
    /// The contract's error code for it.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NotFound | Rejection::NoSuchMember | Rejection::NoSuchInvite => "not_found",
            Rejection::NotMember => "not_member",
            Rejection::Forbidden(_) => "forbidden",
            Rejection::Banned => "banned",
            Rejection::Gone => "gone",
            Rejection::Archived => "archived",
            Rejection::Muted => "muted",
            Rejection::OwnerMustTransfer => "conflict",
            Rejection::TooLong => "too_large",
            Rejection::Invalid(_) | Rejection::Empty | Rejection::BadId => "bad_request",
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
    /// Nothing to do: already true (a second join, a lift of what is not there) or already
    /// stored (a retried post, with the first `seq`).
    AlreadyDone(Option<u64>),
}

/// The encoding of a [`State`] in a snapshot (bincode of its fields); change it whenever the
/// fields change, so that snapshots in the old encoding are ignored rather than misread.
pub const SNAPSHOT_FORMAT: u32 = 3;

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Their role.
    pub role: Role,
    /// The stream version of their joining: the smaller, the longer they have stood.
    pub since: u64,
    /// End of a mute (ms), if they were muted.
    pub muted_until: Option<i64>,
}

/// A live extra invite.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invite {
    /// Hash of its code.
    pub code_hash: [u8; 32],
    /// Most joins it allows.
    pub max_uses: Option<u32>,
    /// Joins made with it.
    pub uses: u32,
    /// When it stops working (ms).
    pub expires_at: Option<i64>,
}

impl Invite {
    /// Whether it still lets someone in at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.max_uses.is_none_or(|m| self.uses < m) && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A room's settings, as members see them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Avatar path or empty.
    pub avatar_image: String,
    /// The room's own retention, in days.
    pub retention_days: Option<u32>,
    /// Read-only.
    pub archived: bool,
    /// When the room was created (ms).
    pub created_at: i64,
    /// When the room last changed (ms).
    pub updated_at: i64,
}

/// A room as its stream describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// The room's id.
    pub room_id: String,
    /// Whether `RoomCreated` has been seen.
    pub exists: bool,
    /// Version of the last event applied: the room's version.
    pub version: u64,
    /// Newest message seq.
    pub last_seq: u64,
    /// Members and their roles.
    pub members: HashMap<String, Member>,
    /// Banned users and the end of each ban (`None`: until lifted).
    pub bans: HashMap<String, Option<i64>>,
    /// The owner; `None` once an erased owner left nobody to pass the room to.
    pub owner: Option<String>,
    /// Name, description and the rest.
    pub settings: Settings,
    /// Hash of the standing join code.
    pub join_code_hash: [u8; 32],
    /// The standing join code, sealed for the room.
    pub join_code: Option<Sealed>,
    /// Extra invites not revoked, by id.
    pub invites: HashMap<String, Invite>,
    /// The newest messages: the idempotency window and where each `seq` is in the stream.
    pub window: Recent,
}

impl State {
    /// An empty room state for `room_id`.
    pub fn new(room_id: impl Into<String>) -> Self {
        Self {
            room_id: room_id.into(),
            ..Self::default()
        }
    }

    /// Folds one event of the room's stream in; `version` is its stream version and
    /// `recorded_at` its time.
    pub fn apply(&mut self, event: &Event, version: u64, recorded_at: i64) {
        self.version = version;
        match event {
            Event::RoomCreated(c) => {
                self.exists = true;
                self.owner = Some(c.owner.clone());
                self.members.insert(
                    c.owner.clone(),
                    Member {
                        role: Role::Owner,
                        since: version,
                        muted_until: None,
                    },
                );
                self.settings = Settings {
                    name: c.name.clone(),
                    description: c.description.clone(),
                    avatar_image: c.avatar_image.clone(),
                    created_at: recorded_at,
                    ..Settings::default()
                };
                self.join_code_hash = c.join_code_hash;
                self.join_code = Some(c.join_code.clone());
            }
            Event::MemberJoined(j) => {
                self.members.entry(j.user_id.clone()).or_insert(Member {
                    role: Role::Member,
                    since: version,
                    muted_until: None,
                });
                if let Some(i) = j.invite.as_ref().and_then(|i| self.invites.get_mut(i)) {
                    i.uses += 1;
                }
            }
            Event::MemberLeft(events::event::MemberLeft { user_id, .. })
            | Event::MemberKicked(events::event::MemberKicked { user_id, .. }) => {
                self.remove(user_id);
            }
            Event::MemberBanned(b) => {
                self.remove(&b.user_id);
                self.bans.insert(b.user_id.clone(), b.until);
            }
            Event::MemberUnbanned(l) => {
                self.bans.remove(&l.user_id);
            }
            Event::MemberMuted(m) => {
                if let Some(member) = self.members.get_mut(&m.user_id) {
                    member.muted_until = Some(m.until);
                }
            }
            Event::MemberUnmuted(l) => {
                if let Some(member) = self.members.get_mut(&l.user_id) {
                    member.muted_until = None;
                }
            }
            Event::RoleChanged(c) => {
                if let Some(member) = self.members.get_mut(&c.user_id) {
                    member.role = c.role;
                }
                if c.role == Role::Owner {
                    self.owner = Some(c.user_id.clone());
                }
            }
            Event::RoomUpdated(u) => {
                let s = &mut self.settings;
                if let Some(n) = &u.name {
                    s.name.clone_from(n);
                }
                if let Some(d) = &u.description {
                    s.description.clone_from(d);
                }
                if let Some(a) = &u.avatar_image {
                    s.avatar_image.clone_from(a);
                }
                if let Some(r) = u.retention_days {
                    s.retention_days = r;
                }
            }
            Event::RoomArchived(_) => self.settings.archived = true,
            Event::RoomUnarchived(_) => self.settings.archived = false,
            Event::JoinCodeRotated(r) => {
                self.join_code_hash = r.join_code_hash;
                self.join_code = Some(r.join_code.clone());
            }
            Event::InviteCreated(i) => {
                self.invites.insert(
                    i.invite_id.clone(),
                    Invite {
                        code_hash: i.code_hash,
                        max_uses: i.max_uses,
                        uses: 0,
                        expires_at: i.expires_at,
                    },
                );
            }
            Event::InviteRevoked(i) => {
                self.invites.remove(&i.invite_id);
            }
            Event::MessagePosted(m) => {
                self.last_seq = m.seq;
                self.window
                    .remember(m.seq, &m.message_id, version, recorded_at);
            }
            // Events of other streams.
            _ => {}
        }
        self.settings.updated_at = recorded_at;
    }

    fn remove(&mut self, user_id: &str) {
        self.members.remove(user_id);
        if self.owner.as_deref() == Some(user_id) {
            self.owner = None;
        }
    }

    /// Whether `user_id` is a member.
    pub fn is_member(&self, user_id: &str) -> bool {
        self.members.contains_key(user_id)
    }

    /// The role of `user_id`, if a member.
    pub fn role_of(&self, user_id: &str) -> Option<Role> {
        self.members.get(user_id).map(|m| m.role)
    }

    /// The seq and time of the message with this client id, if it is in the idempotency
    /// window ([`crate::recent`]).
    pub fn recent(&self, message_id: &str) -> Option<(u64, i64)> {
        self.window.find(message_id)
    }

    /// The state in [`SNAPSHOT_FORMAT`].
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("a room state always encodes")
    }

    /// A state encoded by [`State::encode`], or `None` when `bytes` are not one (or are one
    /// of another room).
    pub fn decode(room_id: &str, bytes: &[u8]) -> Option<Self> {
        let (state, read): (Self, usize) = bincode::serde::decode_from_slice(
            bytes,
            bincode::config::standard().with_limit::<{ 256 << 20 }>(),
        )
        .ok()?;
        (read == bytes.len() && state.room_id == room_id).then_some(state)
    }

    /// The stream version of the message with `seq`, if it is in the window.
    pub fn version_of(&self, seq: u64) -> Option<u64> {
        self.window.version_of(seq)
    }
}

#[cfg(test)]
mod tests;
