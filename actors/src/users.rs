//! User registration, with names unique ignoring case.
//!
//! Uniqueness is kept by the log, not by a read table: a name is claimed by the first event
//! of the stream `username-<lowercase name>`, appended with "expects no stream", so of two
//! registrations racing for one name (in one process or several) exactly one wins. The user's
//! own stream then records the registration.

use events::event::{UserNameClaimed, UserRegistered, user_stream, username_stream};
use events::{Event, Expected, NewEvent, Store};

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Someone holds the name already (in any case).
    #[error("that user name is taken")]
    NameTaken,
    /// The log could not take it.
    #[error("registration is unavailable: {0}")]
    Unavailable(String),
}

/// A registered user.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The new id.
    pub user_id: String,
    /// Position of the registration event.
    pub position: u64,
}

/// Registers `name` with an already hashed password.
///
/// # Errors
/// [`Error::NameTaken`] or [`Error::Unavailable`].
pub async fn register(
    store: &dyn Store,
    name: &str,
    password_hash: &str,
) -> Result<Registered, Error> {
    let user_id = uuid::Uuid::now_v7().to_string();
    let claim = Event::UserNameClaimed(UserNameClaimed {
        user_id: user_id.clone(),
        name: name.to_owned(),
    });
    match store
        .append(
            &username_stream(name),
            Expected::NoStream,
            vec![NewEvent::new(&claim)],
        )
        .await
    {
        Ok(_) => {}
        Err(events::Error::Conflict { .. }) => return Err(Error::NameTaken),
        Err(e) => return Err(Error::Unavailable(e.to_string())),
    }
    let registered = Event::UserRegistered(UserRegistered {
        user_id: user_id.clone(),
        name: name.to_owned(),
        password_hash: password_hash.to_owned(),
    });
    let recorded = store
        .append(
            &user_stream(&user_id),
            Expected::NoStream,
            vec![NewEvent::new(&registered)],
        )
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok(Registered {
        user_id,
        position: recorded[0].position,
    })
}
