//! The server's router built in process and driven without a network (`tower`'s `oneshot`),
//! and `serve` on a listener of the test's own until a shutdown of the test's own, with a raw
//! Socket.IO client for the socket payloads.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chatroom::config::{Cli, Command, Serve};
use chatroom::server;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

fn settings(data: &std::path::Path, extra: &[&str]) -> Serve {
    let mut args = vec!["chatroom".into(), "serve".into(), "--data-dir".into()];
    args.push(data.as_os_str().to_owned());
    args.extend(extra.iter().map(Into::into));
    let cli = Cli::try_parse_from::<_, std::ffi::OsString>(args).unwrap();
    match cli.command {
        Command::Serve(serve) => serve,
        other => panic!("{other:?}"),
    }
}

/// Sends one request through `router` and returns the status and the JSON body.
async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let response = router.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_registers_logs_in_and_refuses_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = settings(dir.path(), &[]);
    let state = server::build(&cfg).await.unwrap();
    let routes = server::router(&state.app, &cfg.web_dir);
    let r = &routes.router;

    let credentials = json!({"username": "Ann", "password": "password123"}).to_string();
    let (status, registered) = call(r, "POST", "/api/register", None, Some(&credentials)).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let user_id = registered["data"]["userInfo"]["userId"].clone();
    assert!(user_id.is_string());

    let (status, again) = call(r, "POST", "/api/register", None, Some(&credentials)).await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::CONFLICT, &json!(409))
    );

    let lower = json!({"username": "ann", "password": "password123"}).to_string();
    let (status, login) = call(r, "POST", "/api/login", None, Some(&lower)).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["data"]["userInfo"]["userId"], user_id);
    let token = login["data"]["token"].as_str().unwrap();
    let (status, info) = call(r, "GET", "/api/user/info", Some(token), None).await;
    assert_eq!(
        (status, &info["data"]["userInfo"]["name"]),
        (StatusCode::OK, &json!("Ann"))
    );

    let wrong = json!({"username": "ann", "password": "wrong-password"}).to_string();
    let (status, refused) = call(r, "POST", "/api/login", None, Some(&wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (&refused["status"], &refused["data"]),
        (&json!(401), &Value::Null)
    );
    let room = json!({"name": "Lobby"}).to_string();
    let (status, _) = call(r, "POST", "/api/room/create", None, Some(&room)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, bad) = call(r, "POST", "/api/room/create", Some(token), Some("{no")).await;
    assert_eq!(
        (status, &bad["status"]),
        (StatusCode::BAD_REQUEST, &json!(400))
    );
    let (status, _) = call(r, "GET", "/api/nope", Some(token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(r, "GET", "/api/register", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    state.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_on_the_given_listener_until_the_given_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = settings(dir.path(), &[]);
    let state = server::build(&cfg).await.unwrap();
    let routes = server::router(&state.app, &cfg.web_dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(listener, routes, async {
        let _ = stopped.await;
    }));

    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .expect("serve returns once the shutdown resolved")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
    state.stop().await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame that is not an Engine.IO ping.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a good frame");
        if let Message::Text(t) = msg
            && t.as_str() != "2"
        {
            return t.to_string();
        }
    }
}

/// Emits `event` with `data` and an ack, as socket.io-client would, and returns the ack.
async fn ask(ws: &mut Ws, ack: u32, event: &str, data: Value) -> Value {
    let frame = format!("42/chatroom,{ack}{}", json!([event, data]));
    ws.send(Message::text(frame)).await.unwrap();
    let prefix = format!("43/chatroom,{ack}");
    loop {
        let text = next_text(ws).await;
        if let Some(args) = text.strip_prefix(&prefix) {
            return serde_json::from_str::<Value>(args).unwrap()[0].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_payloads_are_checked_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = settings(dir.path(), &["--join-rate-limit", "1"]);
    let state = server::build(&cfg).await.unwrap();
    let routes = server::router(&state.app, &cfg.web_dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(listener, routes, async {
        let _ = stopped.await;
    }));
    let registered: Value = reqwest::Client::new()
        .post(format!("http://{addr}/api/register"))
        .json(&json!({"username": "Ann", "password": "password123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["data"]["token"].as_str().unwrap();
    let me = registered["data"]["userInfo"]["userId"].clone();

    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"), "Engine.IO open");
    let connect = format!("40/chatroom,{}", json!({"token": token}));
    ws.send(Message::text(connect)).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40/chatroom,{"));

    let post =
        |user_id: Value| json!({"roomId": "r", "id": "m", "message": "hi", "userId": user_id});
    for (n, claim) in [json!(5), json!(null), json!("someone")]
        .into_iter()
        .enumerate()
    {
        let ack = ask(&mut ws, n as u32, "user_send_message", post(claim)).await;
        assert_eq!(ack["error"]["code"], "forbidden", "{ack}");
    }
    let not_found = ask(&mut ws, 3, "user_send_message", post(me)).await;
    assert_eq!(not_found["error"]["code"], "not_found", "{not_found}");
    let positional = ask(&mut ws, 4, "user_send_message", json!(["r", "m", "hi"])).await;
    assert_eq!(
        positional,
        json!({"ok": false, "error": {"code": "bad_request", "message": "roomId must be a room id"}})
    );

    // The join limit (1 a second, bursts of 10) is spent by joins that name rooms; an empty
    // join_all joins nothing and costs nothing.
    let mut refused = None;
    for n in 5..40 {
        let ack = ask(&mut ws, n, "join_all", json!({"roomList": ["nope"]})).await;
        if ack["ok"] == false {
            refused = Some(ack);
            break;
        }
        assert_eq!(ack["rooms"][0]["error"]["code"], "not_found", "{ack}");
    }
    assert_eq!(
        refused.expect("the limit was reached")["error"]["code"],
        "rate_limited"
    );
    let empty = ask(&mut ws, 40, "join_all", json!({"roomList": []})).await;
    assert_eq!(empty, json!({"ok": true, "rooms": []}));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .expect("serve returns once the shutdown resolved")
        .unwrap()
        .unwrap();
    state.stop().await;
}
