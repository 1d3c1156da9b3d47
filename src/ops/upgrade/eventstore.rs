//! The upgrade of a log in EventStoreDB/KurrentDB. A server holds one log and its streams
//! cannot be renamed, so the old log stays on its server, only read, and the new one is
//! written to another server the operator names (`--to-eventstore-url`), in the old log's
//! order, through the store that serves it ([`StoreLog`]), which chains each event as
//! `chatroom verify` recomputes it. Events written there cannot be taken back, so a second run
//! resumes: the copy checks each event already there against the old one it stands for and
//! goes on after them.
//!
//! The key store and the credentials go where this setup keeps them, beside the read side
//! ([`Side`]): `keys.db` and `sessions.db` in the data folder, or, with `--database-url`, a
//! schema of their own built by today's migrations and moved into `public` in one
//! transaction once the copy is complete (as for a log in PostgreSQL). Only then are the old
//! read tables, whose checkpoints are positions of the old server's log and which hold names
//! and texts in clear, moved aside, and the snapshots dropped.

use super::embedded::{OLD_READ, move_all, remove_all, sync_dir};
use super::postgres::{OLD, STAGING, connect, schema_exists, swap};
use super::{Copied, NewLog, check, copy};
use crate::auth::Sessions;
use crate::storage::Format;
use anyhow::{Context, bail};
use events::keys::Keys;
use events::{Expected, NewEvent, Recorded, Store};
use std::path::{Path, PathBuf};

/// Upgrades the log on the server at `old_url` into the server at `new_url`.
#[cfg(feature = "eventstoredb")]
pub async fn upgrade(
    store: &crate::config::StoreArgs,
    old_url: &str,
    new_url: &str,
) -> anyhow::Result<i32> {
    let old = events::EsdbStore::connect(old_url)
        .await
        .context("connecting to the old log's server (--eventstore-url)")?;
    let new = events::EsdbStore::connect(new_url)
        .await
        .context("connecting to the new log's server (--to-eventstore-url)")?;
    let done = run(&old, &new, &store.data_dir, store.database_url.as_deref()).await;
    old.close();
    new.close();
    done
}

/// Upgrades `old` into `new`, with the key store and credentials in the data folder or the
/// database that holds the read side.
pub(super) async fn run(
    old: &dyn Store,
    new: &dyn Store,
    data_dir: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<i32> {
    let total = match check(old, "the log on the old server (--eventstore-url)").await? {
        Ok(events) => events,
        Err(code) => return Ok(code),
    };
    if crate::storage::format(new).await? == Format::Old {
        bail!(
            "the server of --to-eventstore-url holds a log of an earlier format too: is it the \
             old server under another name? The upgraded log goes to a server without a \
             chatroom log; nothing was changed"
        );
    }
    let (there, finding) = crate::ops::verify::check(new, |_| {}).await?;
    if let Some(f) = finding {
        bail!(
            "the log already on the new server fails verification at position {} ({}); nothing \
             was changed: give a server without a chatroom log",
            f.position,
            f.problem
        );
    }
    if there > total + 1 {
        bail!(
            "the new server already holds {there} events, more than the copy of the old log \
             would ({}): a server has run on it, or it holds another log; nothing was changed",
            total + 1
        );
    }
    let side = Side::open(data_dir, database_url, there > 0).await?;
    let copied = copy(old, total, &side.keys, &side.sessions, &mut StoreLog(new)).await?;
    let (count, finding) = crate::ops::verify::check(new, |_| {}).await?;
    if let Some(f) = finding {
        bail!(
            "the new log does not verify at position {} ({}); the old log is untouched",
            f.position,
            f.problem
        );
    }
    if count != total + 1 {
        bail!(
            "the new log holds {count} events, not {}: another process writes to the new \
             server; the old log is untouched",
            total + 1
        );
    }
    side.finish(copied).await?;
    Ok(0)
}

/// The new log in a store that chains what it appends itself, as [`events::EsdbStore`] does:
/// each run of events of one stream is one append at the version the copy gave its first
/// event, and what the store chained must be what the copy chained.
pub(super) struct StoreLog<'a>(pub &'a dyn Store);

