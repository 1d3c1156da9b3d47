//! `chatroom keys backup | restore`: the key store on its own. Without it no sealed text of
//! the log can be read again, and no backup of the log holds a key, so it is backed up apart
//! from the log. A restored key store brings back the keys of people erased since the
//! backup: the restore destroys them again at once, as the log says they were erased (a
//! server does the same at its start and every [`crate::erasure::SWEEP_EVERY`]).

use super::erase::{caught_up, state};
use crate::config::{RetentionArgs, StoreArgs};
use crate::storage::Storage;
use std::path::Path;

/// Runs `chatroom keys backup`.
///
/// # Errors
/// When `file` exists or cannot be written, or the key store cannot be read.
pub async fn backup(store: StoreArgs, file: &Path) -> anyhow::Result<()> {
    let storage = Storage::open(&store).await?;
    let written = storage.keys.backup(file).await;
    storage.close();
    let n = written?;
    println!(
        "{n} keys, the legal holds and the name secret written to {}",
        file.display()
    );
    Ok(())
}

/// Runs `chatroom keys restore`, then the sweep.
///
/// # Errors
/// When `file` is not a backup of this key store, a server runs on the embedded store, or
/// the storage fails.
pub async fn restore(
    store: StoreArgs,
    retention: RetentionArgs,
    file: &Path,
) -> anyhow::Result<()> {
    if !file.is_file() {
        anyhow::bail!("{} is not a file", file.display());
    }
    let state = state(&store, retention.retention_days).await?;
    let done = async {
        let app = &state.app;
        let added = app.keys.restore(file).await?;
        caught_up(app).await?;
        crate::erasure::sweep(app).await?;
        Ok::<_, anyhow::Error>(added)
    }
    .await;
    state.stop().await;
    let added = done?;
    println!(
        "{added} keys restored from {}; those of users erased since the backup are destroyed again",
        file.display()
    );
    Ok(())
}
