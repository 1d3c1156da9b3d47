//! Users: registration, renames, avatars, password changes and erasure, as events of the
//! user's stream; names unique ignoring case.
//!
//! Uniqueness is kept by the log, not by a read table: a name is held by the stream
//! `username-<name hash>` (the server's keyed hash of the folded name, so the log never
//! names anyone), claimed by appending `UserNameClaimed` with the stream's expected version:
//! "no stream" for a name never used, or the version of its last `UserNameReleased` for one
//! that was let go. Of two users racing for one name (in one process or several) exactly one
//! wins. The user's own stream records the rest, personal data sealed for the user.
//! Passwords are not here: their hashes live in the credentials table (`src/auth.rs`).
//! The blocks a user puts on others are in their stream too (ids only).

use events::event::{
    AvatarChanged, Block, PasswordChanged, UserErased, UserNameClaimed, UserNameReleased,
    UserRegistered, UserRenamed, user_stream, username_stream,
};
use events::keys::Keys;
use events::seal::Subject;
use events::{Event, Expected, NewEvent, Store};

/// Why a user change failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Someone else holds the name (in any case).
    #[error("that user name is taken")]
    NameTaken,
    /// The log or the key store could not take it.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

/// A new user id (UUIDv7: ordered by time).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Who holds the name whose stream is `stream`, and the version to expect when claiming it.
async fn holder(store: &dyn Store, stream: &str) -> Result<(Option<String>, Expected), Error> {
    let mut from = 1;
    let mut last = None;
    loop {
        let page = store
            .read_stream(stream, from, 100)
            .await
            .map_err(unavailable)?;
        let Some(tail) = page.last() else { break };
        from = tail.version + 1;
        last = Some(tail.clone());
        if page.len() < 100 {
            break;
        }
    }
    let Some(rec) = last else {
        return Ok((None, Expected::NoStream));
    };
    let holder = match rec.decode().map_err(unavailable)? {
        Event::UserNameClaimed(c) => Some(c.user_id),
        _ => None,
    };
    Ok((holder, Expected::Exact(rec.version)))
}

/// Claims `name` for `user_id`; `Ok(false)` when they hold it already.
async fn claim(store: &dyn Store, keys: &Keys, user_id: &str, name: &str) -> Result<bool, Error> {
    let stream = username_stream(&keys.name_hash(name));
    let (holder, expected) = holder(store, &stream).await?;
    match holder {
        Some(h) if h == user_id => return Ok(false),
        Some(_) => return Err(Error::NameTaken),
        None => {}
    }
    let claim = Event::UserNameClaimed(UserNameClaimed {
        user_id: user_id.to_owned(),
    });
    match store
        .append(&stream, expected, vec![NewEvent::new(&claim)])
        .await
    {
        Ok(_) => Ok(true),
        Err(events::Error::Conflict { .. }) => Err(Error::NameTaken),
        Err(e) => Err(unavailable(e)),
    }
}

/// Lets `name` go, if `user_id` holds it.
async fn release(store: &dyn Store, keys: &Keys, user_id: &str, name: &str) -> Result<(), Error> {
    let stream = username_stream(&keys.name_hash(name));
    let (holder, expected) = holder(store, &stream).await?;
    if holder.as_deref() != Some(user_id) {
        return Ok(());
    }
    let released = Event::UserNameReleased(UserNameReleased {
        user_id: user_id.to_owned(),
    });
    store
        .append(&stream, expected, vec![NewEvent::new(&released)])
        .await
        .map_err(unavailable)?;
    Ok(())
}

async fn record(store: &dyn Store, user_id: &str, event: Event) -> Result<u64, Error> {
    let recorded = store
        .append(
            &user_stream(user_id),
            Expected::Any,
            vec![NewEvent::new(&event)],
        )
        .await
        .map_err(unavailable)?;
    Ok(recorded[0].position)
}