impl NewLog for StoreLog<'_> {
    async fn write(&mut self, events: &[Recorded]) -> anyhow::Result<()> {
        for run in events.chunk_by(|a, b| a.stream_id == b.stream_id) {
            let first = &run[0];
            let expected = match first.version - 1 {
                0 => Expected::NoStream,
                v => Expected::Exact(v),
            };
            let mut new = Vec::with_capacity(run.len());
            for r in run {
                let event = NewEvent::with_id(r.event_id, &r.decode()?, r.recorded_at);
                if event.payload != r.payload {
                    bail!(
                        "event {} encodes otherwise on a second encoding",
                        r.event_id
                    );
                }
                new.push(event);
            }
            let stored = self
                .0
                .append(&first.stream_id, expected, new)
                .await
                .with_context(|| {
                    format!(
                        "writing stream {} from version {} to the new server",
                        first.stream_id, first.version
                    )
                })?;
            let same = stored.len() == run.len()
                && stored
                    .iter()
                    .zip(run)
                    .all(|(s, r)| s.version == r.version && s.hash == r.hash);
            if !same {
                bail!(
                    "the new server stored stream {} from version {} otherwise than it was \
                     copied",
                    first.stream_id,
                    first.version
                );
            }
        }
        Ok(())
    }

    async fn written(&mut self, after: u64, limit: usize) -> anyhow::Result<Vec<Recorded>> {
        Ok(self.0.read_all(after, limit).await?)
    }
}

/// Where the read side is, and with it the key store and the credentials.
enum Where {
    /// The data folder.
    Folder(PathBuf),
    /// The database, with the new key store, credentials and read tables in schema
    /// [`STAGING`] until the copy is complete.
    Staged(String),
    /// The database, after an earlier run moved the new schema into `public`.
    Moved,
}

/// The read side of the upgrade.
struct Side {
    at: Where,
    keys: Keys,
    sessions: Sessions,
}

impl Side {
    /// Opens the key store and credentials; `resuming` when the new log holds an interrupted
    /// run's events, whose keys and credentials must be the ones found.
    async fn open(dir: &Path, database_url: Option<&str>, resuming: bool) -> anyhow::Result<Self> {
        let ttl = std::time::Duration::ZERO;
        let Some(url) = database_url else {
            if !dir.join("sessions.db").exists() && !dir.join("read.db").exists() {
                bail!(
                    "{} holds no read side of the old log (no sessions.db or read.db): give the \
                     --data-dir, or --database-url, that the servers on the old log used; the \
                     key store and the credentials go there",
                    dir.display()
                );
            }
            if !resuming && dir.join(OLD_READ).exists() {
                bail!(
                    "{} is already there, from an earlier upgrade: move it away first",
                    dir.join(OLD_READ).display()
                );
            }
            let keys =
                Keys::open_file(&dir.join("keys.db")).context("opening the key store (keys.db)")?;
            let sessions =
                Sessions::open(&dir.join("sessions.db"), ttl).context("opening the sessions")?;
            return Ok(Self {
                at: Where::Folder(dir.to_owned()),
                keys,
                sessions,
            });
        };
        let (admin, driver) = connect(url, None).await?;
        let has_side: bool = admin
            .query_one("select to_regclass('public.session') is not null", &[])
            .await?
            .get(0);
        let staged = schema_exists(&admin, STAGING).await?;
        let moved = schema_exists(&admin, OLD).await?;
        drop(admin);
        let _ = driver.await;
        if !has_side && !moved {
            bail!(
                "this database holds no read side of the old log (no table public.session): give \
                 the --database-url, or --data-dir, that the servers on the old log used"
            );
        }
        let (at, pool) = match (staged, moved) {
            (true, true) => bail!(
                "schemas {STAGING} and {OLD} both exist: an earlier upgrade of another log? \
                 Drop or rename the one that is not this upgrade's first"
            ),
            (false, true) if !resuming => bail!(
                "schema {OLD} already exists, from an earlier upgrade: drop or rename it first \
                 (`drop schema {OLD} cascade`)"
            ),
            (false, true) => {
                let pool = events::postgres::pool(url, 4)?;
                (Where::Moved, pool)
            }
            (_, false) => {
                let (admin, driver) = connect(url, None).await?;
                admin
                    .batch_execute(&format!("create schema if not exists {STAGING}"))
                    .await
                    .context("creating the schema of the new read side")?;
                drop(admin);
                let _ = driver.await;
                let options = format!("-c search_path={STAGING}");
                let (mut staged, driver) = connect(url, Some(&options)).await?;
                events::migrate::apply_postgres(&mut staged, &crate::storage::POSTGRES_MIGRATIONS)
                    .await
                    .context("applying today's migrations to the new schema")?;
                drop(staged);
                let _ = driver.await;
                let pool = events::postgres::pool_with(url, 4, Some(&options))?;
                (Where::Staged(url.to_owned()), pool)
            }
        };
        let keys = Keys::postgres(pool.clone())
            .await
            .context("opening the new key store")?;
        Ok(Self {
            at,
            keys,
            sessions: Sessions::postgres(pool, ttl),
        })
    }

