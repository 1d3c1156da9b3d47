//! The mapping between chatroom's log and EventStoreDB's, as plain functions: stream names,
//! versions and revisions, expected versions, positions, and the metadata that carries what
//! ESDB has no field for. Unit-tested without a server.

use crate::envelope::{NewEvent, Recorded};
use crate::store::{Error, Expected};
use kurrentdb::{ClientSettings, CurrentRevision, Position, StreamPosition, StreamState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Format of our metadata; bumped if its fields ever change.
const METADATA_FORMAT: u8 = 1;

/// The stream name prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "chatroom-";

/// The ESDB stream name of our stream.
pub fn stream_name(prefix: &str, stream: &str) -> String {
    format!("{prefix}{stream}")
}

/// Our stream id of an ESDB stream name; `None` when the stream is not ours.
pub fn stream_id<'a>(prefix: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(prefix)
}

/// Whether two connection strings share a node (host, ignoring case, and port), so name one
/// server or cluster, and so one log.
///
/// # Errors
/// [`Error::Unavailable`] when either does not parse.
pub fn same_server(a: &str, b: &str) -> Result<bool, Error> {
    fn nodes(url: &str) -> Result<Vec<(String, u32)>, Error> {
        let settings: ClientSettings = url
            .parse()
            .map_err(|e| Error::Unavailable(format!("the connection string: {e}")))?;
        Ok(settings
            .hosts()
            .iter()
            .map(|h| (h.host.to_lowercase(), h.port))
            .collect())
    }
    let a = nodes(a)?;
    Ok(nodes(b)?.iter().any(|n| a.contains(n)))
}

/// Our version of an ESDB revision (revisions start at 0, versions at 1).
pub fn version_of(revision: u64) -> u64 {
    revision + 1
}

/// The ESDB revision of our version; `None` for version 0, which no event has.
pub fn revision_of(version: u64) -> Option<u64> {
    version.checked_sub(1)
}

/// The ESDB expected state equivalent to our expectation; `None` for `Exact(0)`, which no
/// stream can satisfy (versions start at 1).
pub fn stream_state(expected: Expected) -> Option<StreamState> {
    match expected {
        Expected::Any => Some(StreamState::Any),
        Expected::NoStream => Some(StreamState::NoStream),
        Expected::Exact(v) => revision_of(v).map(StreamState::StreamRevision),
    }
}

/// The exact ESDB expected state of a stream whose last version was read as `actual`: what an
/// append sends, so that the hash chain is extended from the event it was computed from.
pub fn state_after(actual: Option<u64>) -> StreamState {
    match actual.and_then(revision_of) {
        Some(r) => StreamState::StreamRevision(r),
        None => StreamState::NoStream,
    }
}

/// Our version of the stream state ESDB reports in a wrong-expected-version error.
pub fn actual_of(current: CurrentRevision) -> Option<u64> {
    match current {
        CurrentRevision::Current(r) => Some(version_of(r)),
        CurrentRevision::NoStream => None,
    }
}

/// Our position of an event's `$all` position.
///
/// # Errors
/// [`Error::Corrupt`] when commit and prepare positions differ (an event of an explicit,
/// multi-record transaction, which our appends never write) or the position does not fit the
/// `i64` the read tables keep.
pub fn position_of(p: Position) -> Result<u64, Error> {
    if p.commit != p.prepare {
        return Err(Error::Corrupt(format!(
            "event at C:{}/P:{} was written in an explicit transaction; \
             chatroom needs commit == prepare",
            p.commit, p.prepare
        )));
    }
    if p.commit > i64::MAX as u64 {
        return Err(Error::Corrupt(format!(
            "position {} is out of range",
            p.commit
        )));
    }
    Ok(p.commit)
}

/// The `$all` position a read after our position `after` starts at (inclusive, so the event
/// at `after` itself comes back and is skipped).
pub fn read_from(after: u64) -> StreamPosition<Position> {
    if after == 0 {
        StreamPosition::Start
    } else {
        StreamPosition::Position(Position {
            commit: after,
            prepare: after,
        })
    }
}

