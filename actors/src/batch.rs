//! The commands a room actor has validated and parked for its next append, and how the
//! append's outcome answers them. Plain data over [`room::State`](crate::room::State): the
//! actor adds the store and the mailbox around it.

use crate::command::{Error, Joined, Posted};
use crate::delivery::{Delivery, Message};
use crate::room::State;
use events::keys::Keys;
use events::seal::{Sealed, Subject, period_of};
use events::{Event, NewEvent, Recorded};
use ractor::RpcReplyPort;
use std::sync::Arc;
use uuid::Uuid;

/// A validated command waiting for the next append; commands that repeat one already parked
/// (the same client id, the same joining user) wait with it for its one event.
pub enum Parked {
    /// A message to post.
    Post {
        /// Author.
        user_id: String,
        /// Client id.
        message_id: String,
        /// Text.
        text: String,
        /// Everyone waiting for it, the first sender first.
        replies: Vec<RpcReplyPort<Result<Posted, Error>>>,
    },
    /// A member to add.
    Join {
        /// Who.
        user_id: String,
        /// Everyone waiting for it.
        replies: Vec<RpcReplyPort<Result<Joined, Error>>>,
    },
}

/// The texts of the posts in `parked`, in order, sealed for their authors in `room_id` in the
/// period of `now`. A post whose text cannot be sealed (the key store failed, or its author
/// was just erased and their keys destroyed) is answered with the error and taken out, so it
/// does not fail the others.
pub async fn seal_texts(
    parked: &mut Vec<Parked>,
    room_id: &str,
    now: i64,
    keys: &Keys,
) -> Vec<Sealed> {
    let mut sealed = Vec::with_capacity(parked.len());
    let mut kept = Vec::with_capacity(parked.len());
    for p in std::mem::take(parked) {
        if let Parked::Post { user_id, text, .. } = &p {
            let subject = Subject::Text {
                user: user_id.clone(),
                room: room_id.to_owned(),
                period: period_of(now),
            };
            match keys.seal(&subject, text).await {
                Ok(s) => sealed.push(s),
                Err(e) => {
                    tracing::warn!(room = room_id, error = %e, "a message could not be sealed");
                    fail(p, &e.to_string());
                    continue;
                }
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
    let mut seq = room.last_seq;
    let mut sealed = sealed.into_iter();
    parked
        .iter()
        .map(|p| {
            let event = match p {
                Parked::Post {
                    user_id,
                    message_id,
                    ..
                } => {
                    seq += 1;
                    Event::MessagePosted(events::event::MessagePosted {
                        room_id: room.room_id.clone(),
                        seq,
                        message_id: message_id.clone(),
                        user_id: user_id.clone(),
                        text: sealed.next().expect("one sealed text per post"),
                        kind: "input".into(),
                        period: period_of(now),
                    })
                }
                Parked::Join { user_id, .. } => Event::MemberJoined(events::event::MemberJoined {
                    room_id: room.room_id.clone(),
                    user_id: user_id.clone(),
                    invite: None,
                }),
            };
            NewEvent::with_id(Uuid::new_v4(), &event, now)
        })
        .collect()
}

/// Folds the events written for `parked` into `room` and answers each command; returns the
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
        let event = match rec.decode() {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(stream = %rec.stream_id, version = rec.version, error = %e, "an event just written does not decode");
                fail(p, "an event just written does not decode");
                continue;
            }
        };
        room.apply(&event, rec.version, rec.recorded_at);
        match (p, event) {
            (Parked::Post { replies, text, .. }, Event::MessagePosted(m)) => {
                let posted = Posted {
                    seq: m.seq,
                    time_ms: rec.recorded_at,
                    duplicate: false,
                    position: rec.position,
                };
                for (i, r) in replies.into_iter().enumerate() {
                    let _ = r.send(Ok(Posted {
                        duplicate: i > 0,
                        ..posted
                    }));
                }
                deliveries.push(Delivery::Message(Arc::new(Message::new(
                    room_id.clone(),
                    m.seq,
                    m.message_id,
                    m.user_id,
                    Some(text),
                    rec.recorded_at,
                ))));
            }
            (Parked::Join { replies, .. }, _) => {
                for reply in replies {
                    let _ = reply.send(Ok(Joined {
                        position: rec.position,
                    }));
                }
            }
            (p @ Parked::Post { .. }, _) => fail(p, "unexpected event"),
        }
        last = Some(rec);
    }
    (deliveries, last)
}

/// After the room caught up with another writer, answers the parked commands that became
/// redundant (a join already made, a message with the same client id already in the window)
/// and returns the rest, still to write. `position` is the room's newest event's.
pub fn recheck(parked: Vec<Parked>, room: &State, position: u64) -> Vec<Parked> {
    let mut rest = Vec::with_capacity(parked.len());
    for p in parked {
        // One look-up in the window per parked post: its answer, if the other writer stored it.
        let stored = match &p {
            Parked::Post { message_id, .. } => room.recent(message_id),
            Parked::Join { .. } => None,
        };
        match (p, stored) {
            (Parked::Join { user_id, replies }, _) if room.members.contains(&user_id) => {
                for reply in replies {
                    let _ = reply.send(Ok(Joined { position }));
                }
            }
            (Parked::Post { replies, .. }, Some((seq, time_ms))) => {
                for r in replies {
                    let _ = r.send(Ok(Posted {
                        seq,
                        time_ms,
                        duplicate: true,
                        position,
                    }));
                }
            }
            (p, _) => rest.push(p),
        }
    }
    rest
}

/// Answers a parked command with `Unavailable(why)`: nothing of it was stored.
pub fn fail(parked: Parked, why: &str) {
    match parked {
        Parked::Post { replies, .. } => {
            for r in replies {
                let _ = r.send(Err(Error::Unavailable(why.to_owned())));
            }
        }
        Parked::Join { replies, .. } => {
            for reply in replies {
                let _ = reply.send(Err(Error::Unavailable(why.to_owned())));
            }
        }
    }
}
