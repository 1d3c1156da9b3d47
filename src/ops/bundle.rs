//! `chatroom export` and `chatroom verify-bundle`: one room's events over a span of time, with
//! what proves them offline. A bundle carries the events as stored (their sealed bytes as they
//! are, and the text they read as where a key remains), the stream's link before the span and
//! after it (so the span's events are all of the room's: the room's stream is a hash chain),
//! one batch inclusion proof of all of them against a checkpoint signed at export, and the
//! keys that open exactly those events' texts, so a text is bound to the sealed bytes the
//! chain covers.

use super::checkpoint::public_key_arg;
use crate::config::StoreArgs;
use crate::storage::Storage;
use anyhow::Context;
use events::checkpoint::{Checkpoint, LogTree, parse_hash};
use events::envelope::GENESIS;
use events::event::room_stream;
use events::merkle::{self, Builder, Hash};
use events::seal::{Key, Sealed, Subject};
use events::{Event, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What a bundle file declares itself to be.
pub const FORMAT: &str = "chatroom-bundle/1";

/// A bundle, as its JSON file holds it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Bundle {
    /// Always [`FORMAT`].
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
    /// The hashes of the subtrees of the checkpoint's tree that hold none of the bundle's
    /// events, depth first, left to right ([`merkle::batch_ranges`]).
    pub proof: Vec<String>,
    /// The keys that open the span's texts: subject (as the log names it) to key, hex.
    pub keys: BTreeMap<String, String>,
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
    // The stream's events before, in and after the span; only the span and its two links kept.
    let (mut before, mut span, mut after) = (None, Vec::new(), None);
    let mut version = 1;
    'read: loop {
        let page = store.read_stream(&stream, version, 5000).await?;
        let Some(last) = page.last() else { break };
        version = last.version + 1;
        for rec in page {
            if from.is_some_and(|f| rec.recorded_at < f) {
                before = Some(rec);
            } else if to.is_none_or(|t| rec.recorded_at <= t) {
                span.push(rec);
            } else {
                after = Some(rec);
                break 'read;
            }
        }
    }
    // Every event's leaf, and the checkpoint, from one pass over the log.
    let wanted: HashMap<u64, usize> = before
        .iter()
        .chain(&span)
        .chain(&after)
        .enumerate()
        .map(|(i, r)| (r.position, i))
        .collect();
    let mut found = vec![None; wanted.len()];
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
            }
            tree.push(&rec.hash, rec.position);
            leaf += 1;
        }
    }
    let leaves: Vec<u64> = found
        .into_iter()
        .collect::<Option<_>>()
        .context("the room's events were not all found in the log")?;
    let head = tree.head();
    let checkpoint = key.sign(&head, events::now_ms());
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
    let n = usize::from(before.is_some());
    let before = before.map(|r| Entry::of(&r, leaves[0], None));
    for (i, rec) in span.iter().enumerate() {
        let mut text = None;
        if let Ok(event) = rec.decode()
            && let Some((subject, sealed)) = sealed_text(&event)
            && let Some(k) = storage.keys.key(&subject).await?
        {
            text = k.open(&subject, sealed);
            keys.insert(subject.to_string(), hex::encode(k.0));
        }
        entries.push(Entry::of(rec, leaves[n + i], text));
    }
    let after = after.map(|r| Entry::of(&r, leaves[leaves.len() - 1], None));
    Ok(Bundle {
        format: FORMAT.to_owned(),
        room: room.to_owned(),
        from,
        to,
        checkpoint,
        before,
        events: entries,
        after,
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
    match check(&bundle, &key) {
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

/// Checks a bundle; the lines to print when it holds.
fn check(b: &Bundle, key: &events::checkpoint::VerifyingKey) -> Result<Vec<String>, String> {
    if b.format != FORMAT {
        return Err(format!("not a bundle (format {:?})", b.format));
    }
    let head = b
        .checkpoint
        .verify(key)
        .map_err(|e| format!("its checkpoint: {e}"))?;
    let stream = room_stream(&b.room);
    let chain: Vec<&Entry> = b.before.iter().chain(&b.events).chain(&b.after).collect();
    let recs = chain
        .iter()
        .map(|e| e.recorded())
        .collect::<Result<Vec<_>, _>>()?;
    // The chain: from the stream's start, or from the link before (itself a leaf of the
    // signed tree), through the link after.
    let mut previous: Option<(u64, Hash)> = None;
    for (i, r) in recs.iter().enumerate() {
        if r.stream_id != stream {
            return Err(format!(
                "the event at position {} is of stream {}, not of room {}",
                r.position, r.stream_id, b.room
            ));
        }
        let link = match previous {
            Some((version, hash)) => Some((version + 1, hash)),
            None if i == 0 && b.before.is_none() => Some((1, GENESIS)),
            None => None,
        };
        if let Some((version, hash)) = link {
            if r.version != version {
                return Err(format!(
                    "version {} of the room comes where version {version} should: an event is \
                     missing, or moved",
                    r.version
                ));
            }
            if r.hash != r.expected_hash(&hash) {
                return Err(format!(
                    "the event at position {} (version {}) does not match its hash and the one \
                     before it: it, or one before it, was changed",
                    r.position, r.version
                ));
            }
        }
        previous = Some((r.version, r.hash));
    }
    // The span: every event in it, the links outside it.
    let in_span = |t: i64| b.from.is_none_or(|f| t >= f) && b.to.is_none_or(|t2| t <= t2);
    if let Some(e) = b.events.iter().find(|e| !in_span(e.recorded_at)) {
        return Err(format!(
            "the event at position {} is outside the span",
            e.position
        ));
    }
    if let Some(e) = b
        .before
        .iter()
        .chain(&b.after)
        .find(|e| in_span(e.recorded_at))
    {
        return Err(format!(
            "the link at position {} lies inside the span: the bundle leaves out an event of it",
            e.position
        ));
    }
    if b.before.is_some() && b.from.is_none() {
        return Err("a link before an open start".to_owned());
    }
    // Every event is the leaf it says of the signed tree.
    let leaves: Vec<(u64, Hash)> = chain
        .iter()
        .zip(&recs)
        .map(|(e, r)| (e.leaf, merkle::leaf_hash(&r.hash)))
        .collect();
    let proof = b
        .proof
        .iter()
        .map(|h| parse_hash(h))
        .collect::<Option<Vec<_>>>()
        .ok_or("its proof holds a hash that is not 32 bytes of hex")?;
    if merkle::batch_root(head.size, &leaves, &proof) != Some(head.root) {
        return Err(
            "its events and proof do not make the checkpoint's root: an event was changed, \
             dropped, added or moved"
                .to_owned(),
        );
    }
    // The texts: opened here from the sealed bytes with exactly the keys given.
    let mut used = std::collections::BTreeSet::new();
    let mut lines = Vec::new();
    for (e, r) in b.events.iter().zip(&recs[b.before.is_some() as usize..]) {
        let event = r
            .decode()
            .map_err(|err| format!("the event at position {}: {err}", e.position))?;
        let opened = match sealed_text(&event) {
            None => None,
            Some((subject, sealed)) => {
                let name = subject.to_string();
                match b.keys.get(&name) {
                    None => Some(None),
                    Some(k) => {
                        let k: [u8; 32] = hex::decode(k)
                            .ok()
                            .and_then(|k| k.try_into().ok())
                            .ok_or_else(|| format!("the key of {name} is not 32 bytes of hex"))?;
                        used.insert(name.clone());
                        let text = Key(k).open(&subject, sealed).ok_or_else(|| {
                            format!(
                                "the key of {name} does not open the text at position {}",
                                e.position
                            )
                        })?;
                        Some(Some(text))
                    }
                }
            }
        };
        if opened.clone().flatten() != e.text {
            return Err(format!(
                "the text of the event at position {} is not what its sealed bytes hold",
                e.position
            ));
        }
        let shown = match opened {
            None => String::new(),
            Some(None) => " (erased)".to_owned(),
            Some(Some(t)) => format!(" {t:?}"),
        };
        lines.push(format!(
            "{} {} v{} {}{shown}",
            e.position,
            time_text(e.recorded_at),
            e.version,
            e.event_type
        ));
    }
    if let Some(extra) = b.keys.keys().find(|k| !used.contains(*k)) {
        return Err(format!("it carries a key no event of it needs ({extra})"));
    }
    let end = match &b.after {
        Some(a) => format!(
            "the room's next event (position {}) is after it",
            a.position
        ),
        None => "it runs to the room's last event at export; the bundle cannot show that \
                 none came after it before the checkpoint"
            .to_owned(),
    };
    lines.push(format!(
        "ok: {} events of room {}, complete for the span: the room's hash chain runs unbroken \
         from {} through them; {end}; each is in the log's checkpoint of {} events (root {}), \
         signed by key {}",
        b.events.len(),
        b.room,
        match &b.before {
            Some(e) => format!("its event before the span (position {})", e.position),
            None => "the room's first event".to_owned(),
        },
        head.size,
        b.checkpoint.root,
        b.checkpoint.key_id,
    ));
    Ok(lines)
}

/// A time as RFC 3339, in UTC.
fn time_text(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
