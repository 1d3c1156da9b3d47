//! chatroom: an event-sourced, actor-based real-time chat server.
//!
//! The binary wires the workspace together:
//! - [`config`]: the command line and environment, read once.
//! - [`app`]: the shared state of a running server (log, room actors, read tables, sessions).
//! - [`profiles`], [`own_writes`]: user profiles for deliveries, and each user's newest write
//!   (shared by REST and sockets).
//! - [`signals`], [`presence`]: what is told but never stored (typing, presence,
//!   `read_updated`) on a bus every process hears, who is online across processes, and read
//!   markers.
//! - [`auth`]: passwords, tokens and sessions, and the login throttle.
//! - [`http`]: the REST API and its OpenAPI document, media and the web page (axum, utoipa).
//! - [`socket`]: the Socket.IO namespace `/chatroom` (socketioxide).
//! - [`wire`]: the JSON shapes of the contract.
//! - [`avatar`]: decoding and storing uploaded images.
//! - [`ratelimit`]: per-user rate limits (governor).
//! - [`metrics`]: counters for `/metrics` (Prometheus text format, prometheus-client).
//! - [`checkpoints`]: the checkpoints a server signs into its data folder.
//! - [`signing`]: the log's signing key, for its checkpoints.
//! - [`storage`]: opening the data, embedded (SQLite) or in PostgreSQL.
//! - [`ops`]: the operator commands (audit, verify, checkpoints, export bundles, projections status and rebuild, erasure,
//!   legal holds, key store backup and restore, upgrade).
//! - [`server`]: `serve`: build the state and the router, serve them, stop gracefully.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod avatar;
pub mod checkpoints;
pub mod config;
pub mod credentials;
pub mod erasure;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod own_writes;
pub mod presence;
pub mod profiles;
pub mod ratelimit;
pub mod retention;
pub mod server;
pub mod signals;
pub mod signing;
pub mod socket;
pub mod storage;
pub mod wire;

/// Runs the command given on the command line.
///
/// # Errors
/// Whatever stops the command, with context.
pub async fn run(cli: config::Cli) -> anyhow::Result<()> {
    match cli.command {
        config::Command::Serve(serve) => server::run(serve, shutdown_signal()).await,
        config::Command::Audit(args) => ops::audit(args).await,
        config::Command::Verify(args) => {
            let code = match &args.checkpoint {
                Some(file) => {
                    ops::verify_checkpoint(args.store, file, args.public_key.as_deref()).await?
                }
                None if args.projections => ops::verify_projections(args).await?,
                None => ops::verify(args.store).await?,
            };
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        config::Command::Checkpoint { store, out } => ops::checkpoint(store, &out).await,
        config::Command::PublicKey(args) => ops::public_key(args).await,
        config::Command::Export(args) => {
            let from = args.from.as_deref().map(ops::parse_time).transpose()?;
            let to = args.to.as_deref().map(ops::parse_time).transpose()?;
            ops::export(args.store, &args.room, from, to, &args.out).await
        }
        config::Command::VerifyBundle { file, public_key } => {
            let code = ops::verify_bundle(&file, &public_key)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        config::Command::Upgrade(args) => {
            let code = ops::upgrade(args).await?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        config::Command::Projections { command } => match command {
            config::ProjectionsCommand::Status(args) => ops::status(args).await,
            config::ProjectionsCommand::Retry(args) => {
                let code = ops::retry(args).await?;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            config::ProjectionsCommand::Rebuild {
                store,
                name,
                restart,
            } => ops::rebuild(store, name, restart).await,
        },
        config::Command::EraseUser(args) => ops::erase_user(args).await,
        config::Command::Hold { command } => match command {
            config::HoldCommand::Add(args) => ops::hold_add(args).await,
            config::HoldCommand::Remove {
                store,
                retention,
                id,
            } => ops::hold_remove(store, retention, id).await,
            config::HoldCommand::List { store, retention } => {
                ops::hold_list(store, retention).await
            }
        },
        config::Command::Keys { command } => match command {
            config::KeysCommand::Backup { store, file } => ops::keys_backup(store, &file).await,
            config::KeysCommand::Restore {
                store,
                retention,
                file,
            } => ops::keys_restore(store, retention, &file).await,
        },
        config::Command::Migrate(args) => match &args.database_url {
            Some(url) => {
                let applied = storage::migrate_postgres(url).await?;
                println!("applied {applied} migration(s)");
                Ok(())
            }
            None => {
                storage::Storage::open(&args).await?.close();
                println!(
                    "the embedded store in {} is up to date",
                    args.data_dir.display()
                );
                Ok(())
            }
        },
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