    /// Moves the old read side aside, once the new log is complete; a run that finds it done
    /// already leaves it.
    async fn finish(self, copied: Copied) -> anyhow::Result<()> {
        println!(
            "upgraded the log to format {} on the server of --to-eventstore-url: {copied}",
            events::event::LOG_FORMAT
        );
        println!(
            "the old log stays on the server of --eventstore-url, with names, passwords' hashes \
             and texts in clear: delete its chatroom-* streams (or the server) once the servers \
             run on the new one; start them with --eventstore-url set to the new server"
        );
        match self.at {
            Where::Folder(dir) => {
                drop((self.keys, self.sessions));
                let kept = dir.join(OLD_READ);
                if !kept.exists() {
                    move_all(&dir.join("read.db"), &kept)?;
                    remove_all(&dir.join("snapshots.db"))?;
                    sync_dir(&dir)?;
                }
                println!(
                    "kept for you to remove once the server runs on the new log (it holds names \
                     and texts in clear): {}",
                    kept.display()
                );
                println!(
                    "removed snapshots.db (rooms take new snapshots); the server rebuilds \
                     read.db from the new log at its next start"
                );
                println!(
                    "back up {} now: the sealed names and texts cannot be read without it",
                    dir.join("keys.db").display()
                );
            }
            Where::Staged(url) => {
                drop((self.keys, self.sessions));
                let options = format!("-c search_path={STAGING}");
                let (staged, driver) = connect(&url, Some(&options)).await?;
                staged
                    .execute(
                        "insert into session (token_hash, user_id, created_at, expires_at, revoked)
                         select token_hash, user_id, created_at, expires_at, revoked
                         from public.session on conflict do nothing",
                        &[],
                    )
                    .await
                    .context("copying the sessions")?;
                drop(staged);
                let _ = driver.await;
                let (mut admin, driver) = connect(&url, None).await?;
                swap(&mut admin).await?;
                drop(admin);
                let _ = driver.await;
                moved_aside();
            }
            Where::Moved => moved_aside(),
        }
        Ok(())
    }
}

fn moved_aside() {
    println!(
        "the old read tables and sessions (names and texts in clear) are kept in schema {OLD}; \
         once the server runs on the new log, remove them with:\n  drop schema {OLD} cascade;"
    );
    println!(
        "the server rebuilds the read tables from the new log at its next start; back up the \
         key store (tables subject_key, key_secret) with the database: the sealed names and \
         texts cannot be read without it"
    );
}

#[cfg(test)]
mod tests;
