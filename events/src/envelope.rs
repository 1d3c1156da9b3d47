//! The envelope: an event as it is written ([`NewEvent`]) and as it is stored ([`Recorded`]).
//!
//! Each recorded event carries the SHA-256 of its predecessor's hash and its own fields, so a
//! stream is a hash chain: editing, removing or reordering a stored event breaks every link
//! after it, which `chatroom verify` detects.

use crate::codec::{self, DecodeError};
use crate::event::Event;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// An event ready to be appended: encoded once, here, so backends only move bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event's id, new for every event a writer makes; the log stores it as given and
    /// looks nothing up by it (see [`Store`](crate::Store)).
    pub event_id: Uuid,
    /// Type name.
    pub event_type: &'static str,
    /// Schema version of `payload`.
    pub schema_version: u16,
    /// Time of the fact, milliseconds since the epoch.
    pub recorded_at: i64,
    /// The encoded payload.
    pub payload: Vec<u8>,
}

impl NewEvent {
    /// Encodes `event` with a fresh random id and the current time.
    pub fn new(event: &Event) -> Self {
        Self::with_id(Uuid::new_v4(), event, crate::now_ms())
    }

    /// Encodes `event` with the given id and time.
    pub fn with_id(event_id: Uuid, event: &Event, recorded_at: i64) -> Self {
        let (event_type, schema_version, payload) = codec::encode(event);
        Self {
            event_id,
            event_type,
            schema_version,
            recorded_at,
            payload,
        }
    }
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Global position in the whole log, starting at 1, strictly increasing.
    pub position: u64,
    /// The stream the event belongs to.
    pub stream_id: String,
    /// Version within the stream, starting at 1, without gaps.
    pub version: u64,
    /// The event's unique id.
    pub event_id: Uuid,
    /// Type name.
    pub event_type: String,
    /// Schema version of the payload.
    pub schema_version: u16,
    /// Milliseconds since the epoch.
    pub recorded_at: i64,
    /// Encoded payload.
    pub payload: Vec<u8>,
    /// `chain_hash` of the previous event of the stream and this one.
    pub hash: [u8; 32],
}

impl Recorded {
    /// Decodes the payload, upcasting old schema versions.
    ///
    /// # Errors
    /// [`DecodeError`] when the payload cannot be read.
    pub fn decode(&self) -> Result<Event, DecodeError> {
        codec::decode(&self.event_type, self.schema_version, &self.payload)
    }

    /// The hash this event should carry, given its predecessor's hash.
    pub fn expected_hash(&self, previous: &[u8; 32]) -> [u8; 32] {
        chain_hash(
            previous,
            &self.stream_id,
            self.version,
            &self.event_id,
            &self.event_type,
            self.schema_version,
            self.recorded_at,
            &self.payload,
        )
    }
}

/// Turns events to append into their stored form, versions and hashes chained after the
/// stream's `head` (its last version and hash; `None` for a new stream). Positions are left at
/// 0 for the backend to fill in as it writes.
pub fn seal(stream: &str, head: Option<(u64, [u8; 32])>, events: &[NewEvent]) -> Vec<Recorded> {
    let (mut version, mut previous) = head.unwrap_or((0, GENESIS));
    events
        .iter()
        .map(|e| {
            version += 1;
            previous = chain_hash(
                &previous,
                stream,
                version,
                &e.event_id,
                e.event_type,
                e.schema_version,
                e.recorded_at,
                &e.payload,
            );
            Recorded {
                position: 0,
                stream_id: stream.to_owned(),
                version,
                event_id: e.event_id,
                event_type: e.event_type.to_owned(),
                schema_version: e.schema_version,
                recorded_at: e.recorded_at,
                payload: e.payload.clone(),
                hash: previous,
            }
        })
        .collect()
}

/// The hash of a stream's first event's predecessor.
pub const GENESIS: [u8; 32] = [0; 32];

/// Hash linking an event to the one before it in its stream. Every field is length-prefixed or
/// fixed-width, so no two different events encode to the same input.
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    previous: &[u8; 32],
    stream_id: &str,
    version: u64,
    event_id: &Uuid,
    event_type: &str,
    schema_version: u16,
    recorded_at: i64,
    payload: &[u8],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update((stream_id.len() as u64).to_be_bytes());
    h.update(stream_id.as_bytes());
    h.update(version.to_be_bytes());
    h.update(event_id.as_bytes());
    h.update((event_type.len() as u64).to_be_bytes());
    h.update(event_type.as_bytes());
    h.update(schema_version.to_be_bytes());
    h.update(recorded_at.to_be_bytes());
    h.update((payload.len() as u64).to_be_bytes());
    h.update(payload);
    h.finalize().into()
}
