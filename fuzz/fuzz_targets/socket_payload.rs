//! Socket.IO frames from clients, taken as far as pure code reaches.
//!
//! What a hostile frame meets is fuzzed in the order the server runs it:
//!
//! 1. socketioxide's packet parser (`CommonParser`, the one the server uses) decodes the text
//!    frame, reads the event name and deserialises the data into a `serde_json::Value`, as the
//!    `TryData<Value>` extractor of the handlers does; the connect packet's `auth` is read the
//!    way the connect middleware reads it;
//! 2. the server's own payload checks (`chatroom::socket::payload`) read the identity claim
//!    and the event's fields; only the rate limits and the socket's queue, which need a
//!    running server, are left to the whole-server tests;
//! 3. the post is decided by the room rules (`actors::room::decide`) for the logged-in user
//!    and, as an impersonation attempt, for the payload's `userId`.
//!
//! Nothing may panic, and: a `userId` passes only when it is the logged-in user's id;
//! `check_text` accepts exactly the texts of 1 to 4000 code points after trimming, and a
//! message is taken in only then; an accepted post gets the next seq and its text, sealed for
//! the logged-in user, opens exactly as sent (markup and SQL are data, never rewritten); a
//! `userId` that is not a member never gets a post accepted.
#![no_main]

use actors::room::{self, Command, Decision, MAX_TEXT_CHARS, Rejection, State};
use chatroom::socket::payload::{self, Common, Request};
use events::Event;
use events::event::{MemberJoined, RoomCreated, join_code_hash};
use events::seal::{Key, Subject, period_of};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use socketioxide_core::Str;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_parser_common::CommonParser;

const ME: &str = "me";

fn room() -> State {
    let mut state = State::new("r");
    let created = Event::RoomCreated(RoomCreated {
        room_id: "r".into(),
        name: "Lobby".into(),
        description: String::new(),
        owner: "owner".into(),
        avatar_image: String::new(),
        join_code_hash: join_code_hash(&"0".repeat(32)),
        join_code: Key::random().seal(&Subject::Room("r".into()), &"0".repeat(32)),
    });
    let joined = Event::MemberJoined(MemberJoined {
        room_id: "r".into(),
        user_id: ME.into(),
        invite: None,
    });
    state.apply(&created, 1, 0);
    state.apply(&joined, 2, 0);
    state
}

fn send_message(data: &Value, request: Result<Request, chatroom::socket::Failure>) {
    if let Some(text) = data.get("message").and_then(Value::as_str) {
        let chars = text.trim().chars().count();
        assert_eq!(
            room::check_text(text).is_ok(),
            (1..=MAX_TEXT_CHARS).contains(&chars),
            "check_text on {chars} chars"
        );
    }
    let Ok(Request::Send {
        room_id,
        id,
        key,
        text,
        ..
    }) = request
    else {
        return;
    };
    assert_eq!(data["roomId"], room_id.as_str());
    assert_eq!(data["id"], id);
    assert_eq!(data["message"], text.as_str(), "the text is taken as sent");
    assert!(
        room::check_text(&text).is_ok(),
        "a text check_text refuses was taken in"
    );
    let state = room();
    let next = state.last_seq + 1;
    let post = |user_id: &str| Command::Post {
        user_id: user_id.to_owned(),
        message_id: key.clone(),
        text: text.clone(),
        reply_to: None,
    };
    match room::decide(&state, next, 0, &post(ME)) {
        Ok(Decision::Post(seq)) => {
            assert_eq!(seq, next);
            // The actor seals the text for the author as it writes the post: it must open
            // exactly as sent.
            let subject = Subject::Text {
                user: ME.into(),
                room: room_id.clone(),
                period: period_of(events::now_ms()),
            };
            let sealing = Key::random();
            let sealed = sealing.seal(&subject, &text);
            assert_eq!(
                sealing.open(&subject, &sealed).as_deref(),
                Some(text.as_str()),
                "text stored as sent"
            );
        }
        Ok(other) => panic!("a first post decided {other:?}"),
        Err(Rejection::BadId) => assert!(key.is_empty() || key.chars().count() > 128),
        Err(r) => panic!("a checked text was refused: {r:?}"),
    }
    if let Some(Value::String(claimed)) = data.get("userId")
        && !state.is_member(claimed)
    {
        assert_eq!(
            room::decide(&state, next, 0, &post(claimed)),
            Err(Rejection::NotMember)
        );
    }
}

