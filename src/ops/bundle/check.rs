//! `chatroom verify-bundle`'s checks, offline: the checkpoint's signature, the room's hash
//! chain through the span and its links, the span, the batch inclusion proof against the
//! checkpoint's root, the room's head against its heads root (the bundle's end is the room's,
//! or the link after the span comes at or before it), and the texts against their sealed bytes.

use super::{Bundle, Entry, FORMAT, FORMAT_V1, HeadEntry, sealed_text};
use crate::ops::times::time_text;
use events::Recorded;
use events::checkpoint::{Head, VerifyingKey, parse_hashes};
use events::envelope::GENESIS;
use events::event::room_stream;
use events::merkle::{self, Hash};
use events::seal::Key;

/// Checks a bundle; the lines to print when it holds.
pub(super) fn check(b: &Bundle, key: &VerifyingKey) -> Result<Vec<String>, String> {
    let format = match b.format.as_str() {
        FORMAT => 2,
        FORMAT_V1 => 1,
        _ => return Err(format!("not a bundle (format {:?})", b.format)),
    };
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
    let proof =
        parse_hashes(&b.proof).ok_or("its proof holds a hash that is not 32 bytes of hex")?;
    if merkle::batch_root(head.size, &leaves, &proof) != Some(head.root) {
        return Err(
            "its events and proof do not make the checkpoint's root: an event was changed, \
             dropped, added or moved"
                .to_owned(),
        );
    }
    // Its end: the room's head, as the checkpoint signs it.
    let end = match (format, &b.head) {
        (2, Some(h)) => room_head(b, h, &head, &stream, recs.last())?,
        (2, None) => {
            return Err(
                "it carries no head of the room: nothing shows that its last events were not \
                 left out"
                    .to_owned(),
            );
        }
        (_, Some(_)) => return Err("a bundle of format 1 with a head".to_owned()),
        (_, None) if head.heads.is_some() => {
            return Err(
                "a bundle of format 1 with a checkpoint of version 2, which no export ever \
                 wrote: its head was taken out"
                    .to_owned(),
            );
        }
        (_, None) => match &b.after {
            Some(a) => format!(
                "the room's next event (position {}) is after it",
                a.position
            ),
            None => "it runs to the room's last event at export; a bundle of format 1 cannot \
                     show that none came after it before the checkpoint"
                .to_owned(),
        },
    };
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
    let complete = if format == 2 || b.after.is_some() {
        "complete for the span"
    } else {
        "complete for the span up to its last event"
    };
    let heads = match head.heads {
        Some(h) => format!(", heads of {} streams {}", h.streams, hex::encode(h.root)),
        None => String::new(),
    };
    lines.push(format!(
        "ok: {} events of room {}, {complete}: the room's hash chain runs unbroken from {} \
         through them; {end}; each is in the log's checkpoint v{} of {} events (root {}{heads}), \
         signed by key {}",
        b.events.len(),
        b.room,
        match &b.before {
            Some(e) => format!("its event before the span (position {})", e.position),
            None => "the room's first event".to_owned(),
        },
        b.checkpoint.version().unwrap_or_default(),
        head.size,
        b.checkpoint.root,
        b.checkpoint.key_id,
    ));
    Ok(lines)
}

/// Checks the room's head against the checkpoint's heads root and the bundle's end (`last`,
/// the last event of its chain); what it shows, in words.
fn room_head(
    b: &Bundle,
    h: &HeadEntry,
    head: &Head,
    stream: &str,
    last: Option<&Recorded>,
) -> Result<String, String> {
    let signed = head
        .heads
        .ok_or("its checkpoint is of version 1, which signs no heads")?;
    if h.stream_id != stream {
        return Err(format!(
            "its head is of stream {}, not of room {} ({stream})",
            h.stream_id, b.room
        ));
    }
    let proof = h.proof()?;
    if !proof.verifies(stream, &signed) {
        return Err(format!(
            "its head of the room (version {}, position {}) and its proof do not make the \
             checkpoint's heads root: the head was changed, or its proof is another's",
            h.version, h.position
        ));
    }
    let Some(last) = last else {
        return Err(format!(
            "it holds no event, but the room's head is version {}",
            h.version
        ));
    };
    let same = |r: &Recorded| r.version == h.version && r.position == h.position;
    let same = |r: &Recorded| same(r) && r.hash == proof.head.hash;
    match &b.after {
        None if same(last) => Ok(format!(
            "nothing of the room came after it: its last event is the room's head in the \
             checkpoint (version {}, position {})",
            h.version, h.position
        )),
        None if h.version > last.version => Err(format!(
            "it ends at the room's version {} (position {}), but the room's head in the \
             checkpoint is version {} (position {}): {} left out",
            last.version,
            last.position,
            h.version,
            h.position,
            match h.version - last.version {
                1 => "the room's last event was".to_owned(),
                n => format!("the room's last {n} events were"),
            }
        )),
        None => Err(format!(
            "it ends at the room's version {} (position {}), which is not the room's head in \
             the checkpoint (version {}, position {})",
            last.version, last.position, h.version, h.position
        )),
        Some(_) if last.version > h.version || (last.version == h.version && !same(last)) => {
            Err(format!(
                "the link after the span (version {}, position {}) is not at or before the \
                 room's head in the checkpoint (version {}, position {})",
                last.version, last.position, h.version, h.position
            ))
        }
        Some(a) => Ok(format!(
            "the room's next event (position {}) is after it, at or before the room's head in \
             the checkpoint (version {}, position {})",
            a.position, h.version, h.position
        )),
    }
}
