//! The log in PostgreSQL, shared by several server processes.
//!
//! - **Group commit.** Appends go to one writer task per process, which takes whatever is
//!   waiting and writes it in one transaction, commits once (`synchronous_commit` stays on)
//!   and then answers them all: in one round trip when it knows the heads of the group's
//!   streams (it remembers those it last read or wrote; the unique indexes catch a stale one),
//!   otherwise in two (heads and known ids read once, then one insert for every accepted
//!   event).
//! - **No skipped events.** Every append transaction first takes a transaction-level advisory
//!   lock, so appends from all processes commit one after another, each becoming visible before
//!   the next takes a position. A reader by position therefore never sees position N while a
//!   smaller position is still to commit (the sequence-gap trap); positions of rolled-back
//!   appends are gaps forever, and readers step over them.
//! - **Live reads.** A commit sends `NOTIFY chatroom_log`; a listener task moves the head watch.
//!   Subscriptions also poll, so a lost notification (or a listener reconnecting) only delays.
//! - **Going away.** Connections come from a pool that reconnects on its own; while the
//!   database is unreachable every call fails as [`Error::Unavailable`].

use crate::envelope::{NewEvent, Recorded, seal};
use crate::memory::check_expected;
use crate::migrate::Migration;
use crate::postgres_ids::{self, View};
use crate::sqlite_ids::Options as IdIndexOptions;
use crate::store::{Error, Expected, Store};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::TryFutureExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// The log's migration for PostgreSQL.
pub const MIGRATION: Migration = Migration {
    version: 1,
    name: "event_log",
    sql: include_str!("../../migrations/postgres/0001_event_log.sql"),
};

/// Key of the advisory lock every append transaction takes.
pub(crate) const APPEND_LOCK: i64 = 0x6368_6174_6c6f_6721; // "chatlog!"
/// The NOTIFY channel.
const CHANNEL: &str = "chatroom_log";
/// Most appends committed together.
const MAX_GROUP: usize = 1024;

struct WriteRequest {
    stream: String,
    expected: Expected,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<Recorded>, Error>>,
}

/// A [`Store`] in PostgreSQL.
pub struct PostgresStore {
    pool: Pool,
    writer: std::sync::Mutex<Option<mpsc::UnboundedSender<WriteRequest>>>,
    head: watch::Sender<u64>,
    /// The newest position other processes' notifications announced.
    others: watch::Sender<u64>,
    listener: Option<tokio::task::JoinHandle<()>>,
    upkeep: Option<tokio::task::JoinHandle<()>>,
    ids: IdIndexOptions,
}

/// How a [`PostgresStore`] runs.
#[derive(Clone, Copy, Debug)]
pub struct PostgresOptions {
    /// Follow other processes' appends by NOTIFY (without: by polling only).
    pub notifications: bool,
    /// The shape of the event-id index (young table of 1 million ids, 8 runs a merge).
    pub ids: IdIndexOptions,
    /// How often this process looks for upkeep of the event-id index to do; `None`: only
    /// when [`PostgresStore::maintain_ids`] is called.
    pub upkeep_every: Option<Duration>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            notifications: true,
            ids: postgres_ids::DEFAULT_OPTIONS,
            upkeep_every: Some(Duration::from_secs(2)),
        }
    }
}

/// The error with its causes: a database error's own text ("db error") says nothing of what
/// the database refused, its source does.
pub(crate) fn unavailable(e: impl std::error::Error) -> Error {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Unavailable(text)
}

/// For tests: a new database on the PostgreSQL at `CHATROOM_TEST_DATABASE_URL` (a URL that may
/// create databases), with `migrations` applied; its URL, or `None` (the test skips, saying
/// so) when the variable is not set.
///
/// # Panics
/// When the test server is set but cannot be reached or migrated.
///
/// Left only for `tests/postgres_ids.rs`, which goes with the event id index: every other test
/// passes the admin URL to [`crate::testing::scratch_database`] and is ignored, not passed,
/// without a server.
pub async fn scratch_database(migrations: &[Migration]) -> Option<String> {
    let Ok(admin) = std::env::var("CHATROOM_TEST_DATABASE_URL") else {
        eprintln!("skipped: CHATROOM_TEST_DATABASE_URL is not set (no PostgreSQL to test on)");
        return None;
    };
    let (client, conn) = tokio_postgres::connect(&admin, NoTls)
        .await
        .expect("the test PostgreSQL is reachable");
    tokio::spawn(conn);
    let name = format!("chatroom_test_{}", Uuid::new_v4().simple());
    client
        .batch_execute(&format!("create database {name}"))
        .await
        .expect("a test database can be created");
    let mut config: tokio_postgres::Config = admin.parse().expect("a PostgreSQL URL");
    config.dbname(&name);
    let (mut c, conn) = config
        .connect(NoTls)
        .await
        .expect("the test database is reachable");
    tokio::spawn(conn);
    crate::migrate::apply_postgres(&mut c, migrations)
        .await
        .expect("the test database migrates");
    // A URL for the new database, from the admin one.
    Some(match admin.rsplit_once('/') {
        Some((base, rest)) if !base.ends_with('/') => {
            let query = rest
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            format!("{base}/{name}{query}")
        }
        _ => format!("{admin} dbname={name}"),
    })
}

