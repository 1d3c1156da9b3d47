//! Read tables on trial: every projection rebuilt from the log into scratch tables and compared
//! with the live ones, row by row (`chatroom verify --projections`).
//!
//! The scratch tables are a SQLite database file of their own, or a PostgreSQL schema of
//! their own, with the live tables' shape, filled by the rebuild's [`rebuild::replay`].
//! Nothing of the live database is written: the live side is read in one snapshot (a SQLite
//! read transaction on a read-only connection, a PostgreSQL repeatable-read transaction), and
//! each scratch projection is brought to the live checkpoint that snapshot shows before the
//! two are compared, so a server that keeps writing meanwhile causes no difference.
//!
//! Only the projections' tables are compared ([`Projection::tables`]); what the read database
//! keeps beside the log (read markers, checkpoints, dead letters, sessions, presence) is not.

use crate::error::pg;
use crate::projection::{ALL, Projection, Target};
use crate::read::Reads;
use crate::rebuild;
use crate::sqlite::{self, Error};
use events::Store;
use events::keys::Keys;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One row that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// In both, with other values: each `(column, live, rebuilt)`.
    Changed(Vec<(String, String, String)>),
    /// In the live table only: the log does not give it. Its columns and values.
    Extra(Vec<(String, String)>),
    /// In the rebuilt table only: the live table lacks it. Its columns and values.
    Missing(Vec<(String, String)>),
}

/// What differs in one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff {
    /// The table.
    pub table: &'static str,
    /// How many rows (by key) differ.
    pub rows: u64,
    /// The first of them in key order, at most the limit asked: each row's key (`column =
    /// value`, joined) and how it differs.
    pub shown: Vec<(String, Difference)>,
}

/// The outcome of a trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The position each projection was compared at (its live checkpoint).
    pub at: Vec<(Projection, u64)>,
    /// Tables compared.
    pub tables: usize,
    /// Rows compared, live side.
    pub rows: u64,
    /// The tables that differ.
    pub differ: Vec<TableDiff>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The lowest live checkpoint, up to which the scratch tables are filled before the snapshot.
async fn lowest(live: &Reads) -> Result<u64, Error> {
    let mut low = u64::MAX;
    for p in ALL {
        low = low.min(live.checkpoint(p).await?);
    }
    Ok(low)
}

/// One table's comparison: its columns in order, and which of them are its key.
struct Sql {
    columns: Vec<String>,
    key: Vec<usize>,
}

impl Sql {
    fn list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn keys(&self) -> String {
        self.key
            .iter()
            .map(|i| quote(&self.columns[*i]))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// How many keys differ, and the rows of the first `limit` of them (0: live, 1: rebuilt),
    /// each value rendered by `render` (a SQL expression of `{c}`, the quoted column).
    fn queries(&self, live: &str, scratch: &str, limit: usize, render: &str) -> (String, String) {
        let (cols, keys) = (self.list(), self.keys());
        let sides = format!(
            "with l as (select {cols} from {live} except select {cols} from {scratch}),
                  s as (select {cols} from {scratch} except select {cols} from {live})"
        );
        let count = format!(
            "{sides} select count(*) from (select {keys} from l union select {keys} from s) d"
        );
        let shown: Vec<String> = self
            .columns
            .iter()
            .map(|c| render.replace("{c}", &quote(c)))
            .collect();
        let shown = shown.join(", ");
        let rows = format!(
            "{sides}, k as (select {keys} from l union select {keys} from s
                              order by {keys} limit {limit})
             select 0, {shown} from l where ({keys}) in (select {keys} from k)
             union all
             select 1, {shown} from s where ({keys}) in (select {keys} from k)"
        );
        (count, rows)
    }

    /// Groups the rows of [`Sql::queries`] by key into differences, in key order.
    fn differences(&self, rows: Vec<(i64, Vec<String>)>) -> Vec<(String, Difference)> {
        let mut by_key: BTreeMap<Vec<String>, [Option<Vec<String>>; 2]> = BTreeMap::new();
        for (side, values) in rows {
            let key = self.key.iter().map(|i| values[*i].clone()).collect();
            by_key.entry(key).or_default()[usize::from(side != 0)] = Some(values);
        }
        let named = |values: Vec<String>| -> Vec<(String, String)> {
            self.columns.iter().cloned().zip(values).collect()
        };
        by_key
            .into_iter()
            .map(|(key, sides)| {
                let key = self
                    .key
                    .iter()
                    .zip(key)
                    .map(|(i, v)| format!("{} = {v}", self.columns[*i]))
                    .collect::<Vec<_>>()
                    .join(", ");
                let diff = match sides {
                    [Some(l), Some(s)] => Difference::Changed(
                        self.columns
                            .iter()
                            .zip(l.into_iter().zip(s))
                            .filter(|(_, (l, s))| l != s)
                            .map(|(c, (l, s))| (c.clone(), l, s))
                            .collect(),
                    ),
                    [Some(l), None] => Difference::Extra(named(l)),
                    [None, Some(s)] => Difference::Missing(named(s)),
                    [None, None] => Difference::Changed(Vec::new()),
                };
                (key, diff)
            })
            .collect()
    }
}