/// Registers `user_id` (from [`new_id`]) as `name`; returns the registration's position.
///
/// # Errors
/// [`Error::NameTaken`] or [`Error::Unavailable`].
pub async fn register(
    store: &dyn Store,
    keys: &Keys,
    user_id: &str,
    name: &str,
) -> Result<u64, Error> {
    claim(store, keys, user_id, name).await?;
    let sealed = keys
        .seal(&Subject::User(user_id.to_owned()), name)
        .await
        .map_err(unavailable)?;
    let registered = Event::UserRegistered(UserRegistered {
        user_id: user_id.to_owned(),
        name: sealed,
    });
    let recorded = store
        .append(
            &user_stream(user_id),
            Expected::NoStream,
            vec![NewEvent::new(&registered)],
        )
        .await
        .map_err(unavailable)?;
    Ok(recorded[0].position)
}

/// Renames `user_id` from `old` to `new`: the new name is claimed first, the old one let go
/// after. Returns the rename's position.
///
/// # Errors
/// [`Error::NameTaken`] when someone else holds `new`, or [`Error::Unavailable`].
pub async fn rename(
    store: &dyn Store,
    keys: &Keys,
    user_id: &str,
    old: &str,
    new: &str,
) -> Result<u64, Error> {
    let claimed = claim(store, keys, user_id, new).await?;
    let sealed = keys
        .seal(&Subject::User(user_id.to_owned()), new)
        .await
        .map_err(unavailable)?;
    let position = record(
        store,
        user_id,
        Event::UserRenamed(UserRenamed {
            user_id: user_id.to_owned(),
            name: sealed,
        }),
    )
    .await?;
    // A change of case only keeps the one claim.
    if claimed {
        release(store, keys, user_id, old).await?;
    }
    Ok(position)
}

/// Records `user_id`'s new avatar path (or `""`); returns its position.
///
/// # Errors
/// [`Error::Unavailable`].
pub async fn change_avatar(
    store: &dyn Store,
    keys: &Keys,
    user_id: &str,
    path: &str,
) -> Result<u64, Error> {
    let sealed = keys
        .seal(&Subject::User(user_id.to_owned()), path)
        .await
        .map_err(unavailable)?;
    record(
        store,
        user_id,
        Event::AvatarChanged(AvatarChanged {
            user_id: user_id.to_owned(),
            avatar: sealed,
        }),
    )
    .await
}

/// Records that `user_id` changed their password; returns its position.
///
/// # Errors
/// [`Error::Unavailable`].
pub async fn password_changed(store: &dyn Store, user_id: &str) -> Result<u64, Error> {
    record(
        store,
        user_id,
        Event::PasswordChanged(PasswordChanged {
            user_id: user_id.to_owned(),
        }),
    )
    .await
}

/// Records that `by` blocks `user_id` (`on`) or no longer does; returns its position.
/// Whether that changes anything is the caller's to know first: a second block is harmless
/// (the read side keeps one), but is not worth an event.
///
/// # Errors
/// [`Error::Unavailable`].
pub async fn block(store: &dyn Store, by: &str, user_id: &str, on: bool) -> Result<u64, Error> {
    let block = Block {
        by: by.to_owned(),
        user_id: user_id.to_owned(),
    };
    let event = if on {
        Event::UserBlocked(block)
    } else {
        Event::UserUnblocked(block)
    };
    record(store, by, event).await
}

/// Records the erasure of `user_id` and lets their name (`name`, if it is still known) go;
/// returns the erasure's position. Destroying the keys and ending memberships is the
/// caller's (it must happen after this event is durable, so a crash in between is finished
/// at the next start).
///
/// # Errors
/// [`Error::Unavailable`].
pub async fn erase(
    store: &dyn Store,
    keys: &Keys,
    user_id: &str,
    name: Option<&str>,
    by_operator: bool,
) -> Result<u64, Error> {
    let position = record(
        store,
        user_id,
        Event::UserErased(UserErased {
            user_id: user_id.to_owned(),
            by_operator,
        }),
    )
    .await?;
    if let Some(name) = name {
        release(store, keys, user_id, name).await?;
    }
    Ok(position)
}
