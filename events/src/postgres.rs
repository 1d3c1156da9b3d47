//! The log in PostgreSQL, shared by several server processes.
//!
//! - **Group commit.** Appends go to one writer task per process ([`crate::postgres_writer`]),
//!   which takes whatever is waiting, writes it in one transaction under an advisory lock that
//!   every process's appends take, and answers once it has committed.
//! - **No skipped events.** Under that lock appends commit one after another, each visible
//!   before the next takes a position, so a reader by position never sees position N while a
//!   smaller one is still to commit (the sequence-gap trap); positions of rolled-back appends
//!   are gaps forever, and readers step over them.
//! - **Live reads.** A commit sends `NOTIFY chatroom_log`; a listener task moves the head watch.
//!   Subscriptions also poll, so a lost notification (or a listener reconnecting) only delays.
//! - **Going away.** Connections come from a pool that reconnects on its own; while the
//!   database is unreachable every call fails as [`Error::Unavailable`]. A commit that does
//!   not finish within [`APPEND_DEADLINE`] (its synchronous standby lost) is answered so too,
//!   and appends are refused at once until the writer is free again.

use crate::envelope::{NewEvent, Recorded};
use crate::migrate::Migration;
pub(crate) use crate::postgres_writer::unavailable;
pub use crate::postgres_writer::{APPEND_LOCK, release_after_failure};
use crate::postgres_writer::{CHANNEL, WriteRequest, bump, writer_loop};
use crate::store::{Error, Expected, Store};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// The log's migration for PostgreSQL.
pub const MIGRATION: Migration = Migration {
    version: 1,
    name: "event_log",
    sql: include_str!("../../migrations/postgres/0001_event_log.sql"),
};

/// The index of event ids that versions before the rooms' idempotency window kept beside the
/// log (released as migration 6, never edited), and its removal (migration 7). A database
/// migrated from scratch runs both; the log itself is not rewritten by either.
pub const ID_INDEX_MIGRATIONS: [Migration; 2] = [
    Migration {
        version: 6,
        name: "event_id_runs",
        sql: include_str!("../../migrations/postgres/0006_event_id_runs.sql"),
    },
    Migration {
        version: 7,
        name: "no_event_id_index",
        sql: include_str!("../../migrations/postgres/0007_no_event_id_index.sql"),
    },
];

/// The log's migrations in order, for a database that holds only the log (the server's full
/// list interleaves the read tables' and the sessions' migrations with these).
pub const LOG_MIGRATIONS: [Migration; 3] =
    [MIGRATION, ID_INDEX_MIGRATIONS[0], ID_INDEX_MIGRATIONS[1]];

/// How long an append waits for its commit before it is answered `Unavailable`. A commit
/// waits for the synchronous standby; when that machine is lost, and Patroni's strict mode
/// keeps it named, the wait lasts until it is back. The append is left to finish (its
/// connection is not cancelled: a cancelled wait would leave the commit visible on the primary
/// alone), so its outcome is unknown to the caller, as after a lost connection.
pub const APPEND_DEADLINE: Duration = Duration::from_secs(5);

/// A [`Store`] in PostgreSQL.
pub struct PostgresStore {
    pool: Pool,
    writer: std::sync::Mutex<Option<mpsc::UnboundedSender<WriteRequest>>>,
    head: watch::Sender<u64>,
    /// When the writer began the group it is writing (0: none), to refuse appends at once
    /// while a commit hangs.
    writing_since: Arc<AtomicI64>,
    /// The newest position other processes' notifications announced.
    others: watch::Sender<u64>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

/// A connection pool for `url` that gives up quickly when the database is away.
///
/// # Errors
/// When the URL does not parse.
pub fn pool(url: &str, size: usize) -> Result<Pool, Error> {
    pool_with(url, size, None)
}

/// Session settings of the writer's connections. Its statements are prepared once per
/// connection and planned once (a generic plan), not again for each run's values: planning such
/// short statements costs about as much as running them. Every one of them is a point lookup,
/// an append or a lock, whose right plan goes through an index whatever the arrays hold or the
/// table's size; with sequential scans ruled out, a plan made on an empty table stays right on a
/// large one. Nothing the writer runs is long enough to gain from JIT compiling, which a
/// ruled-out scan's paper cost would otherwise trigger, so JIT is off.
pub const WRITER_OPTIONS: &str =
    "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c jit=off";

/// How every connection to `url` is made. The URL may name several hosts with
/// `target_session_attrs=read-write` (libpq's form), to find the primary after a failover.
/// A database machine that is lost (no reset, no FIN) must not hold a connection for the
/// kernel's minutes of retransmissions: idle connections are probed every few seconds, and
/// one whose sent data goes unacknowledged for 10 s fails, so the pool drops it and the next
/// connection finds the new primary.
fn config(url: &str) -> Result<tokio_postgres::Config, Error> {
    let mut config: tokio_postgres::Config = url.parse().map_err(unavailable)?;
    config
        .connect_timeout(Duration::from_secs(5))
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(10));
    Ok(config)
}

