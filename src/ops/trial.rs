//! `chatroom verify --projections`: the read tables on trial against the log.

use crate::config::VerifyArgs;
use crate::storage::Storage;
use anyhow::Context;
use projections::trial::{self, Difference, Verdict};
use projections::{ReadDb, Reads};
use std::path::{Path, PathBuf};

/// Rows shown per table that differs; the count says how many there are in all.
const SHOWN: usize = 20;

/// Runs `chatroom verify --projections`: exit status 0 when the live read tables are what the
/// log gives, 1 listing what differs.
///
/// # Errors
/// When the log or a database fails.
pub async fn verify_projections(args: VerifyArgs) -> anyhow::Result<i32> {
    let storage = Storage::open(&args.store).await?;
    let days = (args.retention.retention_days > 0).then_some(args.retention.retention_days);
    let retention = async move |scratch: &Reads| retention(scratch, days).await;
    let verdict = match &storage.reads {
        Reads::Sqlite(_) => {
            let name = format!("verify-{}-{}.db", std::process::id(), events::now_ms());
            let scratch = Scratch(args.store.data_dir.join(name));
            let db = ReadDb::open(&scratch.0).context("creating the scratch database")?;
            trial::sqlite(
                &args.store.data_dir.join("read.db"),
                &db,
                &scratch.0,
                &storage.store,
                &storage.keys,
                SHOWN,
                retention,
            )
            .await
            .context("comparing the read tables")?
        }
        Reads::Postgres(live) => {
            let url = args
                .store
                .database_url
                .as_deref()
                .context("the read tables are in PostgreSQL: --database-url")?;
            let schema = format!("verify_{}_{}", std::process::id(), events::now_ms());
            trial::create_schema(live, &schema).await?;
            let pool = events::postgres::pool(&with_search_path(url, &schema), 4)
                .context("PostgreSQL pool of the scratch schema")?;
            let verdict = trial::postgres(
                live,
                &pool,
                &schema,
                &storage.store,
                &storage.keys,
                SHOWN,
                retention,
            )
            .await;
            drop(pool);
            trial::drop_schema(live, &schema).await?;
            verdict.context("comparing the read tables")?
        }
    };
    storage.close();
    Ok(report(&verdict))
}

/// The scratch database file, removed with its write-ahead log when done.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(Path::new(&path));
        }
    }
}

/// `url` with the connection option that makes `schema` the search path.
fn with_search_path(url: &str, schema: &str) -> String {
    let glue = if url.contains('?') { '&' } else { '?' };
    format!("{url}{glue}options=-c%20search_path%3D{schema}")
}

/// What the servers' retention sweeps do beside the log, done to the scratch tables: each
/// message past the limit (the server's, or its room's own where shorter) a placeholder.
async fn retention(
    scratch: &Reads,
    server_days: Option<u32>,
) -> Result<(), projections::sqlite::Error> {
    let now = events::now_ms();
    let cutoff = |days: u32| now - i64::from(days) * crate::retention::DAY_MS;
    if let Some(days) = server_days {
        scratch.scrub_before(cutoff(days), None).await?;
    }
    for (room, days) in scratch.retention_rooms().await? {
        if server_days.is_some_and(|s| s <= days) {
            continue;
        }
        scratch.scrub_before(cutoff(days), Some(&room)).await?;
    }
    Ok(())
}

fn values(row: &[(String, String)]) -> String {
    row.iter()
        .map(|(c, v)| format!("{c} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the verdict; the exit status.
fn report(v: &Verdict) -> i32 {
    let at =
        v.at.iter()
            .map(|(p, at)| format!("{} {at}", p.name()))
            .collect::<Vec<_>>()
            .join(", ");
    if v.differ.is_empty() {
        println!(
            "ok: {} tables, {} rows: the read tables are what the log gives (at positions {at})",
            v.tables, v.rows
        );
        return 0;
    }
    let rows: u64 = v.differ.iter().map(|d| d.rows).sum();
    println!(
        "DIFFERENT: {rows} rows in {} of {} tables differ from the tables rebuilt from the log \
         (at positions {at})",
        v.differ.len(),
        v.tables
    );
    for d in &v.differ {
        println!("{}: {} rows differ", d.table, d.rows);
        for (key, diff) in &d.shown {
            match diff {
                Difference::Changed(columns) => {
                    for (column, live, rebuilt) in columns {
                        println!(
                            "  {} [{key}] {column}: live {live}, rebuilt {rebuilt}",
                            d.table
                        );
                    }
                }
                Difference::Extra(row) => println!(
                    "  {} [{key}] in the live table only (the log does not give it): {}",
                    d.table,
                    values(row)
                ),
                Difference::Missing(row) => println!(
                    "  {} [{key}] missing from the live table: {}",
                    d.table,
                    values(row)
                ),
            }
        }
        let more = d.rows.saturating_sub(d.shown.len() as u64);
        if more > 0 {
            println!("  ... and {more} more rows of {}", d.table);
        }
    }
    1
}
