//! Rebuilding a projection beside the live one, then switching over in one step.
//!
//! 1. [`prepare`] creates `<table>__rebuild` beside each of the projection's tables, with the
//!    live table's current shape (after every migration), and the checkpoint
//!    `<projection>__rebuild` at 0, or keeps them when a rebuild was interrupted (resume);
//!    `restart` drops them and starts over.
//! 2. [`fill`] applies the log to the shadow table from its checkpoint, a batch per
//!    transaction, until it is close to the end of the log. The server keeps serving from the
//!    live table meanwhile.
//! 3. [`switch`] takes the live table's write lock (so the server's worker pauses between two
//!    of its batches), applies what remains, replaces each live table with its shadow, gives
//!    it the live table's indexes, and sets the live checkpoint to the shadow's: one
//!    transaction, so readers see either the old tables or the complete new ones, and the
//!    worker carries on from the new checkpoint without applying anything twice.
//!
//! The live tables are never touched before the switch, so an interrupted rebuild leaves them
//! as they were.

use crate::error::pg;
use crate::postgres;
use crate::projection::{Projection, Target};
use crate::read::Reads;
use crate::sqlite::{self, Error};
use events::Store;
use events::keys::Keys;
use std::sync::Arc;

/// Events per transaction while filling.
const BATCH: usize = 5000;

/// Where a rebuild stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The shadow checkpoint.
    pub at: u64,
    /// The end of the log when last looked at.
    pub head: u64,
}

/// The shadow checkpoint of an unfinished rebuild of `projection`, if there is one.
///
/// # Errors
/// When the database cannot be read.
pub async fn pending(reads: &Reads, projection: Projection) -> Result<Option<u64>, Error> {
    let table = Target::Shadow.table(projection.table());
    match reads {
        Reads::Sqlite(db) => {
            db.with(move |c| {
                let exists: bool = c.query_row(
                    "select exists(select 1 from sqlite_master where type = 'table' and name = ?1)",
                    [&table],
                    |r| r.get(0),
                )?;
                if !exists {
                    return Ok(None);
                }
                sqlite::checkpoint_of(c, &Target::Shadow.checkpoint(projection)).map(Some)
            })
            .await
        }
        Reads::Postgres(pool) => {
            let c = pool.get().await.map_err(pg)?;
            let exists: bool = c
                .query_one("select to_regclass($1) is not null", &[&quote(&table)])
                .await
                .map_err(pg)?
                .get(0);
            if !exists {
                return Ok(None);
            }
            postgres::checkpoint_of(&c, &Target::Shadow.checkpoint(projection), false)
                .await
                .map(Some)
        }
    }
}

fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// Creates the shadow tables and checkpoint, or keeps an interrupted rebuild's (returning its
/// checkpoint); with `restart`, drops them first.
///
/// # Errors
/// When the database cannot be changed.
pub async fn prepare(reads: &Reads, projection: Projection, restart: bool) -> Result<u64, Error> {
    let tables = projection.tables();
    let cp = Target::Shadow.checkpoint(projection);
    match reads {
        Reads::Sqlite(db) => {
            db.with_writer(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let main = Target::Shadow.table(tables[0]);
                let exists = |tx: &rusqlite::Transaction<'_>| {
                    tx.query_row(
                        "select exists(select 1 from sqlite_master where type = 'table' and name = ?1)",
                        [&main],
                        |r| r.get::<_, bool>(0),
                    )
                };
                if restart || !exists(&tx)? {
                    for live in tables {
                        let shadow = Target::Shadow.table(live);
                        tx.execute_batch(&format!("drop table if exists {shadow}"))?;
                        let sql: String = tx.query_row(
                            "select sql from sqlite_master where type = 'table' and name = ?1",
                            [live],
                            |r| r.get(0),
                        )?;
                        let columns = sql.find('(').map(|i| &sql[i..]).unwrap_or_default();
                        tx.execute_batch(&format!("create table {shadow} {columns}"))?;
                    }
                    tx.execute(
                        "insert into projection_checkpoint (projection, position) values (?1, 0)
                         on conflict (projection) do update set position = 0",
                        [&cp],
                    )?;
                    tx.execute(
                        "delete from projection_dead_letter where projection = ?1",
                        [&cp],
                    )?;
                }
                let at = sqlite::checkpoint_of(&tx, &cp)?;
                tx.commit()?;
                Ok(at)
            })
            .await
        }
        Reads::Postgres(pool) => {
            let mut c = pool.get().await.map_err(pg)?;
            let tx = c.transaction().await.map_err(pg)?;
            let exists: bool = tx
                .query_one(
                    "select to_regclass($1) is not null",
                    &[&quote(&Target::Shadow.table(tables[0]))],
                )
                .await
                .map_err(pg)?
                .get(0);
            if restart || !exists {
                for live in tables {
                    let shadow = quote(&Target::Shadow.table(live));
                    tx.batch_execute(&format!(
                        "drop table if exists {shadow};
                         create table {shadow} (like {} including all)",
                        quote(live)
                    ))
                    .await
                    .map_err(pg)?;
                }
                tx.execute(
                    "insert into projection_checkpoint (projection, position) values ($1, 0)
                     on conflict (projection) do update set position = 0",
                    &[&cp],
                )
                .await
                .map_err(pg)?;
                tx.execute(
                    "delete from projection_dead_letter where projection = $1",
                    &[&cp],
                )
                .await
                .map_err(pg)?;
            }
            let at = postgres::checkpoint_of(&tx, &cp, false).await?;
            tx.commit().await.map_err(pg)?;
            Ok(at)
        }
    }
}

