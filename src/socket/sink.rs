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
}

/// The event every delivery is emitted as.
const EVENT: &str = "received";

fn render_message(m: &actors::Message, profiles: &Profiles) -> Box<RawValue> {
    let author = profiles.get(&m.user_id);
    let msg = wire::Message {
        id: &m.message_id,
        seq: m.seq,
        room_id: &m.room_id,
        user: &author,
        message: &m.text,
        deleted: m.deleted,
        kind: "input",
        time: wire::time(m.time_ms),
    };
    serde_json::value::to_raw_value(&msg).expect("a message always serialises")
}

fn render_join(j: &actors::JoinNotice, profiles: &Profiles) -> Box<RawValue> {
    let author = profiles.get(&j.user_id);
    serde_json::value::to_raw_value(
        &serde_json::json!({"type": "join", "roomId": &*j.room_id, "user": &*author}),
    )
    .expect("a join notice always serialises")
}

impl SocketSink {
    /// Emits the encoding kept in `slot`, made by the first sink to need it: every subscriber
    /// of a room gets the same bytes, so a room renders and encodes each delivery once, not
    /// once per socket, and each socket's packet shares them. (A slot some other kind of sink
    /// filled, or one encoded for another namespace, is rendered afresh.)
    fn emit_rendered(
        &self,
        slot: &RenderSlot,
        render: impl Fn() -> Box<RawValue>,
    ) -> Result<(), SendError> {
        let encoded = slot.get_or_init(|| match self.socket.encode_event(EVENT, &render()) {
            Ok(encoded) => Box::new(encoded),
            // Encoding rendered JSON does not fail; if it did, each socket's own `emit`
            // below would report it.
            Err(e) => Box::new(e.to_string()),
        });
        match encoded.downcast_ref::<EncodedEvent>() {
            Some(encoded) => match self.socket.emit_encoded(encoded) {
                Err(SendError::Serialize(_)) => self.socket.emit(EVENT, &render()),
                sent => sent,
            },
            None => self.socket.emit(EVENT, &render()),
        }
    }
}

impl Sink for SocketSink {
    fn deliver(&self, delivery: &Delivery) -> bool {
        let sent = match delivery {
            Delivery::Message(m) => {
                self.emit_rendered(&m.rendered, || render_message(m, &self.profiles))
            }
            Delivery::Joined(j) => {
                self.emit_rendered(&j.rendered, || render_join(j, &self.profiles))
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
