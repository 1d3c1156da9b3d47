//! The vocabulary of chatroom and its append-only log.
//!
//! - [`Event`] and its payloads ([`event`]): the facts, named in the past tense.
//! - [`codec`]: the versioned binary encoding of payloads (serde + bincode 2) and the upcasters
//!   that turn old schema versions into today's types on read.
//! - [`Recorded`] and [`NewEvent`] ([`envelope`]): an event as stored, with its global position,
//!   stream version, id, type, schema version, time and the hash chaining it to its stream.
//! - [`Store`] ([`store`]): atomic appends with an expected version, stream and log reads, and
//!   [`Subscription`], a live read of the log that continues from a position.
//! - Backends: [`MemoryStore`] for tests, [`SqliteStore`], the embedded default, and
//!   [`PostgresStore`], shared by several server processes, and, with the `eventstoredb`
//!   feature, `EsdbStore` in EventStoreDB/KurrentDB (module `esdb`).
//! - [`checkpoint`]: signed checkpoints (tree heads) of the log and the log's signing key.
//! - [`merkle`]: the Merkle tree of RFC 9162 over the log, its proofs and their checks.
//! - [`heads`]: the tree over every stream's head that a checkpoint signs as well.
//! - [`migrate`]: a tiny migration runner for SQLite databases.
//! - [`conformance`]: the suite every backend must pass; `testing` (the `testing` feature):
//!   what the tests of every crate share.
//!
//! This crate knows no web or actor framework; everything else depends on it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod checkpoint;
pub mod codec;
pub mod conformance;
pub mod envelope;
#[cfg(feature = "eventstoredb")]
pub mod esdb;
pub mod event;
pub mod heads;
pub mod keys;
mod memory;
pub mod merkle;
pub mod migrate;
pub mod postgres;
mod postgres_writer;
pub mod seal;
pub mod snapshot;
mod sqlite;
pub mod store;
mod subscription;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use envelope::{NewEvent, Recorded, chain_hash};
#[cfg(feature = "eventstoredb")]
pub use esdb::EsdbStore;
pub use event::Event;
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use snapshot::{Snapshot, Snapshots};
pub use sqlite::{SqliteStore, stable_plans};
pub use store::{Error, Expected, Store};
pub use subscription::Subscription;

/// Milliseconds since the Unix epoch, the unit of every time in the log.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}
