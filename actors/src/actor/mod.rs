//! The room actor: one per room in use. It rebuilds its [`State`](crate::room::State) from the
//! room's stream, validates commands with [`decide`](crate::room::decide), appends in batches,
//! answers, and then fans out to its subscribers in `seq` order.
//!
//! Batching: a `Post`, an edit, a deletion or a reaction is decided when it arrives (against
//! the room and the changes already parked, [`room::Pending`]) and parked ([`crate::batch`]);
//! the first one parked also sends the actor a `Flush`, which lands behind whatever is already
//! in the mailbox. By the time `Flush` runs, every command that was waiting is parked, and they
//! go to the log in one append (one transaction, one fsync), after which each is answered.
//! While that append is on its way, new commands queue up for the next one. Every other
//! command (joins, moderation, settings, invites) is rare: it first writes the posts already
//! parked, then is decided against the state they leave and written alone, so no post is
//! ever decided against a membership or a mute that changes before it lands.
//!
//! Idempotency: a retried client id is answered from the room's window
//! ([`crate::recent`]). Two processes writing one room meet as an expected-version conflict:
//! the loser reads the stream's tail, which brings the winner's ids into its window, and
//! answers a retry among them with the first `seq` instead of writing it again. An append
//! whose answer was lost (the database failed over during its commit) may be stored all the
//! same: the room reads its stream's tail before deciding anything else, so a retry finds it.
//! If that tail no longer holds what the room read (a standby promoted without it), the actor
//! fails and is started again from the log.

use crate::batch::Parked;
use crate::changes;
use crate::command::{self, Changed, Msg, Posted};
use crate::delivery::{Delivery, Subscriber};
use crate::room::{self, Command, Decision, Pending, State};
use crate::settings::{SNAPSHOT_EVERY, Settings, Starts};
use events::event::room_stream;
use events::keys::Keys;
use events::{Snapshot, Store};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use write::Unsettled;

/// The subscribers of a room, shared with the registry so that they outlive a failed actor
/// and can be told to resume elsewhere.
pub type Subscribers = Arc<Mutex<HashMap<u64, Subscriber>>>;

/// Arguments to start a room actor.
pub struct Args {
    /// The room.
    pub room_id: String,
    /// Where its subscribers live.
    pub subscribers: Subscribers,
    /// Commands sent to it and not yet taken (the registry counts them in, the actor out).
    pub depth: Arc<std::sync::atomic::AtomicUsize>,
}

/// The room actor.
pub struct RoomActor {
    /// The log.
    pub store: Arc<dyn Store>,
    /// Its settings.
    pub settings: Settings,
    /// Where it counts how it started (shared by the registry's rooms).
    pub starts: Arc<Starts>,
}

/// What changes in a room actor.
pub struct RoomState {
    room: State,
    room_id: Arc<str>,
    stream: String,
    subscribers: Subscribers,
    depth: Arc<std::sync::atomic::AtomicUsize>,
    parked: Vec<Parked>,
    /// How many of `parked` are posts: the seq the next post takes follows them (counted, not
    /// recounted, as each post arrives).
    parked_posts: u64,
    /// The message changes in `parked`, which later commands must see.
    pending: Pending,
    flush_sent: bool,
    last_position: u64,
    /// Chain hash of the event at `room.version`.
    last_hash: [u8; 32],
    /// Version of the newest snapshot saved or started from.
    snapshot_version: u64,
    /// Whether a snapshot is being written (one at a time per room).
    snapshot_saving: Arc<std::sync::atomic::AtomicBool>,
    last_activity: Instant,
    /// An append failed without a clear answer (the database went away during its commit),
    /// so it may be stored: the stream's tail is read before the next command is decided.
    unsettled: bool,
}

mod subscribe;
mod write;

const READ_PAGE: usize = 1000;

