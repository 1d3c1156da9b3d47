//! Erasing a person: by themselves (`DELETE /api/user`) or by an operator
//! (`chatroom erase-user`), and the sweep that keeps erasures done.
//!
//! The erasure is first an event of the log (`UserErased`), so that it outlives every backup
//! of the key store: once it is durable, the person's keys are destroyed (all but those a
//! legal hold keeps), their credential deleted, their tokens revoked and sockets closed, their
//! messages made placeholders and memberships ended (through each room's actor: a
//! `MessageDeleted` for each message, `MemberLeft`, and an owner's room passed to the
//! longest-standing admin, else member, or archived when nobody is left), their avatar
//! file removed; the projections
//! turn their row into "Deleted user" and their messages into placeholders. A crash anywhere
//! after the event is finished by [`sweep`], which every server runs at start and every few
//! minutes: it ends memberships left behind and destroys again any key whose user the log says was erased (a key store restored
//! from an old backup brings them back only until then).

use crate::app::App;
use events::keys::Destroy;
use std::time::Duration;

/// How often the sweep runs (erasures left undone, retention).
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Why an erasure failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such user, or one already erased.
    #[error("no such user")]
    Unknown,
    /// The storage failed; what was done so far is finished by the next sweep.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

/// Erases `user_id`; returns the log position of the last event it wrote.
///
/// # Errors
/// [`Error::Unknown`] when there is no such (unerased) user; [`Error::Unavailable`].
pub async fn erase(app: &App, user_id: &str, by_operator: bool) -> Result<u64, Error> {
    let user = app
        .read
        .user_by_id(user_id)
        .await
        .map_err(unavailable)?
        .filter(|u| !u.erased)
        .ok_or(Error::Unknown)?;
    // The rooms they are in, and those they left that still hold their messages.
    let mut rooms: Vec<String> = (app.read.rooms_of(user_id).await.map_err(unavailable)?)
        .into_iter()
        .map(|r| r.id)
        .collect();
    for m in app.read.messages_by(user_id).await.map_err(unavailable)? {
        if !rooms.contains(&m.room_id) {
            rooms.push(m.room_id);
        }
    }
    // Closed at once: nothing the person does from now on counts.
    for hash in app
        .sessions
        .revoke_user(user_id, None)
        .await
        .map_err(unavailable)?
    {
        app.sockets.disconnect_token(&hash);
    }
    app.sockets.disconnect_user(user_id);
    let mut last = actors::users::erase(
        &*app.store,
        &app.keys,
        user_id,
        Some(&user.name),
        by_operator,
    )
    .await
    .map_err(unavailable)?;
    // The placeholders below are delivered with their author's profile: the read side must
    // show the person erased, and the cache forget them, before any is rendered.
    app.wait_for(last).await;
    app.profiles.forget(user_id);
    // Through each room's actor, which passes an owner's room on (or archives it) and tells
    // the room's subscribers at once.
    for room in &rooms {
        let erase = actors::room::Command::Erase {
            user_id: user_id.to_owned(),
        };
        let applied = app.rooms.command(room, erase).await.map_err(unavailable)?;
        last = last.max(applied.position);
    }
    finish(app, user_id, &user.avatar_image).await?;
    app.wait_for(last).await;
    scrub_files(app).await;
    tracing::info!(user = user_id, by_operator, "user erased");
    Ok(last)
}

/// What an erasure does outside the log, after its event: safe to do again.
async fn finish(app: &App, user_id: &str, avatar: &str) -> Result<(), Error> {
    let destroyed = app
        .keys
        .destroy(&Destroy::User(user_id.to_owned()))
        .await
        .map_err(unavailable)?;
    let held = app
        .keys
        .held(&Destroy::User(user_id.to_owned()))
        .await
        .map_err(unavailable)?;
    if held > 0 {
        tracing::info!(
            user = user_id,
            held,
            "a legal hold keeps some of this user's keys: their destruction is pending"
        );
    }
    tracing::debug!(user = user_id, destroyed, "keys destroyed");
    app.read
        .forget_markers(user_id)
        .await
        .map_err(unavailable)?;
    app.sessions
        .forget_password(user_id)
        .await
        .map_err(unavailable)?;
    app.profiles.forget(user_id);
    if let Some(name) = avatar.strip_prefix("/media/")
        && !name.contains('/')
    {
        let path = app.media_dir.join(name);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(unavailable(e));
        }
    }
    Ok(())
}

/// Lets go of the rows as they were before the erasure: the embedded read tables' write-ahead
/// log is truncated (`secure_delete` zeroed them in the database); in PostgreSQL, `vacuum`
/// removes the dead row versions of the tables that held the person's data.
pub(crate) async fn scrub_files(app: &App) {
    match &app.read {
        projections::Reads::Sqlite(db) => {
            if let Err(e) = db.truncate_wal().await {
                tracing::warn!(error = %e, "could not truncate the read tables' write-ahead log");
            }
        }
        projections::Reads::Postgres(pool) => {
            let vacuum = async {
                pool.get()
                    .await?
                    .batch_execute(
                        "vacuum \"user\", room_record, room_record_version, room_member, credential,
                                subject_key",
                    )
                    .await?;
                anyhow::Ok(())
            };
            if let Err(e) = vacuum.await {
                tracing::warn!(error = %e, "could not vacuum the tables of an erased user");
            }
        }
    }
}

/// Finishes every erasure the read tables know of (keys the key store still holds of erased
/// users, credentials, avatars) and applies the retention limits. Keys that a hold keeps stay.
///
/// # Errors
/// When the storage fails.
pub async fn sweep(app: &App) -> Result<(), Error> {
    for user in app.read.erased_users().await.map_err(unavailable)? {
        // A crash after `UserErased` may have left memberships behind.
        for room in app.read.rooms_of(&user).await.map_err(unavailable)? {
            let erase = actors::room::Command::Erase {
                user_id: user.clone(),
            };
            app.rooms
                .command(&room.id, erase)
                .await
                .map_err(unavailable)?;
        }
        finish(app, &user, "").await?;
    }
    crate::retention::apply(app, app.retention_days).await?;
    Ok(())
}
