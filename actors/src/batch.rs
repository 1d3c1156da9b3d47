//! The posts and message changes (edits, deletions, reactions) a room actor has decided and
//! parked for its next append, and how the append's outcome answers them. Plain data over
//! [`room::State`](crate::room::State): the actor adds the store and the mailbox around it.
//! Every other command is written alone (see [`crate::actor`]), so what a batch holds is
//! decided against the state it lands on plus the batch before it ([`room::Pending`]).

use crate::command::{Changed, Error, Posted};
use crate::room::{self, Command, Decision, Pending, State};
use events::event::{MessageEdited, MessagePosted};
use events::keys::Keys;
use events::seal::{Sealed, Subject, period_of};
use events::{Event, NewEvent, Recorded};
use ractor::RpcReplyPort;
use uuid::Uuid;

/// A decided command waiting for the next append.
pub enum Parked {
    /// A message to post; posts that repeat one already parked (the same client id) wait with
    /// it for its one event.
    Post {
        /// Author.
        user_id: String,
        /// Client id.
        message_id: String,
        /// Text.
        text: String,
        /// The message it answers.
        reply_to: Option<u64>,
        /// Everyone waiting for it, the first sender first.
        replies: Vec<RpcReplyPort<Result<Posted, Error>>>,
    },
    /// A new text for a message.
    Edit {
        /// Its author.
        user_id: String,
        /// The message.
        seq: u64,
        /// The new text.
        text: String,
        /// The period of the message's posting, which names its key.
        period: i64,
        /// The answer.
        reply: RpcReplyPort<Result<Changed, Error>>,
    },
    /// A deletion or a reaction, decided as this event.
    Change {
        /// The event.
        event: Event,
        /// The answer.
        reply: RpcReplyPort<Result<Changed, Error>>,
    },
}

impl Parked {
    /// The command it came from, to decide it again after another writer's events.
    fn command(&self) -> Command {
        match self {
            Parked::Post {
                user_id,
                message_id,
                text,
                reply_to,
                ..
            } => Command::Post {
                user_id: user_id.clone(),
                message_id: message_id.clone(),
                text: text.clone(),
                reply_to: *reply_to,
            },
            Parked::Edit {
                user_id, seq, text, ..
            } => Command::Edit {
                user_id: user_id.clone(),
                seq: *seq,
                text: text.clone(),
            },
            Parked::Change { event, .. } => match event {
                Event::MessageDeleted(d) => Command::Delete {
                    by: d.by.clone(),
                    seq: d.seq,
                },
                Event::ReactionAdded(r) | Event::ReactionRemoved(r) => Command::React {
                    user_id: r.user_id.clone(),
                    seq: r.seq,
                    emoji: r.emoji.clone(),
                    on: matches!(event, Event::ReactionAdded(_)),
                },
                other => {
                    unreachable!("only deletions and reactions are parked as changes: {other:?}")
                }
            },
        }
    }

    /// Whether it is a post (which takes the next `seq`).
    pub fn is_post(&self) -> bool {
        matches!(self, Parked::Post { .. })
    }
}

