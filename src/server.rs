//! `chatroom serve`, in three steps that tests can also take one by one: [`build`] the state
//! (the store, the projections, the room actors), build its [`router`] (REST and Socket.IO),
//! and [`serve`] it on a listener until a shutdown future resolves; [`run`] composes them.

use crate::app::{App, Shared};
use crate::config::Serve;
use crate::profiles::Profiles;
use crate::ratelimit::Buckets;
use crate::storage::Storage;
use anyhow::Context;
use events::{Store, Subscription};
use projections::Workers;
use socketioxide::SocketIo;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Packets a socket may have waiting to be written before it counts as a slow reader and is
/// disconnected (it resumes with `since`). Room for a full replay of 1,000 messages.
const SOCKET_BUFFER: usize = 4096;

/// Bytes a WebSocket reads at a time (engineioxide's default is 4 KiB). Every open socket holds
/// this buffer; a client's frames are a few hundred bytes, and a larger burst takes more reads.
const WS_READ_BUFFER: usize = 1024;

/// Accepts connections with Nagle's algorithm off, so small frames go out at once: with it, a
/// delivery waited for the client's ACK of the previous one (up to the client's 40 ms
/// delayed-ACK timer) whenever one was still in flight.
fn no_delay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    fn set(tcp: &mut tokio::net::TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    }
    axum::serve::ListenerExt::tap_io(listener, set as fn(&mut tokio::net::TcpStream))
}

/// A server's state, built before anything listens, and what stops with it.
pub struct State {
    /// What the handlers share.
    pub app: Shared,
    storage: Storage,
    follower: Option<tokio::task::JoinHandle<()>>,
    upkeep: tokio::task::JoinHandle<()>,
    checkpointer: Option<tokio::task::JoinHandle<()>>,
    /// Held while the state lives: see [`lock_data_dir`].
    _lock: Option<std::fs::File>,
}

/// Keeps a second process off an embedded store: its log, read tables and key store are
/// each one process's, which keeps in memory what it has read of them (the log's head, the
/// keys). An operator command that needs a server's state (`erase-user`, `hold remove`,
/// `keys restore`) takes the same lock, so it refuses to run beside a server instead of
/// working behind its back. The lock is the kernel's: it goes with the process, however it
/// ends.
fn lock_data_dir(store: &crate::config::StoreArgs) -> anyhow::Result<Option<std::fs::File>> {
    #[cfg(feature = "eventstoredb")]
    let shared = store.database_url.is_some() || store.eventstore_url.is_some();
    #[cfg(not(feature = "eventstoredb"))]
    let shared = store.database_url.is_some();
    if shared {
        return Ok(None);
    }
    let dir = &store.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data folder {}", dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("chatroom.lock"))
        .context("opening the data folder's lock file")?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another chatroom process (a server, or a command like this one) is using the \
             embedded store in {}: stop it first",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).context("locking the data folder (chatroom.lock)")
        }
    }
}

