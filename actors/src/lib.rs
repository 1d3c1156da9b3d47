//! The write side of chatroom.
//!
//! - [`room`]: a room's rules as plain data (state, decide, apply), tested as
//!   given-events / when-command / then-events.
//! - [`actor`]: the ractor [`RoomActor`] that runs those rules for one room, batching appends
//!   and fanning out to subscribers.
//! - [`Rooms`] ([`rooms`]): the registry and supervisor of room actors.
//! - [`delivery`]: what subscribers receive, and the [`Sink`] they receive it through.
//! - [`users`]: registration with names unique through the log.
//!
//! Depends on `events` only; knows nothing of HTTP, sockets or read tables.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod actor;
pub mod delivery;
pub mod room;
pub mod rooms;
pub mod users;

pub use actor::{Error, Joined, Posted, RoomActor, SNAPSHOT_EVERY, Settings, Starts, Subscribed};
pub use delivery::{Delivery, JoinNotice, Message, RenderSlot, Sink, Subscriber};
pub use rooms::{Created, NewRoom, Room, Rooms};
