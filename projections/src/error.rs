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
    /// The read database refused a change (a constraint, a value out of range): applying the
    /// same event again fails the same way until someone changes the tables.
    #[error("the read database refused a change: {0}")]
    Rejected(String),
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

impl Error {
    /// Whether applying the same events again would fail the same way (an undecodable event,
    /// a sealed field that does not open, a constraint the change breaks), rather than
    /// succeed once the database or the key store answers again.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Decode { .. } | Error::Rejected(_) => true,
            Error::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::ConstraintViolation
                        | rusqlite::ErrorCode::TypeMismatch
                        | rusqlite::ErrorCode::TooBig
                )
            ),
            Error::Task(_) | Error::Behind { .. } => false,
        }
    }
}

/// A PostgreSQL statement's failure: a constraint or a value the database refuses is
/// [`Error::Rejected`] (its message only: the detail would carry the row's values), anything
/// else (a lost connection, a server shutting down) stays retryable.
pub(crate) fn pg_statement(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) if matches!(&db.code().code()[..2], "22" | "23") => {
            Error::Rejected(format!("{}: {}", db.code().code(), db.message()))
        }
        _ => pg(e),
    }
}

/// A PostgreSQL failure, as the read side reports it.
pub(crate) fn pg(e: impl std::fmt::Display) -> Error {
    Error::Task(format!("postgres: {e}"))
}