/// A connection pool for `url` that gives up quickly when the database is away.
///
/// # Errors
/// When the URL does not parse.
pub fn pool(url: &str, size: usize) -> Result<Pool, Error> {
    pool_with(url, size, None)
}

/// Session settings of the writer's connections. Its statements are prepared once per
/// connection and planned once (a generic plan), not again for each run's values: planning them
/// every time took as long as running them (1.2 s of planning against 1.3 s of execution in a
/// 10 s run at 5,000 msg/s). Every one of them is a point lookup, an append or a lock, whose
/// right plan goes through an index whatever the arrays hold or the table's size; with
/// sequential scans ruled out, a plan made on an empty table stays right on a large one. A
/// scan ruled out that is still the only way (a one-row table read whole) costs so much on
/// paper that PostgreSQL compiles it (JIT), about 10 ms a time: nothing the writer runs is
/// long enough to gain from compiling, so JIT is off.
const WRITER_OPTIONS: &str =
    "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c jit=off";

fn pool_with(url: &str, size: usize, options: Option<&str>) -> Result<Pool, Error> {
    let mut config: tokio_postgres::Config = url.parse().map_err(unavailable)?;
    if let Some(o) = options {
        config.options(o);
    }
    config.connect_timeout(Duration::from_secs(5));
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
        Self::connect_with_options(
            url,
            PostgresOptions {
                notifications,
                ..PostgresOptions::default()
            },
        )
        .await
    }

    /// As [`connect`](Self::connect), with `options`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub async fn connect_with_options(url: &str, options: PostgresOptions) -> Result<Self, Error> {
        let ids = IdIndexOptions {
            young_max: options.ids.young_max.max(1),
            fan_in: options.ids.fan_in.max(2),
        };
        let notifications = options.notifications;
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(unavailable)?;
        std::thread::Builder::new()
            .name("pg-log-writer".into())
            .spawn({
                let writer_id = writer_id.clone();
                move || runtime.block_on(writer_loop(writer_pool, rx, writer_head, writer_id))
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
        let upkeep = options
            .upkeep_every
            .map(|every| tokio::spawn(postgres_ids::keep_up(pool.clone(), ids, every)));
        Ok(Self {
            pool,
            writer: std::sync::Mutex::new(Some(tx)),
            head,
            others,
            listener,
            upkeep,
            ids,
        })
    }

    /// One pass of the event-id index's upkeep, as the background task does it: seals the
    /// young table if full, makes missing filters, merges runs.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database fails.
    pub async fn maintain_ids(&self) -> Result<postgres_ids::Upkeep, Error> {
        postgres_ids::maintain(&self.pool, &self.ids).await
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
        if let Some(upkeep) = &self.upkeep {
            upkeep.abort();
        }
    }
}

fn bump(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|h| {
        let moved = position > *h;
        *h = (*h).max(position);
        moved
    });
}

/// Follows NOTIFY on its own connection, reconnecting forever. A notification's payload is
/// the log's newest position and the id of the writer that sent it; one from another writer
/// (or without an id) also moves `others`.
async fn listen(url: String, head: watch::Sender<u64>, others: watch::Sender<u64>, own: String) {
    use futures::StreamExt;
    loop {
        let connected = async {
            let mut config: tokio_postgres::Config = url.parse().map_err(unavailable)?;
            config.connect_timeout(Duration::from_secs(5));
            let (client, mut connection) = config.connect(NoTls).await.map_err(unavailable)?;
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
                .batch_execute(&format!("listen {CHANNEL}"))
                .await
                .map_err(unavailable)?;
            // What was committed before we listened is found by the subscriptions' poll.
            while let Some(payload) = rx.recv().await {
                let (position, writer) = payload.split_once(' ').unwrap_or((&payload, ""));
                if let Ok(p) = position.parse::<u64>() {
                    bump(&head, p);
                    if writer != own {
                        bump(&others, p);
                    }
                }
            }
            driver.abort();
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = connected {
            tracing::debug!(error = %e, "log listener disconnected; retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn writer_loop(
    pool: Pool,
    mut rx: mpsc::UnboundedReceiver<WriteRequest>,
    head: watch::Sender<u64>,
    writer_id: String,
) {
    let mut known = Known::default();
    let mut view = View::default();
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let results = match write_group(&pool, &group, &writer_id, &mut known, &mut view).await {
            Ok(r) => r,
            Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
        };
        if let Some(p) = results
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|v| v.last()).map(|e| e.position))
            .max()
        {
            bump(&head, p);
        }
        for (req, result) in group.into_iter().zip(results) {
            let _ = req.reply.send(result);
        }
    }
}

/// The stored events among a group's event ids: those in the young table, and those in the
/// runs the writer names (see `postgres_ids`). Its SQL is made once, not per group.
static BY_IDS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "select {COLUMNS} from event
         where position = any(array(select found from event_id_find($1, $2, $3)))"
    )
});

