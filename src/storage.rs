//! Opening the data: the log, the read tables and the sessions, embedded or in PostgreSQL
//! (and, with the `eventstoredb` feature, the log in EventStoreDB/KurrentDB).

use crate::auth::Sessions;
use crate::config::StoreArgs;
use anyhow::Context;
use events::event::{LOG_FORMAT, LOG_STREAM, LogStarted};
use events::keys::Keys;
use events::migrate::Migration;
use events::snapshot::{PostgresSnapshots, Snapshots, SqliteSnapshots};
use events::{Event, Expected, NewEvent, PostgresStore, SqliteStore, Store};
use projections::{ReadDb, Reads};
use std::sync::Arc;
use std::time::Duration;

/// Every PostgreSQL migration, in order.
pub const POSTGRES_MIGRATIONS: [Migration; 15] = [
    events::postgres::MIGRATION,
    projections::postgres::MIGRATION,
    crate::auth::PG_MIGRATION,
    projections::postgres::SEARCH_MIGRATION,
    events::snapshot::POSTGRES_MIGRATION,
    events::postgres::ID_INDEX_MIGRATIONS[0],
    events::postgres::ID_INDEX_MIGRATIONS[1],
    events::keys::POSTGRES_MIGRATION,
    projections::postgres::SEALED_MIGRATION,
    projections::postgres::GOVERNANCE_MIGRATION,
    projections::postgres::MESSAGES_MIGRATION,
    projections::markers::POSTGRES_MIGRATION,
    projections::postgres::DIRECT_MIGRATION,
    crate::signing::PG_MIGRATION,
    projections::dead::POSTGRES_MIGRATION,
];

/// The opened data.
pub struct Storage {
    /// The log.
    pub store: Arc<dyn Store>,
    /// The read tables.
    pub reads: Reads,
    /// The key store, beside the read tables.
    pub keys: Arc<Keys>,
    /// Whether other processes may write the same log (PostgreSQL): rooms must then follow
    /// the log for what others wrote.
    pub shared: bool,
    backend: Backend,
}

enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>, deadpool_postgres::Pool),
    /// The log in EventStoreDB; read tables and sessions in PostgreSQL (the pool) or else in
    /// the data folder.
    #[cfg(feature = "eventstoredb")]
    Esdb(Arc<events::EsdbStore>, Option<deadpool_postgres::Pool>),
}

/// Applies the PostgreSQL migrations at `url`.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate_postgres(url: &str) -> anyhow::Result<usize> {
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    let driver = tokio::spawn(connection);
    let applied = events::migrate::apply_postgres(&mut client, &POSTGRES_MIGRATIONS)
        .await
        .context("applying migrations")?;
    drop(client);
    let _ = driver.await;
    Ok(applied)
}

/// The key store in the data folder (`keys.db`).
fn open_keys(data: &std::path::Path) -> anyhow::Result<Keys> {
    Keys::open_file(&data.join("keys.db")).context("opening the key store (keys.db)")
}

/// The key store in PostgreSQL.
async fn postgres_keys(pool: &deadpool_postgres::Pool) -> anyhow::Result<Keys> {
    Keys::postgres(pool.clone())
        .await
        .context("opening the key store in PostgreSQL")
}

/// What the log's first event says of the rules it was written under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// No event yet.
    Empty,
    /// Today's: personal data sealed.
    Current,
    /// Written by an earlier version: `chatroom upgrade` first.
    Old,
}

/// Reads the log's format from its first event.
///
/// # Errors
/// When the log cannot be read.
pub async fn format(store: &dyn Store) -> anyhow::Result<Format> {
    let first = store.read_all(0, 1).await.context("reading the log")?;
    Ok(match first.first() {
        None => Format::Empty,
        Some(rec) => match rec.decode() {
            Ok(Event::LogStarted(s)) if s.format == LOG_FORMAT => Format::Current,
            _ => Format::Old,
        },
    })
}

/// Makes sure the log follows today's rules: an empty log gets its [`LogStarted`] event; a
/// log written by an earlier version is refused, naming the command that upgrades it.
///
/// # Errors
/// An old log, or a log that cannot be read or written.
pub async fn ensure_format(store: &dyn Store) -> anyhow::Result<()> {
    for _ in 0..3 {
        match format(store).await? {
            Format::Current => return Ok(()),
            Format::Old => anyhow::bail!(
                "this log was written by an earlier version of chatroom, which kept personal \
                 data in clear; run `chatroom upgrade` (with the same storage options) to copy it \
                 into a log under today's rules, then start the server again"
            ),
            Format::Empty => {
                let started = Event::LogStarted(LogStarted { format: LOG_FORMAT });
                match store
                    .append(
                        LOG_STREAM,
                        Expected::NoStream,
                        vec![NewEvent::new(&started)],
                    )
                    .await
                {
                    // Another process started the log at the same moment: read it again.
                    Ok(_) | Err(events::Error::Conflict { .. }) => {}
                    Err(e) => return Err(e).context("starting the log"),
                }
            }
        }
    }
    anyhow::bail!("the log's first event is not where it was written")
}

