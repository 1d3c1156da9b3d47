//! Writing a room: parking posts and message changes for the next batch, writing the batch
//! (catching up with another writer on a conflict), answering and delivering what was
//! written, and writing any other command alone after the batch.

use super::{RoomActor, RoomState, catch_up, fan_out};
use crate::batch::{self, Parked};
use crate::changes;
use crate::command::{Applied, Error, Msg};
use crate::delivery::Delivery;
use crate::room::{self, Command, Decision};
use events::{Event, Expected, NewEvent};
use ractor::ActorRef;
use std::sync::Arc;

/// Attempts before an append that keeps conflicting is given up as unavailable.
const MAX_ATTEMPTS: usize = 16;

/// Asks for a `Flush` behind what is already in the mailbox. `false` when the mailbox no
/// longer takes messages (the actor is draining): the caller must flush at once.
fn schedule_flush(myself: &ActorRef<Msg>, state: &mut RoomState) -> bool {
    if !state.flush_sent {
        state.flush_sent = myself.send_message(Msg::Flush).is_ok();
        return state.flush_sent;
    }
    true
}

impl RoomActor {
    /// Parks a command for the next batch, asking for a `Flush` behind what is already in the
    /// mailbox; a draining actor cannot ask, and writes at once.
    pub(super) async fn park(
        &self,
        myself: &ActorRef<Msg>,
        state: &mut RoomState,
        command: Parked,
    ) {
        state.parked_posts += u64::from(command.is_post());
        state.parked.push(command);
        if !schedule_flush(myself, state) {
            self.flush(state).await;
        }
    }

    /// Writes everything parked (retrying conflicts with another writer a bounded number of
    /// times); afterwards nothing is parked.
    pub(super) async fn flush(&self, state: &mut RoomState) {
        self.write_parked(state).await;
        state.parked_posts = 0;
    }

    async fn write_parked(&self, state: &mut RoomState) {
        // Conflicts (another writer) are retried a bounded number of times.
        let mut conflicts = 0;
        while !state.parked.is_empty() {
            let now = events::now_ms();
            let sealed =
                batch::seal_texts(&mut state.parked, &state.room_id, now, &self.settings.keys)
                    .await;
            if state.parked.is_empty() {
                state.pending.clear();
                return;
            }
            let events = batch::events_of(&state.parked, &state.room, now, sealed);
            let expected = Expected::Exact(state.room.version);
            let written = self
                .store
                .append(&state.stream, expected, batch::new_events(&events, now))
                .await;
            match written {
                Ok(recorded) => {
                    state.pending.clear();
                    let parked = std::mem::take(&mut state.parked);
                    self.answer_written(state, parked, events, recorded).await;
                    return;
                }
                Err(events::Error::Conflict { .. }) if conflicts < MAX_ATTEMPTS => {
                    conflicts += 1;
                    // Another writer (another process) got there first: fold its events in,
                    // deliver them, and decide the parked commands again (a retry it stored
                    // is now in the window, a member it removed can no longer post) before
                    // writing the rest.
                    let before = state.room.version;
                    if let Err(e) = catch_up(&*self.store, &self.settings.keys, state, true).await {
                        self.fail_all(state, &e.to_string());
                        return;
                    }
                    if state.room.version == before {
                        // The log is behind what this room read: settled before the next
                        // command.
                        state.unsettled = true;
                        self.fail_all(state, "the log is behind this room; retry");
                        return;
                    }
                    let parked = std::mem::take(&mut state.parked);
                    state.parked = batch::recheck(
                        parked,
                        &state.room,
                        &mut state.pending,
                        events::now_ms(),
                        state.last_position,
                    );
                }
                Err(e) => {
                    tracing::warn!(room = %state.room_id, error = %e, "append failed");
                    state.unsettled = true;
                    self.fail_all(state, &e.to_string());
                    return;
                }
            }
        }
    }