/// Fails the transaction when the runs of the event-id index changed since the writer's view.
const CHECK_IDS: &str = "select event_id_check($1)";

/// Fails the transaction when one of the ids is stored in run `run` (one whose filter may
/// hold it, or that has no filter). A statement per run, prepared once per connection: the
/// same probe as dynamic SQL inside a function was planned again each time, 100 to 200 µs
/// of the database's time under the append lock.
fn probe_run(run: i64) -> String {
    format!(
        "select event_id_stored(exists (select 1 from event_id_run_{run}
                                        where event_id = any($1)), {run})"
    )
}

/// The probes of the runs that may hold some of `ids`, each prepared, with its ids. A run
/// whose table a merge has dropped since the writer's view fails to prepare: the view is
/// stale.
async fn probes(
    client: &deadpool_postgres::Client,
    view: &View,
    ids: &[Uuid],
) -> Result<Vec<(tokio_postgres::Statement, Vec<Uuid>)>, Failure> {
    let (runs, run_ids) = view.candidates(ids);
    let mut out: Vec<(i64, Vec<Uuid>)> = Vec::new();
    for (run, id) in runs.into_iter().zip(run_ids) {
        match out.last_mut() {
            Some((r, list)) if *r == run => list.push(id),
            _ => out.push((run, vec![id])),
        }
    }
    let mut prepared = Vec::with_capacity(out.len());
    for (run, list) in out {
        match client.prepare_cached(&probe_run(run)).await {
            Ok(statement) => prepared.push((statement, list)),
            Err(e) => return Err(probe_failed(e)),
        }
    }
    Ok(prepared)
}

/// Why a probe of a run failed, to prepare or to run: a run of the view merged away (its table
/// is gone) means the view is stale. Only a probe's missing table means that; the same error
/// from any other statement stays an error.
fn probe_failed(e: tokio_postgres::Error) -> Failure {
    if e.code() == Some(&SqlState::UNDEFINED_TABLE) {
        Failure::Stale
    } else {
        failed(e)
    }
}

/// The newest event of each of a group's streams.
const HEADS_OF: &str = "select s.id, e.version, e.hash from unnest($1::text[]) as s(id)
     cross join lateral (
         select version, hash from event where stream_id = s.id
         order by version desc limit 1
     ) e";

/// Every accepted event of a group, in order, and its id in the young table of the event-id
/// index (`postgres_ids`), whose unique index refuses an id stored there. Nothing when the
/// index's runs changed since generation `$9`, the writer's view: read under the append lock,
/// this is the one-round-trip path's check (a statement of its own cost about 35 µs a group,
/// a tenth of a millisecond of delivery latency at 5,000 msg/s with the rest of the change).
const INSERT: &str = "with e as (
         insert into event (stream_id, version, event_id, event_type, schema_version,
                            recorded_at, payload, hash)
         select s, v, id, t, sv, ra, p, h
         from unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::smallint[],
                     $6::bigint[], $7::bytea[], $8::bytea[])
              with ordinality as u(s, v, id, t, sv, ra, p, h, n)
         where (select generation from event_id_state where one) = $9
         order by n
         returning position, event_id
     ), y as (
         insert into event_id_young (event_id, position) select event_id, position from e
     )
     select position, event_id from e";

/// The listeners' wake-up, with the log's newest position and the writer's id: under the
/// append lock that position is the group's last event, so it needs no answer from the insert
/// and goes out with it.
const NOTIFY: &str = "select pg_notify($1, (select max(position) from event)::text || ' ' || $2)";

/// The heads (version and hash of the last event) of the streams this process's writer last
/// read or wrote. They may be stale: another process may have appended since.
#[derive(Default)]
struct Known {
    heads: HashMap<String, (u64, [u8; 32])>,
}

