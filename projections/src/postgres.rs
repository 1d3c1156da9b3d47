//! The read tables in PostgreSQL: the sink that applies [`Change`]s with the checkpoint in the
//! same transaction; the queries the server answers from them are in `queries`.

use crate::error::{Error, pg};
use crate::plan::Plan;
use crate::projection::{Projection, Target};
use deadpool_postgres::{GenericClient, Pool};
use events::keys::Keys;
use events::migrate::Migration;
use events::{Event, Recorded};

mod changes;
mod columns;
mod queries;
use columns::Columns;
pub(crate) use queries::*;

/// The read tables' migration for PostgreSQL.
pub const MIGRATION: Migration = Migration {
    version: 2,
    name: "read_tables",
    sql: include_str!("../../migrations/postgres/0002_read_tables.sql"),
};

/// The search column's migration for PostgreSQL.
pub const SEARCH_MIGRATION: Migration = Migration {
    version: 4,
    name: "search_text",
    sql: include_str!("../../migrations/postgres/0004_search_text.sql"),
};

/// The read tables of rooms people govern (roles, bans, invites, settings), for PostgreSQL.
pub const GOVERNANCE_MIGRATION: Migration = Migration {
    version: 10,
    name: "governance",
    sql: include_str!("../../migrations/postgres/0010_governance.sql"),
};

/// The read side of messages that change (versions, replies, edits, reactions), for
/// PostgreSQL.
pub const MESSAGES_MIGRATION: Migration = Migration {
    version: 11,
    name: "message_changes",
    sql: include_str!("../../migrations/postgres/0011_message_changes.sql"),
};

/// The read side of direct rooms and blocks, for PostgreSQL.
pub const DIRECT_MIGRATION: Migration = Migration {
    version: 13,
    name: "direct",
    sql: include_str!("../../migrations/postgres/0013_direct.sql"),
};

/// The read tables of log format 2 and the credential table, for PostgreSQL.
pub const SEALED_MIGRATION: Migration = Migration {
    version: 9,
    name: "sealed_log",
    sql: include_str!("../../migrations/postgres/0009_sealed_log.sql"),
};

/// The checkpoint of `projection`.
///
/// # Errors
/// When the database cannot be read.
pub async fn checkpoint(c: &impl GenericClient, projection: Projection) -> Result<u64, Error> {
    checkpoint_of(c, &Target::Live.checkpoint(projection), false).await
}

/// The stored checkpoint called `name`; with `lock`, its row is locked for the transaction
/// (creating it at 0 first), so a rebuild's switch and a worker's batch take turns.
///
/// # Errors
/// When the database cannot be read.
pub async fn checkpoint_of(c: &impl GenericClient, name: &str, lock: bool) -> Result<u64, Error> {
    if lock {
        return Ok(lock_checkpoints(c, &[], &[name.to_owned()]).await?[0]);
    }
    let statement = c
        .prepare_cached("select position from projection_checkpoint where projection = $1")
        .await
        .map_err(pg)?;
    let row = c.query_opt(&statement, &[&name]).await.map_err(pg)?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
}

/// Creates the checkpoints called `names` that do not exist yet (at 0), locks their rows for
/// the transaction and reads them, in the order of `names`: one round trip, behind `opening`
/// (statements sent first in the same trip, prepared).
async fn lock_checkpoints(
    c: &impl GenericClient,
    opening: &[tokio_postgres::Statement],
    names: &[String],
) -> Result<Vec<u64>, Error> {
    let create = c.prepare_cached(CREATE_CHECKPOINTS).await.map_err(pg)?;
    let lock = c.prepare_cached(LOCK_CHECKPOINTS).await.map_err(pg)?;
    let (_, _, rows) = futures::try_join!(
        futures::future::try_join_all(opening.iter().map(|s| c.execute(s, &[]))),
        async { c.execute(&create, &[&names]).await },
        async { c.query(&lock, &[&names]).await },
    )
    .map_err(pg)?;
    let stored: std::collections::HashMap<String, i64> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(names
        .iter()
        .map(|n| stored.get(n).map_or(0, |p| *p as u64))
        .collect())
}

/// Applies a batch, read from the log after position `after`, to `projections` in `target`'s
/// tables and moves their checkpoints, in one transaction of its own, each event decoded once;
/// their checkpoints, in the order of `projections`. Events at or below a projection's
/// checkpoint are skipped.
///
/// The transaction takes two round trips whatever the batch and the number of projections:
/// the first carries the begin and the locking of the checkpoints, the second every insert
/// and update, the checkpoints' update and the commit. A statement that fails aborts the
/// transaction, and the commit sent behind it then rolls it back: nothing of the batch is
/// applied.
///
/// The commit does not wait for the write-ahead log to reach the disk: the rows are derived
/// from the log, and a commit lost in a crash of the database goes with its checkpoint (same
/// transaction), so the events are applied again. A checkpoint stored behind `after` is how
/// such a loss (or a database restored or failed over to a copy that was behind) shows: the
/// batch is refused ([`Error::Behind`]) rather than applied over the gap.
///
/// # Errors
/// [`Error::Behind`], database errors or an undecodable event; nothing of the batch is applied
/// then.
pub async fn commit_batch(
    keys: &Keys,
    pool: &Pool,
    projections: &[Projection],
    target: Target,
    after: u64,
    batch: &[Recorded],
) -> Result<Vec<u64>, Error> {
    let client = pool.get().await.map_err(pg)?;
    let applied = apply_on(keys, &client, projections, target, after, batch, true).await;
    if applied.is_err() {
        events::postgres::release_after_failure(client).await;
    }
    applied
}