    /// Folds a written batch into the room, answers each command, and delivers what it shows:
    /// a new message from its parked text, a change as the message now is.
    async fn answer_written(
        &self,
        state: &mut RoomState,
        parked: Vec<Parked>,
        events: Vec<Event>,
        recorded: Vec<events::Recorded>,
    ) {
        let mut shown = changes::Shown::default();
        for ((p, event), rec) in parked.into_iter().zip(events).zip(recorded) {
            state.room.apply(&event, rec.version, rec.recorded_at);
            state.last_position = rec.position;
            state.last_hash = rec.hash;
            let delivery = match (&p, &event) {
                (Parked::Post { text, .. }, Event::MessagePosted(m)) => {
                    Some(Delivery::Message(Arc::new(
                        crate::delivery::Message::new(
                            state.room_id.clone(),
                            m.seq,
                            rec.version,
                            m.message_id.clone(),
                            m.user_id.clone(),
                            Some(text.clone()),
                            rec.recorded_at,
                        )
                        .replying_to(m.reply_to),
                    )))
                }
                _ => changes::delivery_of(
                    &*self.store,
                    &self.settings.keys,
                    &state.room,
                    &state.room_id,
                    &rec,
                    event.clone(),
                    &mut shown,
                )
                .await
                .unwrap_or_else(|e| {
                    // Written and answered all the same: subscribers that miss it get it
                    // when they resume.
                    tracing::warn!(room = %state.room_id, error = %e, "a change could not be shown");
                    None
                }),
            };
            batch::answer(p, &event, &rec);
            if let Some(d) = delivery {
                fan_out(state, &d);
            }
        }
    }

    fn fail_all(&self, state: &mut RoomState, why: &str) {
        state.pending.clear();
        for p in std::mem::take(&mut state.parked) {
            batch::fail(p, why);
        }
    }

    /// Writes the parked posts, then decides `command` against the state they leave and
    /// writes its events alone; on a conflict with another writer it reads that writer's
    /// events (delivering them) and decides again.
    pub(super) async fn command(
        &self,
        state: &mut RoomState,
        command: Command,
    ) -> Result<Applied, Error> {
        self.flush(state).await;
        let keys = &self.settings.keys;
        for _ in 0..MAX_ATTEMPTS {
            let now = events::now_ms();
            let decided = room::decide(&state.room, state.room.last_seq + 1, now, &command)?;
            let Decision::Append(events) = decided else {
                return Ok(Applied {
                    position: state.last_position,
                    version: state.room.version,
                    changed: false,
                });
            };
            let batch = events
                .iter()
                .map(|e| NewEvent::with_id(uuid::Uuid::new_v4(), e, now))
                .collect();
            let expected = Expected::Exact(state.room.version);
            match self.store.append(&state.stream, expected, batch).await {
                Ok(recorded) => {
                    let mut shown = changes::Shown::default();
                    for (event, rec) in events.into_iter().zip(recorded) {
                        state.room.apply(&event, rec.version, rec.recorded_at);
                        state.last_position = rec.position;
                        state.last_hash = rec.hash;
                        let delivery = changes::delivery_of(
                            &*self.store,
                            keys,
                            &state.room,
                            &state.room_id,
                            &rec,
                            event,
                            &mut shown,
                        )
                        .await
                        .map_err(|e| Error::Unavailable(e.to_string()))?;
                        if let Some(d) = delivery {
                            fan_out(state, &d);
                        }
                    }
                    return Ok(Applied {
                        position: state.last_position,
                        version: state.room.version,
                        changed: true,
                    });
                }
                Err(events::Error::Conflict { .. }) => {
                    let before = state.room.version;
                    catch_up(&*self.store, keys, state, true)
                        .await
                        .map_err(|e| Error::Unavailable(e.to_string()))?;
                    if state.room.version == before {
                        state.unsettled = true;
                        return Err(Error::Unavailable(
                            "the log is behind this room; retry".into(),
                        ));
                    }
                }
                Err(e) => {
                    state.unsettled = true;
                    return Err(Error::Unavailable(e.to_string()));
                }
            }
        }
        Err(Error::Unavailable(
            "the room kept changing under this command; try again".into(),
        ))
    }
}

/// Why a room could not be settled.
pub(super) enum Unsettled {
    /// The log cannot be read now; the room stays unsettled.
    Unavailable(events::Error),
    /// The log no longer holds the event the room last read.
    Lost,
}

impl RoomActor {
    /// Reads the stream's tail after an append whose outcome is unknown: what it stored is
    /// folded in (and delivered), so a retry of it is answered from the window.
    pub(super) async fn settle(&self, state: &mut RoomState) -> Result<(), Unsettled> {
        if state.room.version > 0 {
            let page = self
                .store
                .read_stream(&state.stream, state.room.version, 1)
                .await
                .map_err(Unsettled::Unavailable)?;
            if !page
                .first()
                .is_some_and(|r| r.version == state.room.version && r.hash == state.last_hash)
            {
                return Err(Unsettled::Lost);
            }
        }
        catch_up(&*self.store, &self.settings.keys, state, true)
            .await
            .map_err(Unsettled::Unavailable)?;
        state.unsettled = false;
        Ok(())
    }
}