/// Streams whose heads the writer keeps at most; past that it forgets them all and reads
/// them again as they come.
const KNOWN_MAX: usize = 100_000;

impl Known {
    fn learn(&mut self, stream: &str, head: (u64, [u8; 32])) {
        if self.heads.len() >= KNOWN_MAX && !self.heads.contains_key(stream) {
            self.heads.clear();
        }
        self.heads.insert(stream.to_owned(), head);
    }

    fn learn_results(&mut self, results: &[Result<Vec<Recorded>, Error>]) {
        for recs in results.iter().flatten() {
            if let Some(last) = recs.last() {
                self.learn(&last.stream_id, (last.version, last.hash));
            }
        }
    }
}

/// Writes a group. When the writer knows the head of every stream in the group and each
/// request's expected version matches it, in one round trip: the begin, the advisory lock, the
/// insert of every event, the notification and the commit. The known heads need no reading:
/// the unique index on `(stream_id, version)` checks them, since a stale head (another
/// process appended since) makes the insert collide with the event that process wrote, and
/// so does an event id already stored. On such a collision the transaction rolls back (the
/// commit behind the insert ends it) and the group is written as below, reading the heads and
/// the ids. A new stream (`NoStream` expected) is checked the same way: its version 1 exists
/// if the stream does.
///
/// Otherwise in two round trips whatever its size. The first carries the begin, the advisory
/// lock, one query for the heads of every stream in the group and one for event ids already
/// stored; the second the insert of every accepted event, the notification and the commit.
/// Under the lock nobody else appends, so checking expected versions against the heads read
/// here is exact; a request that fails its check is answered and its events left out.
///
/// A failed statement aborts the transaction, and the commit pipelined behind it then rolls
/// back: nothing of the group is stored, and every request in it is answered `Unavailable`.
/// The known heads are then forgotten: a database that lost commits (restored, or failed over
/// to a replica that was behind) comes back through errors, and must not be trusted to hold
/// the heads this writer saw.
async fn write_group(
    pool: &Pool,
    group: &[WriteRequest],
    writer_id: &str,
    known: &mut Known,
    view: &mut View,
) -> Result<Vec<Result<Vec<Recorded>, Error>>, Error> {
    let mut client = pool.get().await.map_err(unavailable)?;
    let statements = Statements::prepare(&client).await?;
    let mut written = Err(Failure::Stale);
    // The runs of the event-id index change once per million events or so; a group that
    // meets a change is written again once the writer has read them.
    for _ in 0..STALE_TRIES {
        written = match write_known(&client, &statements, group, writer_id, known, view).await {
            Ok(None) => write_read(&client, &statements, group, writer_id, known, view).await,
            Ok(Some(results)) => Ok(results),
            Err(e) => Err(e),
        };
        if !matches!(written, Err(Failure::Stale)) {
            break;
        }
        // No transaction is left open: a stale view fails `write_known` before its begin (a
        // run's table is gone) or in its pipeline, whose commit then rolls back, and
        // `write_read` rolls back itself. (A rollback here warned "there is no transaction
        // in progress" in the server's log at every change of the runs.)
        match View::load(&mut client, view).await {
            Ok(v) => *view = v,
            Err(e) => {
                written = Err(Failure::Error(e));
                break;
            }
        }
    }
    match written {
        Ok(results) => {
            known.learn_results(&results);
            Ok(results)
        }
        Err(e) => {
            known.heads.clear();
            release_after_failure(client).await;
            Err(match e {
                Failure::Stale => {
                    Error::Unavailable("the event-id index kept changing under the append".into())
                }
                Failure::Error(e) => e,
            })
        }
    }
}

/// Times a group is tried on a fresh view of the event-id index's runs.
const STALE_TRIES: usize = 5;