impl Actor for RoomActor {
    type Msg = Msg;
    type State = RoomState;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<Msg>,
        args: Args,
    ) -> Result<RoomState, ActorProcessingErr> {
        let stream = room_stream(&args.room_id);
        let mut state = RoomState {
            room: State::new(args.room_id.clone()),
            room_id: Arc::from(args.room_id.as_str()),
            stream,
            subscribers: args.subscribers,
            depth: args.depth,
            parked: Vec::new(),
            parked_posts: 0,
            pending: Pending::default(),
            flush_sent: false,
            last_position: 0,
            last_hash: [0; 32],
            snapshot_version: 0,
            snapshot_saving: Arc::default(),
            last_activity: Instant::now(),
            unsettled: false,
        };
        self.restore(&mut state).await;
        let from = state.room.version;
        catch_up(&*self.store, &self.settings.keys, &mut state, false).await?;
        let read = state.room.version - from;
        let starts = &self.starts;
        let how = if from > 0 {
            &starts.from_snapshot
        } else {
            &starts.from_log
        };
        how.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        starts
            .events_read
            .fetch_add(read, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(room = %state.room_id, snapshot = from, read, "room started");
        self.maybe_snapshot(&mut state);
        let tick = (self.settings.idle_after / 2).max(Duration::from_millis(50));
        myself.send_interval(tick, || Msg::Tick);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Msg>,
        msg: Msg,
        state: &mut RoomState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, Msg::Tick | Msg::Flush) {
            state
                .depth
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
        if state.unsettled && msg.decides() {
            match self.settle(state).await {
                Ok(()) => {}
                Err(Unsettled::Unavailable(e)) => {
                    msg.refuse(&e.to_string());
                    return Ok(());
                }
                // Restarted from the log by the registry, which tells the subscribers to
                // resume: they may have been shown what the log no longer holds.
                Err(Unsettled::Lost) => {
                    return Err(format!(
                        "room {}: the log no longer holds version {} that this room read \
                         (a failover to a standby that never had it)",
                        state.room_id, state.room.version
                    )
                    .into());
                }
            }
        }
        match msg {
            Msg::Tick => {
                let idle = state.parked.is_empty()
                    && state
                        .subscribers
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .is_empty()
                    && state.last_activity.elapsed() >= self.settings.idle_after;
                if idle {
                    // Drain rather than stop: anything that reached the mailbox meanwhile is
                    // still handled (and written) before the actor goes.
                    let _ = myself.drain();
                }
                return Ok(());
            }
            Msg::Flush => {
                state.flush_sent = false;
                self.flush(state).await;
                self.maybe_snapshot(state);
            }
            Msg::Observe { version } => {
                if version > state.room.version
                    && let Err(e) = catch_up(&*self.store, &self.settings.keys, state, true).await
                {
                    tracing::warn!(room = %state.room_id, error = %e, "catching up failed");
                }
                self.maybe_snapshot(state);
                return Ok(());
            }
            Msg::Command { command, reply } => {
                let answer = self.command(state, command).await;
                let _ = reply.send(answer);
                self.maybe_snapshot(state);
            }
            Msg::Post {
                user_id,
                message_id,
                text,
                reply_to,
                reply,
            } => {
                let next = state.room.last_seq + 1 + state.parked_posts;
                let command = Command::Post {
                    user_id: user_id.clone(),
                    message_id: message_id.clone(),
                    text: text.clone(),
                    reply_to,
                };
                let now = events::now_ms();
                match room::decide_with(&state.room, &state.pending, next, now, &command) {
                    Err(r) => {
                        let _ = reply.send(Err(r.into()));
                    }
                    Ok(Decision::AlreadyDone(seq)) => {
                        let (seq, time_ms) = state
                            .room
                            .recent(&message_id)
                            .unwrap_or((seq.unwrap_or(0), 0));
                        let _ = reply.send(Ok(Posted {
                            seq,
                            time_ms,
                            duplicate: true,
                            position: state.last_position,
                        }));
                    }
                    Ok(_) => {
                        if let Err(e) = self.check_block(state, &user_id).await {
                            let _ = reply.send(Err(e));
                            state.last_activity = Instant::now();
                            return Ok(());
                        }
                        // The same id twice in one batch: both wait for the one write.
                        let twin = state.parked.iter_mut().find_map(|p| match p {
                            Parked::Post {
                                message_id: m,
                                replies,
                                ..
                            } if *m == message_id => Some(replies),
                            _ => None,
                        });
                        match twin {
                            Some(replies) => replies.push(reply),
                            None => {
                                let post = Parked::Post {
                                    user_id,
                                    message_id,
                                    text,
                                    reply_to,
                                    replies: vec![reply],
                                };
                                self.park(&myself, state, post).await;
                            }
                        }
                    }
                }
            }
            Msg::Change { command, reply } => {
                let next = state.room.last_seq + 1 + state.parked_posts;
                let now = events::now_ms();
                match room::decide_with(&state.room, &state.pending, next, now, &command) {
                    Err(r) => {
                        let _ = reply.send(Err(r.into()));
                    }
                    Ok(Decision::Edit { seq, period }) => {
                        let Command::Edit { user_id, text, .. } = command else {
                            unreachable!("only an edit is decided as one")
                        };
                        let edit = Parked::Edit {
                            user_id,
                            seq,
                            text,
                            period,
                            reply,
                        };
                        self.park(&myself, state, edit).await;
                    }
                    Ok(Decision::Append(mut events)) if events.len() == 1 => {
                        let event = events.pop().expect("one event");
                        state.pending.note(&event);
                        self.park(&myself, state, Parked::Change { event, reply })
                            .await;
                    }
                    Ok(_) => {
                        // Changes nothing: answered with the message as it stands.
                        let seq = match &command {
                            Command::Delete { seq, .. } | Command::React { seq, .. } => *seq,
                            _ => 0,
                        };
                        let version = state
                            .room
                            .fact(seq)
                            .map_or(state.room.version, |f| f.version);
                        let _ = reply.send(Ok(Changed {
                            version,
                            edited_at: None,
                            position: state.last_position,
                        }));
                    }
                }
            }
            Msg::Subscribe {
                subscriber,
                resume,
                reply,
            } => {
                let answer = self.subscribe(state, subscriber, resume).await;
                let _ = reply.send(answer);
            }
            Msg::Unsubscribe { id } => {
                state
                    .subscribers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&id);
            }
        }
        state.last_activity = Instant::now();
        Ok(())
    }
}

