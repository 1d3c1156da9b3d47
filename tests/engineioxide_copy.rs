//! Our copy of engineioxide (`vendor/engineioxide`, `vendor/README.md`) changes one behaviour,
//! and only when asked: with `req_line_only`, a session keeps the method, URI and version of its
//! request and drops the headers and extensions; without it, the whole head stays, as
//! published. A plain socketioxide server (no chatroom code) is driven over raw Engine.IO, by
//! WebSocket and by long-polling, and reports what its sockets kept of their requests.

mod plain;

use futures::SinkExt;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// On `head`, the socket's request as its session kept it: its path, its `host` header (which
/// every client sends) and how many headers it has.
async fn server(req_line_only: bool) -> SocketAddr {
    let (layer, io) = SocketIo::builder()
        .req_line_only(req_line_only)
        .build_layer();
    io.ns("/", async |s: SocketRef| {
        s.on("head", async |s: SocketRef| {
            let head = s.req_parts();
            let host = head.headers.get("host").map(|v| v.to_str().unwrap());
            s.emit(
                "head",
                &json!({"path": head.uri.path(), "host": host, "headers": head.headers.len()}),
            )
            .unwrap();
        });
    });
    plain::serve(layer).await
}

/// What `head` answers on a WebSocket session.
async fn over_websocket(addr: SocketAddr) -> Value {
    let mut ws = plain::connect(addr).await;
    ws.send(Message::text(r#"42["head"]"#)).await.unwrap();
    let answer = plain::next_text(&mut ws).await;
    serde_json::from_str(answer.strip_prefix("42").unwrap()).unwrap()
}

/// One long-polling GET: the packets it carries, pings left out.
async fn poll(http: &reqwest::Client, url: &str) -> Vec<String> {
    let req = http.get(url).send();
    let body = tokio::time::timeout(Duration::from_secs(5), async {
        req.await.unwrap().text().await.unwrap()
    })
    .await
    .expect("a poll answered within 5 s");
    body.split('\u{1e}')
        .filter(|p| *p != "2")
        .map(str::to_owned)
        .collect()
}

async fn post(http: &reqwest::Client, url: &str, packet: &str) {
    let r = http.post(url).body(packet.to_owned()).send().await.unwrap();
    assert!(r.status().is_success(), "POST {packet}: {}", r.status());
}

/// What `head` answers on a long-polling session.
async fn over_polling(addr: SocketAddr) -> Value {
    let http = reqwest::Client::new();
    let open = poll(
        &http,
        &format!("http://{addr}/socket.io/?EIO=4&transport=polling"),
    )
    .await;
    let open: serde_json::Value = serde_json::from_str(&open[0][1..]).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let url = format!("http://{addr}/socket.io/?EIO=4&transport=polling&sid={sid}");
    post(&http, &url, "40").await;
    assert!(poll(&http, &url).await[0].starts_with("40{"), "connect");
    post(&http, &url, r#"42["head"]"#).await;
    loop {
        if let Some(answer) = poll(&http, &url).await.first() {
            return serde_json::from_str(answer.strip_prefix("42").unwrap()).unwrap();
        }
    }
}

#[tokio::test]
async fn a_session_keeps_its_request_headers_by_default() {
    let addr = server(false).await;
    for answer in [over_websocket(addr).await, over_polling(addr).await] {
        assert_eq!(answer[0], "head");
        let kept = &answer[1];
        assert_eq!(kept["path"], "/socket.io/");
        assert_eq!(kept["host"], addr.to_string());
        assert!(kept["headers"].as_u64().unwrap() > 1, "{kept}");
    }
}

#[tokio::test]
async fn with_req_line_only_a_session_keeps_no_headers() {
    let addr = server(true).await;
    for answer in [over_websocket(addr).await, over_polling(addr).await] {
        assert_eq!(answer[0], "head");
        let kept = &answer[1];
        assert_eq!(kept["path"], "/socket.io/");
        assert_eq!(kept["host"], Value::Null);
        assert_eq!(kept["headers"], 0, "{kept}");
    }
}
