//! The posts a room actor has validated and parked for its next append, and how the append's
//! outcome answers them. Plain data over [`room::State`](crate::room::State): the actor adds
//! the store and the mailbox around it. Every other command is written alone (see
//! [`crate::actor`]), so the posts of a batch are decided against the state they land on.

use crate::command::{Error, Posted};
use crate::delivery::{Delivery, Message};
use crate::room::{self, Command, Decision, State};
use events::keys::Keys;
use events::seal::{Sealed, Subject, period_of};
use events::{Event, NewEvent, Recorded};
use ractor::RpcReplyPort;
use std::sync::Arc;
use uuid::Uuid;

/// A validated post waiting for the next append; posts that repeat one already parked (the
/// same client id) wait with it for its one event.
pub struct Parked {
    /// Author.
    pub user_id: String,
    /// Client id.
    pub message_id: String,
    /// Text.
    pub text: String,
    /// Everyone waiting for it, the first sender first.
    pub replies: Vec<RpcReplyPort<Result<Posted, Error>>>,
}

/// The texts of `parked`, in order, sealed for their authors in `room_id` in the period of
/// `now`. A post whose text cannot be sealed (the key store failed, or its author was just
/// erased and their keys destroyed) is answered with the error and taken out, so it does not
/// fail the others.
pub async fn seal_texts(
    parked: &mut Vec<Parked>,
    room_id: &str,
    now: i64,
    keys: &Keys,
) -> Vec<Sealed> {
    let mut sealed = Vec::with_capacity(parked.len());
    let mut kept = Vec::with_capacity(parked.len());
    for p in std::mem::take(parked) {
        let subject = Subject::Text {
            user: p.user_id.clone(),
            room: room_id.to_owned(),
            period: period_of(now),
        };
        match keys.seal(&subject, &p.text).await {
            Ok(s) => sealed.push(s),
            Err(e) => {
                tracing::warn!(room = room_id, error = %e, "a message could not be sealed");
                fail(p, &e.to_string());
                continue;
            }
        }
        kept.push(p);
    }
    *parked = kept;
    sealed
}

/// The events of `parked`, in order, with the seqs that follow `room`'s last one and the
/// texts [`seal_texts`] sealed at `now`. Every event gets a new id: ids name events, and the
/// room, not the log, keeps client ids unique within its window.
pub fn events_of(parked: &[Parked], room: &State, now: i64, sealed: Vec<Sealed>) -> Vec<NewEvent> {
    parked
        .iter()
        .zip(sealed)
        .zip(room.last_seq + 1..)
        .map(|((p, text), seq)| {
            let event = Event::MessagePosted(events::event::MessagePosted {
                room_id: room.room_id.clone(),
                seq,
                message_id: p.message_id.clone(),
                user_id: p.user_id.clone(),
                text,
                kind: "input".into(),
                period: period_of(now),
            });
            NewEvent::with_id(Uuid::new_v4(), &event, now)
        })
        .collect()
}

/// Folds the events written for `parked` into `room` and answers each post; returns the
/// messages to deliver, in seq order, and the last record (for its position and hash).
pub fn answer_written(
    parked: Vec<Parked>,
    recorded: Vec<Recorded>,
    room: &mut State,
    room_id: &Arc<str>,
) -> (Vec<Delivery>, Option<Recorded>) {
    let mut deliveries = Vec::with_capacity(recorded.len());
    let mut last = None;
    for (p, rec) in parked.into_iter().zip(recorded) {
        let m = match rec.decode() {
            Ok(Event::MessagePosted(m)) => m,
            Ok(_) => {
                fail(p, "unexpected event");
                continue;
            }
            Err(e) => {
                tracing::error!(stream = %rec.stream_id, version = rec.version, error = %e, "an event just written does not decode");
                fail(p, "an event just written does not decode");
                continue;
            }
        };
        room.apply(
            &Event::MessagePosted(m.clone()),
            rec.version,
            rec.recorded_at,
        );
        let posted = Posted {
            seq: m.seq,
            time_ms: rec.recorded_at,
            duplicate: false,
            position: rec.position,
        };
        for (i, r) in p.replies.into_iter().enumerate() {
            let _ = r.send(Ok(Posted {
                duplicate: i > 0,
                ..posted
            }));
        }
        deliveries.push(Delivery::Message(Arc::new(Message::new(
            room_id.clone(),
            m.seq,
            rec.version,
            m.message_id,
            m.user_id,
            Some(p.text),
            rec.recorded_at,
        ))));
        last = Some(rec);
    }
    (deliveries, last)
}

/// After the room caught up with another writer, decides the parked posts again: a post
/// whose client id the other writer stored is answered with its seq, one the room now
/// refuses (its author removed or muted, the room archived) with the refusal; the rest are
/// returned, still to write. `position` is the room's newest event's.
pub fn recheck(parked: Vec<Parked>, room: &State, now: i64, position: u64) -> Vec<Parked> {
    let mut rest = Vec::with_capacity(parked.len());
    for p in parked {
        let command = Command::Post {
            user_id: p.user_id.clone(),
            message_id: p.message_id.clone(),
            text: p.text.clone(),
        };
        match room::decide(room, 0, now, &command) {
            Ok(Decision::AlreadyDone(Some(seq))) => {
                let time_ms = room.recent(&p.message_id).map_or(0, |(_, t)| t);
                for r in p.replies {
                    let _ = r.send(Ok(Posted {
                        seq,
                        time_ms,
                        duplicate: true,
                        position,
                    }));
                }
            }
            Err(rejection) => {
                for r in p.replies {
                    let _ = r.send(Err(rejection.clone().into()));
                }
            }
            Ok(_) => rest.push(p),
        }
    }
    rest
}

/// Answers a parked post with `Unavailable(why)`: nothing of it was stored.
pub fn fail(parked: Parked, why: &str) {
    for r in parked.replies {
        let _ = r.send(Err(Error::Unavailable(why.to_owned())));
    }
}
