//! The upgrade of a PostgreSQL database. The new log, with today's read tables, sessions, key
//! store and credentials, is built in a schema of its own, [`STAGING`], by today's
//! migrations; the old log in `public` is only read. Once the copy is complete, one
//! transaction moves every object of `public` (the old log, read tables, sessions, functions)
//! into [`OLD`] and every object of the staging schema into `public`. A crash before that
//! commit leaves `public` as it was, and the next run starts the staging schema over.

use super::{NewLog, check, copy};
use crate::auth::Sessions;
use anyhow::{Context, bail};
use events::{PostgresStore, Recorded};
use tokio_postgres::{Client, GenericClient, NoTls};

/// Where the old objects go.
pub(super) const OLD: &str = "chatroom_format_1";
/// Where the new ones are built.
pub(super) const STAGING: &str = "chatroom_upgrade";

/// Upgrades the database at `url`.
pub async fn upgrade(url: &str) -> anyhow::Result<i32> {
    let (mut admin, driver) = connect(url, None).await?;
    let has_log: bool = admin
        .query_one("select to_regclass('public.event') is not null", &[])
        .await?
        .get(0);
    if !has_log {
        bail!("this database holds no log (no table public.event): nothing to upgrade");
    }
    let old = PostgresStore::connect_with(url, false)
        .await
        .context("connecting to the old log")?;
    let total = match check(&old, "the log in this database").await? {
        Ok(events) => events,
        Err(code) => return Ok(code),
    };
    if schema_exists(&admin, OLD).await? {
        bail!(
            "schema {OLD} already exists, from an earlier upgrade: drop or rename it first \
             (`drop schema {OLD} cascade`)"
        );
    }
    // What an interrupted run left there is only ever a partial copy.
    if schema_exists(&admin, STAGING).await? {
        admin
            .batch_execute(&format!("drop schema {STAGING} cascade"))
            .await
            .context("dropping an interrupted upgrade's schema")?;
    }
    admin
        .batch_execute(&format!("create schema {STAGING}"))
        .await
        .context("creating the schema of the new log")?;
    let options = format!("-c search_path={STAGING}");
    let (mut staged, staged_driver) = connect(url, Some(&options)).await?;
    events::migrate::apply_postgres(&mut staged, &crate::storage::POSTGRES_MIGRATIONS)
        .await
        .context("applying today's migrations to the new schema")?;
    let pool = events::postgres::pool_with(url, 4, Some(&options))?;
    let keys = events::keys::Keys::postgres(pool.clone())
        .await
        .context("opening the new key store")?;
    let sessions = Sessions::postgres(pool.clone(), std::time::Duration::ZERO);
    let mut new = Staged(&mut staged);
    let copied = copy(&old, total, &keys, &sessions, &mut new).await?;
    old.close();
    drop(old);
    let written: i64 = staged
        .query_one("select count(*) from event", &[])
        .await?
        .get(0);
    if written as u64 != copied.events + 1 {
        bail!(
            "the new log holds {written} events, not {}: the old log is untouched",
            copied.events + 1
        );
    }
    staged
        .execute(
            "insert into session (token_hash, user_id, created_at, expires_at, revoked)
             select token_hash, user_id, created_at, expires_at, revoked from public.session",
            &[],
        )
        .await
        .context("copying the sessions")?;
    drop((staged, pool));
    let _ = staged_driver.await;
    swap(&mut admin).await?;
    drop(admin);
    let _ = driver.await;
    println!(
        "upgraded the log in this database to format {}: {copied}",
        events::event::LOG_FORMAT
    );
    println!(
        "the old log, read tables and sessions (names, passwords' hashes and texts in clear) are \
         kept in schema {OLD}; once the server runs on the new log, remove them with:\n  \
         drop schema {OLD} cascade;"
    );
    println!(
        "the server rebuilds the read tables from the log at its next start; back up the key \
         store (tables subject_key, key_secret) with the database: the sealed names and texts \
         cannot be read without it"
    );
    Ok(0)
}

pub(super) async fn connect(
    url: &str,
    options: Option<&str>,
) -> anyhow::Result<(Client, tokio::task::JoinHandle<()>)> {
    let mut config: tokio_postgres::Config = url.parse().context("the database URL")?;
    if let Some(o) = options {
        config.options(o);
    }
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, driver))
}

