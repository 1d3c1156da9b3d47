//! The PostgreSQL log's event-id index, kept apart from the log (migration 6, whose comment
//! gives the layout): a young table with a unique index, written in each append's transaction,
//! and runs that never change once sealed, merged by level, each with a Bloom filter that
//! every process holds in memory. The embedded log keeps its index the same way
//! (`sqlite_ids`), with the same filter.
//!
//! - **The writer's view** ([`View`]): the runs and their filters as of a generation. An
//!   append's transaction checks, under the append lock, that the generation has not moved
//!   (in its insert, or with `event_id_check`), so the filters the writer consulted are those
//!   of every run there is.
//! - **Upkeep** ([`maintain`]): sealing a full young table, making the filter of a run that has
//!   none, merging runs. Any process may do it; one at a time does (a transaction-level
//!   advisory lock), each step in one transaction, so a step cut short leaves nothing behind.
//!   Only the last moment of each step (changing the set of runs) takes the append lock.

use crate::migrate::Migration;
use crate::postgres::{APPEND_LOCK, unavailable};
use crate::sqlite_ids::{FILTER_FORMAT, Filter, Options, TOP_LEVEL, level_for};
use crate::store::Error;
use deadpool_postgres::Pool;
use futures::{StreamExt, pin_mut};
use std::sync::Arc;
use uuid::Uuid;

/// The event-id index's migration for PostgreSQL (after the log's and the read tables').
pub const MIGRATION: Migration = Migration {
    version: 6,
    name: "event_id_runs",
    sql: include_str!("../../migrations/postgres/0006_event_id_runs.sql"),
};

/// The SQLSTATE `event_id_check` raises when the runs changed since the writer's view.
const STALE: &str = "CR001";

/// Key of the advisory lock a process holds while it seals, filters or merges.
const UPKEEP_LOCK: i64 = 0x6368_6174_6964_786d; // "chatidxm"

/// The shape of the index on PostgreSQL: the young table (a unique index with random keys,
/// written on every append) stays well inside the database's default 128 MB of buffers.
pub(crate) const DEFAULT_OPTIONS: Options = Options {
    young_max: 1_000_000,
    fan_in: 8,
};

/// Filter bits an id: 24, where the embedded log's filters have 12. A false positive here
/// costs a probe of a run's index in the append's transaction: one or two page reads once the
/// runs outgrow the database's buffers and the operating system's cache (0.2 to 0.8 ms each at
/// 30 million events, with default buffers). Of other ids, 0.4 % pass at 12 bits, 0.1 % at
/// 16 and 0.012 % at 24 (unit test `more_bits_an_id_let_fewer_other_ids_pass`): at 24, a
/// group of 350 ids probes one of eight runs about one time in twenty-five, for 3 bytes an
/// event in every process.
const BITS_PER_ID: u64 = 24;

/// Whether `e` says the runs changed since the writer's view.
pub(crate) fn is_stale(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == STALE)
}

/// The runs as one process's writer last read them.
#[derive(Default)]
pub(crate) struct View {
    pub(crate) generation: i64,
    /// Every run, in order, with its filter (none: not made yet, or of a layout this build
    /// does not know; the database probes such a run).
    runs: Vec<(i64, Option<Arc<Filter>>)>,
}

impl View {
    /// Reads the runs again, in one snapshot, keeping the filters of `old` it still lists and
    /// fetching only new ones.
    pub(crate) async fn load(
        client: &mut deadpool_postgres::Client,
        old: &View,
    ) -> Result<View, Error> {
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(unavailable)?;
        let generation: i64 = tx
            .query_one("select generation from event_id_state", &[])
            .await
            .map_err(unavailable)?
            .get(0);
        let rows = tx
            .query(
                "select run, filter is not null and filter_format = $1 from event_id_run
                 order by run",
                &[&(FILTER_FORMAT as i32)],
            )
            .await
            .map_err(unavailable)?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let run: i64 = row.get(0);
            let filter = match (row.get::<_, bool>(1), old.filter_of(run)) {
                (false, _) => None,
                (true, Some(kept)) => Some(kept),
                (true, None) => {
                    let bytes: Vec<u8> = tx
                        .query_one("select filter from event_id_run where run = $1", &[&run])
                        .await
                        .map_err(unavailable)?
                        .get(0);
                    Filter::from_bytes(&bytes).map(Arc::new)
                }
            };
            runs.push((run, filter));
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(View { generation, runs })
    }

