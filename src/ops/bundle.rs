//! `chatroom export` and `chatroom verify-bundle`: one room's events over a span of time, with
//! what proves them offline. A bundle carries the events as stored (their sealed bytes as they
//! are, and the text they read as where a key remains), the stream's link before the span and
//! after it (so the span's events are all of the room's: the room's stream is a hash chain),
//! one batch inclusion proof of all of them against a checkpoint signed at export, the room's
//! head with its proof against the heads root that checkpoint signs (so the span's end is the
//! room's, or the link after it is the room's next event), and the keys that open exactly those
//! events' texts, so a text is bound to the sealed bytes the chain covers.

mod check;

use super::checkpoint::public_key_arg;
use crate::config::StoreArgs;
use crate::storage::Storage;
use anyhow::Context;
use events::checkpoint::{Checkpoint, LogTree, parse_hash, parse_hashes};
use events::event::room_stream;
use events::heads::{HeadProof, StreamHead};
use events::merkle::{self, Builder};
use events::seal::{Sealed, Subject};
use events::{Event, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What a bundle file declares itself to be: format 2, with the room's head.
pub const FORMAT: &str = "chatroom-bundle/2";

/// What a bundle of format 1 declares itself to be: no head, so its end is not proven.
pub const FORMAT_V1: &str = "chatroom-bundle/1";

/// A bundle, as its JSON file holds it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Bundle {
    /// [`FORMAT`], or [`FORMAT_V1`] for a bundle exported before heads were signed.
    pub format: String,
    /// The room.
    pub room: String,
    /// The span's start and end, milliseconds since the epoch (none: open).
    pub from: Option<i64>,
    /// The span's end.
    pub to: Option<i64>,
    /// The checkpoint the proof is against, signed at export.
    pub checkpoint: Checkpoint,
    /// The room's event just before the span (none: the span starts at the room's start).
    pub before: Option<Entry>,
    /// The room's events in the span, in order.
    pub events: Vec<Entry>,
    /// The room's event just after the span (none: the span reaches the room's last event).
    pub after: Option<Entry>,
    /// The room's last event in the checkpoint, with its proof against the checkpoint's heads
    /// root (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadEntry>,
    /// The hashes of the subtrees of the checkpoint's tree that hold none of the bundle's
    /// events, depth first, left to right ([`merkle::batch_ranges`]).
    pub proof: Vec<String>,
    /// The keys that open the span's texts: subject (as the log names it) to key, hex.
    pub keys: BTreeMap<String, String>,
}

/// The room's head as the checkpoint's heads tree holds it ([`events::heads`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadEntry {
    /// Its leaf in the heads tree: the stream's number in stream-id order, from 0.
    pub leaf: u64,
    /// The stream: the room's.
    pub stream_id: String,
    /// The version of the stream's last event in the checkpoint.
    pub version: u64,
    /// That event's global position.
    pub position: u64,
    /// That event's chain hash, hex.
    pub hash: String,
    /// The leaf's RFC 9162 inclusion proof (audit path) against the heads root, nearest the
    /// leaf first, hex.
    pub proof: Vec<String>,
}

impl HeadEntry {
    fn of(stream: &str, p: &HeadProof) -> Self {
        Self {
            leaf: p.leaf,
            stream_id: stream.to_owned(),
            version: p.head.version,
            position: p.head.position,
            hash: hex::encode(p.head.hash),
            proof: p.proof.iter().map(hex::encode).collect(),
        }
    }

    fn proof(&self) -> Result<HeadProof, String> {
        let hash = parse_hash(&self.hash).ok_or("its head's hash is not 32 bytes of hex")?;
        let proof = parse_hashes(&self.proof)
            .ok_or("its head's proof holds a hash that is not 32 bytes of hex")?;
        Ok(HeadProof {
            leaf: self.leaf,
            head: StreamHead {
                version: self.version,
                position: self.position,
                hash,
            },
            proof,
        })
    }
}

/// One event as stored, with its leaf in the checkpoint's tree and its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Its leaf: its number in log order, from 0.
    pub leaf: u64,
    /// Its global position.
    pub position: u64,
    /// Its stream.
    pub stream_id: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Its payload's schema version.
    pub schema_version: u16,
    /// Its time, milliseconds since the epoch.
    pub recorded_at: i64,
    /// Its payload as stored (sealed fields sealed), hex.
    pub payload: String,
    /// Its chain hash, hex.
    pub hash: String,
    /// The text it carries, opened; none when it carries none or its key was destroyed.
    pub text: Option<String>,
}

