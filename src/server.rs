//! `chatroom serve`: open the store, start the workers and actors, serve, and stop gracefully.

use crate::app::{App, Profiles, Shared};
use crate::auth::Sessions;
use crate::config::Serve;
use crate::ratelimit::Buckets;
use anyhow::Context;
use events::{SqliteStore, Store};
use projections::{ReadDb, Workers};
use socketioxide::SocketIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Packets a socket may have waiting to be written before it counts as a slow reader and is
/// disconnected (it resumes with `since`). Room for a full replay of 1,000 messages.
const SOCKET_BUFFER: usize = 4096;

/// Serves until `shutdown` resolves, then drains and flushes everything.
///
/// # Errors
/// When the data folder, the store or the listener cannot be set up.
pub async fn serve(
    cfg: Serve,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data = &cfg.data_dir;
    std::fs::create_dir_all(data.join("media"))
        .with_context(|| format!("creating the data folder {}", data.display()))?;
    let sqlite =
        Arc::new(SqliteStore::open(data.join("events.db")).context("opening the event log")?);
    let store: Arc<dyn Store> = sqlite.clone();
    let read = ReadDb::open(data.join("read.db")).context("opening the read tables")?;
    let workers = Workers::start(store.clone(), read.clone())
        .await
        .context("starting the projections")?;
    let rooms = actors::Rooms::start(
        store.clone(),
        actors::Settings {
            idle_after: Duration::from_secs(cfg.room_idle_secs.max(1)),
        },
    )
    .await
    .context("starting the room supervisor")?;
    let sessions = Sessions::open(
        &data.join("sessions.db"),
        Duration::from_secs(cfg.token_ttl_secs),
    )
    .context("opening the sessions")?;
    let rate = cfg.send_rate_limit.max(0.0);
    let app: Shared = Arc::new(App {
        store: store.clone(),
        rooms: rooms.clone(),
        profiles: Arc::new(Profiles::new(read.writer()?)),
        read,
        workers,
        sessions,
        throttle: Default::default(),
        send_limit: Buckets::new(rate, rate.max(100.0)),
        media_dir: data.join("media"),
        written: Default::default(),
        sockets: Default::default(),
        io: Default::default(),
    });

    let (layer, io) = SocketIo::builder()
        .with_state(app.clone())
        .max_buffer_size(SOCKET_BUFFER)
        .max_payload(64 * 1024)
        .build_layer();
    crate::socket::install(&io);
    let _ = app.io.set(io.clone());

    let router = crate::http::router(app.clone(), &cfg.web_dir, &app.media_dir)
        .layer(layer)
        .layer(tower_http::trace::TraceLayer::new_for_http());

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data = %data.display(), "chatroom serving");
    println!("chatroom listening on http://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let sweeper = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let app = app.clone();
                let _ = tokio::task::spawn_blocking(move || app.sockets.sweep(&app.sessions)).await;
            }
        })
    };

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let io_for_close = io.clone();
    let graceful = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
        // Open sockets would hold the HTTP server open: close them first.
        io_for_close.close().await;
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(graceful);
    let served = tokio::spawn(async move { server.await });
    let _ = stopping_rx.await;
    match tokio::time::timeout(Duration::from_secs(10), served).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("connections still open after 10 s; closing anyway"),
    }
    sweeper.abort();
    rooms.shutdown().await;
    sqlite.close();
    tracing::info!("chatroom stopped; the log is flushed");
    Ok(())
}
