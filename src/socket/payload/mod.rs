//! The payloads of the client's events, read by serde as `docs/protocol.md` writes them.
//!
//! Ids are opaque JSON values: a room id that is not a string is refused for that room only,
//! when it is joined. Fields the contract does not name are ignored. A field of the wrong
//! type answers `bad_request` with a message that names it. A payload is read only when it is
//! a JSON object: serde would also read a struct from an array, by position.

use super::reply::Failure;
use serde::de::{Deserialize, Deserializer};
use serde_json::{Number, Value};
use std::collections::HashMap;

/// Rooms one `join_all` may list.
pub const MAX_JOIN_ALL: usize = 1000;

/// The events of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `join_all`.
    JoinAll,
    /// `join_one_chat`.
    JoinOneChat,
    /// `user_send_message`.
    UserSendMessage,
    /// `edit_message`.
    EditMessage,
    /// `delete_message`.
    DeleteMessage,
    /// `react`.
    React,
    /// `mark_read`.
    MarkRead,
    /// `typing`.
    Typing,
    /// `test_input`.
    TestInput,
}

impl Event {
    /// The event called `name`, if the contract has one.
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "join_all" => Self::JoinAll,
            "join_one_chat" => Self::JoinOneChat,
            "user_send_message" => Self::UserSendMessage,
            "edit_message" => Self::EditMessage,
            "delete_message" => Self::DeleteMessage,
            "react" => Self::React,
            "mark_read" => Self::MarkRead,
            "typing" => Self::Typing,
            "test_input" => Self::TestInput,
            _ => return None,
        })
    }
}

/// A payload field: missing, sent with the type the contract gives it, or sent with another.
///
/// A wrong type is kept rather than raised, so that a payload's fields are checked in the
/// contract's order whatever the order of its keys, and so that a bad `since` of one room of a
/// `join_all` refuses that room only. (Fields are read from a parsed `Value`, where a value
/// that fails leaves the rest readable; a streaming deserializer would be left inside it.)
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    /// Not in the payload.
    #[default]
    Missing,
    /// Sent with the right type (`null` is sent, not missing).
    Sent(T),
    /// Sent with another type.
    Malformed,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(T::deserialize(d).map_or(Field::Malformed, Field::Sent))
    }
}

impl<T> Field<T> {
    /// The value when it was sent with the right type; `bad_request` with `message` otherwise.
    fn required(self, message: &str) -> Result<T, Failure> {
        match self {
            Field::Sent(v) => Ok(v),
            Field::Missing | Field::Malformed => Err(Failure::bad(message)),
        }
    }

    /// The value sent, `None` when missing; `bad_request` with `message` for a wrong type.
    fn optional(self, message: &str) -> Result<Option<T>, Failure> {
        match self {
            Field::Sent(v) => Ok(Some(v)),
            Field::Missing => Ok(None),
            Field::Malformed => Err(Failure::bad(message)),
        }
    }
}

/// What any event's payload may carry besides its own fields.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Common {
    /// The sender's claimed identity, kept for compatibility with the original client.
    #[serde(rename = "userId", default)]
    pub user_id: Field<Value>,
    /// A message's own id, echoed in `chat_error`.
    #[serde(default)]
    pub id: Field<Value>,
}

impl Common {
    /// The common fields of `data` (none when it is not an object).
    pub fn of(data: &Value) -> Self {
        object(data).unwrap_or_default()
    }

    /// Checks the identity claim: a `userId` must be the token's user id as a JSON value (the
    /// same id as a number, or `null`, is another value).
    ///
    /// # Errors
    /// `forbidden` for any other `userId`.
    pub fn check_user(&self, user_id: &str) -> Result<(), Failure> {
        match &self.user_id {
            Field::Missing => Ok(()),
            Field::Sent(Value::String(s)) if s == user_id => Ok(()),
            Field::Sent(_) | Field::Malformed => Err(Failure::new(
                "forbidden",
                "userId does not match the logged-in user",
            )),
        }
    }

    /// The id to echo in `chat_error`.
    pub fn echo(&self) -> Option<&Value> {
        match &self.id {
            Field::Sent(id) => Some(id),
            Field::Missing | Field::Malformed => None,
        }
    }
}

/// Per room, the `seq` a joining client has seen, as it sent it.
pub type SinceMap = HashMap<String, Field<Option<u64>>>;

const SINCE_SEQ: &str = "since must be a whole number of 0 or more";
const SINCE_VERSION: &str = "sinceVersion must be a whole number of 0 or more";

fn entry_of(map: &SinceMap, room_id: &str, error: &str) -> Result<Option<u64>, Failure> {
    match map.get(room_id) {
        None | Some(Field::Missing | Field::Sent(None)) => Ok(None),
        Some(Field::Sent(Some(n))) => Ok(Some(*n)),
        Some(Field::Malformed) => Err(Failure::bad(error)),
    }
}

