//! The shared state of a running server, as the REST handlers see it.

use crate::auth::{LoginThrottle, Sessions};
use crate::own_writes::OwnWrites;
use crate::profiles::Profiles;
use crate::ratelimit::Buckets;
use crate::socket::Registry;
use actors::Rooms;
use events::Store;
use events::keys::Keys;
use projections::{Reads, Workers};
use std::path::PathBuf;
use std::sync::Arc;
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
    /// The key store.
    pub keys: Arc<Keys>,
    /// The server-wide retention limit in days, if any.
    pub retention_days: Option<u32>,
    /// The projection workers.
    pub workers: Workers,
    /// Login sessions.
    pub sessions: Arc<Sessions>,
    /// Failed logins by name.
    pub throttle: LoginThrottle,
    /// Message sending, per user.
    pub send_limit: Arc<Buckets>,
    /// Room creations and joins, per user (REST and sockets share it).
    pub write_limit: Arc<Buckets>,
    /// Where avatars are stored.
    pub media_dir: PathBuf,
    /// Display names and avatars of users, for deliveries.
    pub profiles: Arc<Profiles>,
    /// Per user, the newest log position they wrote: their reads wait for it.
    pub written: Arc<OwnWrites>,
    /// Open sockets, for logout and expiry.
    pub sockets: Arc<Registry>,
    /// Sockets one user may have open on this process.
    pub max_sockets_per_user: usize,
    /// Presence, read markers, typing and the signal bus.
    pub live: Arc<crate::presence::Live>,
}

/// Shared handle to the app.
pub type Shared = Arc<App>;

impl App {
    /// Records that `user_id` wrote up to `position`.
    pub fn wrote(&self, user_id: &str, position: u64) {
        self.written.wrote(user_id, position);
    }

    /// Waits until the read tables include `user_id`'s own writes (bounded).
    pub async fn own_writes(&self, user_id: &str) {
        self.wait_for(self.written.newest(user_id)).await;
    }

    /// Waits until the read tables include `position` (bounded).
    pub async fn wait_for(&self, position: u64) {
        if position > 0 && !self.workers.wait_for(position, OWN_WRITES_WAIT).await {
            tracing::warn!(position, "read tables are behind the caller's writes");
        }
    }
}