/// Why a try at writing a group failed.
#[derive(Debug)]
enum Failure {
    /// The event-id index's runs changed since the writer's view: nothing was written.
    Stale,
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

/// A database error of a group's transaction.
fn failed(e: tokio_postgres::Error) -> Failure {
    if postgres_ids::is_stale(&e) {
        Failure::Stale
    } else {
        Failure::Error(unavailable(e))
    }
}

/// Returns a connection to its pool after a failed transaction. The transaction may still be
/// open (aborted, or cut short before its commit): it is ended first, or the connection
/// dropped when it cannot be.
pub async fn release_after_failure(client: deadpool_postgres::Client) {
    if client.batch_execute("rollback").await.is_err() {
        drop(deadpool_postgres::Object::take(client));
    }
}

/// The writer's statements, from the connection's statement cache. Statements polled together
/// are pipelined: sent at once, answered in order. So all are prepared before any is sent: one
/// still to prepare would go out after those polled with it, the commit before the insert.
/// (A statement given as text is parsed again each time, one more round trip per statement
/// while holding the lock.)
struct Statements {
    begin: tokio_postgres::Statement,
    lock: tokio_postgres::Statement,
    heads_of: tokio_postgres::Statement,
    check_ids: tokio_postgres::Statement,
    by_ids: tokio_postgres::Statement,
    insert: tokio_postgres::Statement,
    notify: tokio_postgres::Statement,
    commit: tokio_postgres::Statement,
}

impl Statements {
    async fn prepare(client: &deadpool_postgres::Client) -> Result<Self, Error> {
        let statement = |sql: &'static str| async move {
            client.prepare_cached(sql).await.map_err(unavailable)
        };
        Ok(Self {
            begin: statement("begin").await?,
            lock: statement("select pg_advisory_xact_lock($1)").await?,
            heads_of: statement(HEADS_OF).await?,
            check_ids: statement(CHECK_IDS).await?,
            by_ids: statement(BY_IDS.as_str()).await?,
            insert: statement(INSERT).await?,
            notify: statement(NOTIFY).await?,
            commit: statement("commit").await?,
        })
    }
}

/// What became of each request of a group.
enum Outcome {
    /// Answered without writing.
    Done(Result<Vec<Recorded>, Error>),
    /// Its events are written.
    Accepted(Vec<Recorded>),
    /// Carries an event id that an earlier request of the group wrote.
    SameAsEarlier(Uuid),
}

/// Decides each request of a group in order, as if appended one after another, against the
/// streams' `heads` (moved by each accepted request) and the events `stored` under the
/// group's ids.
fn decide(
    group: &[WriteRequest],
    heads: &mut HashMap<String, (u64, [u8; 32])>,
    stored: &HashMap<Uuid, Recorded>,
) -> Vec<Outcome> {
    let mut accepted_ids: HashMap<Uuid, ()> = HashMap::new();
    let mut outcomes = Vec::with_capacity(group.len());
    for req in group {
        if req.events.is_empty() {
            outcomes.push(Outcome::Done(Err(Error::Empty)));
            continue;
        }
        let head = heads.get(&req.stream).copied();
        if let Err(e) = check_expected(&req.stream, req.expected, head.map(|(v, _)| v)) {
            outcomes.push(Outcome::Done(Err(e)));
            continue;
        }
        if let Some(found) = req.events.iter().find_map(|e| stored.get(&e.event_id)) {
            outcomes.push(Outcome::Done(Err(Error::Duplicate(Box::new(
                found.clone(),
            )))));
            continue;
        }
        if let Some(e) = req
            .events
            .iter()
            .find(|e| accepted_ids.contains_key(&e.event_id))
        {
            outcomes.push(Outcome::SameAsEarlier(e.event_id));
            continue;
        }
        let mut seen = std::collections::HashSet::new();
        if !req.events.iter().all(|e| seen.insert(e.event_id)) {
            outcomes.push(Outcome::Done(Err(Error::Corrupt(
                "an event id appears twice in one append".into(),
            ))));
            continue;
        }
        let recs = seal(&req.stream, head, &req.events);
        for r in &recs {
            accepted_ids.insert(r.event_id, ());
        }
        if let Some(last) = recs.last() {
            heads.insert(req.stream.clone(), (last.version, last.hash));
        }
        outcomes.push(Outcome::Accepted(recs));
    }
    outcomes
}

/// A group's accepted events as the insert's columns, in order.
struct Rows<'a> {
    stream_ids: Vec<&'a str>,
    versions: Vec<i64>,
    event_ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schemas: Vec<i16>,
    times: Vec<i64>,
    payloads: Vec<&'a [u8]>,
    hashes: Vec<&'a [u8]>,
}

impl<'a> Rows<'a> {
    fn of(outcomes: &'a [Outcome]) -> Self {
        let rows: Vec<&Recorded> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Accepted(recs) => Some(recs.iter()),
                _ => None,
            })
            .flatten()
            .collect();
        Rows {
            stream_ids: rows.iter().map(|r| r.stream_id.as_str()).collect(),
            versions: rows.iter().map(|r| r.version as i64).collect(),
            event_ids: rows.iter().map(|r| r.event_id).collect(),
            types: rows.iter().map(|r| r.event_type.as_str()).collect(),
            schemas: rows.iter().map(|r| r.schema_version as i16).collect(),
            times: rows.iter().map(|r| r.recorded_at).collect(),
            payloads: rows.iter().map(|r| r.payload.as_slice()).collect(),
            hashes: rows.iter().map(|r| r.hash.as_slice()).collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.event_ids.is_empty()
    }

    /// The insert's parameters, with `generation` (the writer's view of the id index).
    fn params<'p>(
        &'p self,
        generation: &'p i64,
    ) -> [&'p (dyn tokio_postgres::types::ToSql + Sync); 9] {
        [
            &self.stream_ids,
            &self.versions,
            &self.event_ids,
            &self.types,
            &self.schemas,
            &self.times,
            &self.payloads,
            &self.hashes,
            generation,
        ]
    }
}

