//! The registry of room actors and their supervisor.
//!
//! [`Rooms`] starts a room's actor on first use (after checking the room's stream exists, so
//! guessed ids cost nothing), hands out its address, and creates rooms. The supervisor is the
//! parent of every room actor: when one fails it tells the room's subscribers to resume and
//! starts a fresh actor from the log; when one stops (idle) it forgets it.

use crate::actor::{Args, RoomActor, Subscribers};
use crate::command::{self, Applied, Changed, Msg, Posted, Resume, Subscribed};
use crate::delivery::Subscriber;
use crate::room::{Command, Rejection};
use crate::settings::{Settings, Starts};
use dashmap::DashMap;
use events::event::{MemberJoined, RoomCreated, join_code_hash, room_stream};
use events::seal::Subject;
use events::{Event, Expected, NewEvent, Store};
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, SupervisionEvent,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

mod direct;
pub use direct::Opened;

/// A room actor's address and its subscribers.
#[derive(Clone)]
pub struct Room {
    actor: ActorRef<Msg>,
    subscribers: Subscribers,
    depth: Arc<AtomicUsize>,
}

/// Commands one room may have waiting in its mailbox; past that it sheds load with
/// [`command::Error::Busy`] instead of queueing without bound.
pub const MAILBOX_LIMIT: usize = 4096;

struct Inner {
    store: Arc<dyn Store>,
    settings: Settings,
    starts: Arc<Starts>,
    rooms: DashMap<String, Room>,
    by_actor: DashMap<ActorId, String>,
    spawning: tokio::sync::Mutex<()>,
}

/// The room actors of this process.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
    supervisor: ActorRef<()>,
}

/// What a new room looks like.
#[derive(Debug, Clone)]
pub struct NewRoom {
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Creator.
    pub owner: String,
    /// Avatar path or empty.
    pub avatar_image: String,
    /// Join code.
    pub join_code: String,
}

/// A room that was created.
#[derive(Debug, Clone)]
pub struct Created {
    /// Its id.
    pub room_id: String,
    /// Its creation time.
    pub time_ms: i64,
    /// Position of its last event.
    pub position: u64,
}

struct Supervisor {
    inner: Arc<Inner>,
}

