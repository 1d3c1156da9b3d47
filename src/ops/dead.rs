//! `chatroom projections retry`, and the dead letters `chatroom projections status` lists.

use super::times::time_text;
use crate::config::StoreArgs;
use crate::storage::Storage;
use projections::dead::{self, DeadLetter};

/// An error as one line, at most this many characters (an undecodable payload's can be long).
const ERROR_WIDTH: usize = 200;

fn one_line(error: &str) -> String {
    let line: String = error.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(ERROR_WIDTH) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// Prints the parked events, one a line, in log order.
pub(super) fn print(letters: &[DeadLetter]) {
    if letters.is_empty() {
        println!("parked events (dead letters): none");
        return;
    }
    println!(
        "parked events (dead letters): {} (run `chatroom projections retry` once the cause is fixed)",
        letters.len()
    );
    println!(
        "{:<22} {:>10}  {:<24} {:>8}  {:<24}  error",
        "projection", "position", "stream", "version", "parked at"
    );
    for d in letters {
        println!(
            "{:<22} {:>10}  {:<24} {:>8}  {:<24}  {}",
            d.projection,
            d.position,
            d.stream,
            d.version,
            time_text(d.parked_at),
            one_line(&d.error)
        );
    }
}

/// Applies every parked event again; exit status 0 when none stays parked, 1 otherwise.
///
/// # Errors
/// When the log or the read database fails; what was retried before stays done.
pub async fn retry(args: StoreArgs) -> anyhow::Result<i32> {
    let storage = Storage::open(&args).await?;
    let done = dead::retry(&storage.reads, &storage.store, &storage.keys).await;
    storage.close();
    let done = done?;
    for d in &done.applied {
        println!(
            "applied: {} at position {} (stream {}, version {})",
            d.projection, d.position, d.stream, d.version
        );
    }
    for d in &done.still {
        println!(
            "still parked: {} at position {} (stream {}, version {}): {}",
            d.projection,
            d.position,
            d.stream,
            d.version,
            one_line(&d.error)
        );
    }
    println!(
        "{} applied, {} still parked",
        done.applied.len(),
        done.still.len()
    );
    Ok(if done.still.is_empty() { 0 } else { 1 })
}
