//! The server's router built in process and driven without a network (`tower`'s `oneshot`),
//! and `serve` on a listener of the test's own until a shutdown of the test's own.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chatroom::config::{Cli, Command, Serve};
use chatroom::server;
use clap::Parser;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

fn settings(data: &std::path::Path) -> Serve {
    let cli = Cli::try_parse_from([
        "chatroom".as_ref(),
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ])
    .unwrap();
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
    let cfg = settings(dir.path());
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
    let cfg = settings(dir.path());
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
