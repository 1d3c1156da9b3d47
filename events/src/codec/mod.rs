//! Versioned binary encoding of event payloads.
//!
//! A payload is encoded with serde + bincode 2 (standard config) and stored with its type name
//! and schema version. Old events are never rewritten: when a payload changes shape, its
//! schema version goes up, the old struct stays here under a versioned name, and [`decode`]
//! upcasts it to today's type. Every arm of `decode` is a promise to read what some earlier
//! server wrote.

use crate::event::{
    Archival, AvatarChanged, Block, DirectRoomOpened, Event, InviteCreated, InviteRevoked,
    JoinCodeRotated, Lifted, LogStarted, MemberBanned, MemberJoined, MemberKicked, MemberLeft,
    MemberMuted, MessageDeleted, MessageEdited, MessagePosted, PasswordChanged, Reaction,
    RoleChanged, RoomCreated, RoomUpdated, UserErased, UserNameClaimed, UserNameReleased,
    UserRegistered, UserRenamed,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod legacy;

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
    /// An event of a schema version that held personal data in clear: the log was written by
    /// an earlier version and must be upgraded (`chatroom upgrade`) before it is served.
    #[error(
        "{event_type} v{version} was written by an earlier version of chatroom: run `chatroom upgrade`"
    )]
    Legacy {
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

pub(crate) fn enc<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs of strings and integers cannot fail.
    bincode::serde::encode_to_vec(value, config()).expect("event payloads always encode")
}

pub(crate) fn dec<T: DeserializeOwned>(
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
        "LogStarted" | "UserNameReleased" | "UserRenamed" | "AvatarChanged" | "PasswordChanged"
        | "UserErased" | "MemberLeft" | "MemberKicked" | "MemberBanned" | "MemberUnbanned"
        | "MemberMuted" | "MemberUnmuted" | "RoleChanged" | "RoomUpdated" | "RoomArchived"
        | "RoomUnarchived" | "JoinCodeRotated" | "InviteCreated" | "InviteRevoked"
        | "MessageEdited" | "MessageDeleted" | "ReactionAdded" | "ReactionRemoved"
        | "DirectRoomOpened" | "UserBlocked" | "UserUnblocked" => 1,
        "UserNameClaimed" | "UserRegistered" | "RoomCreated" | "MemberJoined" => 2,
        "MessagePosted" => 4,
        _ => 0,
    }
}

/// `MemberJoined` version 1, before joins named the invite they used.
#[derive(serde::Deserialize)]
struct MemberJoinedV1 {
    room_id: String,
    user_id: String,
}

/// `MessagePosted` version 3, before replies.
#[derive(serde::Deserialize)]
struct MessagePostedV3 {
    room_id: String,
    seq: u64,
    message_id: String,
    user_id: String,
    text: crate::seal::Sealed,
    kind: String,
    period: i64,
}

/// Encodes an event as (type name, schema version, payload bytes).
pub fn encode(event: &Event) -> (&'static str, u16, Vec<u8>) {
    let bytes = match event {
        Event::LogStarted(p) => enc(p),
        Event::UserNameClaimed(p) => enc(p),
        Event::UserNameReleased(p) => enc(p),
        Event::UserRegistered(p) => enc(p),
        Event::UserRenamed(p) => enc(p),
        Event::AvatarChanged(p) => enc(p),
        Event::PasswordChanged(p) => enc(p),
        Event::UserErased(p) => enc(p),
        Event::RoomCreated(p) => enc(p),
        Event::MemberJoined(p) => enc(p),
        Event::MemberLeft(p) => enc(p),
        Event::MemberKicked(p) => enc(p),
        Event::MemberBanned(p) => enc(p),
        Event::MemberUnbanned(p) | Event::MemberUnmuted(p) => enc(p),
        Event::MemberMuted(p) => enc(p),
        Event::RoleChanged(p) => enc(p),
        Event::RoomUpdated(p) => enc(p),
        Event::RoomArchived(p) | Event::RoomUnarchived(p) => enc(p),
        Event::JoinCodeRotated(p) => enc(p),
        Event::InviteCreated(p) => enc(p),
        Event::InviteRevoked(p) => enc(p),
        Event::MessagePosted(p) => enc(p),
        Event::MessageEdited(p) => enc(p),
        Event::MessageDeleted(p) => enc(p),
        Event::ReactionAdded(p) | Event::ReactionRemoved(p) => enc(p),
        Event::DirectRoomOpened(p) => enc(p),
        Event::UserBlocked(p) | Event::UserUnblocked(p) => enc(p),
    };
    let name = event.type_name();
    (name, current_version(name), bytes)
}