/// What an event carries in its ESDB metadata besides type, id and data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Format of this record.
    pub chatroom: u8,
    /// Schema version of the payload.
    pub schema_version: u16,
    /// Time of the fact, milliseconds since the epoch.
    pub recorded_at: i64,
    /// The event's chain hash, hex.
    pub hash: String,
}

impl Metadata {
    /// The metadata of `event` with `hash`.
    pub fn of(event: &NewEvent, hash: &[u8; 32]) -> Self {
        Self {
            chatroom: METADATA_FORMAT,
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            hash: hex::encode(hash),
        }
    }

    /// As JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses JSON bytes.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the bytes are not our metadata.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let m: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Corrupt(format!("event metadata is not chatroom's: {e}")))?;
        if m.chatroom != METADATA_FORMAT {
            return Err(Error::Corrupt(format!(
                "event metadata has unknown format {}",
                m.chatroom
            )));
        }
        Ok(m)
    }

    fn hash(&self) -> Result<[u8; 32], Error> {
        hex::decode(&self.hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| Error::Corrupt("a stored hash is not 32 bytes of hex".into()))
    }
}

/// The fields of a stored ESDB event that make our [`Recorded`].
#[derive(Debug, Clone)]
pub struct Stored<'a> {
    /// ESDB stream name.
    pub stream_name: &'a str,
    /// ESDB revision.
    pub revision: u64,
    /// `$all` position.
    pub position: Position,
    /// Event id.
    pub id: Uuid,
    /// Event type.
    pub event_type: &'a str,
    /// Data.
    pub data: &'a [u8],
    /// Custom metadata.
    pub metadata: &'a [u8],
}

