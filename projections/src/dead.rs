//! Dead letters: events a projection cannot apply, parked with their error so that the
//! projection goes on with the next event instead of stalling on it.
//!
//! A batch applies in one transaction. When it fails for good ([`Error::is_permanent`]: an
//! undecodable event, sealed bytes that do not open, a change the tables refuse), it is halved
//! and each half tried again, down to single events; an event that still fails is tried for
//! each projection alone, and each projection it fails for parks it in
//! `projection_dead_letter` and moves its checkpoint past it in one transaction. A failure
//! that may pass (the database or the key store unreachable) is returned for the caller to
//! retry, as before. [`retry`] applies parked events again, each in the transaction that
//! removes it from the table.

use crate::error::pg;
use crate::projection::{Projection, Target};
use crate::read::Reads;
use crate::sqlite::{self, Error};
use events::keys::Keys;
use events::migrate::Migration;
use events::{Recorded, Store};
use std::sync::Arc;

/// The dead-letter table's migration for PostgreSQL.
pub const POSTGRES_MIGRATION: Migration = Migration {
    version: 15,
    name: "dead_letter",
    sql: include_str!("../../migrations/postgres/0015_dead_letter.sql"),
};

/// A parked event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The projection's checkpoint name (`<projection>__rebuild` for a rebuild's).
    pub projection: String,
    /// The event's position in the log.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Why it could not be applied.
    pub error: String,
    /// When it was parked (or last failed again), milliseconds since the epoch.
    pub parked_at: i64,
}

/// Commits `batch` to `projections` in `target`, as the worker does.
async fn commit(
    reads: &Reads,
    keys: &Arc<Keys>,
    projections: &[Projection],
    target: Target,
    after: u64,
    batch: Arc<[Recorded]>,
) -> Result<Vec<u64>, Error> {
    match reads {
        Reads::Sqlite(db) => {
            let keys = keys.clone();
            let projections = projections.to_vec();
            db.with_writer(move |c| sqlite::commit_batch(&keys, c, &projections, target, &batch))
                .await
        }
        Reads::Postgres(pool) => {
            crate::postgres::commit_batch(keys, pool, projections, target, after, &batch).await
        }
    }
}

/// Applies a batch read after `after` to `projections` in `target`, parking the events that
/// cannot be applied; their checkpoints, in the order of `projections`.
///
/// # Errors
/// A failure that may pass ([`Error::Behind`] among them); nothing was parked for it, and
/// what was applied before it stays applied (each projection skips it when read again).
pub async fn apply(
    reads: &Reads,
    keys: &Arc<Keys>,
    projections: &[Projection],
    target: Target,
    after: u64,
    batch: Arc<[Recorded]>,
) -> Result<Vec<u64>, Error> {
    let first = match commit(reads, keys, projections, target, after, batch.clone()).await {
        Err(e) if e.is_permanent() => e,
        done => return done,
    };
    tracing::warn!(error = %first, "a batch cannot be applied; looking for the events at fault");
    // Parts still to apply, the next one last, each with the position it was read after.
    let mut parts = Vec::new();
    halve(after, batch.to_vec(), &mut parts);
    while let Some((after, part)) = parts.pop() {
        if let [rec] = part.as_slice() {
            for projection in projections {
                let one: Arc<[Recorded]> = Arc::from(vec![rec.clone()]);
                match commit(reads, keys, &[*projection], target, after, one).await {
                    Ok(_) => {}
                    Err(e) if e.is_permanent() => park(reads, *projection, target, rec, &e).await?,
                    Err(e) => return Err(e),
                }
            }
            continue;
        }
        match commit(reads, keys, projections, target, after, part.clone().into()).await {
            Ok(_) => {}
            Err(e) if e.is_permanent() => halve(after, part, &mut parts),
            Err(e) => return Err(e),
        }
    }
    let mut at = Vec::with_capacity(projections.len());
    for projection in projections {
        at.push(stored(reads, &target.checkpoint(*projection)).await?);
    }
    Ok(at)
}