/// Reads the room's stream after the state's version and folds it in; with `deliver`, what
/// it finds is also sent to subscribers (it was written by another process).
async fn catch_up(
    store: &dyn Store,
    keys: &Keys,
    state: &mut RoomState,
    deliver: bool,
) -> Result<(), events::Error> {
    let mut shown = changes::Shown::default();
    loop {
        let page = store
            .read_stream(&state.stream, state.room.version + 1, READ_PAGE)
            .await?;
        let done = page.len() < READ_PAGE;
        for rec in page {
            let event = rec.decode().map_err(|e| {
                events::Error::Corrupt(format!("{} v{}: {e}", rec.stream_id, rec.version))
            })?;
            state.room.apply(&event, rec.version, rec.recorded_at);
            state.last_position = rec.position;
            state.last_hash = rec.hash;
            if deliver
                && let Some(d) = changes::delivery_of(
                    store,
                    keys,
                    &state.room,
                    &state.room_id,
                    &rec,
                    event,
                    &mut shown,
                )
                .await?
            {
                fan_out(state, &d);
            }
        }
        if done {
            return Ok(());
        }
    }
}

/// Sends a delivery to every subscriber; those that cannot keep up are dropped and told. A
/// change that ends a membership is the last thing the removed user's sinks get of the room.
fn fan_out(state: &RoomState, delivery: &Delivery) {
    let mut subs = state
        .subscribers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut dropped = Vec::new();
    for (id, s) in subs.iter() {
        if !s.sink.deliver(delivery) {
            dropped.push(*id);
        }
    }
    for id in dropped {
        if let Some(s) = subs.remove(&id) {
            s.sink.closed();
        }
    }
    if let Some(user) = changes::removed(delivery) {
        subs.retain(|_, s| s.user_id != user);
    }
}

