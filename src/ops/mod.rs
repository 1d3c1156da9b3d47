//! Operator commands: audit replay, tamper evidence, projection status and rebuild, and the
//! upgrade of a log written by an earlier version. Each
//! works on the embedded store or PostgreSQL, whether or not a server is running on it.

mod audit;
mod progress;
mod rebuild;
mod times;
mod upgrade;
mod verify;

pub use audit::audit;
pub use rebuild::{rebuild, status};
pub use times::parse_time;
pub use upgrade::upgrade;
pub use verify::verify;