/// The answers to a group's requests, once its accepted events have their positions.
fn answers(
    outcomes: Vec<Outcome>,
    inserted: Vec<tokio_postgres::Row>,
) -> Vec<Result<Vec<Recorded>, Error>> {
    let positions: HashMap<Uuid, u64> = inserted
        .iter()
        .map(|row| (row.get(1), row.get::<_, i64>(0) as u64))
        .collect();
    let mut by_id: HashMap<Uuid, Recorded> = HashMap::new();
    let mut results = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        results.push(match o {
            Outcome::Done(r) => r,
            Outcome::Accepted(mut recs) => {
                for r in &mut recs {
                    r.position = positions.get(&r.event_id).copied().unwrap_or(0);
                    by_id.insert(r.event_id, r.clone());
                }
                Ok(recs)
            }
            Outcome::SameAsEarlier(id) => match by_id.get(&id) {
                Some(r) => Err(Error::Duplicate(Box::new(r.clone()))),
                None => Err(Error::Corrupt("an event id repeated in one group".into())),
            },
        });
    }
    results
}

/// The group in one round trip on the known heads (see [`write_group`]); `None`, having
/// written nothing, when a head is unknown, an expected version does not match the known
/// one, or the insert collides.
async fn write_known(
    client: &deadpool_postgres::Client,
    st: &Statements,
    group: &[WriteRequest],
    writer_id: &str,
    known: &Known,
    view: &View,
) -> Result<Option<Vec<Result<Vec<Recorded>, Error>>>, Failure> {
    let mut heads = HashMap::new();
    for req in group {
        match known.heads.get(&req.stream) {
            Some(head) => {
                heads.insert(req.stream.clone(), *head);
            }
            // A stream to create: its version 1, if it exists, makes the insert collide.
            None if req.expected == Expected::NoStream => {}
            None => return Ok(None),
        }
    }
    let outcomes = decide(group, &mut heads, &HashMap::new());
    if outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Done(Err(Error::Conflict { .. }))))
    {
        // The known head may be stale: only the database can say it is a conflict.
        return Ok(None);
    }
    let rows = Rows::of(&outcomes);
    if rows.is_empty() {
        return Ok(None);
    }
    // The runs that may hold an id (a retry, or a filter's false positive) are probed in the
    // transaction, before the insert; a stored id fails it as the young table's index would.
    // A probe on a stale view is harmless: a stored id is stored whatever the view, and the
    // insert checks the view.
    let probes = probes(client, view, &rows.event_ids).await?;
    let written = {
        let params = rows.params(&view.generation);
        let notice: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&CHANNEL, &writer_id];
        let probed: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
            probes.iter().map(|(_, ids)| [ids as _]).collect();
        futures::try_join!(
            client.execute(&st.begin, &[]).map_err(Step::Other),
            client
                .execute(&st.lock, &[&APPEND_LOCK])
                .map_err(Step::Other),
            futures::future::try_join_all(
                probes
                    .iter()
                    .zip(&probed)
                    .map(|((statement, _), p)| client.execute(statement, p).map_err(Step::Probe))
            ),
            client.query(&st.insert, &params).map_err(Step::Other),
            client.execute(&st.notify, &notice).map_err(Step::Other),
            client.execute(&st.commit, &[]).map_err(Step::Other),
        )
    };
    drop(rows);
    match written {
        // The runs changed since the view: the insert wrote nothing (and the commit ended an
        // empty transaction).
        Ok((_, _, _, inserted, _, _)) if inserted.is_empty() => Err(Failure::Stale),
        Ok((_, _, _, inserted, _, _)) => Ok(Some(answers(outcomes, inserted))),
        // The commit sent behind the insert rolled the transaction back.
        Err(Step::Probe(e) | Step::Other(e)) if is_unique_violation(&e) => Ok(None),
        Err(Step::Probe(e)) => Err(probe_failed(e)),
        Err(Step::Other(e)) => Err(failed(e)),
    }
}

/// Which statement of the one-round-trip pipeline failed.
enum Step {
    /// A probe of a run.
    Probe(tokio_postgres::Error),
    /// Any other statement.
    Other(tokio_postgres::Error),
}

