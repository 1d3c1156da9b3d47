//! Socket.IO v5 over Engine.IO v4, as text frames on a raw WebSocket: just the packets the
//! contract uses, parsed in place (no JSON tree per message) and written into reused buffers.
//!
//! Frames seen on the wire (namespace `/chatroom`):
//! - `0{...}` Engine.IO open, `2` ping (answered `3`), `1` close;
//! - `40/chatroom,{...}` connected, `44/chatroom,{...}` refused, `41/chatroom,` disconnected;
//! - `42/chatroom,<ack>["event",{...}]` an event, `43/chatroom,<ack>[{...}]` its ack.
//!
//! A benchmark message's text is `~<ns>`: its send time in nanoseconds since the run's shared
//! start, so every receiver on this machine can measure delivery latency with one scan.

use std::fmt::Write;

/// The contract's namespace.
pub const NS: &str = "/chatroom";

/// The Engine.IO pong, the answer to a server ping.
pub const PONG: &str = "3";

/// The generator's WebSocket settings: tungstenite zeroes its whole read buffer (128 KiB by
/// default) before every read, even one that finds nothing, which was a quarter of the
/// generator's time with 5,000 sockets; 8 KiB holds dozens of the contract's frames.
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// A frame from the server, borrowing from its text.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Engine.IO open handshake.
    Open,
    /// Engine.IO ping: answer [`PONG`].
    Ping,
    /// Engine.IO close, or a Socket.IO disconnect of our namespace.
    Closed,
    /// The namespace accepted us.
    Connected,
    /// The namespace refused us; the payload holds the message.
    Refused(&'a str),
    /// An acknowledgement: its id and payload (a JSON array).
    Ack { id: u64, body: &'a str },
    /// An event: its name and the rest of the array after the name.
    Event { name: &'a str, body: &'a str },
    /// Anything else (noop, other namespaces).
    Other,
}

/// Parses one text frame.
pub fn parse(frame: &str) -> Packet<'_> {
    let b = frame.as_bytes();
    match b.first() {
        Some(b'0') => return Packet::Open,
        Some(b'1') => return Packet::Closed,
        Some(b'2') => return Packet::Ping,
        Some(b'4') => {}
        _ => return Packet::Other,
    }
    let Some(kind) = b.get(1) else {
        return Packet::Other;
    };
    let rest = &frame[2..];
    let Some(rest) = rest
        .strip_prefix(NS)
        .and_then(|r| r.strip_prefix(','))
        .or_else(|| (*kind == b'1').then_some(""))
    else {
        return Packet::Other;
    };
    match kind {
        b'0' => Packet::Connected,
        b'1' => Packet::Closed,
        b'4' => Packet::Refused(rest),
        b'2' | b'3' => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let id = rest[..digits].parse().unwrap_or(u64::MAX);
            let body = &rest[digits..];
            if *kind == b'3' {
                return Packet::Ack { id, body };
            }
            // ["name",...]: the name is a JSON string without escapes in this contract.
            let Some(after) = body.strip_prefix("[\"") else {
                return Packet::Other;
            };
            match after.find('"') {
                Some(end) => Packet::Event {
                    name: &after[..end],
                    body: &after[end + 1..],
                },
                None => Packet::Other,
            }
        }
        _ => Packet::Other,
    }
}

/// Whether an ack payload says `"ok": true` (and no entry says false, as in `join_all`).
pub fn ack_ok(body: &str) -> bool {
    body.contains("\"ok\":true") && !body.contains("\"ok\":false")
}

/// The send stamp of a `received` message, if it is one of ours.
pub fn stamp(body: &str) -> Option<u64> {
    const KEY: &str = "\"message\":\"~";
    let at = body.find(KEY)? + KEY.len();
    let digits = &body[at..];
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    digits[..n].parse().ok()
}

/// The namespace connect packet carrying the token.
pub fn connect(token: &str) -> String {
    let auth = serde_json::json!({ "token": token });
    format!("40{NS},{auth}")
}

