//! The read side of chatroom: workers that follow the log and keep the read tables.
//!
//! - [`Projection`] and [`Change`] ([`projection`]): each projection is a pure mapping from an
//!   event to row changes, independent of the database.
//! - [`sqlite`]: the sink that applies changes to SQLite, each batch in one transaction with
//!   the projection's checkpoint, and the queries the server answers from those tables.
//! - [`Workers`] ([`worker`]): one task per projection following the log, and the wait that
//!   gives a caller read-your-writes.
//!
//! Depends on `events` only.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod projection;
pub mod sqlite;
pub mod worker;

pub use projection::{ALL, Change, Projection};
pub use sqlite::{ReadDb, RecordRow, RoomRow, UserRow};
pub use worker::Workers;