/// The group in two round trips, reading the heads and the ids (see [`write_group`]).
async fn write_read(
    client: &deadpool_postgres::Client,
    st: &Statements,
    group: &[WriteRequest],
    writer_id: &str,
    known: &mut Known,
    view: &View,
) -> Result<Vec<Result<Vec<Recorded>, Error>>, Failure> {
    let mut streams: Vec<&str> = group.iter().map(|r| r.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let ids: Vec<Uuid> = group
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id))
        .collect();
    let (runs, run_ids) = view.candidates(&ids);
    let first = futures::try_join!(
        async { client.execute(&st.begin, &[]).await.map_err(failed) },
        async {
            client
                .execute(&st.lock, &[&APPEND_LOCK])
                .await
                .map_err(failed)
        },
        async {
            client
                .execute(&st.check_ids, &[&view.generation])
                .await
                .map_err(failed)
        },
        async {
            client
                .query(&st.heads_of, &[&streams])
                .await
                .map_err(failed)
        },
        async {
            client
                .query(&st.by_ids, &[&ids, &runs, &run_ids])
                .await
                .map_err(failed)
        },
    );
    let (_, _, _, head_rows, id_rows) = match first {
        Ok(read) => read,
        Err(Failure::Stale) => {
            // The check failed and nothing ended the transaction: it ends here, so the
            // group can be tried again on this connection.
            client
                .batch_execute("rollback")
                .await
                .map_err(unavailable)?;
            return Err(Failure::Stale);
        }
        Err(e) => return Err(e),
    };
    let mut heads: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    for row in head_rows {
        let hash: Vec<u8> = row.get(2);
        let hash = hash
            .try_into()
            .map_err(|_| Error::Corrupt("a stored hash has the wrong length".into()))?;
        let stream: String = row.get(0);
        let head = (row.get::<_, i64>(1) as u64, hash);
        known.learn(&stream, head);
        heads.insert(stream, head);
    }
    let mut stored: HashMap<Uuid, Recorded> = HashMap::new();
    for row in id_rows {
        let rec = to_recorded(&row)?;
        stored.insert(rec.event_id, rec);
    }

    let outcomes = decide(group, &mut heads, &stored);
    // One insert for everything accepted, in order.
    let rows = Rows::of(&outcomes);
    if rows.is_empty() {
        client.execute(&st.commit, &[]).await.map_err(failed)?;
        drop(rows);
        return Ok(answers(outcomes, Vec::new()));
    }
    let accepted = rows.event_ids.len();
    let (inserted, _, _) = futures::try_join!(
        async {
            client
                .query(&st.insert, &rows.params(&view.generation))
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        // Impossible under the lock unless someone writes without it.
                        Failure::Error(Error::Unavailable(format!(
                            "the log changed under the append lock: {e}"
                        )))
                    } else {
                        failed(e)
                    }
                })
        },
        async {
            client
                .execute(&st.notify, &[&CHANNEL, &writer_id])
                .await
                .map_err(failed)
        },
        async { client.execute(&st.commit, &[]).await.map_err(failed) },
    )?;
    drop(rows);
    if inserted.len() != accepted {
        // The view was checked under the lock: only a writer that skips the lock gets here.
        // Positions are unknown, so nothing is acknowledged.
        return Err(Failure::Error(Error::Unavailable(
            "the event-id index's runs changed under the append lock".into(),
        )));
    }
    Ok(answers(outcomes, inserted))
}

const COLUMNS: &str = "position, stream_id, version, event_id, event_type, schema_version, \
                       recorded_at, payload, hash";

/// A stream's events from a version on. The readers' statements, like the writer's, come from
/// each connection's statement cache: sent as text, each read was parsed and planned again, a
/// round trip more, and the planning alone took 0.9 s of the database's time in a 10 s run at
/// 5,000 msg/s (17,000 reads by the projection workers and the log follower).
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

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

#[async_trait]
impl Store for PostgresStore {
    async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
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
        answer
            .await
            .map_err(|_| Error::Unavailable("the log writer stopped".into()))?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{admin_url, scratch_database};

    fn request(stream: &str, expected: Expected) -> WriteRequest {
        let (reply, _) = oneshot::channel();
        WriteRequest {
            stream: stream.to_owned(),
            expected,
            events: vec![NewEvent::new(&crate::Event::MemberJoined(
                crate::event::MemberJoined {
                    room_id: "r".into(),
                    user_id: "u".into(),
                },
            ))],
            reply,
        }
    }

