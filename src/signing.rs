//! The log's signing key ([`events::checkpoint::LogKey`]), made at first start and kept
//! beside the key store: `log-signing.key` in the data folder (hex seed, mode 0600), or the
//! `log_signing_key` table when the key store is in PostgreSQL. Losing it loses nothing of
//! the log, but checkpoints signed with it can only be checked with its public key from then.

use anyhow::Context;
use events::checkpoint::LogKey;
use events::migrate::Migration;
use std::io::Write;
use std::path::Path;

/// The PostgreSQL migration of the signing key's table.
pub const PG_MIGRATION: Migration = Migration {
    version: 14,
    name: "log signing key",
    sql: include_str!("../migrations/postgres/0014_log_signing_key.sql"),
};

/// The key's file in the data folder.
pub const FILE: &str = "log-signing.key";

/// The key in `data`'s file, made there if missing.
///
/// # Errors
/// When the file cannot be read, written or parsed.
pub fn in_folder(data: &Path) -> anyhow::Result<LogKey> {
    let path = data.join(FILE);
    if !path.exists() {
        // Written whole under another name and linked into place, so that two processes
        // starting at once keep one key and neither reads a half-written file.
        let tmp = data.join(format!("{FILE}.{}.tmp", std::process::id()));
        let mut file = open_private(&tmp)?;
        writeln!(file, "{}", hex::encode(LogKey::generate().seed()))?;
        file.sync_all()?;
        drop(file);
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).context("storing the log's signing key"),
        }
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the log's signing key {}", path.display()))?;
    parse(text.trim()).with_context(|| format!("{} is not a signing key", path.display()))
}

#[cfg(unix)]
fn open_private(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .context("writing the log's signing key")
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .context("writing the log's signing key")
}

fn parse(hex_seed: &str) -> anyhow::Result<LogKey> {
    let seed: [u8; 32] = hex::decode(hex_seed)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("not 32 bytes of hex")?;
    Ok(LogKey::from_seed(&seed))
}

/// The key in PostgreSQL, made there if missing (the first of several processes wins).
///
/// # Errors
/// When the database cannot be read or written.
pub async fn in_postgres(pool: &deadpool_postgres::Pool) -> anyhow::Result<LogKey> {
    let client = pool.get().await.context("PostgreSQL pool")?;
    let fresh = LogKey::generate().seed();
    client
        .execute(
            "insert into log_signing_key (id, seed, created_at) values (1, $1, $2) \
             on conflict do nothing",
            &[&fresh.as_slice(), &events::now_ms()],
        )
        .await
        .context("storing the log's signing key")?;
    let seed: Vec<u8> = client
        .query_one("select seed from log_signing_key where id = 1", &[])
        .await
        .context("reading the log's signing key")?
        .get(0);
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| anyhow::anyhow!("the stored signing key is not 32 bytes"))?;
    Ok(LogKey::from_seed(&seed))
}
