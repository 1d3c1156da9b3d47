//! A small migration runner for SQLite databases: numbered SQL files applied in order, each in
//! its own transaction together with its row in `schema_migration`.

use rusqlite::Connection;

/// One migration: a number, a name and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Order of application; never reused.
    pub version: u32,
    /// Short name, as in the file name.
    pub name: &'static str,
    /// The SQL, usually `include_str!` of a file under `migrations/`.
    pub sql: &'static str,
}

/// Applies every migration not yet recorded in `schema_migration`, in order.
///
/// # Errors
/// The SQLite error of the first migration that fails; it and the ones after it are not
/// recorded.
pub fn apply(conn: &mut Connection, migrations: &[Migration]) -> rusqlite::Result<usize> {
    conn.execute_batch(
        "create table if not exists schema_migration (
            version    integer primary key,
            name       text    not null,
            applied_at integer not null
        )",
    )?;
    let mut applied = 0;
    for m in migrations {
        let done: bool = conn.query_row(
            "select exists(select 1 from schema_migration where version = ?1)",
            [m.version],
            |r| r.get(0),
        )?;
        if done {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql)?;
        tx.execute(
            "insert into schema_migration (version, name, applied_at) values (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, crate::now_ms()],
        )?;
        tx.commit()?;
        applied += 1;
    }
    Ok(applied)
}

/// Key of the advisory lock that serialises migrators of one PostgreSQL database.
const MIGRATE_LOCK: i64 = 0x6368_6174_6d69_6772; // "chatmigr"

/// Applies every migration not yet recorded, in order, on PostgreSQL. Several processes may
/// start at once: they take turns under an advisory lock, and each migration runs in one
/// transaction with its record.
///
/// # Errors
/// The PostgreSQL error of the first migration that fails.
pub async fn apply_postgres(
    client: &mut tokio_postgres::Client,
    migrations: &[Migration],
) -> Result<usize, tokio_postgres::Error> {
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATE_LOCK])
        .await?;
    let result = async {
        client
            .batch_execute(
                "create table if not exists schema_migration (
                    version    integer primary key,
                    name       text    not null,
                    applied_at bigint  not null
                )",
            )
            .await?;
        let mut applied = 0;
        for m in migrations {
            let version = m.version as i32;
            let done: bool = client
                .query_one(
                    "select exists(select 1 from schema_migration where version = $1)",
                    &[&version],
                )
                .await?
                .get(0);
            if done {
                continue;
            }
            let tx = client.transaction().await?;
            tx.batch_execute(m.sql).await?;
            tx.execute(
                "insert into schema_migration (version, name, applied_at) values ($1, $2, $3)",
                &[&version, &m.name, &crate::now_ms()],
            )
            .await?;
            tx.commit().await?;
            applied += 1;
        }
        Ok(applied)
    }
    .await;
    let _ = client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATE_LOCK])
        .await;
    result
}