impl Entry {
    fn of(rec: &Recorded, leaf: u64, text: Option<String>) -> Self {
        Self {
            leaf,
            position: rec.position,
            stream_id: rec.stream_id.clone(),
            version: rec.version,
            event_id: rec.event_id.to_string(),
            event_type: rec.event_type.clone(),
            schema_version: rec.schema_version,
            recorded_at: rec.recorded_at,
            payload: hex::encode(&rec.payload),
            hash: hex::encode(rec.hash),
            text,
        }
    }

    fn recorded(&self) -> Result<Recorded, String> {
        let bad = |what: &str| format!("event at position {}: {what}", self.position);
        Ok(Recorded {
            position: self.position,
            stream_id: self.stream_id.clone(),
            version: self.version,
            event_id: self
                .event_id
                .parse()
                .map_err(|_| bad("its id is not a UUID"))?,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            recorded_at: self.recorded_at,
            payload: hex::decode(&self.payload).map_err(|_| bad("its payload is not hex"))?,
            hash: parse_hash(&self.hash).ok_or_else(|| bad("its hash is not 32 bytes of hex"))?,
        })
    }
}

/// The sealed text an event carries and the subject it is sealed for.
fn sealed_text(event: &Event) -> Option<(Subject, &Sealed)> {
    match event {
        Event::MessagePosted(m) => Some((m.subject(), &m.text)),
        Event::MessageEdited(m) => Some((m.subject(), &m.text)),
        _ => None,
    }
}

/// Runs `chatroom export --room ID [--from T] [--to T] --out FILE`.
///
/// # Errors
/// When the room does not exist, the span is empty of sense, or the storage fails.
pub async fn export(
    args: StoreArgs,
    room: &str,
    from: Option<i64>,
    to: Option<i64>,
    out: &Path,
) -> anyhow::Result<()> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        anyhow::bail!("--from is after --to");
    }
    let storage = Storage::open(&args).await?;
    let done = build(&storage, &args, room, from, to).await;
    storage.close();
    let bundle = done?;
    let mut text = serde_json::to_string_pretty(&bundle)?;
    text.push('\n');
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{} events of room {room} written to {} with a checkpoint of {} events, {} proof \
         hashes and {} keys",
        bundle.events.len(),
        out.display(),
        bundle.checkpoint.size,
        bundle.proof.len(),
        bundle.keys.len()
    );
    Ok(())
}

