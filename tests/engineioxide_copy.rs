//! Our copy of engineioxide (`vendor/engineioxide`, `vendor/README.md`) keeps what chatroom does
//! not use working too. Volatile sends are one: their slot is chatroom's change 7. A plain
//! socketioxide server (no chatroom code) is driven over raw Engine.IO, by WebSocket and by
//! long-polling, as any client would.

mod plain;

use futures::SinkExt;
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// On `burst`, three volatile sends in a row, then (after a pause) a regular `done`. The test
/// runtime has one thread, so the transport cannot run between the three sends: only the last
/// is left for it.
async fn server() -> SocketAddr {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |s: SocketRef| {
        s.on("burst", async |s: SocketRef| {
            for i in 1..=3 {
                s.volatile().emit("v", &i).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            s.emit("done", &()).unwrap();
        });
    });
    plain::serve(layer).await
}

#[tokio::test]
async fn a_volatile_send_reaches_a_websocket_and_only_the_latest_is_kept() {
    let addr = server().await;
    let mut ws = plain::connect(addr).await;

    ws.send(Message::text(r#"42["burst"]"#)).await.unwrap();
    assert_eq!(plain::next_text(&mut ws).await, r#"42["v",3]"#);
    assert_eq!(plain::next_text(&mut ws).await, r#"42["done",null]"#);

    // A later volatile send is delivered too: the slot was emptied, not left stale.
    ws.send(Message::text(r#"42["burst"]"#)).await.unwrap();
    assert_eq!(plain::next_text(&mut ws).await, r#"42["v",3]"#);
    assert_eq!(plain::next_text(&mut ws).await, r#"42["done",null]"#);
}

/// One long-polling GET: the packets it carries (Engine.IO's record separator between them).
async fn poll(http: &reqwest::Client, base: &str) -> Vec<String> {
    let body = tokio::time::timeout(
        Duration::from_secs(5),
        http.get(base).send().await.unwrap().text(),
    )
    .await
    .expect("a poll answered within 5 s")
    .unwrap();
    body.split('\u{1e}')
        .filter(|p| *p != "2")
        .map(str::to_owned)
        .collect()
}

async fn post(http: &reqwest::Client, base: &str, packet: &str) {
    let r = http
        .post(base)
        .body(packet.to_owned())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "POST {packet}: {}", r.status());
}

#[tokio::test]
async fn a_volatile_send_reaches_a_polling_client_and_only_the_latest_is_kept() {
    let addr = server().await;
    let http = reqwest::Client::new();
    let open = poll(
        &http,
        &format!("http://{addr}/socket.io/?EIO=4&transport=polling"),
    )
    .await;
    let open: serde_json::Value = serde_json::from_str(&open[0][1..]).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let base = format!("http://{addr}/socket.io/?EIO=4&transport=polling&sid={sid}");
    post(&http, &base, "40").await;
    assert!(
        poll(&http, &base).await[0].starts_with("40{"),
        "Socket.IO connect"
    );

    post(&http, &base, r#"42["burst"]"#).await;
    let mut got = Vec::new();
    while !got.iter().any(|p| p == r#"42["done",null]"#) {
        got.extend(poll(&http, &base).await);
    }
    assert_eq!(got, [r#"42["v",3]"#, r#"42["done",null]"#]);
}
