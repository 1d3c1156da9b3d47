//! What the socket layer is handed by the server: its own view of the shared state, so that
//! it needs nothing of the REST side.

use super::registry::Registry;
use crate::auth::Sessions;
use crate::own_writes::OwnWrites;
use crate::presence::Live;
use crate::profiles::Profiles;
use crate::ratelimit::Buckets;
use actors::Rooms;
use projections::Reads;
use socketioxide::SocketIo;
use std::sync::{Arc, OnceLock};

/// The namespace of the contract.
pub const NAMESPACE: &str = "/chatroom";

/// The state every socket handler and worker reads.
pub struct Services {
    /// The room actors.
    pub rooms: Rooms,
    /// Login sessions, to check a connecting socket's token.
    pub sessions: Arc<Sessions>,
    /// Display names and avatars of users, for deliveries.
    pub profiles: Arc<Profiles>,
    /// Message sending (and `test_input`), per user.
    pub send_limit: Arc<Buckets>,
    /// Room joins, per user (shared with REST's creations and joins).
    pub write_limit: Arc<Buckets>,
    /// Per user, the newest log position they wrote (REST reads wait for it).
    pub written: Arc<OwnWrites>,
    /// Open sockets, for logout and expiry.
    pub sockets: Arc<Registry>,
    /// Sockets one user may have open on this process.
    pub max_sockets_per_user: usize,
    /// Presence, read markers, typing and the signal bus.
    pub live: Arc<Live>,
    /// The read tables, for what the socket layer looks up itself (membership for `typing`,
    /// a user's rooms for `presence`).
    pub read: Reads,
    /// The Socket.IO handle, set by [`super::install`]: `test_input` emits to the whole
    /// namespace through it.
    pub io: OnceLock<SocketIo>,
}

/// Shared handle to the services.
pub type Shared = Arc<Services>;