async fn build(
    storage: &Storage,
    args: &StoreArgs,
    room: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> anyhow::Result<Bundle> {
    let store = &*storage.store;
    let stream = room_stream(room);
    if store.stream_version(&stream).await?.is_none() {
        anyhow::bail!("no room has the id {room:?}");
    }
    let key = storage.log_key(args).await?;
    // Where an event of the room goes: before the span, in it, or after it.
    let before_span = |rec: &Recorded| from.is_some_and(|f| rec.recorded_at < f);
    let in_span = |rec: &Recorded| to.is_none_or(|t| rec.recorded_at <= t);
    // The stream's events before, in and after the span, each with its leaf once the log is
    // read; only the span and its two links kept.
    type Placed = (Recorded, u64);
    let (mut before, mut span, mut after): (Option<Placed>, Vec<Placed>, Option<Placed>) =
        (None, Vec::new(), None);
    let mut version = 1;
    'read: loop {
        let page = store.read_stream(&stream, version, 5000).await?;
        let Some(last) = page.last() else { break };
        version = last.version + 1;
        for rec in page {
            if before_span(&rec) {
                before = Some((rec, 0));
            } else if in_span(&rec) {
                span.push((rec, 0));
            } else {
                after = Some((rec, 0));
                break 'read;
            }
        }
    }
    // Every event's leaf, and the checkpoint, from one pass over the log; the room's events
    // appended since its stream was read are taken too, so that the bundle ends where the
    // room's head in the checkpoint is.
    let wanted: HashMap<u64, usize> = before
        .iter()
        .chain(&span)
        .chain(&after)
        .enumerate()
        .map(|(i, (r, _))| (r.position, i))
        .collect();
    let read_to = version - 1;
    let mut found = vec![None; wanted.len()];
    let mut late = Vec::new();
    let mut tree = LogTree::default();
    let mut leaf = 0u64;
    let mut at = 0;
    loop {
        let page = store.read_all(at, 5000).await?;
        let Some(last) = page.last() else { break };
        at = last.position;
        for rec in &page {
            if let Some(&i) = wanted.get(&rec.position) {
                found[i] = Some(leaf);
            } else if after.is_none() && rec.stream_id == stream && rec.version > read_to {
                late.push((rec.clone(), leaf));
            }
            tree.push(&rec.stream_id, rec.version, &rec.hash, rec.position);
            leaf += 1;
        }
    }
    let mut found = found.into_iter();
    let mut place = |p: &mut Placed| -> anyhow::Result<()> {
        p.1 = found
            .next()
            .flatten()
            .context("the room's events were not all found in the log")?;
        Ok(())
    };
    before.iter_mut().try_for_each(&mut place)?;
    span.iter_mut().try_for_each(&mut place)?;
    after.iter_mut().try_for_each(&mut place)?;
    for p in late {
        if after.is_some() {
            break;
        } else if before_span(&p.0) {
            before = Some(p);
        } else if in_span(&p.0) {
            span.push(p);
        } else {
            after = Some(p);
        }
    }
    let leaves: Vec<u64> = before
        .iter()
        .chain(&span)
        .chain(&after)
        .map(|(_, leaf)| *leaf)
        .collect();
    let head = tree.head();
    let checkpoint = key.sign(&head, events::now_ms());
    let room_head = tree
        .head_proof(&stream)
        .context("the room's stream was not found in the log")?;
    // The subtrees that hold none of the bundle's events, hashed in a second pass.
    let ranges = merkle::batch_ranges(head.size, &leaves);
    let mut proof = Vec::with_capacity(ranges.len());
    let mut next = ranges.iter().peekable();
    let mut current = Builder::new();
    let (mut leaf, mut at) = (0u64, 0);
    'hash: while next.peek().is_some() {
        let page = store.read_all(at, 5000).await?;
        let Some(last) = page.last() else { break };
        at = last.position;
        for rec in &page {
            if leaf == head.size {
                break 'hash;
            }
            while next.peek().is_some_and(|r| r.end <= leaf) {
                next.next();
            }
            if let Some(r) = next.peek()
                && r.contains(&leaf)
            {
                current.push(&rec.hash);
                if leaf + 1 == r.end {
                    proof.push(hex::encode(current.root()));
                    current = Builder::new();
                }
            }
            leaf += 1;
        }
    }
    anyhow::ensure!(
        proof.len() == ranges.len(),
        "the log changed while it was read"
    );
    let mut keys = BTreeMap::new();
    let mut entries = Vec::with_capacity(span.len());
    let before = before.map(|(r, leaf)| Entry::of(&r, leaf, None));
    for (rec, leaf) in &span {
        let mut text = None;
        if let Ok(event) = rec.decode()
            && let Some((subject, sealed)) = sealed_text(&event)
            && let Some(k) = storage.keys.key(&subject).await?
        {
            text = k.open(&subject, sealed);
            keys.insert(subject.to_string(), hex::encode(k.0));
        }
        entries.push(Entry::of(rec, *leaf, text));
    }
    let after = after.map(|(r, leaf)| Entry::of(&r, leaf, None));
    Ok(Bundle {
        format: FORMAT.to_owned(),
        room: room.to_owned(),
        from,
        to,
        checkpoint,
        before,
        events: entries,
        after,
        head: Some(HeadEntry::of(&stream, &room_head)),
        proof,
        keys,
    })
}

/// Runs `chatroom verify-bundle FILE --public-key KEY`, with no database: exit 0 when the
/// bundle proves itself, 1 saying what does not hold.
///
/// # Errors
/// When the file or the key cannot be read.
pub fn verify_bundle(file: &Path, public: &str) -> anyhow::Result<i32> {
    let key = public_key_arg(public)?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the bundle {}", file.display()))?;
    let bundle: Bundle = match serde_json::from_str(&text) {
        Ok(b) => b,
        Err(e) => {
            println!("TAMPERED: {} is not a bundle: {e}", file.display());
            return Ok(1);
        }
    };
    match check::check(&bundle, &key) {
        Ok(lines) => {
            for line in &lines {
                println!("{line}");
            }
            Ok(0)
        }
        Err(e) => {
            println!("TAMPERED: {e}");
            Ok(1)
        }
    }
}