/// Our event of a stored ESDB event; `None` when its stream is not ours.
///
/// # Errors
/// [`Error::Corrupt`] when its metadata or position cannot be ours.
pub fn recorded(prefix: &str, s: &Stored<'_>) -> Result<Option<Recorded>, Error> {
    let Some(stream) = stream_id(prefix, s.stream_name) else {
        return Ok(None);
    };
    let meta = Metadata::parse(s.metadata)?;
    Ok(Some(Recorded {
        position: position_of(s.position)?,
        stream_id: stream.to_owned(),
        version: version_of(s.revision),
        event_id: s.id,
        event_type: s.event_type.to_owned(),
        schema_version: meta.schema_version,
        recorded_at: meta.recorded_at,
        payload: s.data.to_vec(),
        hash: meta.hash()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::GENESIS;
    use crate::event::{Event, MemberJoined};

    fn joined(n: u64) -> NewEvent {
        NewEvent::with_id(
            Uuid::from_u128(n as u128),
            &Event::MemberJoined(MemberJoined {
                room_id: "r".into(),
                user_id: format!("u{n}"),
                invite: None,
            }),
            1_700_000_000_000 + n as i64,
        )
    }

    #[test]
    fn versions_are_revisions_plus_one() {
        assert_eq!(version_of(0), 1);
        assert_eq!(version_of(41), 42);
        assert_eq!(revision_of(1), Some(0));
        assert_eq!(revision_of(42), Some(41));
        assert_eq!(revision_of(0), None);
        for v in [1, 2, 1000, u64::MAX] {
            assert_eq!(revision_of(v).map(version_of), Some(v));
        }
    }

    #[test]
    fn expected_versions_map_to_expected_revisions() {
        assert_eq!(stream_state(Expected::Any), Some(StreamState::Any));
        assert_eq!(
            stream_state(Expected::NoStream),
            Some(StreamState::NoStream)
        );
        assert_eq!(
            stream_state(Expected::Exact(1)),
            Some(StreamState::StreamRevision(0))
        );
        assert_eq!(
            stream_state(Expected::Exact(7)),
            Some(StreamState::StreamRevision(6))
        );
        assert_eq!(stream_state(Expected::Exact(0)), None);
        assert_eq!(state_after(None), StreamState::NoStream);
        assert_eq!(state_after(Some(3)), StreamState::StreamRevision(2));
        // What an append sends is what the caller expected, whenever the caller's check passed.
        for actual in [None, Some(1), Some(9)] {
            let exact = actual.map_or(Expected::NoStream, Expected::Exact);
            assert_eq!(stream_state(exact), Some(state_after(actual)));
        }
        assert_eq!(actual_of(CurrentRevision::NoStream), None);
        assert_eq!(actual_of(CurrentRevision::Current(0)), Some(1));
        assert_eq!(actual_of(CurrentRevision::Current(4)), Some(5));
    }

    #[test]
    fn stream_names_carry_the_prefix() {
        assert_eq!(stream_name("chatroom-", "room-a"), "chatroom-room-a");
        assert_eq!(stream_id("chatroom-", "chatroom-room-a"), Some("room-a"));
        assert_eq!(stream_id("chatroom-", "orders-1"), None);
        assert_eq!(stream_id("chatroom-", "$$chatroom-room-a"), None);
    }

    #[test]
    fn connection_strings_with_a_common_node_name_one_server() {
        let same = |a, b| same_server(a, b).unwrap();
        assert!(same(
            "esdb://localhost:2113?tls=false",
            "esdb://LOCALHOST?tls=false"
        ));
        assert!(same(
            "esdb://admin:changeit@a:2113,b:2113?tls=false",
            "kurrentdb://b:2113/?tls=false&nodePreference=follower"
        ));
        assert!(!same(
            "esdb://localhost:2113?tls=false",
            "esdb://localhost:2114?tls=false"
        ));
        assert!(!same("esdb://a:2113,b:2113", "esdb://c:2113"));
        assert!(same_server("esdb://a:2113", "http://a:2113").is_err());
    }

    #[test]
    fn positions_are_commit_positions_and_keep_their_order() {
        let at = |c: u64| Position {
            commit: c,
            prepare: c,
        };
        // Positions of a batch as ESDB gives them: one log position per event, increasing.
        let log = [120u64, 260, 261 + 140, 9_000, 1 << 40];
        let ours: Vec<u64> = log.iter().map(|&p| position_of(at(p)).unwrap()).collect();
        assert_eq!(ours, log);
        assert!(ours.windows(2).all(|w| w[0] < w[1]));
        assert!(matches!(
            position_of(Position {
                commit: 500,
                prepare: 400
            }),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(position_of(at(u64::MAX)), Err(Error::Corrupt(_))));
        assert!(matches!(read_from(0), StreamPosition::Start));
        match read_from(260) {
            StreamPosition::Position(p) => assert_eq!((p.commit, p.prepare), (260, 260)),
            _ => panic!("a position"),
        }
    }

    #[test]
    fn metadata_round_trips() {
        let e = joined(3);
        let hash = [7u8; 32];
        let meta = Metadata::of(&e, &hash);
        let bytes = meta.to_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("\"schema_version\""), "{text}");
        assert_eq!(Metadata::parse(&bytes).unwrap(), meta);
        assert_eq!(Metadata::parse(&bytes).unwrap().hash().unwrap(), hash);
        assert!(matches!(Metadata::parse(b"{}"), Err(Error::Corrupt(_))));
        assert!(matches!(
            Metadata::parse(br#"{"chatroom":2,"schema_version":1,"recorded_at":0,"hash":""}"#),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn a_stored_event_becomes_the_recorded_one() {
        let events = [joined(1), joined(2)];
        let chained = crate::envelope::seal("room-r", None, &events);
        let mut previous = GENESIS;
        for (i, r) in chained.iter().enumerate() {
            assert_eq!(r.version, i as u64 + 1);
            assert_eq!(r.hash, r.expected_hash(&previous));
            previous = r.hash;
        }
        let r = &chained[1];
        let meta = Metadata::of(&events[1], &r.hash).to_bytes();
        let stored = Stored {
            stream_name: "chatroom-room-r",
            revision: 1,
            position: Position {
                commit: 4096,
                prepare: 4096,
            },
            id: r.event_id,
            event_type: &r.event_type,
            data: &r.payload,
            metadata: &meta,
        };
        let back = recorded("chatroom-", &stored).unwrap().unwrap();
        assert_eq!(
            back,
            Recorded {
                position: 4096,
                ..r.clone()
            }
        );
        assert!(back.decode().is_ok());
        assert!(recorded("other-", &stored).unwrap().is_none());
    }
}