/// Fills the shadow table from its checkpoint until fewer than a batch of events remain,
/// calling `progress` after each batch. The next batch is read from the log while one is
/// applied.
///
/// # Errors
/// When the log or the database fails; the shadow keeps what was applied (resume later).
pub async fn fill(
    reads: &Reads,
    store: &Arc<dyn Store>,
    keys: &Arc<Keys>,
    projection: Projection,
    progress: impl FnMut(Progress),
) -> Result<u64, Error> {
    let at = pending(reads, projection).await?.unwrap_or(0);
    let target = Target::Shadow;
    replay(
        reads,
        store,
        keys,
        &[projection],
        target,
        at,
        u64::MAX,
        progress,
    )
    .await
}

/// Applies the log after `at` and up to `until` to `projections` in `target`'s tables of
/// `reads`, a batch per transaction, parking what cannot be applied, until fewer than a
/// batch of events remain; calls `progress` after each batch. The next batch is read from
/// the log while one is applied. How [`fill`] fills a shadow, and how `chatroom verify
/// --projections` fills its scratch tables.
///
/// # Errors
/// When the log or the database fails; what was applied stays.
#[allow(clippy::too_many_arguments)]
pub async fn replay(
    reads: &Reads,
    store: &Arc<dyn Store>,
    keys: &Arc<Keys>,
    projections: &[Projection],
    target: Target,
    mut at: u64,
    until: u64,
    mut progress: impl FnMut(Progress),
) -> Result<u64, Error> {
    let read = |after: u64| async move {
        let mut batch = store
            .read_all(after, BATCH)
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let full = batch.len() == BATCH;
        batch.retain(|r| r.position <= until);
        Ok::<_, Error>((full && batch.len() == BATCH, batch))
    };
    let apply = |after: u64, batch: Vec<events::Recorded>| async move {
        crate::dead::apply(reads, keys, projections, target, after, batch.into())
            .await
            .map(|at| at.into_iter().min().unwrap_or(0))
    };
    let (mut full, mut batch) = read(at).await?;
    loop {
        // Each batch is read after the last event of the one before.
        let after = at;
        let next = match batch.last().map(|r| r.position) {
            None => (false, Vec::new()),
            Some(last) if !full => {
                at = apply(after, batch).await?.max(last);
                (false, Vec::new())
            }
            Some(last) => {
                let (applied, next) = tokio::join!(apply(after, batch), read(last));
                at = applied?.max(last);
                next?
            }
        };
        progress(Progress {
            at,
            head: (*store.head().borrow()).max(at),
        });
        if !full {
            return Ok(at);
        }
        (full, batch) = next;
    }
}