/// Keeps the key store in step: every second, forgets the keys kept in memory when another
/// process destroyed keys; at start (once the read tables have caught up with the log) and
/// every [`crate::erasure::SWEEP_EVERY`], finishes erasures and applies the retention limit.
async fn upkeep(app: Shared) {
    let head = app.store.head().borrow().to_owned();
    app.wait_for(head).await;
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        if last_sweep.is_none_or(|t| t.elapsed() >= crate::erasure::SWEEP_EVERY) {
            if let Err(e) = crate::erasure::sweep(&app).await {
                tracing::warn!(error = %e, "the erasure and retention sweep failed; retrying");
            }
            last_sweep = Some(std::time::Instant::now());
        }
        if let Err(e) = app.keys.refresh().await {
            tracing::warn!(error = %e, "could not check the key store for destroyed keys");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Opens the store and starts the projections and the room actors: the state a router
/// serves.
///
/// # Errors
/// When the data folder or the store cannot be set up, or another process uses the embedded
/// store ([`lock_data_dir`]).
pub async fn build(cfg: &Serve) -> anyhow::Result<State> {
    let lock = lock_data_dir(&cfg.store)?;
    let storage = Storage::open(&cfg.store).await?;
    crate::storage::ensure_format(&*storage.store).await?;
    // Made at the first start, so that the first checkpoint can be signed.
    let log_key = storage.log_key(&cfg.store).await?;
    let media_dir = cfg.store.data_dir.join("media");
    std::fs::create_dir_all(&media_dir).context("creating the media folder")?;
    let store: Arc<dyn Store> = Arc::new(crate::metrics::Metered(storage.store.clone()));
    let workers = Workers::start(store.clone(), storage.reads.clone(), storage.keys.clone())
        .await
        .context("starting the projections")?;
    let rooms = actors::Rooms::start(
        store.clone(),
        actors::Settings::new(
            Duration::from_secs(cfg.room_idle_secs.max(1)),
            storage.keys.clone(),
        )
        .with_snapshots(storage.snapshots(&cfg.store)?)
        .with_blocks(Arc::new(crate::http::ReadBlocks(storage.reads.clone()))),
    )
    .await
    .context("starting the room supervisor")?;
    let sessions = storage.sessions(&cfg.store, Duration::from_secs(cfg.token_ttl_secs))?;
    let rate = cfg.send_rate_limit.max(0.0);
    let written: Arc<crate::own_writes::OwnWrites> = Default::default();
    let (bus, presence_db) = storage.signals(&cfg.store);
    let markers = crate::presence::markers::ReadMarkers::new(
        storage.reads.clone(),
        workers.checkpoints(),
        store.clone(),
        written.clone(),
        bus.clone(),
    );
    let live = crate::presence::Live::start(bus, presence_db, markers);
    let app: Shared = Arc::new(App {
        store: store.clone(),
        rooms: rooms.clone(),
        profiles: Arc::new(Profiles::new(storage.reads.clone(), storage.shared)?),
        read: storage.reads.clone(),
        keys: storage.keys.clone(),
        retention_days: (cfg.retention_days > 0).then_some(cfg.retention_days),
        workers,
        sessions: Arc::new(sessions),
        throttle: Default::default(),
        send_limit: Arc::new(Buckets::new(rate, rate.max(100.0))),
        write_limit: Arc::new(Buckets::new(
            cfg.join_rate_limit.max(0.0),
            (cfg.join_rate_limit * 10.0).max(10.0),
        )),
        media_dir,
        written,
        sockets: Arc::new(crate::socket::Registry::new(live.presence.clone())),
        max_sockets_per_user: match cfg.max_sockets_per_user {
            0 => usize::MAX,
            n => n,
        },
        live,
    });
    // With a shared log, other processes write our rooms' streams: follow the log and let
    // running rooms catch up and deliver.
    let follower = storage
        .shared
        .then(|| tokio::spawn(follow_log(store, rooms)));
    let upkeep = tokio::spawn(upkeep(app.clone()));
    let checkpointer = (cfg.checkpoint_every_secs > 0).then(|| {
        tokio::spawn(crate::checkpoints::periodic(
            storage.store.clone(),
            log_key,
            crate::checkpoints::folder(&cfg.store.data_dir),
            Duration::from_secs(cfg.checkpoint_every_secs),
        ))
    });
    Ok(State {
        app,
        storage,
        follower,
        upkeep,
        checkpointer,
        _lock: lock,
    })
}

impl State {
    /// Whether other processes may write the same log.
    pub fn shared(&self) -> bool {
        self.storage.shared
    }

    /// The opened data, for the operator commands that run on a server's state.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Stops the room actors and the projections and flushes the log.
    pub async fn stop(self) {
        if let Some(f) = self.follower {
            f.abort();
        }
        self.upkeep.abort();
        if let Some(c) = self.checkpointer {
            c.abort();
        }
        self.app.live.stop().await;
        self.app.rooms.shutdown().await;
        self.app.workers.shutdown().await;
        self.storage.close();
        tracing::info!("chatroom stopped; the log is flushed");
    }
}

/// What [`serve`] serves: the REST API and the Socket.IO layer over one router, and the
/// Socket.IO side it closes first when it stops.
pub struct Routes {
    /// REST, media, the web page and Socket.IO.
    pub router: axum::Router,
    io: SocketIo,
    sockets: Arc<crate::socket::Services>,
}

/// Builds the router of `app`: the REST API, media and the web page in `web_dir`, with the
/// Socket.IO namespace as a layer over them.
pub fn router(app: &Shared, web_dir: &Path) -> Routes {
    let sockets = Arc::new(crate::socket::Services {
        rooms: app.rooms.clone(),
        sessions: app.sessions.clone(),
        profiles: app.profiles.clone(),
        send_limit: app.send_limit.clone(),
        write_limit: app.write_limit.clone(),
        written: app.written.clone(),
        sockets: app.sockets.clone(),
        max_sockets_per_user: app.max_sockets_per_user,
        live: app.live.clone(),
        read: app.read.clone(),
        io: Default::default(),
    });
    let (layer, io) = SocketIo::builder()
        .with_state(sockets.clone())
        .max_buffer_size(SOCKET_BUFFER)
        // A client that stops answering pings is closed within 25 s (the default is 45 s).
        .ping_interval(Duration::from_secs(15))
        .ping_timeout(Duration::from_secs(10))
        .max_payload(64 * 1024)
        .ws_read_buffer_size(WS_READ_BUFFER)
        // A socket's token comes in its `auth` payload and nothing reads its request's headers
        // after the handshake: a session that kept them would hold about 1 KB more.
        .req_line_only(true)
        .build_layer();
    crate::socket::install(&io, &sockets);

    let router = crate::http::router(app.clone(), web_dir, &app.media_dir)
        .layer(layer)
        .layer(axum::middleware::map_request(crate::socket::detach_head))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    Routes {
        router,
        io,
        sockets,
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves, then closes the sockets and waits
/// (up to 10 s) for the requests under way.
///
/// # Errors
/// None today: a failing connection is logged, not returned.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Routes {
        router,
        io,
        sockets,
    } = routes;
    let live = tokio::spawn(crate::socket::deliver_live(sockets.clone()));
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            sockets.sockets.sweep(&sockets.sessions).await;
            sockets.live.typing.sweep(std::time::Instant::now());
        }
    });

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
        // Open sockets would hold the HTTP server open: close them first.
        io.close().await;
    };
    let server = axum::serve(no_delay(listener), router).with_graceful_shutdown(graceful);
    let served = tokio::spawn(async move { server.await });
    let _ = stopping_rx.await;
    match tokio::time::timeout(Duration::from_secs(10), served).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("connections still open after 10 s; closing anyway"),
    }
    sweeper.abort();
    live.abort();
    Ok(())
}

