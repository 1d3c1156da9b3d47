//! `chatroom public-key`, `chatroom checkpoint` and `chatroom verify --checkpoint`: sign the
//! log's Merkle tree head, and prove later that the log still holds, unchanged and in order,
//! every event a checkpoint covered, and that today's log extends it (RFC 9162 consistency);
//! for a version 2 checkpoint, that its heads are those of the streams of those events.

use super::progress::Bar;
use crate::config::StoreArgs;
use crate::storage::Storage;
use anyhow::Context;
use events::checkpoint::{Checkpoint, Head, LogTree, VerifyingKey, parse_public};
use events::heads::{Heads, HeadsRoot};
use events::merkle::{self, Builder, RangeHasher};
use std::path::Path;

/// Runs `chatroom public-key`: prints the log's verification key, 64 hex digits.
///
/// # Errors
/// When the storage or the key cannot be opened.
pub async fn public_key(args: StoreArgs) -> anyhow::Result<()> {
    let storage = Storage::open(&args).await?;
    let key = storage.log_key(&args).await;
    storage.close();
    println!("{}", hex::encode(key?.public().as_bytes()));
    Ok(())
}

/// Runs `chatroom checkpoint --out FILE`: signs the tree head of the log as it is now.
///
/// # Errors
/// When the log cannot be read or the file written.
pub async fn checkpoint(args: StoreArgs, out: &Path) -> anyhow::Result<()> {
    let storage = Storage::open(&args).await?;
    let done = async {
        let key = storage.log_key(&args).await?;
        let mut tree = LogTree::default();
        tree.extend(&*storage.store).await?;
        Ok::<_, anyhow::Error>(key.sign(&tree.head(), events::now_ms()))
    }
    .await;
    storage.close();
    let cp = done?;
    std::fs::write(out, to_json(&cp))
        .with_context(|| format!("writing the checkpoint {}", out.display()))?;
    println!(
        "checkpoint of {} events (up to position {}), root {}, heads of {} streams {}, written \
         to {}",
        cp.size,
        cp.position,
        cp.root,
        cp.streams.unwrap_or_default(),
        cp.heads.as_deref().unwrap_or_default(),
        out.display()
    );
    Ok(())
}

/// A checkpoint's file: pretty JSON and a final newline.
pub fn to_json(cp: &Checkpoint) -> String {
    let mut text = serde_json::to_string_pretty(cp).expect("a checkpoint serialises");
    text.push('\n');
    text
}

/// Reads a checkpoint file.
///
/// # Errors
/// When it cannot be read or is not a checkpoint's JSON.
pub fn read(file: &Path) -> anyhow::Result<Checkpoint> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the checkpoint {}", file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a checkpoint file", file.display()))
}

/// A verification key given on the command line: its 64 hex digits, or a file holding them
/// (as `chatroom public-key` prints them).
///
/// # Errors
/// When it is neither.
pub fn public_key_arg(text: &str) -> anyhow::Result<VerifyingKey> {
    match parse_public(text) {
        Ok(key) => Ok(key),
        Err(e) => {
            let path = Path::new(text);
            if !path.is_file() {
                anyhow::bail!("--public-key {text:?}: {e}, or a file holding them");
            }
            let content = std::fs::read_to_string(path)
                .with_context(|| format!("reading the public key {}", path.display()))?;
            parse_public(&content)
                .map_err(|e| anyhow::anyhow!("the public key file {}: {e}", path.display()))
        }
    }
}

/// Gaps worth naming at most.
const GAPS_SHOWN: usize = 5;

/// What one pass over the log finds against a checkpoint's head.
struct Pass {
    /// Events read (the log's size when the pass began).
    count: u64,
    /// Root of the first `size` events, when there were that many.
    root_at_size: Option<merkle::Hash>,
    /// Root of all `count`.
    root: merkle::Hash,
    /// Hashes of the checkpoint's frontier ranges, then of the consistency proof's.
    hashes: Option<Vec<merkle::Hash>>,
    /// Positions of the first `size` events.
    positions: Vec<u64>,
    /// Events at or before the checkpoint's last position.
    covered: u64,
    /// Runs of positions at or before it that hold no event.
    gaps: Vec<(u64, u64)>,
    /// The heads of the streams of the first `size` events.
    heads: HeadsRoot,
}

async fn pass(
    store: &dyn events::Store,
    head: &Head,
    count: u64,
    mut on_page: impl FnMut(u64),
) -> anyhow::Result<Pass> {
    let mut ranges = merkle::frontier_ranges(head.size);
    ranges.extend(merkle::consistency_ranges(head.size, count));
    let mut hasher = RangeHasher::new(ranges);
    let mut tree = Builder::new();
    let mut p = Pass {
        count: 0,
        root_at_size: (head.size == 0).then(merkle::empty_root),
        root: merkle::empty_root(),
        hashes: None,
        positions: Vec::new(),
        covered: 0,
        gaps: Vec::new(),
        heads: Heads::default().root(),
    };
    let mut heads = Heads::default();
    let mut after = 0;
    'read: while p.count < count {
        let page = store.read_all(after, 5000).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            if p.count == count {
                break 'read;
            }
            let leaf = merkle::leaf_hash(&e.hash);
            tree.push_hash(leaf);
            hasher.push_hash(leaf);
            p.count += 1;
            if p.count <= head.size {
                p.positions.push(e.position);
                heads.push(&e.stream_id, e.version, e.position, &e.hash);
            }
            if p.count == head.size {
                p.root_at_size = Some(tree.root());
            }
            if e.position <= head.position {
                p.covered += 1;
                if e.position > after + 1 && p.gaps.len() < GAPS_SHOWN {
                    p.gaps.push((after + 1, e.position - 1));
                }
            }
            after = e.position;
        }
        on_page(after);
    }
    if after < head.position && p.gaps.len() < GAPS_SHOWN {
        p.gaps.push((after + 1, head.position));
    }
    p.root = tree.root();
    p.hashes = hasher.finish();
    p.heads = heads.root();
    Ok(p)
}

