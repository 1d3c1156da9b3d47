//! What a room hands to its subscribers, and the [`Sink`] a subscriber receives it through.

use std::any::Any;
use std::sync::{Arc, OnceLock};

/// Where the first sink of a delivery may keep its rendering of it (for example the wire
/// JSON), so a room of many subscribers renders each delivery once.
pub type RenderSlot = OnceLock<Box<dyn Any + Send + Sync>>;

/// A stored message, as delivered.
#[derive(Debug)]
pub struct Message {
    /// The room.
    pub room_id: Arc<str>,
    /// Position in the room.
    pub seq: u64,
    /// The room's version at this change (its post, or, in a replay by version, the change
    /// replayed).
    pub version: u64,
    /// The client's id for it.
    pub message_id: String,
    /// The author.
    pub user_id: String,
    /// The text as sent; empty when `deleted`.
    pub text: String,
    /// Whether it is a placeholder: deleted, or its text gone (its author erased, or past
    /// retention).
    pub deleted: bool,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// The message it answers.
    pub reply_to: Option<u64>,
    /// When it was last edited (ms).
    pub edited_at: Option<i64>,
    /// Its reactions: symbol, then who, in the order they came.
    pub reactions: Vec<(String, Vec<String>)>,
    /// Its rendering, made by the first sink that needs it.
    pub rendered: RenderSlot,
}

impl Message {
    /// A message with an empty render slot; `text` is `None` for a placeholder whose text is
    /// gone.
    pub fn new(
        room_id: Arc<str>,
        seq: u64,
        version: u64,
        message_id: String,
        user_id: String,
        text: Option<String>,
        time_ms: i64,
    ) -> Self {
        Self {
            room_id,
            seq,
            version,
            message_id,
            user_id,
            deleted: text.is_none(),
            text: text.unwrap_or_default(),
            time_ms,
            reply_to: None,
            edited_at: None,
            reactions: Vec::new(),
            rendered: OnceLock::new(),
        }
    }

    /// The same message, answering `reply_to` (a placeholder answers nothing).
    #[must_use]
    pub fn replying_to(mut self, reply_to: Option<u64>) -> Self {
        self.reply_to = reply_to.filter(|_| !self.deleted);
        self
    }

    /// The same message, edited at `edited_at`, with `reactions` (a placeholder has none).
    #[must_use]
    pub fn changed(
        mut self,
        edited_at: Option<i64>,
        reactions: Vec<(String, Vec<String>)>,
    ) -> Self {
        self.edited_at = edited_at;
        if !self.deleted {
            self.reactions = reactions;
        }
        self
    }
}

/// A user opened the room on a socket: a join notice, which has no seq.
#[derive(Debug)]
pub struct JoinNotice {
    /// The room.
    pub room_id: Arc<str>,
    /// Who joined.
    pub user_id: String,
    /// The room's version when they opened it.
    pub version: u64,
    /// Its rendering, made by the first sink that needs it: a room of thousands of
    /// subscribers that thousands of sockets join renders each notice once.
    pub rendered: RenderSlot,
}

impl JoinNotice {
    /// A notice with an empty render slot.
    pub fn new(room_id: Arc<str>, user_id: String, version: u64) -> Self {
        Self {
            room_id,
            user_id,
            version,
            rendered: OnceLock::new(),
        }
    }
}

/// What kind of change a [`RoomEvent`] is (its wire name by [`Change::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A member joined.
    Joined,
    /// A member left (or was erased).
    Left,
    /// A member was kicked.
    Kicked,
    /// A user was banned.
    Banned,
    /// A ban was lifted.
    Unbanned,
    /// A member was muted.
    Muted,
    /// A mute was lifted.
    Unmuted,
    /// A role changed.
    RoleChanged,
    /// Settings changed (or the join code was rotated).
    Updated,
    /// The room became read-only.
    Archived,
    /// The room became writable.
    Unarchived,
}

impl Change {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Joined => "joined",
            Change::Left => "left",
            Change::Kicked => "kicked",
            Change::Banned => "banned",
            Change::Unbanned => "unbanned",
            Change::Muted => "muted",
            Change::Unmuted => "unmuted",
            Change::RoleChanged => "role_changed",
            Change::Updated => "updated",
            Change::Archived => "archived",
            Change::Unarchived => "unarchived",
        }
    }

    /// Whether it ends the membership of its `user`.
    pub fn removes(self) -> bool {
        matches!(self, Change::Left | Change::Kicked | Change::Banned)
    }
}

/// A room as its members see it, carried by an `updated` change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Owner, if it has one.
    pub owner: Option<String>,
    /// Avatar path or empty.
    pub avatar_image: String,
    /// The standing join code ("" if it cannot be opened).
    pub join_code: String,
    /// Created (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
    /// Members.
    pub member_count: u64,
    /// Read-only.
    pub archived: bool,
    /// Newest seq.
    pub last_seq: u64,
    /// The room's own retention.
    pub retention_days: Option<u32>,
}

/// A change of a room's membership or settings, as delivered (`room_event`).
#[derive(Debug)]
pub struct RoomEvent {
    /// The room.
    pub room_id: Arc<str>,
    /// The room's version at this change.
    pub version: u64,
    /// What changed.
    pub change: Change,
    /// The member it is about.
    pub user: Option<String>,
    /// Who did it (`None`: the user themselves, or the server).
    pub by: Option<String>,
    /// A new role.
    pub role: Option<events::event::Role>,
    /// End of a ban or mute (ms); `None` on a ban: until lifted.
    pub until: Option<i64>,
    /// The room after an `updated`.
    pub room: Option<RoomView>,
    /// Its rendering, made by the first sink that needs it.
    pub rendered: RenderSlot,
}

/// Something a room sends to its subscribers.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A message, live or replayed.
    Message(Arc<Message>),
    /// A message after an edit, deletion or reaction change, as it is now.
    Updated(Arc<Message>),
    /// A user opened the room on a socket.
    Joined(Arc<JoinNotice>),
    /// Membership or settings changed.
    Event(Arc<RoomEvent>),
}

/// A subscriber's end of a room: usually one socket.
///
/// `deliver` is called from the room actor, in `seq` order, and must not block: it queues the
/// delivery and returns `false` when it cannot (its buffer is full), after which the room drops
/// the subscriber and calls `closed`.
pub trait Sink: Send + Sync + 'static {
    /// Queues a delivery; `false` means the subscriber cannot keep up.
    fn deliver(&self, delivery: &Delivery) -> bool;
    /// The room dropped this subscriber (it fell behind, or the room failed); it should
    /// reconnect and resume.
    fn closed(&self);
}

/// A subscription of one sink to one room.
#[derive(Clone)]
pub struct Subscriber {
    /// Unique per sink (for example the socket's number); a second subscribe with the same id
    /// replaces the first.
    pub id: u64,
    /// The user behind the sink: only members may subscribe.
    pub user_id: String,
    /// Where deliveries go.
    pub sink: Arc<dyn Sink>,
}