/// [`commit_batch`] inside a transaction the caller holds, locking the checkpoints' rows
/// first.
///
/// # Errors
/// [`Error::Behind`], database errors or an undecodable event.
pub async fn apply_in_transaction(
    keys: &Keys,
    tx: &impl GenericClient,
    projections: &[Projection],
    target: Target,
    after: u64,
    batch: &[Recorded],
) -> Result<Vec<u64>, Error> {
    apply_on(keys, tx, projections, target, after, batch, false).await
}

const CREATE_CHECKPOINTS: &str = "insert into projection_checkpoint (projection, position)
     select unnest($1::text[]), 0
     on conflict (projection) do nothing";

/// Locks the checkpoints' rows, always in the same order (so that two transactions locking
/// several cannot each wait for the other), and reads them.
const LOCK_CHECKPOINTS: &str = "select projection, position from projection_checkpoint
     where projection = any($1) order by projection for update";

/// Moves the checkpoints.
const MOVE_CHECKPOINTS: &str = "update projection_checkpoint as c set position = m.position
     from unnest($1::text[], $2::int8[]) as m(projection, position)
     where c.projection = m.projection";

/// Applies a batch to `projections` (each skipping the events at or below its own checkpoint,
/// so projections at different positions each apply every event once); with `own`, inside a
/// transaction of its own, begun in the first round trip and committed in the second. A
/// checkpoint stored behind `after`, the position the batch was read after, fails it with
/// [`Error::Behind`] before anything is written.
///
/// Every statement is prepared (from the connection's statement cache) before any of a round
/// trip is sent: statements polled together go out in the order given, while one still to
/// be prepared would wait for its preparation and go out after the others, the commit first.
async fn apply_on(
    keys: &Keys,
    c: &impl GenericClient,
    projections: &[Projection],
    target: Target,
    after: u64,
    batch: &[Recorded],
    own: bool,
) -> Result<Vec<u64>, Error> {
    let names: Vec<String> = projections.iter().map(|p| target.checkpoint(*p)).collect();
    let mut opening = Vec::new();
    if own {
        opening.push(c.prepare_cached("begin").await.map_err(pg)?);
        // The rows are derived from the log: a commit lost in a crash of the database goes
        // with its checkpoint, and the check below makes the caller apply it again. The
        // log's own commits still wait for the flush, and so does a rebuild's switch (in its
        // caller's transaction), flushing everything before them. Waiting here took a flush
        // of the write-ahead log per batch, in turn with the log's own.
        opening.push(
            c.prepare_cached("set local synchronous_commit = off")
                .await
                .map_err(pg)?,
        );
    }
    let mut at = lock_checkpoints(c, &opening, &names).await?;
    if let Some((name, stored)) = names.iter().zip(&at).find(|(_, a)| **a < after) {
        return Err(Error::Behind {
            checkpoint: name.clone(),
            stored: *stored,
            after,
        });
    }

    let mut changes = Vec::new();
    for rec in batch {
        if at.iter().all(|a| rec.position <= *a) {
            continue;
        }
        let event: Event = rec.decode().map_err(|e| Error::Decode {
            position: rec.position,
            reason: e.to_string(),
        })?;
        let clear = crate::sqlite::open_sealed(keys, rec, &event).await?;
        for (projection, at) in projections.iter().zip(at.iter_mut()) {
            if rec.position <= *at {
                continue;
            }
            changes.extend(projection.changes(rec, &event, clear.as_deref()));
            *at = rec.position;
        }
    }
    // The projections write disjoint tables, so applying them event by event gives the rows
    // that applying them one after the other would.
    let plan = Plan::new(changes);
    let columns = Columns::of(&plan, target);
    let positions: Vec<i64> = at.iter().map(|a| *a as i64).collect();
    let mut statements = columns.statements(target);
    statements.push((MOVE_CHECKPOINTS.to_owned(), vec![&names, &positions]));
    if own {
        statements.push(("commit".to_owned(), Vec::new()));
    }
    let mut prepared = Vec::with_capacity(statements.len());
    for (sql, params) in &statements {
        prepared.push((c.prepare_cached(sql).await.map_err(pg)?, params));
    }
    futures::future::try_join_all(
        prepared
            .iter()
            .map(|(statement, params)| c.execute(statement, params.as_slice())),
    )
    .await
    .map_err(crate::error::pg_statement)?;
    Ok(at)
}