/// A connection pool for `url` whose connections start with `options` (see [`WRITER_OPTIONS`]).
///
/// # Errors
/// When the URL does not parse.
pub fn pool_with(url: &str, size: usize, options: Option<&str>) -> Result<Pool, Error> {
    let mut config = config(url)?;
    if let Some(o) = options {
        config.options(o);
    }
    if config.get_application_name().is_none() {
        config.application_name("chatroom");
    }
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(unavailable)
}

impl PostgresStore {
    /// Connects to an already migrated database (see [`MIGRATION`]) and starts the writer and
    /// the listener.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, true).await
    }

    /// As [`connect`](Self::connect); without `notifications` the head moves only with this
    /// process's own appends and subscriptions find other processes' events by polling (used
    /// to show that nothing depends on NOTIFY).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub async fn connect_with(url: &str, notifications: bool) -> Result<Self, Error> {
        let pool = pool(url, 16)?;
        let head_now: i64 = pool
            .get()
            .await
            .map_err(unavailable)?
            .query_one("select coalesce(max(position), 0) from event", &[])
            .await
            .map_err(unavailable)?
            .get(0);
        let (head, _) = watch::channel(head_now as u64);
        let (others, _) = watch::channel(head_now as u64);
        // Names this store's appends in their notifications, so that its listener can tell
        // them from other processes'.
        let writer_id = Uuid::new_v4().simple().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        // The writer and its connections run on a thread of their own (as the embedded log's
        // writer does), so an append's round trips never wait behind the server's other tasks:
        // during a fan-out to thousands of sockets those fill both runtime workers, and the
        // acks waited for them.
        let writer_pool = pool_with(url, 2, Some(WRITER_OPTIONS))?;
        let writer_head = head.clone();
        let writing_since = Arc::new(AtomicI64::new(0));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(unavailable)?;
        std::thread::Builder::new()
            .name("pg-log-writer".into())
            .spawn({
                let (writer_id, since) = (writer_id.clone(), writing_since.clone());
                move || {
                    runtime.block_on(writer_loop(writer_pool, rx, writer_head, writer_id, since))
                }
            })
            .map_err(unavailable)?;
        let listener = notifications.then(|| {
            tokio::spawn(listen(
                url.to_owned(),
                head.clone(),
                others.clone(),
                writer_id,
            ))
        });
        Ok(Self {
            pool,
            writer: std::sync::Mutex::new(Some(tx)),
            head,
            writing_since,
            others,
            listener,
        })
    }

    /// The connection pool, for callers that keep other tables in the same database.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Stops taking appends; those already queued are still written.
    pub fn close(&self) {
        self.writer.lock().expect("writer lock").take();
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.close();
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

/// Follows NOTIFY on its own connection, reconnecting forever. A notification's payload is
/// the log's newest position and the id of the writer that sent it; one from another writer
/// (or without an id) also moves `others`.
async fn listen(url: String, head: watch::Sender<u64>, others: watch::Sender<u64>, own: String) {
    follow_notifications(url, CHANNEL, "log", move |payload| {
        let (position, writer) = payload.split_once(' ').unwrap_or((payload, ""));
        if let Ok(p) = position.parse::<u64>() {
            bump(&head, p);
            if writer != own {
                bump(&others, p);
            }
        }
    })
    .await
}

/// Hands every notification on `channel` to `each`, on a connection of its own that
/// reconnects forever (a second after each loss); what was sent while it was away is gone,
/// so its users also poll. `what` names the follower in the logs.
pub async fn follow_notifications(
    url: String,
    channel: &str,
    what: &str,
    mut each: impl FnMut(&str) + Send,
) {
    use futures::StreamExt;
    loop {
        let connected = async {
            let (client, mut connection) =
                config(&url)?.connect(NoTls).await.map_err(unavailable)?;
            let (tx, mut rx) = mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = messages.next().await {
                    match message {
                        Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                            let _ = tx.send(n.payload().to_owned());
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            client
                .batch_execute(&format!("listen {channel}"))
                .await
                .map_err(unavailable)?;
            while let Some(payload) = rx.recv().await {
                each(&payload);
            }
            driver.abort();
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = connected {
            tracing::debug!(error = %e, what, "notification listener disconnected; retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

const COLUMNS: &str = "position, stream_id, version, event_id, event_type, schema_version, \
                       recorded_at, payload, hash";

/// A stream's events from a version on. The readers' statements, like the writer's, come from
/// each connection's statement cache: sent as text, each read would be parsed and planned
/// again, a round trip more, for reads that the projection workers and the log follower make
/// thousands of times a second under load.
static STREAM_FROM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "select {COLUMNS} from event where stream_id = $1 and version >= $2 \
         order by version limit $3"
    )
});

/// The log after a position.
static LOG_AFTER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("select {COLUMNS} from event where position > $1 order by position limit $2")
});

fn to_recorded(row: &tokio_postgres::Row) -> Result<Recorded, Error> {
    let hash: Vec<u8> = row.get(8);
    Ok(Recorded {
        position: row.get::<_, i64>(0) as u64,
        stream_id: row.get(1),
        version: row.get::<_, i64>(2) as u64,
        event_id: row.get(3),
        event_type: row.get(4),
        schema_version: row.get::<_, i16>(5) as u16,
        recorded_at: row.get(6),
        payload: row.get(7),
        hash: hash
            .try_into()
            .map_err(|_| Error::Corrupt("a stored hash has the wrong length".into()))?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
        let since = self.writing_since.load(Ordering::Acquire);
        if since != 0 && crate::now_ms() - since > APPEND_DEADLINE.as_millis() as i64 {
            return Err(Error::Unavailable(format!(
                "the database has not committed for {} s (a synchronous standby lost?)",
                APPEND_DEADLINE.as_secs()
            )));
        }
        let (reply, answer) = oneshot::channel();
        {
            let writer = self.writer.lock().expect("writer lock");
            let Some(tx) = writer.as_ref() else {
                return Err(Error::Unavailable("the log is closed".into()));
            };
            tx.send(WriteRequest {
                stream: stream.to_owned(),
                expected,
                events,
                reply,
            })
            .map_err(|_| Error::Unavailable("the log writer stopped".into()))?;
        }
        match tokio::time::timeout(APPEND_DEADLINE, answer).await {
            Ok(answer) => {
                answer.map_err(|_| Error::Unavailable("the log writer stopped".into()))?
            }
            Err(_) => Err(Error::Unavailable(format!(
                "the database did not commit within {} s (a synchronous standby lost?); \
                 the append may still be stored",
                APPEND_DEADLINE.as_secs()
            ))),
        }
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Recorded>, Error> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let statement = client
            .prepare_cached(&STREAM_FROM)
            .await
            .map_err(unavailable)?;
        let rows = client
            .query(
                &statement,
                &[
                    &stream,
                    &(from_version as i64),
                    &(limit.min(i64::MAX as usize) as i64),
                ],
            )
            .await
            .map_err(unavailable)?;
        rows.iter().map(to_recorded).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let statement = client
            .prepare_cached(&LOG_AFTER)
            .await
            .map_err(unavailable)?;
        let rows = client
            .query(
                &statement,
                &[&(after as i64), &(limit.min(i64::MAX as usize) as i64)],
            )
            .await
            .map_err(unavailable)?;
        rows.iter().map(to_recorded).collect()
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let statement = client
            .prepare_cached("select max(version) from event where stream_id = $1")
            .await
            .map_err(unavailable)?;
        let row = client
            .query_one(&statement, &[&stream])
            .await
            .map_err(unavailable)?;
        Ok(row.get::<_, Option<i64>>(0).map(|v| v as u64))
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    fn others_head(&self) -> watch::Receiver<u64> {
        self.others.subscribe()
    }
}