pub(super) async fn schema_exists(client: &impl GenericClient, name: &str) -> anyhow::Result<bool> {
    Ok(client
        .query_one(
            "select exists(select 1 from pg_namespace where nspname = $1)",
            &[&name],
        )
        .await?
        .get(0))
}

/// Moves the old objects out of `public` and the new ones in, in one transaction.
pub(super) async fn swap(client: &mut Client) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    tx.batch_execute(&format!("create schema {OLD}")).await?;
    move_schema(&tx, "public", OLD).await?;
    move_schema(&tx, STAGING, "public").await?;
    tx.batch_execute(&format!("drop schema {STAGING}"))
        .await
        .context("the new schema is not empty after the move")?;
    tx.commit().await.context("moving the new log in")?;
    Ok(())
}

/// Moves every table, view, free-standing sequence and function of `from` into `to`, and
/// fails (undoing the transaction) if anything else is left there.
async fn move_schema(
    tx: &tokio_postgres::Transaction<'_>,
    from: &str,
    to: &str,
) -> anyhow::Result<()> {
    // Objects of an extension stay with it; a sequence owned by a column moves with its table.
    let relations = tx
        .query(
            "select c.relname, c.relkind::text from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
               and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                               and d.objid = c.oid and d.deptype = 'e')
               and not (c.relkind = 'S' and exists (
                   select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                   and d.objid = c.oid and d.deptype in ('a', 'i')))",
            &[&from],
        )
        .await?;
    for r in relations {
        let (name, kind): (String, String) = (r.get(0), r.get(1));
        let what = match kind.as_str() {
            "v" => "view",
            "m" => "materialized view",
            "f" => "foreign table",
            "S" => "sequence",
            _ => "table",
        };
        tx.batch_execute(&format!(
            "alter {what} {}.{} set schema {}",
            ident(from),
            ident(&name),
            ident(to)
        ))
        .await
        .with_context(|| format!("moving {what} {from}.{name} to {to}"))?;
    }
    let routines = tx
        .query(
            "select p.proname, pg_get_function_identity_arguments(p.oid) from pg_proc p
             join pg_namespace n on n.oid = p.pronamespace
             where n.nspname = $1
               and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                               and d.objid = p.oid and d.deptype = 'e')",
            &[&from],
        )
        .await?;
    for r in routines {
        let (name, args): (String, String) = (r.get(0), r.get(1));
        tx.batch_execute(&format!(
            "alter routine {}.{}({args}) set schema {}",
            ident(from),
            ident(&name),
            ident(to)
        ))
        .await
        .with_context(|| format!("moving function {from}.{name} to {to}"))?;
    }
    let left: i64 = tx
        .query_one(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1
               and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                               and d.objid = c.oid and d.deptype = 'e')",
            &[&from],
        )
        .await?
        .get(0);
    if left > 0 {
        bail!(
            "{left} relation(s) of schema {from} could not be moved to {to}; nothing was changed"
        );
    }
    Ok(())
}

/// A quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The new log's table in the staging schema, written one statement per batch.
struct Staged<'a>(&'a mut Client);

impl NewLog for Staged<'_> {
    async fn write(&mut self, events: &[Recorded]) -> anyhow::Result<()> {
        let streams: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
        let versions: Vec<i64> = events.iter().map(|e| e.version as i64).collect();
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let schema: Vec<i16> = events.iter().map(|e| e.schema_version as i16).collect();
        let times: Vec<i64> = events.iter().map(|e| e.recorded_at).collect();
        let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
        let hashes: Vec<&[u8]> = events.iter().map(|e| e.hash.as_slice()).collect();
        self.0
            .execute(
                "insert into event (stream_id, version, event_id, event_type, schema_version,
                                    recorded_at, payload, hash)
                 select s, v, id, t, sv, ra, p, h
                 from unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::smallint[],
                             $6::bigint[], $7::bytea[], $8::bytea[])
                      with ordinality as u(s, v, id, t, sv, ra, p, h, n)
                 order by n",
                &[
                    &streams, &versions, &ids, &types, &schema, &times, &payloads, &hashes,
                ],
            )
            .await
            .context("writing the new log")?;
        Ok(())
    }
}
