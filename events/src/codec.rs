//! Versioned binary encoding of event payloads.
//!
//! A payload is encoded with serde + bincode 2 (standard config) and stored with its type name
//! and schema version. Old events are never rewritten: when a payload changes shape, its
//! schema version goes up, the old struct stays here under a versioned name, and [`decode`]
//! upcasts it to today's type. Every arm of `decode` is a promise to read what some earlier
//! server wrote.

use crate::event::{
    Event, INPUT, MemberJoined, MessagePosted, RoomCreated, UserNameClaimed, UserRegistered,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `MessagePosted` as schema version 1 wrote it: no `kind`.
#[derive(Debug, Deserialize)]
struct MessagePostedV1 {
    room_id: String,
    seq: u64,
    message_id: String,
    user_id: String,
    text: String,
}

impl From<MessagePostedV1> for MessagePosted {
    fn from(v1: MessagePostedV1) -> Self {
        Self {
            room_id: v1.room_id,
            seq: v1.seq,
            message_id: v1.message_id,
            user_id: v1.user_id,
            text: v1.text,
            // Version 1 only ever stored typed text.
            kind: INPUT.to_owned(),
        }
    }
}

/// Why a stored payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The type name is not one this server knows.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The type is known but this schema version is not.
    #[error("unknown schema version {version} of {event_type}")]
    UnknownVersion {
        /// Type name.
        event_type: String,
        /// Schema version found.
        version: u16,
    },
    /// The bytes do not decode as the named type and version.
    #[error("malformed {event_type} v{version} payload: {reason}")]
    Malformed {
        /// Type name.
        event_type: String,
        /// Schema version.
        version: u16,
        /// What bincode said.
        reason: String,
    },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Limit on a payload's decoded size, so hostile bytes cannot ask for huge allocations.
const DECODE_LIMIT: usize = 16 * 1024 * 1024;

fn enc<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs of strings and integers cannot fail.
    bincode::serde::encode_to_vec(value, config()).expect("event payloads always encode")
}

fn dec<T: DeserializeOwned>(
    event_type: &str,
    version: u16,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        version,
        reason,
    };
    let (value, read) =
        bincode::serde::decode_from_slice::<T, _>(bytes, config().with_limit::<DECODE_LIMIT>())
            .map_err(|e| malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(malformed(format!("{} trailing bytes", bytes.len() - read)));
    }
    Ok(value)
}

/// The schema version written today for each event type.
pub fn current_version(event_type: &str) -> u16 {
    match event_type {
        "UserNameClaimed" | "UserRegistered" | "RoomCreated" | "MemberJoined" => 1,
        "MessagePosted" => 2,
        _ => 0,
    }
}

/// Encodes an event as (type name, schema version, payload bytes).
pub fn encode(event: &Event) -> (&'static str, u16, Vec<u8>) {
    let bytes = match event {
        Event::UserNameClaimed(p) => enc(p),
        Event::UserRegistered(p) => enc(p),
        Event::RoomCreated(p) => enc(p),
        Event::MemberJoined(p) => enc(p),
        Event::MessagePosted(p) => enc(p),
    };
    let name = event.type_name();
    (name, current_version(name), bytes)
}

/// Decodes a stored payload, upcasting older schema versions to today's types.
///
/// # Errors
/// [`DecodeError`] when the type or version is unknown or the bytes are malformed.
pub fn decode(event_type: &str, version: u16, bytes: &[u8]) -> Result<Event, DecodeError> {
    let t = event_type;
    let event = match (t, version) {
        ("UserNameClaimed", 1) => {
            Event::UserNameClaimed(dec::<UserNameClaimed>(t, version, bytes)?)
        }
        ("UserRegistered", 1) => Event::UserRegistered(dec::<UserRegistered>(t, version, bytes)?),
        ("RoomCreated", 1) => Event::RoomCreated(dec::<RoomCreated>(t, version, bytes)?),
        ("MemberJoined", 1) => Event::MemberJoined(dec::<MemberJoined>(t, version, bytes)?),
        ("MessagePosted", 1) => {
            Event::MessagePosted(dec::<MessagePostedV1>(t, version, bytes)?.into())
        }
        ("MessagePosted", 2) => Event::MessagePosted(dec::<MessagePosted>(t, version, bytes)?),
        _ if current_version(t) == 0 => return Err(DecodeError::UnknownType(t.to_owned())),
        _ => {
            return Err(DecodeError::UnknownVersion {
                event_type: t.to_owned(),
                version,
            });
        }
    };
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Event> {
        vec![
            Event::UserNameClaimed(UserNameClaimed {
                user_id: "u1".into(),
                name: "Ann".into(),
            }),
            Event::UserRegistered(UserRegistered {
                user_id: "u1".into(),
                name: "Ann".into(),
                password_hash: "$argon2id$...".into(),
            }),
            Event::RoomCreated(RoomCreated {
                room_id: "r1".into(),
                name: "Lobby".into(),
                description: "".into(),
                owner: "u1".into(),
                avatar_image: "/media/a.png".into(),
                join_code: "0123456789abcdef0123456789abcdef".into(),
            }),
            Event::MemberJoined(MemberJoined {
                room_id: "r1".into(),
                user_id: "u2".into(),
            }),
            Event::MessagePosted(MessagePosted {
                room_id: "r1".into(),
                seq: 7,
                message_id: "m-1".into(),
                user_id: "u2".into(),
                text: "héllo <b>".into(),
                kind: "input".into(),
            }),
        ]
    }

    #[test]
    fn version_1_messages_are_upcast() {
        #[derive(Serialize)]
        struct V1<'a> {
            room_id: &'a str,
            seq: u64,
            message_id: &'a str,
            user_id: &'a str,
            text: &'a str,
        }
        let bytes = enc(&V1 {
            room_id: "r",
            seq: 3,
            message_id: "m",
            user_id: "u",
            text: "old",
        });
        let Event::MessagePosted(m) = decode("MessagePosted", 1, &bytes).unwrap() else {
            panic!("not a message");
        };
        assert_eq!(
            (m.seq, m.text.as_str(), m.kind.as_str()),
            (3, "old", "input")
        );
        // The same bytes are not a valid version 2 payload: versions are not guessed.
        assert!(decode("MessagePosted", 2, &bytes).is_err());
        assert_eq!(current_version("MessagePosted"), 2);
    }

    #[test]
    fn every_event_round_trips() {
        for event in all() {
            let (name, version, bytes) = encode(&event);
            assert_eq!(name, event.type_name());
            assert_eq!(decode(name, version, &bytes).unwrap(), event);
        }
    }

    #[test]
    fn unknown_types_versions_and_garbage_are_errors() {
        assert!(matches!(
            decode("Nope", 1, &[]),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            decode("MessagePosted", 9, &[]),
            Err(DecodeError::UnknownVersion { .. })
        ));
        assert!(matches!(
            decode("MessagePosted", 1, &[0xff, 0xff, 0xff]),
            Err(DecodeError::Malformed { .. })
        ));
        let (_, _, mut bytes) = encode(&all()[4]);
        bytes.push(0);
        assert!(matches!(
            decode("MessagePosted", 1, &bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
