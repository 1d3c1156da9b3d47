//! Our copy of socketioxide (`vendor/socketioxide`, `vendor/README.md`) adds one way to send:
//! an event encoded once (`Socket::encode_event`) and emitted to many sockets
//! (`Socket::emit_encoded`), which is how a room's delivery reaches its members. A plain
//! socketioxide server (no chatroom code) is driven over raw Engine.IO by WebSocket, as any
//! client would: what reaches the wire must be what `emit` sends, and an event encoded for one
//! namespace must not reach a socket of another.

mod plain;

use futures::SinkExt;
use serde_json::json;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketIo};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::Message;

/// On `share` in `/`: one event encoded once and emitted twice, then the same event by `emit`;
/// then, for each socket of `/other`, the outcome of emitting that event there, and an event
/// encoded for `/other` emitted there; then `done`.
async fn server() -> SocketAddr {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |s: SocketRef| {
        s.on("share", async |s: SocketRef, io: SocketIo| {
            let data = json!({"text": "ünïcødé \"quoted\"", "n": [1, 2]});
            let encoded = s.encode_event("e", &data).unwrap();
            s.emit_encoded(&encoded).unwrap();
            s.emit_encoded(&encoded.clone()).unwrap();
            s.emit("e", &data).unwrap();
            for other in io.of("/other").unwrap().sockets() {
                let refused = matches!(other.emit_encoded(&encoded), Err(SendError::Serialize(_)));
                s.emit("refused", &refused).unwrap();
                let there = other.encode_event("e", &2).unwrap();
                other.emit_encoded(&there).unwrap();
            }
            s.emit("done", &()).unwrap();
        });
    });
    io.ns("/other", async |_: SocketRef| {});
    plain::serve(layer).await
}

#[tokio::test]
async fn an_event_encoded_once_reaches_the_wire_as_emit_sends_it_and_only_in_its_namespace() {
    let addr = server().await;
    let mut ws = plain::connect(addr).await;
    ws.send(Message::text("40/other,")).await.unwrap();
    assert!(
        plain::next_text(&mut ws).await.starts_with("40/other,{"),
        "connect to /other"
    );

    ws.send(Message::text(r#"42["share"]"#)).await.unwrap();
    let by_emit = r#"42["e",{"text":"ünïcødé \"quoted\"","n":[1,2]}]"#;
    assert_eq!(
        plain::next_text(&mut ws).await,
        by_emit,
        "encoded, first emit"
    );
    assert_eq!(
        plain::next_text(&mut ws).await,
        by_emit,
        "encoded, second emit"
    );
    assert_eq!(plain::next_text(&mut ws).await, by_emit, "emit");
    assert_eq!(plain::next_text(&mut ws).await, r#"42["refused",true]"#);
    assert_eq!(plain::next_text(&mut ws).await, r#"42/other,["e",2]"#);
    assert_eq!(plain::next_text(&mut ws).await, r#"42["done",null]"#);
}