/// Where `room_id` resumes: its `sinceVersion` if one was given (it wins), else its `since`.
///
/// # Errors
/// `bad_request` when the one that counts is not a whole number of 0 or more.
pub fn resume_of(
    since: &SinceMap,
    since_version: &SinceMap,
    room_id: &str,
) -> Result<actors::Resume, Failure> {
    if let Some(v) = entry_of(since_version, room_id, SINCE_VERSION)? {
        return Ok(actors::Resume::Version(v));
    }
    Ok(match entry_of(since, room_id, SINCE_SEQ)? {
        Some(seq) => actors::Resume::Seq(seq),
        None => actors::Resume::No,
    })
}

/// A checked event, ready to be carried out.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `join_all` or `join_one_chat`.
    Join {
        /// The rooms, as sent.
        rooms: Vec<Value>,
        /// Their `since`, as sent.
        since: SinceMap,
        /// Their `sinceVersion`, as sent (it wins over `since`).
        since_version: SinceMap,
        /// Whether it is `join_one_chat`, answered with the one room's outcome.
        one: bool,
    },
    /// `user_send_message`.
    Send {
        /// The room.
        room_id: String,
        /// The message's own id, as sent (echoed in the answer).
        id: Value,
        /// The same id as the room's idempotency key (a number as its decimal text).
        key: String,
        /// The text, as sent.
        text: String,
        /// The message it answers.
        reply_to: Option<u64>,
    },
    /// `edit_message`, `delete_message` or `react`: a change to message `seq` of `room_id`.
    Change {
        /// The room.
        room_id: String,
        /// The change, for the token's user (the actor checks who may make it).
        change: MessageChange,
    },
    /// `mark_read`: the caller's marker in `room_id` forward to `seq`.
    MarkRead {
        /// The room.
        room_id: String,
        /// The newest `seq` read.
        seq: u64,
    },
    /// `typing` in `room_id`.
    Typing {
        /// The room.
        room_id: String,
    },
    /// `test_input`.
    TestInput,
}

/// A change a client asks for on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageChange {
    /// A new text.
    Edit {
        /// The message.
        seq: u64,
        /// The new text.
        text: String,
    },
    /// A deletion.
    Delete {
        /// The message.
        seq: u64,
    },
    /// A reaction added (`on`) or taken back.
    React {
        /// The message.
        seq: u64,
        /// The symbol.
        emoji: String,
        /// Add or remove.
        on: bool,
    },
}

impl MessageChange {
    /// The room command this change is for `user_id`.
    pub fn command(self, user_id: &str) -> actors::room::Command {
        use actors::room::Command;
        let user_id = user_id.to_owned();
        match self {
            MessageChange::Edit { seq, text } => Command::Edit { user_id, seq, text },
            MessageChange::Delete { seq } => Command::Delete { by: user_id, seq },
            MessageChange::React { seq, emoji, on } => Command::React {
                user_id,
                seq,
                emoji,
                on,
            },
        }
    }
}

impl Request {
    /// Whether carrying it out joins rooms (counted by the join limit).
    pub fn joins_rooms(&self) -> bool {
        matches!(self, Request::Join { rooms, .. } if !rooms.is_empty())
    }
}

#[derive(serde::Deserialize)]
struct JoinOneChat {
    #[serde(rename = "roomId", default)]
    room_id: Field<Value>,
    #[serde(default)]
    since: Field<Option<u64>>,
    #[serde(rename = "sinceVersion", default)]
    since_version: Field<Option<u64>>,
}

#[derive(serde::Deserialize)]
struct JoinAll {
    #[serde(rename = "roomList", default)]
    room_list: Field<Vec<Value>>,
    #[serde(default)]
    since: Field<Option<SinceMap>>,
    #[serde(rename = "sinceVersion", default)]
    since_version: Field<Option<SinceMap>>,
}

/// A message's own id: a string or a number.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum MessageId {
    Text(String),
    Number(Number),
}

/// The one message type of the contract.
#[derive(serde::Deserialize)]
enum Kind {
    #[serde(rename = "input")]
    Input,
}

#[derive(Default, serde::Deserialize)]
struct UserSendMessage {
    #[serde(rename = "roomId", default)]
    room_id: Field<String>,
    #[serde(default)]
    id: Field<MessageId>,
    #[serde(default)]
    message: Field<String>,
    #[serde(rename = "type", default)]
    kind: Field<Option<Kind>>,
    #[serde(rename = "replyTo", default)]
    reply_to: Field<Option<u64>>,
}

#[derive(Default, serde::Deserialize)]
struct OnMessage {
    #[serde(rename = "roomId", default)]
    room_id: Field<String>,
    #[serde(default)]
    seq: Field<u64>,
    #[serde(default)]
    message: Field<String>,
    #[serde(default)]
    emoji: Field<String>,
    #[serde(default)]
    on: Field<bool>,
}