/// Pushes the two halves of `part` (of two events or more) onto `parts`, the first last.
fn halve(after: u64, mut part: Vec<Recorded>, parts: &mut Vec<(u64, Vec<Recorded>)>) {
    let right = part.split_off(part.len() / 2);
    let middle = part.last().map_or(after, |r| r.position);
    parts.push((middle, right));
    parts.push((after, part));
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

const PARK_SQLITE: &str = "insert into projection_dead_letter
         (projection, position, stream, version, error, parked_at)
     values (?1, ?2, ?3, ?4, ?5, ?6)
     on conflict (projection, position) do update
     set error = excluded.error, parked_at = excluded.parked_at";

const PARK_POSTGRES: &str = "insert into projection_dead_letter
         (projection, position, stream, version, error, parked_at)
     values ($1, $2, $3, $4, $5, $6)
     on conflict (projection, position) do update
     set error = excluded.error, parked_at = excluded.parked_at";

/// Parks `rec` for `projection` and moves its checkpoint past it, in one transaction.
async fn park(
    reads: &Reads,
    projection: Projection,
    target: Target,
    rec: &Recorded,
    error: &Error,
) -> Result<(), Error> {
    let name = target.checkpoint(projection);
    let (position, version) = (rec.position as i64, rec.version as i64);
    let (stream, error) = (rec.stream_id.clone(), error.to_string());
    tracing::error!(
        projection = name,
        position,
        stream,
        version,
        error,
        "parked an event the projection cannot apply"
    );
    let at = now_ms();
    match reads {
        Reads::Sqlite(db) => {
            db.with_writer(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                tx.execute(
                    PARK_SQLITE,
                    rusqlite::params![name, position, stream, version, error, at],
                )?;
                tx.execute(
                    "insert into projection_checkpoint (projection, position) values (?1, ?2)
                     on conflict (projection) do update
                     set position = max(position, excluded.position)",
                    rusqlite::params![name, position],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
        }
        Reads::Postgres(pool) => {
            let mut c = pool.get().await.map_err(pg)?;
            let tx = c.transaction().await.map_err(pg)?;
            tx.execute(
                PARK_POSTGRES,
                &[&name, &position, &stream, &version, &error, &at],
            )
            .await
            .map_err(pg)?;
            tx.execute(
                "insert into projection_checkpoint (projection, position) values ($1, $2)
                 on conflict (projection) do update
                 set position = greatest(projection_checkpoint.position, excluded.position)",
                &[&name, &position],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)
        }
    }
}

/// The stored checkpoint called `name`.
async fn stored(reads: &Reads, name: &str) -> Result<u64, Error> {
    match reads {
        Reads::Sqlite(db) => {
            let name = name.to_owned();
            db.with(move |c| sqlite::checkpoint_of(c, &name)).await
        }
        Reads::Postgres(pool) => {
            let c = pool.get().await.map_err(pg)?;
            crate::postgres::checkpoint_of(&c, name, false).await
        }
    }
}

const LIST: &str = "select projection, position, stream, version, error, parked_at
     from projection_dead_letter order by position, projection";

/// Every parked event, in log order.
///
/// # Errors
/// When the database cannot be read.
pub async fn list(reads: &Reads) -> Result<Vec<DeadLetter>, Error> {
    match reads {
        Reads::Sqlite(db) => {
            db.with(|c| {
                let mut s = c.prepare(LIST)?;
                let rows = s.query_map([], |r| {
                    Ok(DeadLetter {
                        projection: r.get(0)?,
                        position: r.get::<_, i64>(1)? as u64,
                        stream: r.get(2)?,
                        version: r.get::<_, i64>(3)? as u64,
                        error: r.get(4)?,
                        parked_at: r.get(5)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
        }
        Reads::Postgres(pool) => {
            let c = pool.get().await.map_err(pg)?;
            let rows = c.query(LIST, &[]).await.map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| DeadLetter {
                    projection: r.get(0),
                    position: r.get::<_, i64>(1) as u64,
                    stream: r.get(2),
                    version: r.get::<_, i64>(3) as u64,
                    error: r.get(4),
                    parked_at: r.get(5),
                })
                .collect())
        }
    }
}

/// How many events are parked, by projection (checkpoint name), in name order.
///
/// # Errors
/// When the database cannot be read.
pub async fn counts(reads: &Reads) -> Result<Vec<(String, u64)>, Error> {
    const COUNTS: &str = "select projection, count(*) from projection_dead_letter
         group by projection order by projection";
    match reads {
        Reads::Sqlite(db) => {
            db.with(|c| {
                let mut s = c.prepare(COUNTS)?;
                let rows = s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
        }
        Reads::Postgres(pool) => {
            let c = pool.get().await.map_err(pg)?;
            let rows = c.query(COUNTS, &[]).await.map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
                .collect())
        }
    }
}

/// What [`retry`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retried {
    /// Parked events that applied this time, and left the table.
    pub applied: Vec<DeadLetter>,
    /// Those that failed again, with their new error.
    pub still: Vec<DeadLetter>,
}

/// Applies every parked event of a live projection again, in log order, each to its
/// projection's live tables in one transaction that also removes it from the table; one that
/// fails again stays, with its new error. The projection's worker takes turns with it (the
/// SQLite write lock, the PostgreSQL checkpoint row). Later events were applied without it,
/// so a row they would have changed had it been there keeps their absence: `chatroom verify
/// --projections` shows any such row, and `chatroom projections rebuild` rebuilds it.
///
/// # Errors
/// When the log or the database fails; what was retried before stays done.
pub async fn retry(
    reads: &Reads,
    store: &Arc<dyn Store>,
    keys: &Arc<Keys>,
) -> Result<Retried, Error> {
    let mut out = Retried::default();
    for letter in list(reads).await? {
        // A rebuild's parked events go with its shadow tables.
        let Some(projection) = Projection::by_name(&letter.projection) else {
            continue;
        };
        let found = store
            .read_all(letter.position.saturating_sub(1), 1)
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let rec = match found.into_iter().next() {
            Some(rec) if rec.position == letter.position => rec,
            _ => {
                let error = format!("no event at position {} in the log", letter.position);
                out.still.push(DeadLetter { error, ..letter });
                continue;
            }
        };
        match again(reads, keys, projection, rec.clone()).await {
            Ok(()) => out.applied.push(letter),
            Err(e) if e.is_permanent() => {
                park(reads, projection, Target::Live, &rec, &e).await?;
                out.still.push(DeadLetter {
                    error: e.to_string(),
                    ..letter
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Applies `rec` to `projection`'s live tables through the [`Target::Retry`] checkpoint, and
/// removes its dead letter, in one transaction.
async fn again(
    reads: &Reads,
    keys: &Arc<Keys>,
    projection: Projection,
    rec: Recorded,
) -> Result<(), Error> {
    let retry = Target::Retry.checkpoint(projection);
    let live = Target::Live.checkpoint(projection);
    let (position, before) = (rec.position as i64, rec.position as i64 - 1);
    match reads {
        Reads::Sqlite(db) => {
            let keys = keys.clone();
            db.with_writer(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                tx.execute(
                    "insert into projection_checkpoint (projection, position) values (?1, ?2)
                     on conflict (projection) do update set position = excluded.position",
                    rusqlite::params![retry, before],
                )?;
                sqlite::apply_in_transaction(&keys, &tx, &[projection], Target::Retry, &[rec])?;
                tx.execute(
                    "delete from projection_checkpoint where projection = ?1",
                    [&retry],
                )?;
                tx.execute(
                    "delete from projection_dead_letter where projection = ?1 and position = ?2",
                    rusqlite::params![live, position],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
        }
        Reads::Postgres(pool) => {
            let mut c = pool.get().await.map_err(pg)?;
            let tx = c.transaction().await.map_err(pg)?;
            // The worker locks this row for each batch: the two take turns.
            crate::postgres::checkpoint_of(&tx, &live, true).await?;
            tx.execute(
                "insert into projection_checkpoint (projection, position) values ($1, $2)
                 on conflict (projection) do update set position = excluded.position",
                &[&retry, &before],
            )
            .await
            .map_err(pg)?;
            crate::postgres::apply_in_transaction(
                keys,
                &tx,
                &[projection],
                Target::Retry,
                0,
                &[rec],
            )
            .await?;
            tx.execute(
                "delete from projection_checkpoint where projection = $1",
                &[&retry],
            )
            .await
            .map_err(pg)?;
            tx.execute(
                "delete from projection_dead_letter where projection = $1 and position = $2",
                &[&live, &position],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)
        }
    }
}
