//! `chatroom erase-user`: an operator's erasure, exactly what `DELETE /api/user` does
//! ([`crate::erasure::erase`]), run on a server's state of the command's own. With the
//! embedded store that state locks the data folder, so the command refuses to run beside a
//! server; with PostgreSQL it runs beside them, and they see the erasure through what they
//! share: the sessions table (their sockets close within a second), the key store's epoch
//! (they forget the keys they kept) and the read tables.

use crate::app::App;
use crate::config::{EraseUser, Serve, StoreArgs};
use crate::server::State;
use anyhow::Context;
use clap::{Args, FromArgMatches};
use events::keys::Destroy;
use std::time::Duration;

/// How long a command waits for the read tables to catch up with the log before it gives
/// up: a large log read afresh takes minutes.
const CATCH_UP: Duration = Duration::from_secs(900);

/// Builds a server's state on `store`, with `serve`'s settings as the environment sets them
/// (the retention limit given here): nothing listens.
///
/// # Errors
/// As [`crate::server::build`]: with the embedded store, also when a server runs on it.
pub(super) async fn state(store: &StoreArgs, retention_days: u32) -> anyhow::Result<State> {
    let matches = Serve::augment_args(clap::Command::new("serve"))
        .try_get_matches_from(["serve"])
        .context("reading the server's settings from the environment")?;
    let mut cfg = Serve::from_arg_matches(&matches)?;
    cfg.store = store.clone();
    cfg.retention_days = retention_days;
    crate::server::build(&cfg).await
}

/// Waits until the read tables hold what the log held when called: erasures and the sweep
/// read who was erased from them.
///
/// # Errors
/// When they do not catch up within [`CATCH_UP`].
pub(super) async fn caught_up(app: &App) -> anyhow::Result<()> {
    let head = *app.store.head().borrow();
    if !app.workers.wait_for(head, CATCH_UP).await {
        anyhow::bail!("the read tables did not catch up with the log (position {head})");
    }
    Ok(())
}

/// Runs `chatroom erase-user`.
///
/// # Errors
/// An unknown or already erased user (nothing is changed), a server running on the embedded
/// store, or a storage failure (a later sweep finishes what was begun).
pub async fn erase_user(args: EraseUser) -> anyhow::Result<()> {
    let state = state(&args.store, 0).await?;
    let done = erase(&state, &args.user).await;
    state.stop().await;
    let (user_id, held) = done?;
    println!("user {user_id} erased");
    if held > 0 {
        println!(
            "a legal hold keeps {held} of their keys: audit can still read what they cover \
             until the hold is lifted (`chatroom hold list`)"
        );
    }
    Ok(())
}

async fn erase(state: &State, arg: &str) -> anyhow::Result<(String, u64)> {
    let app = &state.app;
    caught_up(app).await?;
    let user_id = super::audit::resolve_user(state.storage(), arg).await?;
    let user = app
        .read
        .user_by_id(&user_id)
        .await?
        .with_context(|| format!("no user has the id or name {arg:?}"))?;
    if user.erased {
        anyhow::bail!("user {user_id} is already erased");
    }
    let last = crate::erasure::erase(app, &user_id, true).await?;
    if !app.workers.wait_for(last, CATCH_UP).await {
        anyhow::bail!(
            "user {user_id} is erased in the log, but the read tables did not apply it yet: \
             they will as they catch up"
        );
    }
    let held = app.keys.held(&Destroy::User(user_id.clone())).await?;
    Ok((user_id, held))
}
