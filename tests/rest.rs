//! The REST API of the real binary, driven over HTTP: the contract's rows, its bad inputs and
//! its security rules, and what survives a restart.

mod common;

use common::{Server, unique};
use serde_json::json;
use std::time::{Duration, Instant};

const PNG_1X1: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

#[tokio::test]
async fn register_login_and_the_errors_around_them() {
    let server = Server::start(&[]);
    let mut ann = server.client();
    let name = unique("Ann");
    let info = ann.register(&name).await;
    assert_eq!(info["name"], name.as_str());
    assert_eq!(info["avatar_image"], "");
    assert!(info["userId"].is_string());

    let anon = server.client();
    let taken = anon
        .call(
            "POST",
            "/api/register",
            Some(json!({"username": name.to_uppercase(), "password": "password123"})),
        )
        .await;
    assert_eq!((taken.status, &taken.body["status"]), (409, &json!(409)));
    assert_eq!(taken.body["data"], json!(null));

    for (body, why) in [
        (
            json!({"username": "", "password": "password123"}),
            "empty name",
        ),
        (
            json!({"username": "   ", "password": "password123"}),
            "blank name",
        ),
        (
            json!({"username": "a".repeat(65), "password": "password123"}),
            "long name",
        ),
        (
            json!({"username": "a\u{0007}b", "password": "password123"}),
            "control char",
        ),
        (
            json!({"username": unique("x"), "password": "short"}),
            "short password",
        ),
        (
            json!({"username": unique("x"), "password": "p".repeat(129)}),
            "long password",
        ),
        (
            json!({"username": 5, "password": "password123"}),
            "wrong type",
        ),
        (json!({"password": "password123"}), "missing field"),
        (json!([1, 2]), "not an object"),
    ] {
        let a = anon.call("POST", "/api/register", Some(body)).await;
        assert_eq!(a.status, 400, "{why}: {}", a.body);
        assert_eq!(a.body["status"], 400);
        assert!(a.body["message"].as_str().unwrap().len() > 5);
    }
    let malformed = anon.raw("POST", "/api/register", "{not json").await;
    assert_eq!(malformed.status, 400);

    let login = anon
        .call(
            "POST",
            "/api/login",
            Some(json!({"username": name.to_lowercase(), "password": "password123"})),
        )
        .await;
    assert_eq!(login.status, 200);
    assert_eq!(login.data()["userInfo"]["name"], name.as_str());
    let wrong = anon
        .call(
            "POST",
            "/api/login",
            Some(json!({"username": name, "password": "wrong-password"})),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let nobody = anon
        .call(
            "POST",
            "/api/login",
            Some(json!({"username": unique("nobody"), "password": "password123"})),
        )
        .await;
    assert_eq!(nobody.status, 401);

    let me = ann.call("GET", "/api/user/info", None).await;
    assert_eq!(me.data()["userInfo"]["userId"], info["userId"]);
    assert_eq!(anon.call("GET", "/api/user/info", None).await.status, 401);
    let mut forged = ann.clone();
    forged.token = Some("0".repeat(64));
    assert_eq!(forged.call("GET", "/api/user/info", None).await.status, 401);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_name_not_per_address() {
    let server = Server::start(&[]);
    let mut victim = server.client();
    let name = unique("victim");
    victim.register(&name).await;
    let mut other = server.client();
    let other_name = unique("other");
    other.register(&other_name).await;
    let anon = server.client();
    for _ in 0..5 {
        let a = anon
            .call(
                "POST",
                "/api/login",
                Some(json!({"username": name, "password": "guess-guess"})),
            )
            .await;
        assert_eq!(a.status, 401);
    }
    let locked = anon
        .call(
            "POST",
            "/api/login",
            Some(json!({"username": name.to_uppercase(), "password": "password123"})),
        )
        .await;
    assert_eq!(locked.status, 429, "even the right password waits");
    let fine = anon
        .call(
            "POST",
            "/api/login",
            Some(json!({"username": other_name, "password": "password123"})),
        )
        .await;
    assert_eq!(
        fine.status, 200,
        "the same address can still log in as someone else"
    );
}

#[tokio::test]
async fn rooms_create_join_list_and_history() {
    let server = Server::start(&[]);
    let mut ann = server.client();
    ann.register(&unique("ann")).await;
    let mut bob = server.client();
    let bob_info = bob.register(&unique("bob")).await;

    let created = ann
        .call(
            "POST",
            "/api/room/create",
            Some(json!({"name": "Lobby", "description": "<b>hi</b>", "avatarImage": PNG_1X1})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let room = created.data()["room"].clone();
    let code = room["room_hash_id"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 32);
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(room["member_count"], 1);
    assert_eq!(room["description"], "<b>hi</b>");
    let avatar = room["avatar_image"].as_str().unwrap();
    assert!(
        avatar.starts_with("/media/") && avatar.ends_with(".png"),
        "{avatar}"
    );
    let image = reqwest::get(format!("{}{}", server.url, avatar))
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(&image.bytes().await.unwrap()[1..4], b"PNG");

    let list = ann.call("GET", "/api/room/list", None).await;
    assert_eq!(
        list.data()["roomList"][0]["id"],
        room["id"],
        "read your own writes"
    );

    for bad in [
        json!({"name": "", "description": ""}),
        json!({"name": "n".repeat(65)}),
        json!({"name": "ok", "description": "d".repeat(257)}),
        json!({"name": "ok", "avatarImage": "data:image/png;base64,PHN2Zz48L3N2Zz4="}),
        json!({"name": "ok", "avatarImage": "http://example.com/x.png"}),
        // A valid PNG behind a media type that is not a plain token.
        json!({"name": "ok", "avatarImage": PNG_1X1.replace("image/png", "image/../../x")}),
        json!({"name": "ok", "avatarImage": PNG_1X1.replace("png;", "png;charset=x;")}),
        json!({"name": 3}),
    ] {
        let a = ann
            .call("POST", "/api/room/create", Some(bad.clone()))
            .await;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
    }
    assert_eq!(
        server
            .client()
            .call("POST", "/api/room/create", Some(json!({"name": "x"})))
            .await
            .status,
        401
    );

    let rid = room["id"].as_str().unwrap();
    let history = |c: &common::Client, q: &str| {
        let c = c.clone();
        let path = format!("/api/room/{rid}/messages{q}");
        async move { c.call("GET", &path, None).await }
    };
    assert_eq!(history(&bob, "").await.status, 403, "not a member yet");
    for q in [
        "?limit=0",
        "?limit=-1",
        "?limit=1.5",
        "?limit=abc",
        "?limit=",
        "?before=0",
        "?before=x",
    ] {
        assert_eq!(history(&ann, q).await.status, 400, "{q}");
    }
    assert_eq!(history(&ann, "?limit=500").await.status, 200);
    let unknown = ann.call("GET", "/api/room/nope/messages", None).await;
    assert_eq!(unknown.status, 404);

    let joined = bob
        .call("POST", "/api/room/join", Some(json!({"roomIdHash": code})))
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    assert_eq!(joined.data()["room"]["member_count"], 2);
    let again = bob
        .call("POST", "/api/room/join", Some(json!({"roomIdHash": code})))
        .await;
    assert_eq!(
        (again.status, &again.data()["room"]["member_count"]),
        (200, &json!(2))
    );
    let bob_rooms = bob.call("GET", "/api/room/list", None).await;
    assert_eq!(bob_rooms.data()["roomList"][0]["id"], room["id"]);
    assert_eq!(history(&bob, "").await.data()["messages"], json!([]));
    let guess = bob
        .call(
            "POST",
            "/api/room/join",
            Some(json!({"roomIdHash": "0".repeat(32)})),
        )
        .await;
    assert_eq!(guess.status, 404);
    let malformed = bob
        .call(
            "POST",
            "/api/room/join",
            Some(json!({"roomIdHash": "../etc"})),
        )
        .await;
    assert_eq!(malformed.status, 400);
    let _ = bob_info;
}

#[tokio::test]
async fn media_paths_cannot_escape_the_media_folder() {
    let server = Server::start(&[]);
    std::fs::write(server.data.join("secret.txt"), "top secret").unwrap();
    let http = reqwest::Client::new();
    for path in [
        "/media/../secret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/..%2fsecret.txt",
        "/media/%2e%2e%2fevents.db",
        "/media/....//secret.txt",
    ] {
        let res = http
            .get(format!("{}{}", server.url, path))
            .send()
            .await
            .unwrap();
        let body = res.text().await.unwrap();
        assert!(!body.contains("top secret"), "{path} leaked a file");
        assert!(!body.contains("SQLite format"), "{path} leaked the log");
    }
}

#[tokio::test]
async fn logout_revokes_and_tokens_survive_a_restart() {
    let mut server = Server::start(&[]);
    let mut ann = server.client();
    let name = unique("ann");
    ann.register(&name).await;
    let room = ann.create_room("kept").await;
    let mut second = server.client();
    second.token = Some(
        second
            .call(
                "POST",
                "/api/login",
                Some(json!({"username": name, "password": "password123"})),
            )
            .await
            .data()["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );

    let status = server.terminate();
    assert!(status.success(), "SIGTERM stops cleanly: {status}");
    server.relaunch();
    ann.url = server.url.clone();
    second.url = server.url.clone();

    let list = ann.call("GET", "/api/room/list", None).await;
    assert_eq!(list.status, 200, "the token survived the restart");
    assert_eq!(list.data()["roomList"][0]["id"], room["id"]);

    let out = ann.call("POST", "/api/logout", None).await;
    assert_eq!((out.status, &out.body["data"]), (200, &json!(null)));
    assert_eq!(ann.call("GET", "/api/user/info", None).await.status, 401);
    assert_eq!(
        second.call("GET", "/api/user/info", None).await.status,
        200,
        "other sessions stay"
    );

    server.kill_and_restart();
    ann.url = server.url.clone();
    assert_eq!(
        ann.call("GET", "/api/user/info", None).await.status,
        401,
        "revocation survives a crash"
    );
}

#[tokio::test]
async fn unknown_api_calls_and_health() {
    let server = Server::start(&[]);
    let c = server.client();
    let a = c.call("GET", "/api/nope", None).await;
    assert_eq!((a.status, &a.body["status"]), (404, &json!(404)));
    let h = c.call("GET", "/healthz", None).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body["status"], "ok");
}

/// What a raw client saw of an upload: whether it wrote the whole body, and what it read.
struct Upload {
    written: std::io::Result<()>,
    answer: String,
    took: Duration,
}

/// Sends `POST /api/room/create` whose body (an avatar of about `len` bytes) is written in
/// chunks `pause` apart, reading the answer meanwhile, as a browser or curl does. The body is
/// valid JSON, so only its size can refuse it.
async fn upload(url: &str, token: &str, len: usize, pause: Duration) -> Upload {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let prefix = r#"{"name": "big", "avatarImage": "data:image/png;base64,"#;
    let suffix = r#""}"#;
    let mut body = prefix.as_bytes().to_vec();
    body.resize(len - suffix.len(), b'A');
    body.extend_from_slice(suffix.as_bytes());
    let addr = url.strip_prefix("http://").unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = read.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    let head = format!(
        "POST /api/room/create HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let written = async {
        write.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            write.write_all(chunk).await?;
            tokio::time::sleep(pause).await;
        }
        write.flush().await
    }
    .await;
    let answer = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the server answers and closes")
        .unwrap();
    Upload {
        written,
        answer,
        took: started.elapsed(),
    }
}

#[tokio::test]
async fn an_upload_over_the_limit_is_read_to_its_end_and_answered_413() {
    let server = Server::start(&[]);
    let mut ann = server.client();
    ann.register(&unique("ann")).await;
    let token = ann.token.clone().unwrap();

    // 10 MiB, still being sent well after the first 1.5 MiB decided the answer.
    let up = upload(
        &server.url,
        &token,
        10 * 1024 * 1024,
        Duration::from_millis(2),
    )
    .await;
    assert!(
        up.written.is_ok(),
        "the client could not send its whole body: {:?}; it read {:?}",
        up.written,
        up.answer
    );
    assert!(up.answer.starts_with("HTTP/1.1 413"), "{:?}", up.answer);
    assert!(up.answer.contains("too large"), "{:?}", up.answer);

    // A body within the limit is answered as before, on a connection of its own.
    let fine = upload(&server.url, &token, 1024, Duration::ZERO).await;
    assert!(fine.answer.starts_with("HTTP/1.1 400"), "{:?}", fine.answer);
    assert_eq!(
        ann.call("GET", "/api/room/list", None).await.data()["roomList"],
        json!([])
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_upload_is_let_go() {
    let server = Server::start(&[]);
    let mut ann = server.client();
    ann.register(&unique("ann")).await;
    let token = ann.token.clone().unwrap();

    // 64 KiB every 100 ms: the answer comes after about 2.4 s, and 40 MiB would take a minute.
    let up = upload(
        &server.url,
        &token,
        40 * 1024 * 1024,
        Duration::from_millis(100),
    )
    .await;
    assert!(up.answer.starts_with("HTTP/1.1 413"), "{:?}", up.answer);
    assert!(
        up.written.is_err(),
        "the server read a slow upload to its end"
    );
    // It was read for a while after the answer, and no longer.
    assert!(
        (Duration::from_secs(5)..Duration::from_secs(20)).contains(&up.took),
        "{:?}",
        up.took
    );
}