    fn filter_of(&self, run: i64) -> Option<Arc<Filter>> {
        self.runs
            .iter()
            .find(|(r, _)| *r == run)
            .and_then(|(_, f)| f.clone())
    }

    /// The (run, id) pairs an append or a lookup of `ids` probes: every id in a run without a
    /// filter, and in a run whose filter may hold it.
    pub(crate) fn candidates(&self, ids: &[Uuid]) -> (Vec<i64>, Vec<Uuid>) {
        let mut runs = Vec::new();
        let mut run_ids = Vec::new();
        for (run, filter) in &self.runs {
            for id in ids {
                if filter.as_ref().is_none_or(|f| f.may_hold(id)) {
                    runs.push(*run);
                    run_ids.push(*id);
                }
            }
        }
        (runs, run_ids)
    }
}

/// What one pass of [`maintain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Young tables sealed into runs.
    pub sealed: u32,
    /// Runs given a filter.
    pub filtered: u32,
    /// Merges made.
    pub merged: u32,
    /// Another process was doing the upkeep; this pass did nothing.
    pub busy: bool,
}

fn run_table(run: i64) -> String {
    format!("event_id_run_{run}")
}

/// Begins a step of the upkeep: `false` (and the transaction ended) when another process
/// holds the upkeep lock.
async fn begin_step(client: &tokio_postgres::Client) -> Result<bool, Error> {
    client.batch_execute("begin").await.map_err(unavailable)?;
    let got: bool = client
        .query_one("select pg_try_advisory_xact_lock($1)", &[&UPKEEP_LOCK])
        .await
        .map_err(unavailable)?
        .get(0);
    if !got {
        client
            .batch_execute("rollback")
            .await
            .map_err(unavailable)?;
    }
    Ok(got)
}