/// The texts of the posts and edits in `parked`, in order, sealed: a post's for its author in
/// `room_id` in the period of `now`, an edit's under the key of the message it edits. One
/// whose text cannot be sealed (the key store failed, or its author was just erased and their
/// keys destroyed) is answered with the error and taken out, so it does not fail the others.
pub async fn seal_texts(
    parked: &mut Vec<Parked>,
    room_id: &str,
    now: i64,
    keys: &Keys,
) -> Vec<Sealed> {
    let mut sealed = Vec::with_capacity(parked.len());
    let mut kept = Vec::with_capacity(parked.len());
    for p in std::mem::take(parked) {
        let (user, text, period) = match &p {
            Parked::Post { user_id, text, .. } => (user_id, text, period_of(now)),
            Parked::Edit {
                user_id,
                text,
                period,
                ..
            } => (user_id, text, *period),
            Parked::Change { .. } => {
                kept.push(p);
                continue;
            }
        };
        let subject = Subject::Text {
            user: user.clone(),
            room: room_id.to_owned(),
            period,
        };
        match keys.seal(&subject, text).await {
            Ok(s) => sealed.push(s),
            Err(e) => {
                tracing::warn!(room = room_id, error = %e, "a text could not be sealed");
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
pub fn events_of(parked: &[Parked], room: &State, now: i64, sealed: Vec<Sealed>) -> Vec<Event> {
    let mut seq = room.last_seq;
    let mut sealed = sealed.into_iter();
    parked
        .iter()
        .map(|p| match p {
            Parked::Post {
                user_id,
                message_id,
                reply_to,
                ..
            } => {
                seq += 1;
                Event::MessagePosted(MessagePosted {
                    room_id: room.room_id.clone(),
                    seq,
                    message_id: message_id.clone(),
                    user_id: user_id.clone(),
                    text: sealed.next().expect("one sealed text per post"),
                    kind: "input".into(),
                    period: period_of(now),
                    reply_to: *reply_to,
                })
            }
            Parked::Edit {
                user_id,
                seq,
                period,
                ..
            } => Event::MessageEdited(MessageEdited {
                room_id: room.room_id.clone(),
                seq: *seq,
                user_id: user_id.clone(),
                text: sealed.next().expect("one sealed text per edit"),
                period: *period,
            }),
            Parked::Change { event, .. } => event.clone(),
        })
        .collect()
}

/// [`events_of`] ready to append.
pub fn new_events(events: &[Event], now: i64) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| NewEvent::with_id(Uuid::new_v4(), e, now))
        .collect()
}

/// Answers one parked command with what was written for it: `event`, recorded as `rec`.
pub fn answer(parked: Parked, event: &Event, rec: &Recorded) {
    match parked {
        Parked::Post { replies, .. } => {
            let seq = match event {
                Event::MessagePosted(m) => m.seq,
                _ => 0,
            };
            for (i, r) in replies.into_iter().enumerate() {
                let _ = r.send(Ok(Posted {
                    seq,
                    time_ms: rec.recorded_at,
                    duplicate: i > 0,
                    position: rec.position,
                }));
            }
        }
        Parked::Edit { reply, .. } | Parked::Change { reply, .. } => {
            let edited_at = matches!(event, Event::MessageEdited(_)).then_some(rec.recorded_at);
            let _ = reply.send(Ok(Changed {
                version: rec.version,
                edited_at,
                position: rec.position,
            }));
        }
    }
}

/// After the room caught up with another writer, decides the parked commands again, in
/// order: a post whose client id the other writer stored is answered with its seq, one the
/// room now refuses (its author removed or muted, the room archived, the message deleted)
/// with the refusal, a change that now changes nothing with the message's version; the rest
/// are returned, still to write, and `pending` holds their changes. `position` is the room's
/// newest event's.
pub fn recheck(
    parked: Vec<Parked>,
    room: &State,
    pending: &mut Pending,
    now: i64,
    position: u64,
) -> Vec<Parked> {
    pending.clear();
    let mut rest = Vec::with_capacity(parked.len());
    let mut next = room.last_seq + 1;
    for p in parked {
        let decided = room::decide_with(room, pending, next, now, &p.command());
        match (p, decided) {
            (p @ Parked::Post { .. }, Ok(Decision::Post(_))) => {
                next += 1;
                rest.push(p);
            }
            (
                Parked::Post {
                    replies,
                    message_id,
                    ..
                },
                Ok(Decision::AlreadyDone(Some(seq))),
            ) => {
                let time_ms = room.recent(&message_id).map_or(0, |(_, t)| t);
                for r in replies {
                    let _ = r.send(Ok(Posted {
                        seq,
                        time_ms,
                        duplicate: true,
                        position,
                    }));
                }
            }
            (p @ Parked::Edit { .. }, Ok(Decision::Edit { .. })) => rest.push(p),
            (Parked::Change { reply, .. }, Ok(Decision::Append(mut events)))
                if events.len() == 1 =>
            {
                let event = events.pop().expect("one event");
                pending.note(&event);
                rest.push(Parked::Change { event, reply });
            }
            (p, Ok(_)) => {
                let seq = match &p {
                    Parked::Edit { seq, .. } => *seq,
                    Parked::Change { event, .. } => seq_of(event),
                    Parked::Post { .. } => 0,
                };
                let version = room.fact(seq).map_or(room.version, |f| f.version);
                unchanged(p, version, position);
            }
            (p, Err(rejection)) => refuse(p, &rejection),
        }
    }
    rest
}

fn seq_of(event: &Event) -> u64 {
    match event {
        Event::MessageDeleted(d) => d.seq,
        Event::ReactionAdded(r) | Event::ReactionRemoved(r) => r.seq,
        _ => 0,
    }
}

/// Answers a change that turned out to change nothing.
fn unchanged(p: Parked, version: u64, position: u64) {
    let reply = match p {
        Parked::Edit { reply, .. } | Parked::Change { reply, .. } => reply,
        Parked::Post { replies, .. } => {
            for r in replies {
                let _ = r.send(Err(Error::Unavailable("the post was decided twice".into())));
            }
            return;
        }
    };
    let _ = reply.send(Ok(Changed {
        version,
        edited_at: None,
        position,
    }));
}

fn refuse(p: Parked, rejection: &room::Rejection) {
    match p {
        Parked::Post { replies, .. } => {
            for r in replies {
                let _ = r.send(Err(rejection.clone().into()));
            }
        }
        Parked::Edit { reply, .. } | Parked::Change { reply, .. } => {
            let _ = reply.send(Err(rejection.clone().into()));
        }
    }
}

/// Answers a parked command with `Unavailable(why)`: nothing of it was stored.
pub fn fail(parked: Parked, why: &str) {
    match parked {
        Parked::Post { replies, .. } => {
            for r in replies {
                let _ = r.send(Err(Error::Unavailable(why.to_owned())));
            }
        }
        Parked::Edit { reply, .. } | Parked::Change { reply, .. } => {
            let _ = reply.send(Err(Error::Unavailable(why.to_owned())));
        }
    }
}
