//! The write side of chatroom.
//!
//! - [`room`]: a room's rules as plain data (state, decide, apply), tested as
//!   given-events / when-command / then-events; [`recent`]: its window of recent messages,
//!   which makes a retried send answer its first `seq`.
//! - [`command`]: what a room actor is asked ([`Msg`](command::Msg)) and answers;
//!   [`settings`]: how it runs, and who blocks whom ([`Blocks`], asked before posts in
//!   direct rooms).
//! - [`actor`]: the ractor [`RoomActor`] that runs those rules for one room, batching appends
//!   ([`batch`]) and fanning out to subscribers.
//! - [`Rooms`] ([`rooms`]): the registry and supervisor of room actors.
//! - [`delivery`]: what subscribers receive, and the [`Sink`] they receive it through.
//! - [`users`]: registration with names unique through the log.
//!
//! Depends on `events` only; knows nothing of HTTP, sockets or read tables.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod actor;
pub mod batch;
pub mod changes;
pub mod command;
pub mod delivery;
pub mod recent;
pub mod room;
pub mod rooms;
pub mod settings;
pub mod users;

pub use actor::RoomActor;
pub use command::{Applied, Changed, Error, Posted, Resume, Subscribed};
pub use delivery::{
    Delivery, JoinNotice, Message, RenderSlot, RoomEvent, RoomView, Sink, Subscriber,
};
pub use rooms::{Created, NewRoom, Opened, Room, Rooms};
pub use settings::{Blocks, SNAPSHOT_EVERY, Settings, Starts};