/// Ends a step: the set of runs changes, under the append lock, and its generation moves.
async fn finish_step(client: &tokio_postgres::Client, changes: &str) -> Result<(), Error> {
    client
        .execute("select pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
        .await
        .map_err(unavailable)?;
    client
        .batch_execute(&format!(
            "{changes}; update event_id_state set generation = generation + 1; commit"
        ))
        .await
        .map_err(unavailable)
}

/// A filter of every id in run `run`'s table, which holds `ids` of them.
async fn filter_of_table(
    client: &tokio_postgres::Client,
    run: i64,
    ids: u64,
) -> Result<Filter, Error> {
    let filter = Filter::with_bits(ids, BITS_PER_ID);
    let rows = client
        .query_raw(
            &format!("select event_id from {}", run_table(run)),
            std::iter::empty::<i64>(),
        )
        .await
        .map_err(unavailable)?;
    pin_mut!(rows);
    while let Some(row) = rows.next().await {
        filter.insert(&row.map_err(unavailable)?.get::<_, Uuid>(0));
    }
    Ok(filter)
}

/// One pass of the upkeep: seals the young table if full, gives every run without a usable
/// filter one, and merges while some level has `fan_in` runs.
///
/// On a connection taken out of the pool: a pass dropped half-way (its task aborted) closes
/// it, and with it the step's transaction, instead of handing a connection inside a
/// transaction back to the pool.
pub(crate) async fn maintain(pool: &Pool, options: &Options) -> Result<Upkeep, Error> {
    let client = deadpool_postgres::Object::take(pool.get().await.map_err(unavailable)?);
    maintain_on(&client, options).await
}

/// The upkeep every `every`, for as long as the task runs, on a connection of its own (taken
/// again after a failure).
pub(crate) async fn keep_up(pool: Pool, options: Options, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connection = None;
    loop {
        tick.tick().await;
        if connection.is_none() {
            connection = pool.get().await.ok().map(deadpool_postgres::Object::take);
        }
        let Some(client) = &connection else { continue };
        if let Err(e) = maintain_on(client, &options).await {
            tracing::warn!(error = %e, "upkeep of the event-id index failed; trying again later");
            connection = None;
        }
    }
}

async fn maintain_on(client: &tokio_postgres::Client, options: &Options) -> Result<Upkeep, Error> {
    let mut done = Upkeep::default();
    // Seal: the young table's size is estimated from the log's head (rolled-back appends
    // leave gaps, so it is never under the truth).
    let full = "select s.next_run from event_id_state s
                where (select coalesce(max(position), 0) from event) + 1 - s.young_from >= $1";
    let young_max = options.young_max as i64;
    if !client
        .query(full, &[&young_max])
        .await
        .map_err(unavailable)?
        .is_empty()
    {
        if !begin_step(client).await? {
            done.busy = true;
            return Ok(done);
        }
        // Asked again under the upkeep lock: another process may have sealed meanwhile.
        match client
            .query_opt(full, &[&young_max])
            .await
            .map_err(unavailable)?
        {
            None => client
                .batch_execute("rollback")
                .await
                .map_err(unavailable)?,
            Some(row) => {
                let run: i64 = row.get(0);
                let table = run_table(run);
                // The young table is renamed under the append lock, so no append is writing
                // to it.
                finish_step(
                    client,
                    &format!(
                        "alter table event_id_young rename to {table};
                         alter index event_id_young_pkey rename to {table}_pkey;
                         create table event_id_young (
                             event_id uuid   primary key,
                             position bigint not null
                         );
                         insert into event_id_run (run, level, ids) values ({run}, 0, 0);
                         update event_id_state set next_run = next_run + 1,
                             young_from = (select coalesce(max(position), 0) + 1 from event)"
                    ),
                )
                .await?;
                done.sealed += 1;
            }
        }
    }

    // Filter the runs that have no filter of this layout.
    let unfiltered: Vec<i64> = client
        .query(
            "select run from event_id_run
             where filter is null or filter_format is distinct from $1 order by run",
            &[&(FILTER_FORMAT as i32)],
        )
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for run in unfiltered {
        if !begin_step(client).await? {
            done.busy = true;
            return Ok(done);
        }
        let ids: i64 = client
            .query_one(&format!("select count(*) from {}", run_table(run)), &[])
            .await
            .map_err(unavailable)?
            .get(0);
        let filter = filter_of_table(client, run, ids as u64).await?.to_bytes();
        let level = level_for(ids as u64, options) as i32;
        // The new filter is stored before the append lock is taken: the run's listing
        // changes only at the commit, and the generation with it.
        client
            .execute(
                "update event_id_run set ids = $2, level = greatest(level, $3),
                     filter_format = $4, filter = $5
                 where run = $1",
                &[&run, &ids, &level, &(FILTER_FORMAT as i32), &filter],
            )
            .await
            .map_err(unavailable)?;
        finish_step(client, "").await?;
        done.filtered += 1;
    }

    // Merge the oldest `fan_in` runs of the lowest level that has as many.
    loop {
        let rows = client
            .query(
                "select run, level, ids from event_id_run
                 where filter_format = $1 and level < $2 order by level, run",
                &[&(FILTER_FORMAT as i32), &(TOP_LEVEL as i32)],
            )
            .await
            .map_err(unavailable)?;
        let runs: Vec<(i64, i32, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let Some(level) = runs
            .iter()
            .map(|r| r.1)
            .find(|l| runs.iter().filter(|r| r.1 == *l).count() >= options.fan_in)
        else {
            break;
        };
        let sources: Vec<(i64, i64)> = runs
            .iter()
            .filter(|r| r.1 == level)
            .take(options.fan_in)
            .map(|r| (r.0, r.2))
            .collect();
        if !begin_step(client).await? {
            done.busy = true;
            return Ok(done);
        }
        let run: i64 = client
            .query_one("select next_run from event_id_state", &[])
            .await
            .map_err(unavailable)?
            .get(0);
        let table = run_table(run);
        let union = sources
            .iter()
            .map(|(r, _)| format!("select event_id, position from {}", run_table(*r)))
            .collect::<Vec<_>>()
            .join(" union all ");
        client
            .batch_execute(&format!(
                "create table {table} as {union};
                 alter table {table} add primary key (event_id)"
            ))
            .await
            .map_err(unavailable)?;
        let ids: i64 = sources.iter().map(|(_, n)| n).sum();
        let filter = filter_of_table(client, run, ids as u64).await?.to_bytes();
        client
            .execute(
                "insert into event_id_run (run, level, ids, filter_format, filter)
                 values ($1, $2, $3, $4, $5)",
                &[&run, &(level + 1), &ids, &(FILTER_FORMAT as i32), &filter],
            )
            .await
            .map_err(unavailable)?;
        let listed: Vec<i64> = sources.iter().map(|(r, _)| *r).collect();
        client
            .execute("delete from event_id_run where run = any($1)", &[&listed])
            .await
            .map_err(unavailable)?;
        let drops = sources
            .iter()
            .map(|(r, _)| run_table(*r))
            .collect::<Vec<_>>()
            .join(", ");
        finish_step(
            client,
            &format!("drop table {drops}; update event_id_state set next_run = next_run + 1"),
        )
        .await?;
        done.merged += 1;
    }
    Ok(done)
}
