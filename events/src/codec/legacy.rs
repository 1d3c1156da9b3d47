//! Events as versions before log format 2 wrote them, with personal data in clear. Today's
//! server does not serve such a log; `chatroom upgrade` reads it with [`decode`] and writes a
//! new log under today's rules. Every arm here is a promise to read what an earlier server
//! wrote, so these types never change.

use super::{DecodeError, dec};
use serde::Deserialize;

/// `UserNameClaimed` v1 (stream `username-<lower-cased name>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserNameClaimed {
    /// The user who holds the name.
    pub user_id: String,
    /// The name as typed.
    pub name: String,
}

/// `UserRegistered` v1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserRegistered {
    /// The new user's id.
    pub user_id: String,
    /// The name as registered.
    pub name: String,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
}

/// `RoomCreated` v1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoomCreated {
    /// The room's id.
    pub room_id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The creator.
    pub owner: String,
    /// Avatar path or empty.
    pub avatar_image: String,
    /// The join code in clear.
    pub join_code: String,
}

/// `MessagePosted` v2, and v1 (no `kind`) upcast to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessagePosted {
    /// The room.
    pub room_id: String,
    /// Its seq.
    pub seq: u64,
    /// The client's id.
    pub message_id: String,
    /// The author.
    pub user_id: String,
    /// The text in clear.
    pub text: String,
    /// The kind (`"input"` for v1).
    pub kind: String,
}

#[derive(Deserialize)]
struct MessagePostedV1 {
    room_id: String,
    seq: u64,
    message_id: String,
    user_id: String,
    text: String,
}

impl From<MessagePostedV1> for MessagePosted {
    fn from(m: MessagePostedV1) -> Self {
        Self {
            room_id: m.room_id,
            seq: m.seq,
            message_id: m.message_id,
            user_id: m.user_id,
            text: m.text,
            // Version 1 only ever stored typed text.
            kind: crate::event::INPUT.to_owned(),
        }
    }
}

/// An event of a log before format 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Legacy {
    /// `UserNameClaimed` v1.
    UserNameClaimed(UserNameClaimed),
    /// `UserRegistered` v1.
    UserRegistered(UserRegistered),
    /// `RoomCreated` v1.
    RoomCreated(RoomCreated),
    /// `MemberJoined` v1, unchanged today.
    MemberJoined(crate::event::MemberJoined),
    /// `MessagePosted` v1 or v2.
    MessagePosted(MessagePosted),
}

/// Whether `(event_type, version)` is one that held personal data in clear.
pub fn is_legacy(event_type: &str, version: u16) -> bool {
    matches!(
        (event_type, version),
        ("UserNameClaimed", 1)
            | ("UserRegistered", 1)
            | ("RoomCreated", 1)
            | ("MessagePosted", 1 | 2)
    )
}

/// Decodes an event of a log before format 2.
///
/// # Errors
/// [`DecodeError`] when the type and version are not ones such a log held, or the bytes are
/// malformed.
pub fn decode(event_type: &str, version: u16, bytes: &[u8]) -> Result<Legacy, DecodeError> {
    let (t, v) = (event_type, version);
    Ok(match (t, v) {
        ("UserNameClaimed", 1) => Legacy::UserNameClaimed(dec(t, v, bytes)?),
        ("UserRegistered", 1) => Legacy::UserRegistered(dec(t, v, bytes)?),
        ("RoomCreated", 1) => Legacy::RoomCreated(dec(t, v, bytes)?),
        ("MemberJoined", 1) => Legacy::MemberJoined(dec(t, v, bytes)?),
        ("MessagePosted", 1) => Legacy::MessagePosted(dec::<MessagePostedV1>(t, v, bytes)?.into()),
        ("MessagePosted", 2) => Legacy::MessagePosted(dec(t, v, bytes)?),
        _ => {
            return Err(DecodeError::UnknownVersion {
                event_type: t.to_owned(),
                version: v,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[test]
    fn old_messages_read_with_their_kind() {
        #[derive(Serialize)]
        struct V1<'a> {
            room_id: &'a str,
            seq: u64,
            message_id: &'a str,
            user_id: &'a str,
            text: &'a str,
        }
        let bytes = super::super::enc(&V1 {
            room_id: "r",
            seq: 3,
            message_id: "m",
            user_id: "u",
            text: "old",
        });
        let Legacy::MessagePosted(m) = decode("MessagePosted", 1, &bytes).unwrap() else {
            panic!("not a message");
        };
        assert_eq!(
            (m.seq, m.text.as_str(), m.kind.as_str()),
            (3, "old", "input")
        );
        // The same bytes are not a valid version 2 payload: versions are not guessed.
        assert!(decode("MessagePosted", 2, &bytes).is_err());
        assert!(decode("MessagePosted", 3, &bytes).is_err());
    }
}