/// `chatroom serve`: builds the state and the router, listens on `cfg.listen` (printing the
/// address), serves until `shutdown` resolves, then drains and flushes everything.
///
/// # Errors
/// When the data folder, the store or the listener cannot be set up.
pub async fn run(
    cfg: Serve,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = build(&cfg).await?;
    let routes = router(&state.app, &cfg.web_dir);
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            state.stop().await;
            return Err(e).with_context(|| format!("listening on {}", cfg.listen));
        }
    };
    let addr = listener.local_addr()?;
    tracing::info!(%addr, shared = state.shared(), "chatroom serving");
    println!("chatroom listening on http://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let served = serve(listener, routes, shutdown).await;
    state.stop().await;
    served
}

/// Follows the log from its current end and tells running rooms about their streams' new
/// events, so that messages written by other processes reach this process's sockets. It reads
/// the log when another process has written (and on the subscription's poll): reading it after
/// each of this process's own appends, whose rooms know them already, made it the database's
/// busiest reader.
async fn follow_log(store: Arc<dyn Store>, rooms: actors::Rooms) {
    let from = *store.head().borrow();
    let others = store.others_head();
    let mut sub = Subscription::waking_on(store, from, 1000, others);
    loop {
        match sub.next().await {
            Ok(batch) => {
                let mut newest: std::collections::HashMap<String, u64> = Default::default();
                for rec in batch {
                    if let Some(room) = rec.stream_id.strip_prefix("room-")
                        && rec.event_type != "RoomCreated"
                    {
                        let v = newest.entry(room.to_owned()).or_default();
                        *v = (*v).max(rec.version);
                    }
                }
                for (room, version) in newest {
                    rooms.observe(&room, version);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "following the log failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = super::no_delay(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }
}
