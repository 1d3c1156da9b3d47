//! `chatroom verify`: recompute every stream's hash chain and version sequence.

use super::progress::Bar;
use crate::config::StoreArgs;
use crate::storage::Storage;
use events::codec::{DecodeError, legacy};
use events::envelope::GENESIS;
use std::collections::HashMap;

/// What is wrong with an event.
#[derive(Debug)]
pub struct Finding {
    /// Where in the log.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its version as stored.
    pub version: u64,
    /// Its id.
    pub event_id: String,
    /// What does not match.
    pub problem: String,
}

/// Checks the whole log; `None` when every stream verifies.
///
/// # Errors
/// When the log cannot be read.
pub async fn check(
    store: &dyn events::Store,
    mut on_page: impl FnMut(u64),
) -> anyhow::Result<(u64, Option<Finding>)> {
    let mut heads: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    let mut after = 0;
    let mut count = 0;
    loop {
        let page = store.read_all(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in page {
            count += 1;
            let (prev_version, prev_hash) =
                heads.get(&e.stream_id).copied().unwrap_or((0, GENESIS));
            let problem = if e.version != prev_version + 1 {
                Some(if prev_version == 0 {
                    format!(
                        "the stream starts at version {} instead of 1 (earlier events missing)",
                        e.version
                    )
                } else {
                    format!(
                        "version {} follows version {} (expected {}): an event is missing, repeated or moved",
                        e.version,
                        prev_version,
                        prev_version + 1
                    )
                })
            } else if e.hash != e.expected_hash(&prev_hash) {
                Some(
                    "its hash does not match its contents and the previous event's hash: \
                     the event (or one before it in the stream) was altered"
                        .to_owned(),
                )
            } else if let Err(err) = decodes(&e) {
                Some(format!("its payload does not decode: {err}"))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok((
                    count,
                    Some(Finding {
                        position: e.position,
                        stream: e.stream_id,
                        version: e.version,
                        event_id: e.event_id.to_string(),
                        problem,
                    }),
                ));
            }
            heads.insert(e.stream_id, (e.version, e.hash));
        }
        on_page(after);
    }
    Ok((count, None))
}

/// Whether an event's payload reads, as today's event or as one of a log of an earlier format
/// (which `chatroom upgrade` verifies before it copies it).
fn decodes(e: &events::Recorded) -> Result<(), DecodeError> {
    match e.decode() {
        Ok(_) => Ok(()),
        Err(DecodeError::Legacy { .. }) => {
            legacy::decode(&e.event_type, e.schema_version, &e.payload).map(|_| ())
        }
        Err(err) => Err(err),
    }
}

/// Runs `chatroom verify`: exit status 0 when clean, 1 naming the first bad event.
///
/// # Errors
/// When the log cannot be read.
pub async fn verify(args: StoreArgs) -> anyhow::Result<i32> {
    let storage = Storage::open(&args).await?;
    let head = *storage.store.head().borrow();
    let mut bar = Bar::new("verifying", 0);
    let (count, finding) = check(&*storage.store, |at| bar.update(at, head)).await?;
    bar.finish(head, head);
    storage.close();
    match finding {
        None => {
            println!("ok: {count} events verified, every stream's hash chain and versions match");
            Ok(0)
        }
        Some(f) => {
            println!(
                "TAMPERED: event {} at position {} (stream {}, version {}): {}",
                f.event_id, f.position, f.stream, f.version, f.problem
            );
            Ok(1)
        }
    }
}