/// Tries the embedded read tables at `live` (a path: opened read-only) against `scratch`,
/// an empty read database at `scratch_path`, showing at most `limit` rows of each table.
///
/// # Errors
/// When the log or either database fails.
pub async fn sqlite(
    live_path: &std::path::Path,
    scratch: &sqlite::ReadDb,
    scratch_path: &std::path::Path,
    store: &Arc<dyn Store>,
    keys: &Arc<Keys>,
    limit: usize,
    prepare: impl AsyncFnOnce(&Reads) -> Result<(), Error>,
) -> Result<Verdict, Error> {
    let scratch_reads = Reads::Sqlite(scratch.clone());
    let live_ro = live_path.to_owned();
    let opened = tokio::task::spawn_blocking(move || {
        rusqlite::Connection::open_with_flags(
            &live_ro,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    opened.busy_timeout(std::time::Duration::from_secs(10))?;
    let low = lowest_sqlite(&opened)?;
    rebuild::replay(
        &scratch_reads,
        store,
        keys,
        &ALL,
        Target::Live,
        0,
        low,
        |_| {},
    )
    .await?;
    prepare(&scratch_reads).await?;
    // Attached outside the transaction (SQLite refuses it inside), read only within it.
    opened.execute(
        "attach database ?1 as scratch",
        [scratch_path.to_string_lossy()],
    )?;
    // The snapshot: a read transaction, begun by its first read of each database.
    opened.execute_batch("begin")?;
    let mut at = Vec::new();
    for p in ALL {
        at.push((p, sqlite::checkpoint(&opened, p)?));
    }
    for (p, until) in &at {
        rebuild::replay(
            &scratch_reads,
            store,
            keys,
            &[*p],
            Target::Live,
            low,
            *until,
            |_| {},
        )
        .await?;
    }
    let verdict = tokio::task::block_in_place(|| compare_sqlite(&opened, at, limit));
    opened.execute_batch("commit; detach database scratch")?;
    verdict
}

/// The live checkpoints read on `conn`, as a lowest position.
fn lowest_sqlite(conn: &rusqlite::Connection) -> Result<u64, Error> {
    let mut low = u64::MAX;
    for p in ALL {
        low = low.min(sqlite::checkpoint(conn, p)?);
    }
    Ok(low)
}

fn compare_sqlite(
    c: &rusqlite::Connection,
    at: Vec<(Projection, u64)>,
    limit: usize,
) -> Result<Verdict, Error> {
    let mut verdict = Verdict {
        at,
        tables: 0,
        rows: 0,
        differ: Vec::new(),
    };
    for p in ALL {
        for table in p.tables() {
            let info: Vec<(String, i64)> = {
                let mut s = c.prepare(&format!("pragma main.table_info({})", quote(table)))?;
                let rows = s.query_map([], |r| Ok((r.get(1)?, r.get(5)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let sql = shape(info);
            let (live, scratch) = (
                format!("main.{}", quote(table)),
                format!("scratch.{}", quote(table)),
            );
            let (count, rows) = sql.queries(&live, &scratch, limit, "quote({c})");
            verdict.tables += 1;
            verdict.rows += c.query_row(&format!("select count(*) from {live}"), [], |r| {
                r.get::<_, i64>(0)
            })? as u64;
            let n: i64 = c.query_row(&count, [], |r| r.get(0))?;
            if n == 0 {
                continue;
            }
            let found: Vec<(i64, Vec<String>)> = {
                let mut s = c.prepare(&rows)?;
                let width = sql.columns.len();
                let rows = s.query_map([], |r| {
                    let values = (1..=width)
                        .map(|i| r.get::<_, String>(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((r.get(0)?, values))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            verdict.differ.push(TableDiff {
                table,
                rows: n as u64,
                shown: sql.differences(found),
            });
        }
    }
    Ok(verdict)
}

/// A table's comparison from its columns in order, each with its place in the primary key
/// (0: not in it); a table without one is keyed by every column.
fn shape(info: Vec<(String, i64)>) -> Sql {
    let mut key: Vec<(i64, usize)> = info
        .iter()
        .enumerate()
        .filter(|(_, (_, pk))| *pk > 0)
        .map(|(i, (_, pk))| (*pk, i))
        .collect();
    key.sort_unstable();
    let mut key: Vec<usize> = key.into_iter().map(|(_, i)| i).collect();
    if key.is_empty() {
        key = (0..info.len()).collect();
    }
    Sql {
        columns: info.into_iter().map(|(c, _)| c).collect(),
        key,
    }
}

/// Creates the PostgreSQL schema `scratch` with empty copies of the live tables of every
/// projection, the checkpoints and the dead letters.
///
/// # Errors
/// When the database cannot be changed.
pub async fn create_schema(live: &deadpool_postgres::Pool, scratch: &str) -> Result<(), Error> {
    let c = live.get().await.map_err(pg)?;
    let schema: String = c
        .query_one("select current_schema()", &[])
        .await
        .map_err(pg)?
        .get(0);
    // Its notices (what `like` copies, what `cascade` drops) are no operator's concern.
    let mut sql = format!(
        "set client_min_messages = warning; create schema {};",
        quote(scratch)
    );
    let tables = ALL
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .chain(["projection_checkpoint", "projection_dead_letter"]);
    for t in tables {
        sql.push_str(&format!(
            "create table {s}.{t} (like {l}.{t} including all);",
            s = quote(scratch),
            l = quote(&schema),
            t = quote(t)
        ));
    }
    c.batch_execute(&sql).await.map_err(pg)
}

/// Drops the scratch schema.
///
/// # Errors
/// When the database cannot be changed.
pub async fn drop_schema(live: &deadpool_postgres::Pool, scratch: &str) -> Result<(), Error> {
    let c = live.get().await.map_err(pg)?;
    c.batch_execute(&format!(
        "set client_min_messages = warning; drop schema if exists {} cascade",
        quote(scratch)
    ))
    .await
    .map_err(pg)
}

/// Tries the PostgreSQL read tables of `live` against the schema `scratch` made by
/// [`create_schema`], which `scratch_pool`'s connections have as their search path.
///
/// # Errors
/// When the log or the database fails.
#[allow(clippy::too_many_arguments)]
pub async fn postgres(
    live: &deadpool_postgres::Pool,
    scratch_pool: &deadpool_postgres::Pool,
    scratch: &str,
    store: &Arc<dyn Store>,
    keys: &Arc<Keys>,
    limit: usize,
    prepare: impl AsyncFnOnce(&Reads) -> Result<(), Error>,
) -> Result<Verdict, Error> {
    let live_reads = Reads::Postgres(live.clone());
    let scratch_reads = Reads::Postgres(scratch_pool.clone());
    let low = lowest(&live_reads).await?;
    rebuild::replay(
        &scratch_reads,
        store,
        keys,
        &ALL,
        Target::Live,
        0,
        low,
        |_| {},
    )
    .await?;
    prepare(&scratch_reads).await?;
    let mut c = live.get().await.map_err(pg)?;
    let schema: String = c
        .query_one("select current_schema()", &[])
        .await
        .map_err(pg)?
        .get(0);
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(pg)?;
    let mut at = Vec::new();
    for p in ALL {
        at.push((p, crate::postgres::checkpoint(&tx, p).await?));
    }
    // The scratch tables catch up inside the snapshot's transaction, which sees its own
    // writes: written elsewhere, they would be invisible to it.
    tx.batch_execute(&format!("set local search_path = {}", quote(scratch)))
        .await
        .map_err(pg)?;
    for (p, until) in &at {
        let mut after = low;
        while after < *until {
            let mut batch = store
                .read_all(after, 2000)
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            batch.retain(|r| r.position <= *until);
            let Some(last) = batch.last().map(|r| r.position) else {
                break;
            };
            crate::postgres::apply_in_transaction(keys, &tx, &[*p], Target::Live, 0, &batch)
                .await?;
            after = last;
        }
    }
    let mut verdict = Verdict {
        at,
        tables: 0,
        rows: 0,
        differ: Vec::new(),
    };
    for p in ALL {
        for table in p.tables() {
            let info: Vec<(String, i64)> = tx
                .query(
                    // `indkey` counts from 0: its place in the key from 1, 0 for none.
                    "select a.attname::text,
                            coalesce(array_position(i.indkey::int2[], a.attnum)
                                     - array_lower(i.indkey::int2[], 1) + 1, 0)::int8
                     from pg_attribute a
                     left join pg_index i on i.indrelid = a.attrelid and i.indisprimary
                     where a.attrelid = to_regclass($1) and a.attnum > 0
                       and not a.attisdropped
                     order by a.attnum",
                    &[&format!("{}.{}", quote(&schema), quote(table))],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let sql = shape(info);
            let (live, scratch) = (
                format!("{}.{}", quote(&schema), quote(table)),
                format!("{}.{}", quote(scratch), quote(table)),
            );
            let render = "coalesce(quote_literal({c}::text), 'NULL')";
            let (count, rows) = sql.queries(&live, &scratch, limit, render);
            verdict.tables += 1;
            let n: i64 = tx
                .query_one(&format!("select count(*) from {live}"), &[])
                .await
                .map_err(pg)?
                .get(0);
            verdict.rows += n as u64;
            let n: i64 = tx.query_one(&count, &[]).await.map_err(pg)?.get(0);
            if n == 0 {
                continue;
            }
            let found = tx
                .query(&rows, &[])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| {
                    let side: i32 = r.get(0);
                    let values = (1..=sql.columns.len()).map(|i| r.get(i)).collect();
                    (i64::from(side), values)
                })
                .collect();
            verdict.differ.push(TableDiff {
                table,
                rows: n as u64,
                shown: sql.differences(found),
            });
        }
    }
    tx.rollback().await.map_err(pg)?;
    Ok(verdict)
}
