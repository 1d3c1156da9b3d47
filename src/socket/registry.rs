//! The open sockets of this process, so that logout and expiry can disconnect them.

use crate::auth::{Session, Sessions};
use dashmap::DashMap;
use socketioxide::extract::SocketRef;

/// Open sockets by their number, and how many each user has.
#[derive(Default)]
pub struct Registry {
    open: DashMap<u64, (SocketRef, Session)>,
    per_user: DashMap<String, usize>,
}

impl Registry {
    pub(crate) fn add(&self, id: u64, socket: SocketRef, session: Session) {
        *self.per_user.entry(session.user_id.clone()).or_insert(0) += 1;
        self.open.insert(id, (socket, session));
    }

    pub(crate) fn remove(&self, id: u64) {
        if let Some((_, (_, session))) = self.open.remove(&id) {
            let mut emptied = false;
            if let Some(mut n) = self.per_user.get_mut(&session.user_id) {
                *n = n.saturating_sub(1);
                emptied = *n == 0;
            }
            if emptied {
                self.per_user.remove_if(&session.user_id, |_, n| *n == 0);
            }
        }
    }

    /// Sockets `user_id` has open on this process.
    pub fn of_user(&self, user_id: &str) -> usize {
        self.per_user.get(user_id).map_or(0, |n| *n)
    }

    /// Number of open sockets.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
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
        let doomed: Vec<SocketRef> = self
            .open
            .iter()
            .filter(|e| e.value().1.user_id == user_id)
            .map(|e| e.value().0.clone())
            .collect();
        for s in doomed {
            let _ = s.disconnect();
        }
    }

    /// Disconnects sockets whose session expired or was revoked (possibly by another
    /// process).
    pub async fn sweep(&self, sessions: &Sessions) {
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
