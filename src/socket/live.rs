//! What sockets are told that is not stored: `mark_read` and `typing` from a client, and
//! `read_updated`, `typing` and `presence` to clients, from the signal bus and the presence
//! view, through the registry's own lists of each room's and each user's sockets (never
//! through a room actor's mailbox).

use super::reply::{Failure, Reply};
use super::services::Shared;
use super::worker::Ctx;
use crate::presence::Transition;
use crate::presence::markers::MarkError;
use crate::signals::{Envelope, Signal};
use serde_json::json;
use socketioxide::extract::SocketRef;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::UnboundedReceiver;

/// `mark_read`: answered once the marker is stored, with the marker now.
pub(crate) fn mark_read(svc: &Shared, ctx: &Ctx, room_id: String, seq: u64, reply: Reply) {
    let (svc, user, id) = (svc.clone(), ctx.session.user_id.clone(), ctx.id);
    tokio::spawn(async move {
        match svc.live.markers.mark(&room_id, &user, seq, Some(id)).await {
            Ok(now) => reply.ok(&json!({"ok": true, "lastReadSeq": now})),
            Err(e) => reply.fail(failure(&e), None),
        }
    });
}

fn failure(e: &MarkError) -> Failure {
    match e {
        MarkError::NotFound => Failure::new("not_found", "no such room"),
        MarkError::NotMember => Failure::new("not_member", e.to_string()),
        MarkError::Unavailable(cause) => {
            tracing::warn!(%cause, "mark_read failed");
            Failure::new(
                "unavailable",
                "the server cannot store this right now; retry",
            )
        }
    }
}

/// `typing`: a member's is passed on (at most one a second per room; the rest are dropped
/// and still acknowledged); a socket subscribed to the room is known to be a member, any
/// other is looked up in the read tables.
pub(crate) fn typing(svc: &Shared, ctx: &Ctx, room_id: String, reply: Reply) {
    let user = ctx.session.user_id.clone();
    if svc.sockets.is_subscribed(&room_id, ctx.id) {
        pass_typing(svc, &user, room_id);
        return reply.ok(&json!({"ok": true}));
    }
    let svc = svc.clone();
    tokio::spawn(async move {
        let member = match svc.read.member_role(&room_id, &user).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => match svc.read.room_by_id(&room_id).await {
                Ok(Some(_)) => Err(Failure::new(
                    "not_member",
                    "only members can type in a room",
                )),
                Ok(None) => Err(Failure::new("not_found", "no such room")),
                Err(e) => Err(unavailable(&e)),
            },
            Err(e) => Err(unavailable(&e)),
        };
        match member {
            Ok(()) => {
                pass_typing(&svc, &user, room_id);
                reply.ok(&json!({"ok": true}));
            }
            Err(f) => reply.fail(f, None),
        }
    });
}

fn unavailable(e: &impl std::fmt::Display) -> Failure {
    tracing::warn!(cause = %e, "typing failed");
    Failure::new(
        "unavailable",
        "the server cannot check this right now; retry",
    )
}

fn pass_typing(svc: &Shared, user: &str, room: String) {
    if svc.live.typing.allow(user, &room, Instant::now()) {
        svc.live.bus.publish(Signal::Typing {
            room,
            user: user.to_owned(),
        });
    }
}

/// Emits one rendered event to each of `sockets`, encoded once.
fn emit_all(sockets: &[SocketRef], event: &str, data: &serde_json::Value) {
    let Some(first) = sockets.first() else {
        return;
    };
    match first.encode_event(event, data) {
        Ok(encoded) => {
            for s in sockets {
                if s.emit_encoded(&encoded).is_ok() {
                    crate::metrics::METRICS.deliveries.inc();
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, event, "could not encode a live event"),
    }
}

/// Delivers the bus's `typing` and `read_updated` and the presence view's transitions to this
/// process's sockets, until the bus closes. Transitions have a task of their own: each reads
/// the user's rooms, and the bus must not wait for those reads (it drops what a slow
/// receiver has not taken).
pub async fn run(svc: Shared) {
    if let Some(transitions) = svc.live.presence.transitions() {
        tokio::spawn(tell_presence(svc.clone(), transitions));
    }
    let mut signals = svc.live.bus.subscribe();
    let me = svc.live.bus.node().clone();
    loop {
        match signals.recv().await {
            Ok(e) => deliver(&svc, &me, &e),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "live deliveries fell behind the signal bus");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Tells the subscribers of each of a user's rooms of their transitions, in order.
async fn tell_presence(svc: Shared, mut transitions: UnboundedReceiver<Transition>) {
    while let Some(t) = transitions.recv().await {
        // The rooms the user is a member of, from the read side: one query per transition,
        // none per message.
        match svc.read.room_ids_of(&t.user).await {
            Ok(rooms) => {
                for room in rooms {
                    let sockets = svc.sockets.in_room(&room, None);
                    emit_all(
                        &sockets,
                        "presence",
                        &json!({"roomId": room, "userId": t.user, "online": t.online}),
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not tell a presence change"),
        }
    }
}

fn deliver(svc: &Shared, me: &Arc<str>, e: &Envelope) {
    match &e.signal {
        Signal::Typing { room, user } => {
            let sockets = svc.sockets.in_room(room, Some(user));
            if sockets.is_empty() {
                return;
            }
            // From the cache (a stale entry is read again in the background): a typist's
            // profile costs no query per typing.
            let author = svc.profiles.get(user);
            emit_all(
                &sockets,
                "typing",
                &json!({"roomId": room, "user": &*author}),
            );
        }
        Signal::ReadUpdated {
            user,
            room,
            seq,
            except,
        } => {
            let own = *e.node == **me;
            let sockets: Vec<SocketRef> = svc
                .sockets
                .sockets_of(user)
                .into_iter()
                .filter(|(id, _)| !(own && Some(*id) == *except))
                .map(|(_, s)| s)
                .collect();
            emit_all(
                &sockets,
                "read_updated",
                &json!({"roomId": room, "lastReadSeq": seq}),
            );
        }
        Signal::Presence { .. } | Signal::NodeGone => {}
    }
}
