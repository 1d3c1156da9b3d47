//! A socket as a room subscriber: deliveries rendered once per message and emitted without
//! blocking; a socket whose buffer is full is dropped and disconnected, to resume later.

use crate::profiles::Profiles;
use crate::wire;
use actors::{Delivery, RenderSlot, Sink};
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::socket::EncodedEvent;
use socketioxide::{SendError, SocketError};
use std::sync::Arc;

/// A socket subscribed to rooms.
pub struct SocketSink {
    pub(crate) socket: SocketRef,
    pub(crate) profiles: Arc<Profiles>,
    /// The socket's number and user, and the registry that lists it under its rooms: a
    /// removal of its user from a room takes it off that room's list too.
    pub(crate) id: u64,
    pub(crate) user_id: Arc<str>,
    pub(crate) registry: Arc<super::Registry>,
}

/// The event messages and join notices are emitted as.
const RECEIVED: &str = "received";
/// The event membership and settings changes are emitted as.
const ROOM_EVENT: &str = "room_event";
/// The event a message is emitted as after an edit, deletion or reaction change.
const MESSAGE_UPDATED: &str = "message_updated";

fn render_message(m: &actors::Message, profiles: &Profiles) -> Box<RawValue> {
    let author = profiles.get(&m.user_id);
    let msg = wire::Message {
        id: &m.message_id,
        seq: m.seq,
        version: Some(m.version),
        room_id: &m.room_id,
        user: &author,
        message: &m.text,
        deleted: m.deleted,
        reply_to: m.reply_to,
        edited_at: m.edited_at.map(wire::time),
        reactions: wire::Reactions(&m.reactions),
        kind: "input",
        time: wire::time(m.time_ms),
    };
    serde_json::value::to_raw_value(&msg).expect("a message always serialises")
}

fn render_join(j: &actors::JoinNotice, profiles: &Profiles) -> Box<RawValue> {
    let author = profiles.get(&j.user_id);
    serde_json::value::to_raw_value(&serde_json::json!({
        "type": "join",
        "roomId": &*j.room_id,
        "user": &*author,
        "version": j.version,
    }))
    .expect("a join notice always serialises")
}

/// The `room` of an `updated` change: part 1's `room` plus the fields every member shares.
fn room_view(r: &actors::RoomView) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "owner": r.owner,
        "avatar_image": r.avatar_image,
        "room_hash_id": r.join_code,
        "create_time": wire::time(r.created_at),
        "update_time": wire::time(r.updated_at),
        "member_count": r.member_count,
        "kind": "group",
        "archived": r.archived,
        "last_seq": r.last_seq,
        "retention_days": r.retention_days,
    })
}

fn render_event(e: &actors::RoomEvent, profiles: &Profiles) -> Box<RawValue> {
    use actors::delivery::Change;
    let mut out = serde_json::json!({
        "roomId": &*e.room_id,
        "version": e.version,
        "type": e.change.as_str(),
    });
    let fields = out.as_object_mut().expect("an object");
    if let Some(user) = &e.user {
        fields.insert("user".into(), serde_json::json!(&*profiles.get(user)));
    }
    let with_by = !matches!(e.change, Change::Joined | Change::Left);
    if with_by {
        let by = e.by.as_ref().map(|b| profiles.get(b));
        fields.insert("by".into(), serde_json::json!(by.as_deref()));
    }
    if matches!(e.change, Change::Banned | Change::Muted) {
        fields.insert("until".into(), serde_json::json!(e.until.map(wire::time)));
    }
    if let Some(role) = e.role {
        fields.insert("role".into(), serde_json::json!(role.as_str()));
    }
    if let Some(room) = &e.room {
        fields.insert("room".into(), room_view(room));
    }
    serde_json::value::to_raw_value(&out).expect("a room event always serialises")
}

impl SocketSink {
    /// Emits the encoding kept in `slot`, made by the first sink to need it: every subscriber
    /// of a room gets the same bytes, so a room renders and encodes each delivery once, not
    /// once per socket, and each socket's packet shares them. (A slot some other kind of sink
    /// filled, or one encoded for another namespace, is rendered afresh.)
    fn emit_rendered(
        &self,
        event: &'static str,
        slot: &RenderSlot,
        render: impl Fn() -> Box<RawValue>,
    ) -> Result<(), SendError> {
        let encoded = slot.get_or_init(|| match self.socket.encode_event(event, &render()) {
            Ok(encoded) => Box::new(encoded),
            // Encoding rendered JSON does not fail; if it did, each socket's own `emit`
            // below would report it.
            Err(e) => Box::new(e.to_string()),
        });
        match encoded.downcast_ref::<EncodedEvent>() {
            Some(encoded) => match self.socket.emit_encoded(encoded) {
                Err(SendError::Serialize(_)) => self.socket.emit(event, &render()),
                sent => sent,
            },
            None => self.socket.emit(event, &render()),
        }
    }
}

impl Sink for SocketSink {
    fn deliver(&self, delivery: &Delivery) -> bool {
        let sent = match delivery {
            Delivery::Message(m) => {
                self.emit_rendered(RECEIVED, &m.rendered, || render_message(m, &self.profiles))
            }
            Delivery::Joined(j) => {
                self.emit_rendered(RECEIVED, &j.rendered, || render_join(j, &self.profiles))
            }
            Delivery::Updated(m) => self.emit_rendered(MESSAGE_UPDATED, &m.rendered, || {
                render_message(m, &self.profiles)
            }),
            Delivery::Event(e) => {
                if e.change.removes() && e.user.as_deref() == Some(&*self.user_id) {
                    self.registry.unsubscribed(&e.room_id, self.id);
                }
                self.emit_rendered(ROOM_EVENT, &e.rendered, || render_event(e, &self.profiles))
            }
        };
        match sent {
            Ok(()) => {
                crate::metrics::METRICS.deliveries.inc();
                true
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => false,
            Err(SendError::Socket(SocketError::Closed)) => false,
            Err(e) => {
                tracing::warn!(error = %e, "delivery failed");
                true
            }
        }
    }

    fn closed(&self) {
        // The room dropped this socket: it must not stay connected believing it gets the
        // room's messages. A full buffer also refuses the disconnect packet, so keep trying
        // while it drains; a client that never reads again is closed by the ping timeout.
        let socket = self.socket.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                match socket.clone().disconnect() {
                    Err(SocketError::InternalChannelFull)
                        if tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    _ => break,
                }
            }
        });
    }
}