    #[cfg_attr(
        no_test_postgres,
        ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
    )]
    #[tokio::test]
    async fn a_group_on_known_heads_takes_one_round_trip_and_a_stale_head_writes_nothing() {
        let url = scratch_database(admin_url(), &[MIGRATION, postgres_ids::MIGRATION]).await;
        let pool = pool_with(&url, 1, Some(WRITER_OPTIONS)).unwrap();
        let mut client = pool.get().await.unwrap();
        let view = View::load(&mut client, &View::default()).await.unwrap();
        let st = Statements::prepare(&client).await.unwrap();
        let mut known = Known::default();
        let reader = super::pool(&url, 1).unwrap();
        let stored = || async {
            let c = reader.get().await.unwrap();
            c.query_one("select count(*) from event", &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        };
        // A new stream and then the head just written: one round trip each.
        for (expected, version) in [(Expected::NoStream, 1), (Expected::Exact(1), 2)] {
            let group = [request("room-x", expected)];
            let written = write_known(&client, &st, &group, "w", &known, &view)
                .await
                .unwrap()
                .expect("written on the known head");
            let recs = written[0].as_ref().unwrap();
            assert_eq!(recs[0].version, version);
            assert!(recs[0].position > 0);
            known.learn_results(&written);
        }
        // An unknown head, or an expected version the known head does not match (stale, or
        // a real conflict): only the database can tell, so nothing is sent.
        for group in [
            [request("room-y", Expected::Exact(1))],
            [request("room-x", Expected::Exact(5))],
        ] {
            assert!(
                write_known(&client, &st, &group, "w", &known, &view)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert_eq!(stored().await, 2);
        // A stale head (the stream has moved on): the insert collides, nothing is written,
        // and the two-trip path on the same connection writes after the real head.
        let stale = known.heads["room-x"];
        let second = write_known(
            &client,
            &st,
            &[request("room-x", Expected::Any)],
            "w",
            &known,
            &view,
        )
        .await
        .unwrap()
        .unwrap();
        known.learn_results(&second);
        known.heads.insert("room-x".into(), stale);
        let group = [request("room-x", Expected::Any)];
        assert!(
            write_known(&client, &st, &group, "w", &known, &view)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(stored().await, 3);
        let written = write_read(&client, &st, &group, "w", &mut known, &view)
            .await
            .unwrap();
        assert_eq!(written[0].as_ref().unwrap()[0].version, 4);
        assert_eq!(known.heads["room-x"].0, 3, "learnt from the database");
        assert_eq!(stored().await, 4);
    }

    #[cfg_attr(
        no_test_postgres,
        ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
    )]
    #[tokio::test]
    async fn the_writer_plans_its_statements_once_and_every_plan_reads_through_an_index() {
        let url = scratch_database(admin_url(), &[MIGRATION, postgres_ids::MIGRATION]).await;
        let show = |pool: Pool, what: &'static str| async move {
            let client = pool.get().await.unwrap();
            let row = client
                .query_one(&format!("show {what}"), &[])
                .await
                .unwrap();
            row.get::<_, String>(0)
        };
        let writer = pool_with(&url, 1, Some(WRITER_OPTIONS)).unwrap();
        assert_eq!(
            show(writer.clone(), "plan_cache_mode").await,
            "force_generic_plan"
        );
        assert_eq!(show(writer.clone(), "enable_seqscan").await, "off");
        assert_eq!(show(writer.clone(), "jit").await, "off");
        let other = pool(&url, 1).unwrap();
        assert_eq!(show(other.clone(), "plan_cache_mode").await, "auto");
        assert_eq!(show(other, "enable_seqscan").await, "on");

        // The plan each statement keeps is made on the first run, here on an empty log, and
        // must still be right once the log holds millions of events: an index, never a scan of
        // the whole table.
        let client = writer.get().await.unwrap();
        let statements = [
            ("heads", "text[]", HEADS_OF, "'{a,b}'"),
            (
                "ids",
                "uuid[], bigint[], uuid[]",
                BY_IDS.as_str(),
                "'{00000000-0000-0000-0000-000000000000}', '{}', '{}'",
            ),
            ("notify", "text, text", NOTIFY, "'nobody_listens', 'w'"),
        ];
        for (name, ty, sql, arg) in statements {
            client
                .batch_execute(&format!("prepare {name}({ty}) as {sql}"))
                .await
                .unwrap();
            let plan: Vec<String> = client
                .query(&format!("explain execute {name}({arg})"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let plan = plan.join("\n");
            assert!(plan.contains("Index"), "{name}: {plan}");
            assert!(!plan.contains("Seq Scan"), "{name}: {plan}");
            if name == "ids" {
                // The events found by the index's lookup are read by position.
                assert!(plan.contains("event_pkey"), "{name}: {plan}");
            }
        }
    }
}
