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
    /// The client's id for it.
    pub message_id: String,
    /// The author.
    pub user_id: String,
    /// The text as sent; empty when `deleted`.
    pub text: String,
    /// Whether the text is gone (its author erased, or past retention): a placeholder.
    pub deleted: bool,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// Its rendering, made by the first sink that needs it.
    pub rendered: RenderSlot,
}

impl Message {
    /// A message with an empty render slot; `text` is `None` for a placeholder whose text is
    /// gone.
    pub fn new(
        room_id: Arc<str>,
        seq: u64,
        message_id: String,
        user_id: String,
        text: Option<String>,
        time_ms: i64,
    ) -> Self {
        Self {
            room_id,
            seq,
            message_id,
            user_id,
            deleted: text.is_none(),
            text: text.unwrap_or_default(),
            time_ms,
            rendered: OnceLock::new(),
        }
    }
}

/// A user opened the room on a socket: a join notice, which has no seq.
#[derive(Debug)]
pub struct JoinNotice {
    /// The room.
    pub room_id: Arc<str>,
    /// Who joined.
    pub user_id: String,
    /// Its rendering, made by the first sink that needs it: a room of thousands of
    /// subscribers that thousands of sockets join renders each notice once.
    pub rendered: RenderSlot,
}

impl JoinNotice {
    /// A notice with an empty render slot.
    pub fn new(room_id: Arc<str>, user_id: String) -> Self {
        Self {
            room_id,
            user_id,
            rendered: OnceLock::new(),
        }
    }
}

/// Something a room sends to its subscribers.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A message, live or replayed.
    Message(Arc<Message>),
    /// A user opened the room on a socket.
    Joined(Arc<JoinNotice>),
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