impl RoomActor {
    /// In a direct room, refuses a post whose author the other person blocks. The room's own
    /// stream cannot say so (blocks are in users' streams): the read side is asked, here only,
    /// so a group room's posts never wait for it.
    async fn check_block(&self, state: &RoomState, author: &str) -> Result<(), command::Error> {
        let (Some(other), Some(blocks)) = (state.room.other_of(author), &self.settings.blocks)
        else {
            return Ok(());
        };
        match blocks.blocks(other, author).await {
            Ok(false) => Ok(()),
            Ok(true) => {
                Err(room::Rejection::Forbidden("this person does not accept your messages").into())
            }
            Err(e) => Err(command::Error::Unavailable(e)),
        }
    }

    /// Starts `state` from the room's newest snapshot, if there is one this log vouches for:
    /// the event at the snapshot's version must be in the stream with the snapshot's hash.
    /// Anything else (no snapshot, another format, another log, snapshots unavailable) leaves
    /// the state empty, and the whole stream is read.
    async fn restore(&self, state: &mut RoomState) {
        let Some(snapshots) = &self.settings.snapshots else {
            return;
        };
        let snapshot = match snapshots.load(&state.stream).await {
            Ok(Some(s)) if s.format == room::SNAPSHOT_FORMAT => s,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(room = %state.room_id, error = %e, "snapshot unavailable; reading the whole stream");
                return;
            }
        };
        let Some(room) = State::decode(&state.room.room_id, &snapshot.state)
            .filter(|r| r.version == snapshot.version)
        else {
            tracing::warn!(room = %state.room_id, version = snapshot.version, "snapshot unreadable; reading the whole stream");
            return;
        };
        match self
            .store
            .read_stream(&state.stream, snapshot.version, 1)
            .await
        {
            Ok(page)
                if page
                    .first()
                    .is_some_and(|r| r.version == snapshot.version && r.hash == snapshot.hash) =>
            {
                state.room = room;
                state.last_position = page[0].position;
                state.last_hash = snapshot.hash;
                state.snapshot_version = snapshot.version;
            }
            Ok(_) => {
                tracing::warn!(room = %state.room_id, version = snapshot.version, "snapshot does not match the log; reading the whole stream");
            }
            Err(e) => {
                tracing::warn!(room = %state.room_id, error = %e, "checking the snapshot failed; reading the whole stream");
            }
        }
    }

    /// Saves a snapshot when the stream has grown by [`SNAPSHOT_EVERY`] events since the last
    /// one, or by the number of messages in the window when that is more. The write runs beside the actor, one at a time; a failed one is only logged (the
    /// next start reads more of the stream).
    fn maybe_snapshot(&self, state: &mut RoomState) {
        use std::sync::atomic::Ordering;
        let Some(snapshots) = &self.settings.snapshots else {
            return;
        };
        if !state.room.exists
            || state.room.version
                < state.snapshot_version + SNAPSHOT_EVERY.max(state.room.window.len() as u64)
            || state.snapshot_saving.swap(true, Ordering::AcqRel)
        {
            return;
        }
        state.snapshot_version = state.room.version;
        let snapshot = Snapshot {
            stream: state.stream.clone(),
            version: state.room.version,
            hash: state.last_hash,
            format: room::SNAPSHOT_FORMAT,
            state: state.room.encode(),
        };
        let (snapshots, saving, room) = (
            snapshots.clone(),
            state.snapshot_saving.clone(),
            state.room_id.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = snapshots.save(snapshot).await {
                tracing::warn!(%room, error = %e, "saving a snapshot failed");
            }
            saving.store(false, Ordering::Release);
        });
    }
}
