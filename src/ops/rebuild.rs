//! `chatroom projections status` and `chatroom projections rebuild`.

use super::progress::Bar;
use crate::config::StoreArgs;
use crate::storage::Storage;
use projections::{ALL, Projection, rebuild};

/// Prints each projection's checkpoint, lag, and any unfinished rebuild, then the parked
/// events.
///
/// # Errors
/// When the store cannot be read.
pub async fn status(args: StoreArgs) -> anyhow::Result<()> {
    let storage = Storage::open(&args).await?;
    let head = *storage.store.head().borrow();
    println!("log head: position {head}");
    println!(
        "{:<12} {:>12} {:>10}  rebuild",
        "projection", "checkpoint", "lag"
    );
    for p in ALL {
        let at = storage.reads.checkpoint(p).await?;
        let pending = rebuild::pending(&storage.reads, p).await?;
        println!(
            "{:<12} {:>12} {:>10}  {}",
            p.name(),
            at,
            head.saturating_sub(at),
            pending.map_or("-".to_owned(), |s| format!(
                "unfinished, at {s} (run rebuild to resume)"
            ))
        );
    }
    let parked = projections::dead::list(&storage.reads).await;
    storage.close();
    super::dead::print(&parked?);
    Ok(())
}

/// Rebuilds one projection, or all, beside the live tables and switches over.
///
/// # Errors
/// When the store or the database fails, or the name is unknown; the live tables are then as
/// they were.
pub async fn rebuild(args: StoreArgs, name: Option<String>, restart: bool) -> anyhow::Result<()> {
    let chosen: Vec<Projection> = match &name {
        Some(n) => vec![Projection::by_name(n).ok_or_else(|| {
            anyhow::anyhow!(
                "no projection is called {n:?}; there are {}",
                ALL.map(|p| p.name()).join(", ")
            )
        })?],
        None => ALL.to_vec(),
    };
    let storage = Storage::open(&args).await?;
    for p in chosen {
        let from = rebuild::prepare(&storage.reads, p, restart).await?;
        if from > 0 {
            eprintln!(
                "{}: resuming an interrupted rebuild at position {from}",
                p.name()
            );
        }
        let mut bar = Bar::new(format!("rebuilding {}", p.name()), from);
        let mut last = (from, 0);
        rebuild::fill(
            &storage.reads,
            &storage.store,
            &storage.keys,
            p,
            |progress| {
                bar.update(progress.at, progress.head);
                last = (progress.at, progress.head);
            },
        )
        .await?;
        let at = rebuild::switch(&storage.reads, &storage.store, &storage.keys, p).await?;
        bar.finish(at, at.max(last.1));
        println!(
            "{}: rebuilt from the log up to position {at} ({:.0} events/s) and switched over",
            p.name(),
            bar.rate(at)
        );
    }
    storage.close();
    Ok(())
}
