//! The shared state of a running server.

use crate::auth::{LoginThrottle, Sessions};
use crate::ratelimit::Buckets;
use crate::wire::Author;
use actors::Rooms;
use dashmap::DashMap;
use events::Store;
use projections::{Reads, Workers};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a read waits for the projections to catch up with the caller's own writes.
const OWN_WRITES_WAIT: Duration = Duration::from_secs(5);

/// Everything a handler needs.
pub struct App {
    /// The log.
    pub store: Arc<dyn Store>,
    /// The room actors.
    pub rooms: Rooms,
    /// The read tables.
    pub read: Reads,
    /// The projection workers.
    pub workers: Workers,
    /// Login sessions.
    pub sessions: Sessions,
    /// Failed logins by name.
    pub throttle: LoginThrottle,
    /// Message sending, per user.
    pub send_limit: Buckets,
    /// Room creations and joins, per user.
    pub write_limit: Buckets,
    /// Where avatars are stored.
    pub media_dir: PathBuf,
    /// Display names and avatars of users, for deliveries.
    pub profiles: Arc<Profiles>,
    /// Per user, the newest log position they wrote: their reads wait for it.
    pub written: DashMap<String, u64>,
    /// Open sockets, for logout and expiry.
    pub sockets: crate::socket::Registry,
    /// Sockets one user may have open on this process.
    pub max_sockets_per_user: usize,
    /// The Socket.IO handle, once it exists.
    pub io: std::sync::OnceLock<socketioxide::SocketIo>,
}

/// Shared handle to the app.
pub type Shared = Arc<App>;

impl App {
    /// Records that `user_id` wrote up to `position`.
    pub fn wrote(&self, user_id: &str, position: u64) {
        // A user who wrote before needs no new key (this runs for every message).
        match self.written.get_mut(user_id) {
            Some(mut p) => *p = (*p).max(position),
            None => {
                self.written
                    .entry(user_id.to_owned())
                    .and_modify(|p| *p = (*p).max(position))
                    .or_insert(position);
            }
        }
    }

    /// Waits until the read tables include `user_id`'s own writes (bounded).
    pub async fn own_writes(&self, user_id: &str) {
        let position = self.written.get(user_id).map(|p| *p).unwrap_or(0);
        self.wait_for(position).await;
    }

    /// Waits until the read tables include `position` (bounded).
    pub async fn wait_for(&self, position: u64) {
        if position > 0 && !self.workers.wait_for(position, OWN_WRITES_WAIT).await {
            tracing::warn!(position, "read tables are behind the caller's writes");
        }
    }
}

/// A cache of user profiles in front of the `user` table.
///
/// Deliveries are rendered inside room actors, which cannot wait: a miss is looked up on the
/// spot (a point query; with PostgreSQL the thread steps out of the async runtime while it
/// waits). Misses are rare: a profile never changes once cached.
pub struct Profiles {
    cache: DashMap<String, Arc<Author>>,
    reads: Reads,
    sqlite: Option<Mutex<rusqlite::Connection>>,
}

impl Profiles {
    /// A cache over `reads`; with SQLite, misses use a connection of their own.
    ///
    /// # Errors
    /// When that connection cannot be opened.
    pub fn new(reads: Reads) -> anyhow::Result<Self> {
        let sqlite = match &reads {
            Reads::Sqlite(db) => Some(Mutex::new(db.writer()?)),
            Reads::Postgres(_) => None,
        };
        Ok(Self {
            cache: DashMap::new(),
            reads,
            sqlite,
        })
    }

    fn found(&self, user_id: &str, row: Option<projections::UserRow>) -> Arc<Author> {
        match row {
            Some(u) => {
                let a = Arc::new(Author {
                    id: u.id,
                    name: u.name,
                    avatar_image: u.avatar_image,
                });
                self.cache.insert(user_id.to_owned(), a.clone());
                a
            }
            None => Arc::new(Author {
                id: user_id.to_owned(),
                name: String::new(),
                avatar_image: String::new(),
            }),
        }
    }

    /// The profile of `user_id`, waiting for the database on a miss (async callers).
    pub async fn fetch(&self, user_id: &str) -> Arc<Author> {
        if let Some(a) = self.cache.get(user_id) {
            return a.clone();
        }
        let row = self.reads.user_by_id(user_id).await.ok().flatten();
        self.found(user_id, row)
    }

    /// The profile of `user_id` from a context that cannot await (an empty name when the user
    /// is unknown to the read tables).
    pub fn get(&self, user_id: &str) -> Arc<Author> {
        if let Some(a) = self.cache.get(user_id) {
            return a.clone();
        }
        let row = match (&self.sqlite, &self.reads) {
            (Some(conn), _) => {
                let conn = conn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                projections::sqlite::user_by_id(&conn, user_id)
                    .ok()
                    .flatten()
            }
            (None, reads) => tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(reads.user_by_id(user_id))
            })
            .ok()
            .flatten(),
        };
        self.found(user_id, row)
    }
}
