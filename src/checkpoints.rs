//! The checkpoints a server signs on its own: every `--checkpoint-every-secs` (and at start)
//! into `<data dir>/checkpoints/`, named `checkpoint-<size>-<time>.json` so that names sort
//! oldest first, keeping the newest [`KEEP`]. The tree is kept between checkpoints, so each
//! one reads only the events appended since the one before.

use events::Store;
use events::checkpoint::{Checkpoint, LogKey, LogTree};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Checkpoints kept: a day's at the default interval. A newer checkpoint covers everything an
/// older one did, so old files prove nothing more; they stay for a while so that an operator
/// who hands them out (to an auditor, a witness) can still take the one of a given hour.
pub const KEEP: usize = 288;

/// The folder of a data folder's checkpoints.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join("checkpoints")
}

/// Writes `cp` into `dir` (whole, then renamed into place) and removes all but the newest
/// [`KEEP`].
///
/// # Errors
/// When the folder cannot be written.
pub fn write(dir: &Path, cp: &Checkpoint) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = format!("checkpoint-{:012}-{}.json", cp.size, cp.time);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, crate::ops::checkpoint_json(cp))?;
    std::fs::rename(&tmp, &path)?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("checkpoint-") && n.ends_with(".json"))
        })
        .collect();
    names.sort();
    let extra = names.len().saturating_sub(KEEP);
    for old in &names[..extra] {
        std::fs::remove_file(old)?;
    }
    Ok(path)
}

/// Signs a checkpoint every `every` into `dir`, for as long as it runs.
pub async fn periodic(store: Arc<dyn Store>, key: LogKey, dir: PathBuf, every: Duration) {
    let mut tree = LogTree::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = tree.extend(&*store).await {
            tracing::warn!(error = %e, "could not read the log for a checkpoint; retrying");
            continue;
        }
        let cp = key.sign(&tree.head(), events::now_ms());
        match write(&dir, &cp) {
            Ok(path) => tracing::debug!(size = cp.size, path = %path.display(), "checkpoint"),
            Err(e) => tracing::warn!(error = %e, "could not write a checkpoint"),
        }
    }
}