/// An edit, deletion or reaction read from a payload names the message it was sent with, and
/// an edit's text is one the rules accept.
fn change(data: &Value, request: Result<Request, chatroom::socket::Failure>) {
    let Ok(Request::Change { room_id, change }) = request else {
        return;
    };
    assert_eq!(data["roomId"], room_id.as_str());
    let seq = match &change {
        payload::MessageChange::Edit { seq, text } => {
            assert!(room::check_text(text).is_ok());
            *seq
        }
        payload::MessageChange::Delete { seq } | payload::MessageChange::React { seq, .. } => *seq,
    };
    assert_eq!(data["seq"], seq);
}

fn marker_or_typing(data: &Value, request: Result<Request, chatroom::socket::Failure>) {
    match request {
        // A marker is any seq of 0 or more: the server clamps it to the room's newest.
        Ok(Request::MarkRead { room_id, seq }) => {
            assert_eq!(data["roomId"], room_id.as_str());
            assert_eq!(data["seq"], seq);
        }
        Ok(Request::Typing { room_id }) => assert_eq!(data["roomId"], room_id.as_str()),
        Ok(other) => panic!("a marker or typing parsed as {other:?}"),
        Err(_) => {}
    }
}

fn join(request: Result<Request, chatroom::socket::Failure>) {
    let Ok(Request::Join {
        rooms,
        since,
        since_version,
        ..
    }) = request
    else {
        return;
    };
    assert!(rooms.len() <= payload::MAX_JOIN_ALL);
    for room_id in rooms.iter().filter_map(Value::as_str) {
        let _ = payload::resume_of(&since, &since_version, room_id);
        // The rules take any string as an id: used here as the joining user's, a join of a
        // non-member appends and a member's join changes nothing.
        let state = room();
        let join = Command::Join {
            user_id: room_id.to_owned(),
            code_hash: join_code_hash(&"0".repeat(32)),
        };
        let first = room::decide(&state, 1, 0, &join);
        if state.is_member(room_id) {
            assert_eq!(first, Ok(Decision::AlreadyDone(None)));
        } else {
            assert!(matches!(first, Ok(Decision::Append(_))));
        }
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
            let Some(event) = parser
                .read_event(&value)
                .ok()
                .and_then(payload::Event::named)
            else {
                return;
            };
            let Ok(data) = parser.decode_value::<Value>(&mut value, true) else {
                return;
            };
            // A userId that is not the logged-in user's is refused before anything else.
            let claim = Common::of(&data).check_user(ME);
            let mine = match data.get("userId") {
                None => true,
                Some(Value::String(s)) => s == ME,
                Some(_) => false,
            };
            assert_eq!(claim.is_ok(), mine, "userId {:?}", data.get("userId"));
            let request = payload::parse(event, &data);
            if let Err(f) = &request {
                assert!(["bad_request", "too_large"].contains(&f.code), "{f:?}");
            }
            match event {
                payload::Event::UserSendMessage => send_message(&data, request),
                payload::Event::TestInput => {}
                payload::Event::JoinAll | payload::Event::JoinOneChat => join(request),
                payload::Event::EditMessage
                | payload::Event::DeleteMessage
                | payload::Event::React => change(&data, request),
                payload::Event::MarkRead | payload::Event::Typing => {
                    marker_or_typing(&data, request)
                }
            }
        }
        _ => {}
    }
});