/// Decodes a stored payload, upcasting older schema versions to today's types.
///
/// # Errors
/// [`DecodeError`] when the type or version is unknown, when it is a version that held
/// personal data in clear ([`DecodeError::Legacy`]: see [`legacy`]), or the bytes are
/// malformed.
pub fn decode(event_type: &str, version: u16, bytes: &[u8]) -> Result<Event, DecodeError> {
    let t = event_type;
    let v = version;
    let event = match (t, v) {
        ("LogStarted", 1) => Event::LogStarted(dec::<LogStarted>(t, v, bytes)?),
        ("UserNameClaimed", 2) => Event::UserNameClaimed(dec::<UserNameClaimed>(t, v, bytes)?),
        ("UserNameReleased", 1) => Event::UserNameReleased(dec::<UserNameReleased>(t, v, bytes)?),
        ("UserRegistered", 2) => Event::UserRegistered(dec::<UserRegistered>(t, v, bytes)?),
        ("UserRenamed", 1) => Event::UserRenamed(dec::<UserRenamed>(t, v, bytes)?),
        ("AvatarChanged", 1) => Event::AvatarChanged(dec::<AvatarChanged>(t, v, bytes)?),
        ("PasswordChanged", 1) => Event::PasswordChanged(dec::<PasswordChanged>(t, v, bytes)?),
        ("UserErased", 1) => Event::UserErased(dec::<UserErased>(t, v, bytes)?),
        ("RoomCreated", 2) => Event::RoomCreated(dec::<RoomCreated>(t, v, bytes)?),
        ("MemberJoined", 1) => {
            let j = dec::<MemberJoinedV1>(t, v, bytes)?;
            Event::MemberJoined(MemberJoined {
                room_id: j.room_id,
                user_id: j.user_id,
                invite: None,
            })
        }
        ("MemberJoined", 2) => Event::MemberJoined(dec::<MemberJoined>(t, v, bytes)?),
        ("MemberLeft", 1) => Event::MemberLeft(dec::<MemberLeft>(t, v, bytes)?),
        ("MemberKicked", 1) => Event::MemberKicked(dec::<MemberKicked>(t, v, bytes)?),
        ("MemberBanned", 1) => Event::MemberBanned(dec::<MemberBanned>(t, v, bytes)?),
        ("MemberUnbanned", 1) => Event::MemberUnbanned(dec::<Lifted>(t, v, bytes)?),
        ("MemberMuted", 1) => Event::MemberMuted(dec::<MemberMuted>(t, v, bytes)?),
        ("MemberUnmuted", 1) => Event::MemberUnmuted(dec::<Lifted>(t, v, bytes)?),
        ("RoleChanged", 1) => Event::RoleChanged(dec::<RoleChanged>(t, v, bytes)?),
        ("RoomUpdated", 1) => Event::RoomUpdated(dec::<RoomUpdated>(t, v, bytes)?),
        ("RoomArchived", 1) => Event::RoomArchived(dec::<Archival>(t, v, bytes)?),
        ("RoomUnarchived", 1) => Event::RoomUnarchived(dec::<Archival>(t, v, bytes)?),
        ("JoinCodeRotated", 1) => Event::JoinCodeRotated(dec::<JoinCodeRotated>(t, v, bytes)?),
        ("InviteCreated", 1) => Event::InviteCreated(dec::<InviteCreated>(t, v, bytes)?),
        ("InviteRevoked", 1) => Event::InviteRevoked(dec::<InviteRevoked>(t, v, bytes)?),
        ("MessagePosted", 3) => {
            let m = dec::<MessagePostedV3>(t, v, bytes)?;
            Event::MessagePosted(MessagePosted {
                room_id: m.room_id,
                seq: m.seq,
                message_id: m.message_id,
                user_id: m.user_id,
                text: m.text,
                kind: m.kind,
                period: m.period,
                reply_to: None,
            })
        }
        ("MessagePosted", 4) => Event::MessagePosted(dec::<MessagePosted>(t, v, bytes)?),
        ("MessageEdited", 1) => Event::MessageEdited(dec::<MessageEdited>(t, v, bytes)?),
        ("MessageDeleted", 1) => Event::MessageDeleted(dec::<MessageDeleted>(t, v, bytes)?),
        ("ReactionAdded", 1) => Event::ReactionAdded(dec::<Reaction>(t, v, bytes)?),
        ("ReactionRemoved", 1) => Event::ReactionRemoved(dec::<Reaction>(t, v, bytes)?),
        ("DirectRoomOpened", 1) => Event::DirectRoomOpened(dec::<DirectRoomOpened>(t, v, bytes)?),
        ("UserBlocked", 1) => Event::UserBlocked(dec::<Block>(t, v, bytes)?),
        ("UserUnblocked", 1) => Event::UserUnblocked(dec::<Block>(t, v, bytes)?),
        _ if legacy::is_legacy(t, v) => {
            return Err(DecodeError::Legacy {
                event_type: t.to_owned(),
                version: v,
            });
        }
        _ if current_version(t) == 0 => return Err(DecodeError::UnknownType(t.to_owned())),
        _ => {
            return Err(DecodeError::UnknownVersion {
                event_type: t.to_owned(),
                version: v,
            });
        }
    };
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::{Key, Subject};

    fn all() -> Vec<Event> {
        let key = Key::random();
        let user = Subject::User("u1".into());
        vec![
            Event::LogStarted(LogStarted { format: 2 }),
            Event::UserNameClaimed(UserNameClaimed {
                user_id: "u1".into(),
            }),
            Event::UserNameReleased(UserNameReleased {
                user_id: "u1".into(),
            }),
            Event::UserRegistered(UserRegistered {
                user_id: "u1".into(),
                name: key.seal(&user, "Ann"),
            }),
            Event::UserRenamed(UserRenamed {
                user_id: "u1".into(),
                name: key.seal(&user, "Anna"),
            }),
            Event::AvatarChanged(AvatarChanged {
                user_id: "u1".into(),
                avatar: key.seal(&user, "/media/a.png"),
            }),
            Event::PasswordChanged(PasswordChanged {
                user_id: "u1".into(),
            }),
            Event::UserErased(UserErased {
                user_id: "u1".into(),
                by_operator: true,
            }),
            Event::RoomCreated(RoomCreated {
                room_id: "r1".into(),
                name: "Lobby".into(),
                description: "".into(),
                owner: "u1".into(),
                avatar_image: "/media/a.png".into(),
                join_code_hash: crate::event::join_code_hash("0123"),
                join_code: key.seal(&Subject::Room("r1".into()), "0123"),
            }),
            Event::MemberJoined(MemberJoined {
                room_id: "r1".into(),
                user_id: "u2".into(),
                invite: Some("i1".into()),
            }),
            Event::MemberLeft(MemberLeft {
                room_id: "r1".into(),
                user_id: "u2".into(),
            }),
            Event::MemberKicked(MemberKicked {
                room_id: "r1".into(),
                user_id: "u2".into(),
                by: "u1".into(),
                reason: Some(key.seal(&user, "spam")),
            }),
            Event::MemberBanned(MemberBanned {
                room_id: "r1".into(),
                user_id: "u2".into(),
                by: "u1".into(),
                reason: None,
                until: Some(5),
            }),
            Event::MemberUnbanned(Lifted {
                room_id: "r1".into(),
                user_id: "u2".into(),
                by: "u1".into(),
            }),
            Event::MemberMuted(MemberMuted {
                room_id: "r1".into(),
                user_id: "u2".into(),
                by: "u1".into(),
                until: 9,
            }),
            Event::MemberUnmuted(Lifted {
                room_id: "r1".into(),
                user_id: "u2".into(),
                by: "u1".into(),
            }),
            Event::RoleChanged(RoleChanged {
                room_id: "r1".into(),
                user_id: "u2".into(),
                by: None,
                role: crate::event::Role::Admin,
            }),
            Event::RoomUpdated(RoomUpdated {
                room_id: "r1".into(),
                by: "u1".into(),
                name: Some("New".into()),
                description: None,
                avatar_image: Some(String::new()),
                retention_days: Some(None),
            }),
            Event::RoomArchived(Archival {
                room_id: "r1".into(),
                by: None,
            }),
            Event::RoomUnarchived(Archival {
                room_id: "r1".into(),
                by: Some("u1".into()),
            }),
            Event::JoinCodeRotated(JoinCodeRotated {
                room_id: "r1".into(),
                by: "u1".into(),
                join_code_hash: [7; 32],
                join_code: key.seal(&Subject::Room("r1".into()), "4567"),
            }),
            Event::InviteCreated(InviteCreated {
                room_id: "r1".into(),
                invite_id: "i1".into(),
                by: "u1".into(),
                code_hash: [8; 32],
                code: key.seal(&Subject::Room("r1".into()), "89ab"),
                max_uses: Some(3),
                expires_at: None,
            }),
            Event::InviteRevoked(InviteRevoked {
                room_id: "r1".into(),
                invite_id: "i1".into(),
                by: "u1".into(),
            }),
            Event::MessagePosted(MessagePosted {
                room_id: "r1".into(),
                seq: 7,
                message_id: "m-1".into(),
                user_id: "u2".into(),
                text: key.seal(&user, "héllo <b>"),
                kind: "input".into(),
                period: 3,
                reply_to: Some(6),
            }),
            Event::MessageEdited(MessageEdited {
                room_id: "r1".into(),
                seq: 7,
                user_id: "u2".into(),
                text: key.seal(&user, "hello"),
                period: 3,
            }),
            Event::MessageDeleted(MessageDeleted {
                room_id: "r1".into(),
                seq: 7,
                by: "u1".into(),
            }),
            Event::ReactionAdded(Reaction {
                room_id: "r1".into(),
                seq: 7,
                user_id: "u1".into(),
                emoji: "👍".into(),
            }),
            Event::ReactionRemoved(Reaction {
                room_id: "r1".into(),
                seq: 7,
                user_id: "u1".into(),
                emoji: ":tada:".into(),
            }),
            Event::DirectRoomOpened(DirectRoomOpened {
                room_id: "r2".into(),
                users: ["u1".into(), "u2".into()],
                by: "u2".into(),
            }),
            Event::UserBlocked(Block {
                by: "u1".into(),
                user_id: "u2".into(),
            }),
            Event::UserUnblocked(Block {
                by: "u1".into(),
                user_id: "u2".into(),
            }),
        ]
    }

    #[test]
    fn every_event_round_trips() {
        for event in all() {
            let (name, version, bytes) = encode(&event);
            assert_eq!(name, event.type_name());
            assert_eq!(version, current_version(name));
            assert_eq!(decode(name, version, &bytes).unwrap(), event);
        }
    }

    #[test]
    fn direct_rooms_and_blocks_hold_ids_only() {
        for event in all() {
            if matches!(
                event,
                Event::DirectRoomOpened(_) | Event::UserBlocked(_) | Event::UserUnblocked(_)
            ) {
                assert!(event.sealed().is_none(), "{event:?}");
                assert_eq!(current_version(event.type_name()), 1);
            }
        }
    }

    #[test]
    fn a_join_of_version_one_used_no_invite() {
        #[derive(serde::Serialize)]
        struct V1<'a> {
            room_id: &'a str,
            user_id: &'a str,
        }
        let bytes = enc(&V1 {
            room_id: "r1",
            user_id: "u2",
        });
        assert_eq!(
            decode("MemberJoined", 1, &bytes).unwrap(),
            Event::MemberJoined(MemberJoined {
                room_id: "r1".into(),
                user_id: "u2".into(),
                invite: None,
            })
        );
    }

    #[test]
    fn a_message_of_version_three_answers_nothing() {
        let key = Key::random();
        let v3 = MessagePostedV3 {
            room_id: "r1".into(),
            seq: 2,
            message_id: "m".into(),
            user_id: "u2".into(),
            text: key.seal(&Subject::User("u2".into()), "hi"),
            kind: "input".into(),
            period: 1,
        };
        #[derive(serde::Serialize)]
        struct Same<'a>(
            &'a str,
            u64,
            &'a str,
            &'a str,
            &'a crate::seal::Sealed,
            &'a str,
            i64,
        );
        let bytes = enc(&Same(
            &v3.room_id,
            v3.seq,
            &v3.message_id,
            &v3.user_id,
            &v3.text,
            &v3.kind,
            v3.period,
        ));
        let Event::MessagePosted(m) = decode("MessagePosted", 3, &bytes).unwrap() else {
            panic!("a message")
        };
        assert_eq!((m.seq, m.reply_to, m.text), (2, None, v3.text));
    }

    #[test]
    fn versions_with_personal_data_in_clear_ask_for_an_upgrade() {
        for (t, v) in [
            ("UserNameClaimed", 1),
            ("UserRegistered", 1),
            ("RoomCreated", 1),
            ("MessagePosted", 1),
            ("MessagePosted", 2),
        ] {
            let e = decode(t, v, &[]).unwrap_err();
            assert!(matches!(e, DecodeError::Legacy { .. }), "{t} v{v}: {e}");
            assert!(e.to_string().contains("chatroom upgrade"));
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
            decode("MessagePosted", 3, &[0xff, 0xff, 0xff]),
            Err(DecodeError::Malformed { .. })
        ));
        let message = all()
            .into_iter()
            .find(|e| matches!(e, Event::MessagePosted(_)))
            .unwrap();
        let (_, _, mut bytes) = encode(&message);
        bytes.push(0);
        assert!(matches!(
            decode("MessagePosted", 4, &bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