/// Applies what remains and replaces the live tables with the shadows, in one transaction.
/// Returns the new live checkpoint.
///
/// # Errors
/// When the log or the database fails; nothing changes then.
pub async fn switch(
    reads: &Reads,
    store: &Arc<dyn Store>,
    keys: &Arc<Keys>,
    projection: Projection,
) -> Result<u64, Error> {
    let tables = projection.tables();
    match reads {
        Reads::Sqlite(db) => {
            let store = store.clone();
            let keys = keys.clone();
            let handle = tokio::runtime::Handle::current();
            db.with_writer(move |c| {
                // Immediate: the write lock, so the server's worker waits between batches.
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut at = sqlite::checkpoint_of(&tx, &Target::Shadow.checkpoint(projection))?;
                loop {
                    let batch = handle
                        .block_on(store.read_all(at, BATCH))
                        .map_err(|e| Error::Task(e.to_string()))?;
                    let Some(last) = batch.last() else { break };
                    let next = last.position;
                    at = sqlite::apply_in_transaction(
                        &keys,
                        &tx,
                        &[projection],
                        Target::Shadow,
                        &batch,
                    )?[0]
                        .max(next);
                }
                for live in tables {
                    let shadow = Target::Shadow.table(live);
                    let indexes: Vec<String> = {
                        let mut s = tx.prepare(
                            "select sql from sqlite_master
                             where type = 'index' and tbl_name = ?1 and sql is not null",
                        )?;
                        let rows = s.query_map([live], |r| r.get(0))?;
                        rows.collect::<Result<_, _>>()?
                    };
                    tx.execute_batch(&format!(
                        "drop table {live}; alter table {shadow} rename to {live};"
                    ))?;
                    for sql in &indexes {
                        tx.execute_batch(sql)?;
                    }
                }
                tx.execute(
                    "insert into projection_checkpoint (projection, position) values (?1, ?2)
                     on conflict (projection) do update set position = excluded.position",
                    rusqlite::params![Target::Live.checkpoint(projection), at as i64],
                )?;
                tx.execute(
                    "delete from projection_checkpoint where projection = ?1",
                    [Target::Shadow.checkpoint(projection)],
                )?;
                // The rebuilt tables' parked events replace the old ones'.
                tx.execute(
                    "delete from projection_dead_letter where projection = ?1",
                    [Target::Live.checkpoint(projection)],
                )?;
                tx.execute(
                    "update projection_dead_letter set projection = ?1 where projection = ?2",
                    [
                        Target::Live.checkpoint(projection),
                        Target::Shadow.checkpoint(projection),
                    ],
                )?;
                tx.commit()?;
                Ok(at)
            })
            .await
        }
        Reads::Postgres(pool) => {
            let mut c = pool.get().await.map_err(pg)?;
            let tx = c.transaction().await.map_err(pg)?;
            // The worker locks the live checkpoint row at the start of each batch: taking it
            // here first makes the two take turns, then the table lock keeps readers out of
            // the switch.
            postgres::checkpoint_of(&tx, &Target::Live.checkpoint(projection), true).await?;
            let live: Vec<String> = tables.iter().map(|t| quote(t)).collect();
            tx.batch_execute(&format!(
                "lock table {} in access exclusive mode",
                live.join(", ")
            ))
            .await
            .map_err(pg)?;
            let mut at =
                postgres::checkpoint_of(&tx, &Target::Shadow.checkpoint(projection), true).await?;
            loop {
                let batch = store
                    .read_all(at, BATCH)
                    .await
                    .map_err(|e| Error::Task(e.to_string()))?;
                let Some(last) = batch.last() else { break };
                let next = last.position;
                at = postgres::apply_in_transaction(
                    keys,
                    &tx,
                    &[projection],
                    Target::Shadow,
                    at,
                    &batch,
                )
                .await?[0]
                    .max(next);
            }
            // Give the shadows' indexes the live ones' names, matched by definition.
            let defs = |table: String| {
                let tx = &tx;
                async move {
                    let rows = tx
                        .query(
                            "select indexname, indexdef from pg_indexes
                             where schemaname = current_schema() and tablename = $1",
                            &[&table],
                        )
                        .await
                        .map_err(pg)?;
                    Ok::<_, Error>(
                        rows.iter()
                            .map(|r| {
                                let name: String = r.get(0);
                                let def: String = r.get(1);
                                let unique = def.starts_with("CREATE UNIQUE");
                                let shape = def
                                    .split_once(" USING ")
                                    .map(|(_, s)| s.to_owned())
                                    .unwrap_or_default();
                                (name, (unique, shape))
                            })
                            .collect::<Vec<_>>(),
                    )
                }
            };
            for live in tables {
                let shadow = Target::Shadow.table(live);
                let live_defs = defs((*live).to_owned()).await?;
                let shadow_defs = defs(shadow.clone()).await?;
                tx.batch_execute(&format!(
                    "drop table {}; alter table {} rename to {};",
                    quote(live),
                    quote(&shadow),
                    quote(live)
                ))
                .await
                .map_err(pg)?;
                for (name, shape) in &shadow_defs {
                    if let Some((live_name, _)) = live_defs.iter().find(|(_, s)| s == shape) {
                        tx.batch_execute(&format!(
                            "alter index {} rename to {}",
                            quote(name),
                            quote(live_name)
                        ))
                        .await
                        .map_err(pg)?;
                    }
                }
            }
            tx.execute(
                "update projection_checkpoint set position = $2 where projection = $1",
                &[&Target::Live.checkpoint(projection), &(at as i64)],
            )
            .await
            .map_err(pg)?;
            tx.execute(
                "delete from projection_checkpoint where projection = $1",
                &[&Target::Shadow.checkpoint(projection)],
            )
            .await
            .map_err(pg)?;
            // The rebuilt tables' parked events replace the old ones'.
            let (live, shadow) = (
                Target::Live.checkpoint(projection),
                Target::Shadow.checkpoint(projection),
            );
            tx.execute(
                "delete from projection_dead_letter where projection = $1",
                &[&live],
            )
            .await
            .map_err(pg)?;
            tx.execute(
                "update projection_dead_letter set projection = $1 where projection = $2",
                &[&live, &shadow],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            Ok(at)
        }
    }
}
