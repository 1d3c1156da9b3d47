//! The error of the read side, shared by its SQLite and PostgreSQL sinks and queries.

/// Errors of the read database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("read database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An event in the log could not be decoded.
    #[error("undecodable event at position {position}: {reason}")]
    Decode {
        /// Where.
        position: u64,
        /// Why.
        reason: String,
    },
    /// The blocking task failed.
    #[error("read database task: {0}")]
    Task(String),
    /// A stored checkpoint is behind the position a batch was read after, so applying the
    /// batch would skip the events in between: the database lost commits (crashed before
    /// flushing commits that did not wait for the flush, or restored or failed over to a copy
    /// that was behind). Nothing is applied; read the log again from the stored checkpoint.
    #[error(
        "the stored checkpoint {checkpoint} is at {stored}, behind {after}, where the batch starts: the database lost commits"
    )]
    Behind {
        /// Which checkpoint.
        checkpoint: String,
        /// Where it is stored.
        stored: u64,
        /// Where the batch was read after.
        after: u64,
    },
}

/// A PostgreSQL failure, as the read side reports it.
pub(crate) fn pg(e: impl std::fmt::Display) -> Error {
    Error::Task(format!("postgres: {e}"))
}
