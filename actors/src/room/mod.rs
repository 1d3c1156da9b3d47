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

mod command;
mod decide;
mod direct;
pub use command::{Act, Change, Command, Decision, MAX_EMOJI, MAX_EMOJI_CHARS, Pending, Rejection};
pub use decide::{check_text, decide, decide_with};

/// Longest message text, in Unicode code points, after trimming.
pub const MAX_TEXT_CHARS: usize = 4000;

/// The encoding of a [`State`] in a snapshot (bincode of its fields); change it whenever the
/// fields change, so that snapshots in the old encoding are ignored rather than misread.
pub const SNAPSHOT_FORMAT: u32 = 5;

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

/// What a room keeps of each of its messages, to decide edits, deletions and reactions and
/// to find the message as it is now in the log. 48 bytes a message, where keeping the client
/// id and text too would be hundreds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fact {
    /// Index of its author in [`State::authors`].
    pub author: u32,
    /// Whether it was deleted.
    pub deleted: bool,
    /// Stream version of its `MessagePosted`.
    pub posted: u64,
    /// Stream version of the event holding its current text (its post or latest edit).
    pub text: u64,
    /// When it was last edited (ms), 0 if never.
    pub edited_at: i64,
    /// The period of its posting, which names the key of all its texts.
    pub period: i64,
    /// The room's version at its latest change.
    pub version: u64,
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
    /// The owner; `None` once an erased owner left nobody to pass the room to, and always
    /// in a direct room.
    pub owner: Option<String>,
    /// The two users of a direct room (in the order of their ids); `None` for a group room.
    pub direct: Option<[String; 2]>,
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
    /// Every message, by `seq - 1`.
    pub messages: Vec<Fact>,
    /// The authors [`Fact::author`] points into.
    pub authors: Vec<String>,
    /// Where each author is in `authors` (not in snapshots: rebuilt from `authors`).
    #[serde(skip)]
    author_ids: HashMap<String, u32>,
    /// The reactions of each message that has any: symbol, then who, in the order they came.
    pub reactions: HashMap<u64, Vec<(String, Vec<String>)>>,
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
            Event::DirectRoomOpened(d) => {
                self.exists = true;
                self.direct = Some(d.users.clone());
                self.settings.created_at = recorded_at;
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
                let author = self.author_index(&m.user_id);
                self.messages.push(Fact {
                    author,
                    deleted: false,
                    posted: version,
                    text: version,
                    edited_at: 0,
                    period: m.period,
                    version,
                });
            }
            Event::MessageEdited(e) => {
                if let Some(f) = self.fact_mut(e.seq) {
                    f.text = version;
                    f.edited_at = recorded_at;
                    f.version = version;
                }
            }
            Event::MessageDeleted(d) => {
                if let Some(f) = self.fact_mut(d.seq) {
                    f.deleted = true;
                    f.version = version;
                }
                self.reactions.remove(&d.seq);
            }
            Event::ReactionAdded(r) => {
                if let Some(f) = self.fact_mut(r.seq) {
                    f.version = version;
                }
                let all = self.reactions.entry(r.seq).or_default();
                match all.iter_mut().find(|(e, _)| *e == r.emoji) {
                    Some((_, users)) if !users.contains(&r.user_id) => {
                        users.push(r.user_id.clone())
                    }
                    Some(_) => {}
                    None => all.push((r.emoji.clone(), vec![r.user_id.clone()])),
                }
            }
            Event::ReactionRemoved(r) => {
                if let Some(f) = self.fact_mut(r.seq) {
                    f.version = version;
                }
                if let Some(all) = self.reactions.get_mut(&r.seq) {
                    if let Some((_, users)) = all.iter_mut().find(|(e, _)| *e == r.emoji) {
                        users.retain(|u| *u != r.user_id);
                    }
                    all.retain(|(_, users)| !users.is_empty());
                    if all.is_empty() {
                        self.reactions.remove(&r.seq);
                    }
                }
            }
            // Events of other streams.
            _ => {}
        }
        self.settings.updated_at = recorded_at;
    }

    fn author_index(&mut self, user_id: &str) -> u32 {
        if let Some(&i) = self.author_ids.get(user_id) {
            return i;
        }
        let i = self.authors.len() as u32;
        self.authors.push(user_id.to_owned());
        self.author_ids.insert(user_id.to_owned(), i);
        i
    }

    fn fact_mut(&mut self, seq: u64) -> Option<&mut Fact> {
        let i = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.messages.get_mut(i)
    }

    /// What the room keeps of message `seq`.
    pub fn fact(&self, seq: u64) -> Option<&Fact> {
        let i = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.messages.get(i)
    }

    /// The author of a message the room keeps.
    pub fn author_of(&self, fact: &Fact) -> &str {
        &self.authors[fact.author as usize]
    }

    /// The reactions of message `seq`: symbol, then who.
    pub fn reactions_of(&self, seq: u64) -> &[(String, Vec<String>)] {
        self.reactions.get(&seq).map_or(&[], Vec::as_slice)
    }

    fn remove(&mut self, user_id: &str) {
        self.members.remove(user_id);
        if self.owner.as_deref() == Some(user_id) {
            self.owner = None;
        }
    }

    /// Whether this is a direct room.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// In a direct room, the one of the pair who is not `user_id`.
    pub fn other_of(&self, user_id: &str) -> Option<&str> {
        events::event::other_of(self.direct.as_ref()?, user_id)
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
        let mut state: Self = state;
        state.author_ids = (state.authors.iter().enumerate())
            .map(|(i, a)| (a.clone(), i as u32))
            .collect();
        (read == bytes.len() && state.room_id == room_id).then_some(state)
    }

    /// The stream version of the message with `seq`, if it is in the window.
    pub fn version_of(&self, seq: u64) -> Option<u64> {
        self.window.version_of(seq)
    }
}

#[cfg(test)]
mod tests;