#[derive(Default, serde::Deserialize)]
struct InRoom {
    #[serde(rename = "roomId", default)]
    room_id: Field<String>,
    #[serde(default)]
    seq: Field<u64>,
}

/// `data` read as `T` when it is a JSON object.
fn object<'a, T: Deserialize<'a>>(data: &'a Value) -> Option<T> {
    match data {
        Value::Object(_) => T::deserialize(data).ok(),
        _ => None,
    }
}

/// Reads and checks the payload of `event` (the identity claim aside: see [`Common`]).
///
/// # Errors
/// `bad_request` for a malformed payload, `too_large` for a `join_all` of more than
/// [`MAX_JOIN_ALL`] rooms or a text over the limit.
pub fn parse(event: Event, data: &Value) -> Result<Request, Failure> {
    match event {
        Event::TestInput => Ok(Request::TestInput),
        Event::MarkRead => {
            let p: InRoom = object(data).unwrap_or_default();
            let room_id = p.room_id.required("roomId must be a room id")?;
            let seq = p
                .seq
                .required("seq must be a whole number of 0 or more (the newest seq read)")?;
            Ok(Request::MarkRead { room_id, seq })
        }
        Event::Typing => {
            let p: InRoom = object(data).unwrap_or_default();
            let room_id = p.room_id.required("roomId must be a room id")?;
            Ok(Request::Typing { room_id })
        }
        Event::JoinOneChat => {
            let p: JoinOneChat = object(data)
                .ok_or_else(|| Failure::bad("join_one_chat needs {\"roomId\", \"since\"}"))?;
            let room = p.room_id.required("roomId is missing")?;
            let mut since = SinceMap::new();
            if let (Some(seq), Some(key)) = (p.since.optional(SINCE_SEQ)?.flatten(), room.as_str())
            {
                since.insert(key.to_owned(), Field::Sent(Some(seq)));
            }
            let mut since_version = SinceMap::new();
            if let (Some(v), Some(key)) = (
                p.since_version.optional(SINCE_VERSION)?.flatten(),
                room.as_str(),
            ) {
                since_version.insert(key.to_owned(), Field::Sent(Some(v)));
            }
            Ok(Request::Join {
                rooms: vec![room],
                since,
                since_version,
                one: true,
            })
        }
        Event::JoinAll => {
            const NEEDS: &str = "join_all needs {\"roomList\": [roomId, ...]}";
            let p: JoinAll = object(data).ok_or_else(|| Failure::bad(NEEDS))?;
            let rooms = p.room_list.required(NEEDS)?;
            if rooms.len() > MAX_JOIN_ALL {
                return Err(Failure::new(
                    "too_large",
                    "at most 1000 rooms in one join_all",
                ));
            }
            let since = p
                .since
                .optional("since must be an object {roomId: seq}")?
                .flatten()
                .unwrap_or_default();
            let since_version = p
                .since_version
                .optional("sinceVersion must be an object {roomId: version}")?
                .flatten()
                .unwrap_or_default();
            Ok(Request::Join {
                rooms,
                since,
                since_version,
                one: false,
            })
        }
        Event::UserSendMessage => {
            let p: UserSendMessage = object(data).unwrap_or_default();
            let room_id = p.room_id.required("roomId must be a room id")?;
            let (id, key) = match p
                .id
                .required("id must be the message's own id (a string or number)")?
            {
                MessageId::Text(s) => (Value::String(s.clone()), s),
                MessageId::Number(n) => {
                    let key = n.to_string();
                    (Value::Number(n), key)
                }
            };
            let text = p.message.required("message must be text")?;
            p.kind.optional("type must be \"input\"")?;
            actors::room::check_text(&text)
                .map_err(|r| Failure::from(actors::Error::Rejected(r)))?;
            let reply_to = p
                .reply_to
                .optional("replyTo must be the seq of a message of this room")?
                .flatten();
            Ok(Request::Send {
                room_id,
                id,
                key,
                text,
                reply_to,
            })
        }
        Event::EditMessage | Event::DeleteMessage | Event::React => {
            let p: OnMessage = object(data).unwrap_or_default();
            let room_id = p.room_id.required("roomId must be a room id")?;
            let seq = p
                .seq
                .required("seq must be the seq of a message of this room")?;
            let change = match event {
                Event::EditMessage => {
                    let text = p.message.required("message must be text")?;
                    actors::room::check_text(&text)
                        .map_err(|r| Failure::from(actors::Error::Rejected(r)))?;
                    MessageChange::Edit { seq, text }
                }
                Event::DeleteMessage => MessageChange::Delete { seq },
                _ => MessageChange::React {
                    seq,
                    emoji: p.emoji.required("emoji must be text")?,
                    on: p.on.required("on must be true or false")?,
                },
            };
            Ok(Request::Change { room_id, change })
        }
    }
}

#[cfg(test)]
mod tests;