impl Actor for Supervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some((_, Some(old))) = self.forget(&cell) {
                    // Stopped (idle or shutdown) with subscribers left: let them resume.
                    close_all(&old.subscribers);
                }
                tracing::debug!(actor = %cell.get_id(), ?reason, "room actor stopped");
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some((room_id, old)) = self.forget(&cell) else {
                    return Ok(());
                };
                tracing::error!(room = %room_id, %error, "room actor failed; restarting from the log");
                // The new actor cannot know what the failed one had delivered: its
                // subscribers resume from their last seq on a fresh subscription.
                if let Some(old) = old {
                    close_all(&old.subscribers);
                }
                if let Err(e) = spawn(&self.inner, myself.get_cell(), &room_id).await {
                    tracing::error!(room = %room_id, error = %e, "room actor restart failed; it starts on next use");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Supervisor {
    /// Forgets a stopped actor; returns its room and, if it was still registered, its entry.
    fn forget(&self, cell: &ActorCell) -> Option<(String, Option<Room>)> {
        let (_, room_id) = self.inner.by_actor.remove(&cell.get_id())?;
        let old = self
            .inner
            .rooms
            .remove_if(&room_id, |_, r| r.actor.get_id() == cell.get_id())
            .map(|(_, r)| r);
        Some((room_id, old))
    }
}

fn close_all(subscribers: &Subscribers) {
    let subs: Vec<_> = subscribers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drain()
        .map(|(_, s)| s)
        .collect();
    for s in subs {
        s.sink.closed();
    }
}

async fn spawn(
    inner: &Arc<Inner>,
    supervisor: ActorCell,
    room_id: &str,
) -> Result<Room, command::Error> {
    let subscribers: Subscribers = Arc::new(Mutex::new(HashMap::new()));
    let depth = Arc::new(AtomicUsize::new(0));
    let (actor, _) = Actor::spawn_linked(
        None,
        RoomActor {
            store: inner.store.clone(),
            settings: inner.settings.clone(),
            starts: inner.starts.clone(),
        },
        Args {
            room_id: room_id.to_owned(),
            subscribers: subscribers.clone(),
            depth: depth.clone(),
        },
        supervisor,
    )
    .await
    .map_err(|e| command::Error::Unavailable(e.to_string()))?;
    let room = Room {
        actor,
        subscribers,
        depth,
    };
    inner
        .by_actor
        .insert(room.actor.get_id(), room_id.to_owned());
    inner.rooms.insert(room_id.to_owned(), room.clone());
    Ok(room)
}

fn unavailable(e: impl std::fmt::Display) -> command::Error {
    command::Error::Unavailable(e.to_string())
}

impl Rooms {
    /// Starts the supervisor.
    ///
    /// # Errors
    /// When the supervisor cannot be spawned.
    pub async fn start(store: Arc<dyn Store>, settings: Settings) -> Result<Self, command::Error> {
        let inner = Arc::new(Inner {
            store,
            settings,
            starts: Arc::default(),
            rooms: DashMap::new(),
            by_actor: DashMap::new(),
            spawning: tokio::sync::Mutex::new(()),
        });
        let (supervisor, _) = Actor::spawn(
            None,
            Supervisor {
                inner: inner.clone(),
            },
            (),
        )
        .await
        .map_err(unavailable)?;
        Ok(Self { inner, supervisor })
    }

    /// Number of room actors running.
    pub fn active(&self) -> usize {
        self.inner.rooms.len()
    }

    /// How this process's rooms started.
    pub fn starts(&self) -> &Starts {
        &self.inner.starts
    }

    /// Commands waiting in all room mailboxes.
    pub fn mailbox_depth(&self) -> usize {
        self.inner
            .rooms
            .iter()
            .map(|r| r.depth.load(Ordering::Relaxed))
            .sum()
    }

    /// The running actor of `room_id`, started from the log if needed.
    ///
    /// # Errors
    /// `NotFound` when the room's stream does not exist; `Unavailable` when the log cannot be
    /// read.
    pub async fn room(&self, room_id: &str) -> Result<Room, command::Error> {
        if let Some(r) = self.live(room_id) {
            return Ok(r);
        }
        let _guard = self.inner.spawning.lock().await;
        if let Some(r) = self.live(room_id) {
            return Ok(r);
        }
        let exists = self
            .inner
            .store
            .stream_version(&room_stream(room_id))
            .await
            .map_err(unavailable)?
            .is_some();
        if !exists {
            return Err(Rejection::NotFound.into());
        }
        spawn(&self.inner, self.supervisor.get_cell(), room_id).await
    }

    /// The registered actor of a room if it is still running; a stopping one is dropped from
    /// the registry so that a fresh one is started.
    fn live(&self, room_id: &str) -> Option<Room> {
        let r = self.inner.rooms.get(room_id)?.clone();
        if matches!(
            r.actor.get_status(),
            ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
        ) {
            return Some(r);
        }
        self.inner
            .rooms
            .remove_if(room_id, |_, x| x.actor.get_id() == r.actor.get_id());
        None
    }

    /// Creates a room with its owner as first member.
    ///
    /// # Errors
    /// `Unavailable` when the log cannot take it.
    pub async fn create(&self, room: NewRoom) -> Result<Created, command::Error> {
        let room_id = uuid::Uuid::now_v7().to_string();
        let now = events::now_ms();
        let join_code = self
            .inner
            .settings
            .keys
            .seal(&Subject::Room(room_id.clone()), &room.join_code)
            .await
            .map_err(unavailable)?;
        let created = Event::RoomCreated(RoomCreated {
            room_id: room_id.clone(),
            name: room.name,
            description: room.description,
            owner: room.owner.clone(),
            avatar_image: room.avatar_image,
            join_code_hash: join_code_hash(&room.join_code),
            join_code,
        });
        let joined = Event::MemberJoined(MemberJoined {
            room_id: room_id.clone(),
            user_id: room.owner,
            invite: None,
        });
        let recorded = self
            .inner
            .store
            .append(
                &room_stream(&room_id),
                Expected::NoStream,
                vec![
                    NewEvent::with_id(uuid::Uuid::new_v4(), &created, now),
                    NewEvent::with_id(uuid::Uuid::new_v4(), &joined, now),
                ],
            )
            .await
            .map_err(unavailable)?;
        Ok(Created {
            room_id,
            time_ms: now,
            position: recorded.last().map_or(0, |r| r.position),
        })
    }

    /// Has the room decide and write `command` (anything but a post) and waits until it is
    /// durable.
    ///
    /// # Errors
    /// The room's rejection, or `Unavailable`.
    pub async fn command(
        &self,
        room_id: &str,
        command: Command,
    ) -> Result<Applied, command::Error> {
        self.call(room_id, |reply| Msg::Command { command, reply })
            .await
    }

    /// Makes `user_id` a member of `room_id` with the code whose hash is `code_hash`.
    ///
    /// # Errors
    /// The room's rejection (banned, gone, archived), or `Unavailable`.
    pub async fn join(
        &self,
        room_id: &str,
        user_id: &str,
        code_hash: [u8; 32],
    ) -> Result<Applied, command::Error> {
        let command = Command::Join {
            user_id: user_id.to_owned(),
            code_hash,
        };
        self.command(room_id, command).await
    }

    /// Posts a message and waits until it is durable.
    ///
    /// # Errors
    /// The room's rejection, or `Unavailable`.
    pub async fn post(
        &self,
        room_id: &str,
        user_id: &str,
        message_id: &str,
        text: &str,
    ) -> Result<Posted, command::Error> {
        self.reply(room_id, user_id, message_id, text, None).await
    }

    /// Posts a message answering message `reply_to` and waits until it is durable.
    ///
    /// # Errors
    /// The room's rejection, or `Unavailable`.
    pub async fn reply(
        &self,
        room_id: &str,
        user_id: &str,
        message_id: &str,
        text: &str,
        reply_to: Option<u64>,
    ) -> Result<Posted, command::Error> {
        let rx = self
            .room(room_id)
            .await?
            .post(user_id, message_id, text, reply_to)?;
        rx.await.map_err(|_| unavailable("the room stopped"))?
    }

    /// Has the room decide an edit, deletion or reaction (batched with its posts) and waits
    /// until it is durable.
    ///
    /// # Errors
    /// The room's rejection, or `Unavailable`.
    pub async fn change(&self, room_id: &str, command: Command) -> Result<Changed, command::Error> {
        self.call(room_id, |reply| Msg::Change { command, reply })
            .await
    }

    /// Subscribes a sink to a room, replaying what it missed.
    ///
    /// # Errors
    /// `NotFound`, `NotMember`, or `Unavailable`.
    pub async fn subscribe(
        &self,
        room_id: &str,
        subscriber: Subscriber,
        resume: Resume,
    ) -> Result<Subscribed, command::Error> {
        self.call(room_id, |reply| Msg::Subscribe {
            subscriber,
            resume,
            reply,
        })
        .await
    }

    /// Tells a running room that its stream reached `version` in the log (written by another
    /// process); a room that is not running ignores it, since it reads the log when it starts.
    pub fn observe(&self, room_id: &str, version: u64) {
        if let Some(r) = self.inner.rooms.get(room_id) {
            let _ = r.send(Msg::Observe { version });
        }
    }

    /// Removes a sink from a room, if the room is running.
    pub fn unsubscribe(&self, room_id: &str, id: u64) {
        if let Some(r) = self.inner.rooms.get(room_id) {
            let _ = r.send(Msg::Unsubscribe { id });
        }
    }

    async fn call<T, F>(&self, room_id: &str, make: F) -> Result<T, command::Error>
    where
        T: Send + 'static,
        F: FnOnce(ractor::RpcReplyPort<Result<T, command::Error>>) -> Msg,
    {
        let room = self.room(room_id).await?;
        let (tx, rx) = oneshot::channel();
        room.send(make(tx.into()))?;
        rx.await
            .map_err(|_| unavailable("the room stopped; try again"))?
    }

    /// Stops every room actor after it has written what it holds, then the supervisor.
    pub async fn shutdown(&self) {
        let rooms: Vec<Room> = self.inner.rooms.iter().map(|r| r.clone()).collect();
        for r in rooms {
            // drain: the actor handles what is already in its mailbox (and so flushes its
            // batch), then stops.
            let _ = r
                .actor
                .drain_and_wait(Some(std::time::Duration::from_secs(10)))
                .await;
        }
        self.supervisor.stop(None);
    }
}

impl Room {
    /// Sends a post to the actor without waiting: messages sent one after another from one
    /// task reach the room in that order. The receiver answers once the message is durable.
    ///
    /// # Errors
    /// `Unavailable` when the actor has stopped.
    pub fn post(
        &self,
        user_id: &str,
        message_id: &str,
        text: &str,
        reply_to: Option<u64>,
    ) -> Result<oneshot::Receiver<Result<Posted, command::Error>>, command::Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Post {
            user_id: user_id.to_owned(),
            message_id: message_id.to_owned(),
            text: text.to_owned(),
            reply_to,
            reply: tx.into(),
        })?;
        Ok(rx)
    }

    /// Sends an edit, deletion or reaction to the actor without waiting, like
    /// [`Room::post`]: changes sent one after another from one task reach the room in that
    /// order, among the posts sent the same way.
    ///
    /// # Errors
    /// `Unavailable` when the actor has stopped, `Busy` when its mailbox is full.
    pub fn change(
        &self,
        command: Command,
    ) -> Result<oneshot::Receiver<Result<Changed, command::Error>>, command::Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Change {
            command,
            reply: tx.into(),
        })?;
        Ok(rx)
    }

    /// Puts a command in the mailbox, unless it is full (the actor counts it out when it
    /// takes it).
    fn send(&self, msg: Msg) -> Result<(), command::Error> {
        if self.depth.fetch_add(1, Ordering::AcqRel) >= MAILBOX_LIMIT {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(command::Error::Busy);
        }
        self.actor.send_message(msg).map_err(|_| {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            unavailable("the room stopped; try again")
        })
    }
}