/// Runs `chatroom verify --checkpoint FILE`: exit status 0 when the log still holds what the
/// checkpoint covered and extends it, 1 saying where it does not.
///
/// # Errors
/// When the checkpoint or the key cannot be read, or the log cannot be read.
pub async fn verify(args: StoreArgs, file: &Path, public: Option<&str>) -> anyhow::Result<i32> {
    let cp = read(file)?;
    let storage = Storage::open(&args).await?;
    let done = verify_open(&storage, &args, &cp, file, public).await;
    storage.close();
    done
}

async fn verify_open(
    storage: &Storage,
    args: &StoreArgs,
    cp: &Checkpoint,
    file: &Path,
    public: Option<&str>,
) -> anyhow::Result<i32> {
    let key = match public {
        Some(text) => public_key_arg(text)?,
        None => storage.log_key(args).await?.public(),
    };
    let head = match cp.verify(&key) {
        Ok(head) => head,
        Err(e) => {
            println!("TAMPERED: the checkpoint {}: {e}", file.display());
            return Ok(1);
        }
    };
    let store = &*storage.store;
    let now = *store.head().borrow();
    let mut bar = Bar::new("verifying the hash chains", 0);
    let (count, finding) = super::verify::check(store, |at| bar.update(at, now)).await?;
    bar.finish(now, now);
    if let Some(f) = finding {
        println!(
            "TAMPERED: event {} at position {} (stream {}, version {}): {}",
            f.event_id, f.position, f.stream, f.version, f.problem
        );
        return Ok(1);
    }
    let mut bar = Bar::new("verifying the checkpoint", 0);
    let p = pass(store, &head, count, |at| bar.update(at, now)).await?;
    bar.finish(now, now);
    if let Some(problem) = mismatch(&head, &p) {
        println!(
            "TAMPERED: the log no longer holds what checkpoint {} covered ({} events up to \
             position {}): {problem}",
            file.display(),
            head.size,
            head.position
        );
        return Ok(1);
    }
    let hashes = p.hashes.unwrap_or_default();
    let proof = &hashes[head.frontier.len()..];
    if !merkle::verify_consistency(head.size, p.count, &head.root, &p.root, proof) {
        println!(
            "TAMPERED: today's log of {} events is not a consistent extension of the checkpoint",
            p.count
        );
        return Ok(1);
    }
    let heads = match head.heads {
        Some(signed) if signed != p.heads => {
            println!(
                "TAMPERED: checkpoint {} signs the heads of {} streams (root {}), but its events \
                 are of {} streams whose heads make root {}: it was signed over heads the log \
                 never had",
                file.display(),
                signed.streams,
                hex::encode(signed.root),
                p.heads.streams,
                hex::encode(p.heads.root)
            );
            return Ok(1);
        }
        Some(signed) => format!(
            ", and so do the heads of its {} streams (root {})",
            signed.streams,
            hex::encode(signed.root)
        ),
        None => " (version 1: it signs no heads)".to_owned(),
    };
    println!(
        "ok: the log's first {} events match checkpoint {} v{} (root {}){heads}; its {} events \
         today (root {}) extend it: the consistency proof of {} hashes verifies",
        head.size,
        file.display(),
        cp.version().unwrap_or_default(),
        cp.root,
        p.count,
        hex::encode(p.root),
        proof.len()
    );
    Ok(0)
}

/// Where the log departs from the checkpoint's head, in words; `None` when it holds it.
fn mismatch(head: &Head, p: &Pass) -> Option<String> {
    if p.root_at_size == Some(head.root) {
        return None;
    }
    let mut parts = Vec::new();
    if p.count < head.size {
        parts.push(format!(
            "the log holds {} events, {} fewer than the checkpoint covered",
            p.count,
            head.size - p.count
        ));
    }
    if p.covered < head.size {
        parts.push(format!(
            "{} of the events at or before position {} are missing",
            head.size - p.covered,
            head.position
        ));
    } else if p.covered > head.size {
        parts.push(format!(
            "{} events at or before position {} were not there when it was signed",
            p.covered - head.size,
            head.position
        ));
    }
    if !p.gaps.is_empty() {
        let runs: Vec<String> = p
            .gaps
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        let plural = if runs.len() > 1 || runs[0].contains('-') {
            "s"
        } else {
            ""
        };
        parts.push(format!("no event at position{plural} {}", runs.join(", ")));
    }
    if let Some(hashes) = &p.hashes {
        let ranges = merkle::frontier_ranges(head.size);
        let first = ranges
            .iter()
            .zip(head.frontier.iter().zip(hashes))
            .find(|(_, (want, got))| want != got);
        if let Some((r, _)) = first {
            parts.push(format!(
                "the first difference lies in the log's events {} to {} (positions {} to {} \
                 today): an event there was removed, added, moved or rewritten",
                r.start + 1,
                r.end,
                p.positions[r.start as usize],
                p.positions[r.end as usize - 1],
            ));
        }
    } else if let Some(&last) = p.positions.last() {
        parts.push(format!("the log now ends at position {last}"));
    }
    if parts.is_empty() {
        parts.push("the root of its first events differs".to_owned());
    }
    Some(parts.join("; "))
}
