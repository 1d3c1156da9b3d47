//! The read side of chatroom: workers that follow the log and keep the read tables.
//!
//! - [`Projection`] and [`Change`] ([`projection`]): each projection is a pure mapping from an
//!   event to row changes, independent of the database.
//! - [`Plan`] ([`plan`]): a batch's changes regrouped so that PostgreSQL applies each kind
//!   with one statement per batch, and SQLite updates each room once per batch.
//! - [`sqlite`] and [`postgres`]: the sinks that apply changes, each batch in one transaction
//!   with the projection's checkpoint, and the queries the server answers from the tables;
//!   [`Reads`] puts either behind one handle.
//! - [`rebuild`]: a projection rebuilt beside the live one, then switched over in one step.
//! - [`dead`]: dead letters, the events a projection could not apply, parked so that it goes
//!   on, and applied again on demand.
//! - [`trial`]: every projection rebuilt into scratch tables and compared with the live
//!   ones, row by row.
//! - [`markers`]: read markers, state beside the log that no rebuild touches.
//! - [`Workers`] ([`worker`]): one task per projection following the log, and the wait that
//!   gives a caller read-your-writes.
//!
//! Depends on `events` only.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod blocks;
pub mod dead;
mod error;
pub mod markers;
pub mod plan;
pub mod postgres;
pub mod projection;
mod read;
pub mod rebuild;
pub mod sqlite;
pub mod trial;
pub mod worker;

pub use markers::Mark;
pub use plan::Plan;
pub use projection::{ALL, Change, Projection, Target};
pub use read::Reads;
pub use sqlite::{
    InviteRow, MemberRow, OwnMessage, ReadDb, RecordRow, RoomRow, TextVersion, UserRow,
};
pub use worker::{Checkpoints, Workers};

/// The name an erased user reads as.
pub const DELETED_USER: &str = "Deleted user";
