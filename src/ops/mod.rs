//! Operator commands: audit replay, tamper evidence, signed checkpoints and audit bundles,
//! projection status, rebuild, trial and retry, which work on the embedded store or
//! PostgreSQL whether or not a server is running on it;
//! erasure, legal holds and the key store's backup, of which those that change the data
//! (`erase-user`, `hold remove`, `keys restore`) need the embedded store's server stopped; and
//! the upgrade of a log written by an earlier version (with the server stopped).

mod audit;
mod bundle;
mod checkpoint;
mod dead;
mod erase;
mod hold;
mod keys;
mod progress;
mod rebuild;
mod times;
mod trial;
mod upgrade;
mod verify;

pub use audit::audit;
pub use bundle::{export, verify_bundle};
pub use checkpoint::{
    checkpoint, public_key, public_key_arg, read as read_checkpoint, to_json as checkpoint_json,
    verify as verify_checkpoint,
};
pub use dead::retry;
pub use erase::erase_user;
pub use hold::{hold_add, hold_list, hold_remove};
pub use keys::{backup as keys_backup, restore as keys_restore};
pub use rebuild::{rebuild, status};
pub use times::parse_time;
pub use trial::verify_projections;
pub use upgrade::upgrade;
pub use verify::verify;