impl Storage {
    /// Opens the store named by `args`, creating and migrating what is missing.
    ///
    /// # Errors
    /// When the data folder or database cannot be opened or migrated.
    pub async fn open(args: &StoreArgs) -> anyhow::Result<Self> {
        let data = &args.data_dir;
        std::fs::create_dir_all(data)
            .with_context(|| format!("creating the data folder {}", data.display()))?;
        #[cfg(feature = "eventstoredb")]
        if let Some(url) = &args.eventstore_url {
            return Self::open_eventstore(args, url).await;
        }
        match &args.database_url {
            None => {
                let sqlite = Arc::new(
                    SqliteStore::open(data.join("events.db")).context("opening the event log")?,
                );
                let read = ReadDb::open(data.join("read.db")).context("opening the read tables")?;
                Ok(Self {
                    store: sqlite.clone(),
                    reads: Reads::Sqlite(read),
                    keys: Arc::new(open_keys(data)?),
                    shared: false,
                    backend: Backend::Sqlite(sqlite),
                })
            }
            Some(url) => {
                migrate_postgres(url).await?;
                let pg = Arc::new(
                    PostgresStore::connect(url)
                        .await
                        .context("connecting the event log to PostgreSQL")?,
                );
                let pool = events::postgres::pool(url, 16).context("PostgreSQL pool")?;
                Ok(Self {
                    store: pg.clone(),
                    reads: Reads::Postgres(pool.clone()),
                    keys: Arc::new(postgres_keys(&pool).await?),
                    shared: true,
                    backend: Backend::Postgres(pg, pool),
                })
            }
        }
    }

    /// The log in EventStoreDB/KurrentDB, the read tables and sessions where they would be
    /// without it. Other processes may write the same log, so `shared` is set.
    #[cfg(feature = "eventstoredb")]
    async fn open_eventstore(args: &StoreArgs, url: &str) -> anyhow::Result<Self> {
        let esdb = Arc::new(
            events::EsdbStore::connect(url)
                .await
                .context("connecting the event log to EventStoreDB")?,
        );
        let (reads, pool, keys) = match &args.database_url {
            Some(db) => {
                migrate_postgres(db).await?;
                let pool = events::postgres::pool(db, 16).context("PostgreSQL pool")?;
                let keys = postgres_keys(&pool).await?;
                (Reads::Postgres(pool.clone()), Some(pool), keys)
            }
            None => (
                Reads::Sqlite(
                    ReadDb::open(args.data_dir.join("read.db"))
                        .context("opening the read tables")?,
                ),
                None,
                open_keys(&args.data_dir)?,
            ),
        };
        Ok(Self {
            store: esdb.clone(),
            reads,
            keys: Arc::new(keys),
            shared: true,
            backend: Backend::Esdb(esdb, pool),
        })
    }

    /// The sessions, beside the rest of the data.
    ///
    /// # Errors
    /// When the embedded sessions database cannot be opened.
    pub fn sessions(&self, args: &StoreArgs, ttl: Duration) -> anyhow::Result<Sessions> {
        match self.postgres() {
            Some(pool) => Ok(Sessions::postgres(pool.clone(), ttl)),
            None => Sessions::open(&args.data_dir.join("sessions.db"), ttl)
                .context("opening the sessions"),
        }
    }

    /// The PostgreSQL database that holds the read side (read tables, sessions, snapshots),
    /// or `None` when it lives in the data folder.
    fn postgres(&self) -> Option<&deadpool_postgres::Pool> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(_, pool) => Some(pool),
            #[cfg(feature = "eventstoredb")]
            Backend::Esdb(_, pool) => pool.as_ref(),
        }
    }

    /// The signal bus, and the database presence keeps its tables in: PostgreSQL's
    /// `NOTIFY`/`LISTEN` when the read side is in PostgreSQL (other processes may share it),
    /// else a bus of this process alone.
    pub fn signals(
        &self,
        args: &StoreArgs,
    ) -> (crate::signals::Bus, Option<deadpool_postgres::Pool>) {
        match (self.postgres(), &args.database_url) {
            (Some(pool), Some(url)) => (
                crate::signals::Bus::postgres(url, pool.clone()),
                Some(pool.clone()),
            ),
            _ => (crate::signals::Bus::local(), None),
        }
    }

    /// The room snapshots, beside the read tables: `snapshots.db` in the data folder, or the
    /// `snapshot` table in PostgreSQL.
    ///
    /// # Errors
    /// When the embedded snapshot file cannot be opened.
    pub fn snapshots(&self, args: &StoreArgs) -> anyhow::Result<Arc<dyn Snapshots>> {
        Ok(match self.postgres() {
            Some(pool) => Arc::new(PostgresSnapshots::new(pool.clone())),
            None => Arc::new(
                SqliteSnapshots::open(args.data_dir.join("snapshots.db"))
                    .context("opening the room snapshots")?,
            ),
        })
    }

    /// The log's signing key, beside the key store, made if missing
    /// ([`crate::signing`]).
    ///
    /// # Errors
    /// When it cannot be read or stored.
    pub async fn log_key(&self, args: &StoreArgs) -> anyhow::Result<events::checkpoint::LogKey> {
        match self.postgres() {
            Some(pool) => crate::signing::in_postgres(pool).await,
            None => crate::signing::in_folder(&args.data_dir),
        }
    }

    /// Stops taking appends and lets queued ones finish.
    pub fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close(),
            Backend::Postgres(s, _) => s.close(),
            #[cfg(feature = "eventstoredb")]
            Backend::Esdb(s, _) => s.close(),
        }
    }
}
