//! Socket.IO frames from clients, taken as far as pure code reaches.
//!
//! The server's own payload checks (`socket::worker::parse` and `accept`) need a running
//! server's state (sessions, rate limits, the socket's queue), so they are not called here;
//! the whole-server tests drive them. What a hostile frame meets before and after them is
//! pure, and fuzzed here in the order the server runs it:
//!
//! 1. socketioxide's packet parser (`CommonParser`, the one the server uses) decodes the text
//!    frame, reads the event name and deserialises the data into a `serde_json::Value`, as the
//!    `TryData<Value>` extractor of the handlers does; the connect packet's `auth` is read the
//!    way the connect middleware reads it;
//! 2. the fields the contract names (docs/protocol.md) are taken from that value, and the
//!    message text goes through `actors::room::check_text`;
//! 3. the post is decided by the room rules (`actors::room::decide`) for the logged-in user
//!    and, as an impersonation attempt, for the payload's `userId`.
//!
//! Nothing may panic, and: `check_text` accepts exactly the texts of 1 to 4000 code points
//! after trimming; an accepted post stores the text exactly as sent (markup and SQL are data,
//! never rewritten) under the logged-in user and the next seq; a `userId` that is not a member
//! never gets a post accepted.
#![no_main]

use actors::room::{self, Command, Decision, MAX_TEXT_CHARS, Rejection, State};
use events::Event;
use events::event::{MemberJoined, RoomCreated};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use socketioxide_core::Str;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_parser_common::CommonParser;

const ME: &str = "me";
const EVENTS: [&str; 4] = [
    "join_all",
    "join_one_chat",
    "user_send_message",
    "test_input",
];

fn room() -> State {
    let mut state = State::new("r");
    let created = Event::RoomCreated(RoomCreated {
        room_id: "r".into(),
        name: "Lobby".into(),
        description: String::new(),
        owner: "owner".into(),
        avatar_image: String::new(),
        join_code: "0".repeat(32),
    });
    let joined = Event::MemberJoined(MemberJoined {
        room_id: "r".into(),
        user_id: ME.into(),
    });
    state.apply(&created, 1, 0);
    state.apply(&joined, 2, 0);
    state
}

/// A `since` as the contract reads it: absent or null, or a whole number of 0 or more.
fn since(v: Option<&Value>) -> Result<Option<u64>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(()),
    }
}

fn send_message(data: &Value) {
    let Some(_room_id) = data.get("roomId").and_then(Value::as_str) else {
        return;
    };
    let key = match data.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return,
    };
    let Some(text) = data.get("message").and_then(Value::as_str) else {
        return;
    };
    let chars = text.trim().chars().count();
    let checked = room::check_text(text);
    assert_eq!(
        checked.is_ok(),
        (1..=MAX_TEXT_CHARS).contains(&chars),
        "check_text on {chars} chars"
    );
    let state = room();
    let next = state.last_seq + 1;
    let post = |user_id: &str| Command::Post {
        user_id: user_id.to_owned(),
        message_id: key.clone(),
        text: text.to_owned(),
    };
    match room::decide(&state, next, &post(ME)) {
        Ok(Decision::Append(Event::MessagePosted(m))) => {
            assert!(checked.is_ok());
            assert_eq!(m.text, text, "text stored as sent");
            assert_eq!(m.user_id, ME);
            assert_eq!(m.message_id, key);
            assert_eq!(m.seq, next);
        }
        Ok(other) => panic!("a first post decided {other:?}"),
        Err(Rejection::BadId) => assert!(key.is_empty() || key.chars().count() > 128),
        Err(r) => assert_eq!(checked, Err(r)),
    }
    if let Some(Value::String(claimed)) = data.get("userId")
        && !state.members.contains(claimed)
    {
        assert_eq!(
            room::decide(&state, next, &post(claimed)),
            Err(Rejection::NotMember)
        );
    }
}

fn join(event: &str, data: &Value) {
    match event {
        "join_one_chat" => {
            let Some(obj) = data.as_object() else { return };
            let _ = obj.get("roomId").map(Value::as_str);
            let _ = since(obj.get("since"));
        }
        "join_all" => {
            let Some(list) = data.get("roomList").and_then(Value::as_array) else {
                return;
            };
            let since_map = match data.get("since") {
                None | Some(Value::Null) => serde_json::Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(_) => return,
            };
            for room_id in list.iter().take(1000).filter_map(Value::as_str) {
                let _ = since(since_map.get(room_id));
                // The rules take any string as an id: used here as the joining user's, a
                // join of a non-member appends and a member's join changes nothing.
                let state = room();
                let join = Command::Join {
                    user_id: room_id.to_owned(),
                };
                let first = room::decide(&state, 1, &join);
                if state.members.contains(room_id) {
                    assert_eq!(first, Ok(Decision::AlreadyDone(None)));
                } else {
                    assert!(matches!(first, Ok(Decision::Append(_))));
                }
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // A WebSocket text frame as a client sends it: Engine.IO's message type `4`, then the
    // Socket.IO packet (`2/chatroom,7["user_send_message",{...}]`). Engine.IO's other packet
    // types (ping, pong, upgrade, ...) never reach the namespace.
    let Some(text) = std::str::from_utf8(data)
        .ok()
        .and_then(|f| f.strip_prefix('4'))
    else {
        return;
    };
    let parser = CommonParser;
    let state = ParserState::default();
    let Ok(packet) = parser.decode_str(&ParseConfig::default(), &state, Str::from(text.to_owned()))
    else {
        return;
    };
    match packet.inner {
        PacketData::Connect(auth) => {
            if let Ok(auth) = parser.decode_default::<Value>(auth.as_ref()) {
                let _ = auth.get("token").and_then(Value::as_str);
            }
        }
        PacketData::Event(mut value, _) | PacketData::BinaryEvent(mut value, _) => {
            let Ok(event) = parser.read_event(&value).map(str::to_owned) else {
                return;
            };
            if !EVENTS.contains(&event.as_str()) {
                return;
            }
            let Ok(data) = parser.decode_value::<Value>(&mut value, true) else {
                return;
            };
            // A userId that is not a string is refused as forbidden before anything else.
            if !matches!(data.get("userId"), None | Some(Value::String(_))) {
                return;
            }
            match event.as_str() {
                "user_send_message" => send_message(&data),
                "test_input" => {}
                other => join(other, &data),
            }
        }
        _ => {}
    }
});