/// The `join_all` event for `rooms`, with ack id `ack`.
pub fn join_all(ack: u64, rooms: &[String]) -> String {
    let payload = serde_json::json!(["join_all", { "roomList": rooms }]);
    format!("42{NS},{ack}{payload}")
}

/// A `user_send_message` frame with everything but the ack id, message id and stamp
/// serialized once.
#[derive(Debug, Clone)]
pub struct SendTemplate {
    head: String,
    middle: &'static str,
    tail: String,
}

impl SendTemplate {
    /// A template for messages to `room_id`, with message ids `<tag>-<n>` and `pad` extra
    /// characters of text after the stamp.
    pub fn new(room_id: &str, tag: &str, pad: usize) -> Self {
        let room = serde_json::to_string(room_id).expect("a string serializes");
        let mut tail = String::new();
        if pad > 0 {
            tail.push(' ');
            tail.extend(std::iter::repeat_n('x', pad));
        }
        tail.push_str("\",\"type\":\"input\"}]");
        Self {
            head: format!("[\"user_send_message\",{{\"roomId\":{room},\"id\":\"{tag}-"),
            middle: "\",\"message\":\"~",
            tail,
        }
    }

    /// Writes the frame for ack id `ack`, message number `n` and stamp `ns` into `out`.
    pub fn write(&self, out: &mut String, ack: u64, n: u64, ns: u64) {
        out.clear();
        let _ = write!(
            out,
            "42{NS},{ack}{}{n}{}{ns}{}",
            self.head, self.middle, self.tail
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_packets_of_the_contract() {
        assert_eq!(
            parse("0{\"sid\":\"x\",\"pingInterval\":25000}"),
            Packet::Open
        );
        assert_eq!(parse("2"), Packet::Ping);
        assert_eq!(parse("40/chatroom,{\"sid\":\"abc\"}"), Packet::Connected);
        assert_eq!(
            parse("44/chatroom,{\"message\":\"unauthorized\"}"),
            Packet::Refused("{\"message\":\"unauthorized\"}")
        );
        assert_eq!(parse("41/chatroom,"), Packet::Closed);
        assert_eq!(
            parse("43/chatroom,17[{\"ok\":true,\"seq\":3}]"),
            Packet::Ack {
                id: 17,
                body: "[{\"ok\":true,\"seq\":3}]"
            }
        );
        assert_eq!(
            parse("42/chatroom,[\"received\",{\"type\":\"join\"}]"),
            Packet::Event {
                name: "received",
                body: ",{\"type\":\"join\"}]"
            }
        );
        assert_eq!(parse("40/other,{}"), Packet::Other);
    }

    #[test]
    fn a_sent_frame_round_trips_through_json_and_its_stamp_is_found() {
        let t = SendTemplate::new("room-1", "u7", 3);
        let mut out = String::new();
        t.write(&mut out, 42, 9, 123_456_789);
        let json = out.strip_prefix("42/chatroom,42").expect("header");
        let v: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        assert_eq!(v[0], "user_send_message");
        assert_eq!(v[1]["roomId"], "room-1");
        assert_eq!(v[1]["id"], "u7-9");
        assert_eq!(v[1]["message"], "~123456789 xxx");
        assert_eq!(v[1]["type"], "input");
        let delivered = format!(
            "{{\"id\":\"u7-9\",\"seq\":1,\"message\":{},\"type\":\"input\"}}",
            v[1]["message"]
        );
        assert_eq!(stamp(&delivered), Some(123_456_789));
        assert_eq!(stamp("{\"type\":\"join\"}"), None);
    }

    #[test]
    fn acks_and_connect_packets() {
        assert!(ack_ok("[{\"ok\":true,\"rooms\":[{\"ok\":true}]}]"));
        assert!(!ack_ok("[{\"ok\":true,\"rooms\":[{\"ok\":false}]}]"));
        assert_eq!(connect("ab\"c"), "40/chatroom,{\"token\":\"ab\\\"c\"}");
        assert_eq!(
            join_all(0, &["r1".to_owned()]),
            "42/chatroom,0[\"join_all\",{\"roomList\":[\"r1\"]}]"
        );
    }
}
