//! A room's recent messages: the idempotency window and the resume index.
//!
//! A retried send with the same client id answers the first `seq` while the first send is
//! among the room's newest [`WINDOW_MESSAGES`] messages or was sent less than
//! [`WINDOW_AGE_MS`] before the room's newest message (the contract's window, as NATS
//! JetStream's duplicate window and KurrentDB's idempotency on recent events; measured from
//! the newest message rather than the clock, so that the window is a fold of the stream alone,
//! the same on every process and after every restart, and never shorter than the contract's
//! ten minutes). The log keeps no index of ids: the window lives in the room's state, is
//! saved in its snapshot, and is rebuilt from the stream's tail when a room starts, since
//! [`Recent::remember`] is part of folding each message in.
//!
//! The same entries map a `seq` to its stream version, which is where a resume starts reading.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

/// A room remembers at least this many of its newest messages.
pub const WINDOW_MESSAGES: usize = 10_000;

/// ... and every message sent less than this before its newest one, in milliseconds
/// (10 minutes).
pub const WINDOW_AGE_MS: i64 = 10 * 60 * 1000;

/// A client id as the window keeps it: 128 bits of its SHA-256. Ids are up to 128 characters;
/// a fixed-size key keeps a full window to about 60 bytes a message in memory and 30 in a
/// snapshot, and a collision is as unlikely as guessing a random 128-bit value.
fn key(message_id: &str) -> u128 {
    let digest = Sha256::digest(message_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    key: u128,
    version: u64,
    time: i64,
}

/// The newest messages of a room, in `seq` order with no gaps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "Saved")]
pub struct Recent {
    /// The `seq` of `entries[0]`.
    first_seq: u64,
    entries: VecDeque<Entry>,
    /// Key to `seq`, for every entry.
    by_key: HashMap<u128, u64>,
}

impl PartialEq for Recent {
    fn eq(&self, other: &Self) -> bool {
        self.first_seq == other.first_seq && self.entries == other.entries
    }
}

impl Eq for Recent {}

/// What a snapshot holds of [`Recent`]: the map is rebuilt from the entries.
#[derive(Deserialize)]
struct Saved {
    first_seq: u64,
    entries: VecDeque<Entry>,
}

/// [`Saved`] as written: borrowed, since a full window is large and a snapshot must not copy it.
#[derive(Serialize)]
struct SavedRef<'a> {
    first_seq: u64,
    entries: &'a VecDeque<Entry>,
}

impl Serialize for Recent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SavedRef {
            first_seq: self.first_seq,
            entries: &self.entries,
        }
        .serialize(serializer)
    }
}

impl From<Saved> for Recent {
    fn from(saved: Saved) -> Self {
        let mut by_key = HashMap::with_capacity(saved.entries.len());
        for (i, e) in saved.entries.iter().enumerate() {
            by_key.insert(e.key, saved.first_seq + i as u64);
        }
        Self {
            first_seq: saved.first_seq,
            entries: saved.entries,
            by_key,
        }
    }
}

impl Recent {
    /// Folds in the message `seq` (the room's next), with its client id, stream version and
    /// time; forgets the oldest messages that are outside the window as of this one.
    pub fn remember(&mut self, seq: u64, message_id: &str, version: u64, time: i64) {
        if self.entries.is_empty() || seq != self.first_seq + self.entries.len() as u64 {
            // A room's messages are folded in seq order; anything else starts afresh.
            self.entries.clear();
            self.by_key.clear();
            self.first_seq = seq;
        }
        let key = key(message_id);
        self.entries.push_back(Entry { key, version, time });
        // A repeated id past the window is a new message: the key now names the newer one.
        self.by_key.insert(key, seq);
        while self.entries.len() > WINDOW_MESSAGES
            && self
                .entries
                .front()
                .is_some_and(|e| e.time < time - WINDOW_AGE_MS)
        {
            let old = self.entries.pop_front().expect("checked above");
            if self.by_key.get(&old.key) == Some(&self.first_seq) {
                self.by_key.remove(&old.key);
            }
            self.first_seq += 1;
        }
    }

    /// The `seq` and time of the message with this client id, if it is in the window.
    pub fn find(&self, message_id: &str) -> Option<(u64, i64)> {
        let seq = *self.by_key.get(&key(message_id))?;
        let entry = self
            .entries
            .get(seq.checked_sub(self.first_seq)? as usize)?;
        Some((seq, entry.time))
    }

    /// The stream version of the message `seq`, if it is in the window.
    pub fn version_of(&self, seq: u64) -> Option<u64> {
        let index = seq.checked_sub(self.first_seq)?;
        self.entries.get(index as usize).map(|e| e.version)
    }

    /// How many messages the window holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn the_newest_ten_thousand_stay_however_old() {
        let mut r = Recent::default();
        for seq in 1..=WINDOW_MESSAGES as u64 + 5 {
            r.remember(seq, &format!("m{seq}"), seq + 1, seq as i64 * MINUTE);
        }
        assert_eq!(r.len(), WINDOW_MESSAGES);
        assert_eq!(
            r.find("m5"),
            None,
            "older than 10 minutes and not among the newest"
        );
        assert_eq!(r.find("m6"), Some((6, 6 * MINUTE)));
        assert_eq!(r.version_of(6), Some(7));
        assert_eq!(r.version_of(5), None);
    }

    #[test]
    fn the_last_ten_minutes_stay_however_many() {
        let mut r = Recent::default();
        let n = WINDOW_MESSAGES as u64 * 3;
        for seq in 1..=n {
            // One a millisecond: every message is within 10 minutes of the newest.
            r.remember(seq, &format!("m{seq}"), seq, seq as i64);
        }
        assert_eq!(r.len(), n as usize);
        assert_eq!(r.find("m1"), Some((1, 1)));
        // Eleven minutes later the old ones go, down to the newest 10,000.
        r.remember(n + 1, "late", n + 1, n as i64 + 11 * MINUTE);
        assert_eq!(r.len(), WINDOW_MESSAGES);
        assert_eq!(r.find("m1"), None);
        assert!(r.find(&format!("m{}", n - 9_998)).is_some());
    }

    #[test]
    fn an_id_used_again_past_the_window_names_the_new_message() {
        let mut r = Recent::default();
        r.remember(1, "same", 1, 0);
        for seq in 2..=WINDOW_MESSAGES as u64 + 1 {
            r.remember(seq, &format!("m{seq}"), seq, 11 * MINUTE);
        }
        assert_eq!(r.find("same"), None);
        r.remember(WINDOW_MESSAGES as u64 + 2, "same", 0, 11 * MINUTE);
        assert_eq!(
            r.find("same").map(|(s, _)| s),
            Some(WINDOW_MESSAGES as u64 + 2)
        );
    }

    #[test]
    fn a_snapshot_keeps_every_entry() {
        let mut r = Recent::default();
        for seq in 7..200 {
            r.remember(seq, &format!("m{seq}"), seq * 2, seq as i64);
        }
        let bytes = bincode::serde::encode_to_vec(&r, bincode::config::standard()).unwrap();
        let (back, _): (Recent, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.find("m9"), Some((9, 9)));
        assert_eq!(back.version_of(199), Some(398));
    }
}
