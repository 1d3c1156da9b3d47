//! The open sockets of this process: so that logout and expiry can disconnect them, presence
//! hears of each user's first and last socket, and what is not stored (typing, presence,
//! `read_updated`) reaches the sockets subscribed to a room or a user's sockets without going
//! through the room actors.

use crate::auth::{Session, Sessions};
use crate::presence::Presence;
use dashmap::DashMap;
use socketioxide::extract::SocketRef;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a user whose last socket closed stays online: a reconnect within it (a page
/// reload, a phone changing networks) tells nobody anything.
const LEAVING_GRACE: Duration = Duration::from_secs(2);

/// A user's open sockets here, and since when they have had none (still online until
/// [`LEAVING_GRACE`] has passed and a sweep sees it).
#[derive(Default)]
struct Own {
    sockets: Vec<u64>,
    leaving: Option<Instant>,
}

/// Open sockets by their number, each user's, and those subscribed to each room.
pub struct Registry {
    open: DashMap<u64, (SocketRef, Session)>,
    per_user: DashMap<String, Own>,
    rooms: DashMap<String, Vec<u64>>,
    presence: Arc<Presence>,
}

impl Registry {
    /// No socket yet; each user's first and last socket are told to `presence`.
    pub fn new(presence: Arc<Presence>) -> Self {
        Self {
            open: DashMap::new(),
            per_user: DashMap::new(),
            rooms: DashMap::new(),
            presence,
        }
    }

    pub(crate) fn add(&self, id: u64, socket: SocketRef, session: Session) {
        let user = session.user_id.clone();
        self.open.insert(id, (socket, session));
        let mut own = self.per_user.entry(user.clone()).or_default();
        own.sockets.push(id);
        // Under the user's entry: presence hears a user's changes in the order they were. A
        // user back within the grace never went offline.
        if own.sockets.len() == 1 && own.leaving.take().is_none() {
            self.presence.local(&user, true);
        }
    }

    pub(crate) fn remove(&self, id: u64) {
        if let Some((_, (_, session))) = self.open.remove(&id)
            && let Some(mut own) = self.per_user.get_mut(&session.user_id)
        {
            own.sockets.retain(|s| *s != id);
            if own.sockets.is_empty() {
                own.leaving = Some(Instant::now());
            }
        }
    }

    /// Tells presence of the users whose last socket closed more than the grace ago.
    fn leave_gone(&self, now: Instant) {
        let gone = |own: &Own| {
            own.leaving
                .is_some_and(|t| now.duration_since(t) >= LEAVING_GRACE)
        };
        let users: Vec<String> = self
            .per_user
            .iter()
            .filter(|e| gone(e.value()))
            .map(|e| e.key().clone())
            .collect();
        for user in users {
            self.per_user.remove_if(&user, |user, own| {
                // Under the entry's lock, as in `add`.
                let go = own.sockets.is_empty() && gone(own);
                if go {
                    self.presence.local(user, false);
                }
                go
            });
        }
    }

    /// Sockets `user_id` has open on this process.
    pub fn of_user(&self, user_id: &str) -> usize {
        self.per_user.get(user_id).map_or(0, |s| s.sockets.len())
    }

    /// Number of open sockets.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Socket `id` now gets room `room_id`'s deliveries.
    pub(crate) fn subscribed(&self, room_id: &str, id: u64) {
        let mut ids = self.rooms.entry(room_id.to_owned()).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// Socket `id` no longer gets room `room_id`'s deliveries.
    pub(crate) fn unsubscribed(&self, room_id: &str, id: u64) {
        self.rooms.remove_if_mut(room_id, |_, ids| {
            ids.retain(|s| *s != id);
            ids.is_empty()
        });
    }

    /// Whether socket `id` is subscribed to `room_id` (so its user is a member).
    pub(crate) fn is_subscribed(&self, room_id: &str, id: u64) -> bool {
        self.rooms.get(room_id).is_some_and(|ids| ids.contains(&id))
    }

    /// The open sockets subscribed to `room_id`, but those of `except` (a user id).
    pub(crate) fn in_room(&self, room_id: &str, except: Option<&str>) -> Vec<SocketRef> {
        let Some(ids) = self.rooms.get(room_id).map(|ids| ids.clone()) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| {
                let e = self.open.get(id)?;
                let (socket, session) = e.value();
                (except != Some(session.user_id.as_str())).then(|| socket.clone())
            })
            .collect()
    }

    /// The open sockets of `user_id`, with their numbers.
    pub(crate) fn sockets_of(&self, user_id: &str) -> Vec<(u64, SocketRef)> {
        let Some(ids) = self.per_user.get(user_id).map(|own| own.sockets.clone()) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| self.open.get(id).map(|e| (*id, e.value().0.clone())))
            .collect()
    }

    /// Disconnects every socket opened with the token whose hash is `hash`.
    pub fn disconnect_token(&self, hash: &[u8; 32]) {
        let doomed: Vec<SocketRef> = self
            .open
            .iter()
            .filter(|e| &e.value().1.token_hash == hash)
            .map(|e| e.value().0.clone())
            .collect();
        for s in doomed {
            let _ = s.disconnect();
        }
    }

    /// Disconnects every socket of `user_id` on this process.
    pub fn disconnect_user(&self, user_id: &str) {
        for (_, s) in self.sockets_of(user_id) {
            let _ = s.disconnect();
        }
    }

    /// Disconnects sockets whose session expired or was revoked (possibly by another
    /// process), and takes offline the users gone for longer than the grace.
    pub async fn sweep(&self, sessions: &Sessions) {
        self.leave_gone(Instant::now());
        let (sockets, listed): (Vec<SocketRef>, Vec<Session>) = self
            .open
            .iter()
            .map(|e| (e.value().0.clone(), e.value().1.clone()))
            .unzip();
        let valid = sessions.still_valid_all(&listed).await;
        for (socket, valid) in sockets.into_iter().zip(valid) {
            if !valid {
                let _ = socket.disconnect();
            }
        }
    }
}
