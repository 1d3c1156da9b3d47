//! Opening the data: the log, the read tables and the sessions, embedded or in PostgreSQL
//! (and, with the `eventstoredb` feature, the log in EventStoreDB/KurrentDB).

use crate::auth::Sessions;
use crate::config::StoreArgs;
use anyhow::Context;
use events::migrate::Migration;
use events::snapshot::{PostgresSnapshots, Snapshots, SqliteSnapshots};
use events::{PostgresStore, SqliteStore, Store};
use projections::{ReadDb, Reads};
use std::sync::Arc;
use std::time::Duration;

/// Every PostgreSQL migration, in order.
pub const POSTGRES_MIGRATIONS: [Migration; 7] = [
    events::postgres::MIGRATION,
    projections::postgres::MIGRATION,
    crate::auth::PG_MIGRATION,
    projections::postgres::SEARCH_MIGRATION,
    events::snapshot::POSTGRES_MIGRATION,
    events::postgres::ID_INDEX_MIGRATIONS[0],
    events::postgres::ID_INDEX_MIGRATIONS[1],
];

/// The opened data.
pub struct Storage {
    /// The log.
    pub store: Arc<dyn Store>,
    /// The read tables.
    pub reads: Reads,
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
        let (reads, pool) = match &args.database_url {
            Some(db) => {
                migrate_postgres(db).await?;
                let pool = events::postgres::pool(db, 16).context("PostgreSQL pool")?;
                (Reads::Postgres(pool.clone()), Some(pool))
            }
            None => (
                Reads::Sqlite(
                    ReadDb::open(args.data_dir.join("read.db"))
                        .context("opening the read tables")?,
                ),
                None,
            ),
        };
        Ok(Self {
            store: esdb.clone(),
            reads,
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
