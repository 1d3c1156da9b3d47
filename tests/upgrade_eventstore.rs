//! `chatroom upgrade` of a log in EventStoreDB/KurrentDB into another server, end to end:
//! the format-1 fixture's log written to the first server, `serve` on it refused naming the
//! command, the upgrade, `verify` on the new server, a second run that checks and keeps what
//! the first wrote, no name or text of the old log in the new one, and a server on the new
//! log serving the history.
//!
//! Needs the `eventstoredb` feature and two servers without a chatroom log (`chatroom-*`
//! streams), as `EVENTSTORE_URL` (the old log's) and `EVENTSTORE_TO_URL` (the new one's), for
//! instance two insecure nodes started with `--mem-db`. Without both, cargo reports the test
//! as ignored with that reason (`events/build.rs`).
#![cfg(feature = "eventstoredb")]

mod common;

use common::Server;
use events::esdb::EsdbStore;
use events::{Expected, NewEvent, Store};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// # Panics
/// When a variable is unset: only a test the build left ignored gets here, with `--ignored`.
fn url(var: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| panic!("needs EventStoreDB: set {var}"))
}

fn chatroom(args: &[&str], data: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fixture's read side in a folder of its own, and its log's rows.
fn fixture() -> (tempfile::TempDir, Vec<events::Recorded>) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/log-v1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(from.join("read.db"), dir.path().join("read.db")).unwrap();
    let conn = rusqlite::Connection::open_with_flags(
        from.join("events.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare(
            "select position, stream_id, version, event_id, event_type, schema_version, \
             recorded_at, payload, hash from event order by position",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(events::Recorded {
                position: r.get::<_, i64>(0)? as u64,
                stream_id: r.get(1)?,
                version: r.get::<_, i64>(2)? as u64,
                event_id: uuid::Uuid::from_slice(&r.get::<_, Vec<u8>>(3)?).unwrap(),
                event_type: r.get(4)?,
                schema_version: r.get::<_, i64>(5)? as u16,
                recorded_at: r.get(6)?,
                payload: r.get(7)?,
                hash: r.get::<_, Vec<u8>>(8)?.try_into().unwrap(),
            })
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (dir, rows)
}

async fn empty_server(url: &str, var: &str) -> EsdbStore {
    let store = EsdbStore::connect(url)
        .await
        .unwrap_or_else(|e| panic!("the server of {var} is reachable: {e}"));
    assert!(
        store.read_all(0, 1).await.unwrap().is_empty(),
        "the server of {var} already holds a chatroom log: give a fresh one (e.g. --mem-db)"
    );
    store
}

/// Writes the old log as an earlier version did: same ids, versions, times, and the chain
/// the store computes, which must be the one the fixture holds.
async fn write_old_log(store: &EsdbStore, rows: &[events::Recorded]) {
    for run in rows.chunk_by(|a, b| a.stream_id == b.stream_id) {
        let expected = match run[0].version - 1 {
            0 => Expected::NoStream,
            v => Expected::Exact(v),
        };
        let events: Vec<NewEvent> = run
            .iter()
            .map(|r| NewEvent {
                event_id: r.event_id,
                event_type: Box::leak(r.event_type.clone().into_boxed_str()),
                schema_version: r.schema_version,
                recorded_at: r.recorded_at,
                payload: r.payload.clone(),
            })
            .collect();
        let stored = store
            .append(&run[0].stream_id, expected, events)
            .await
            .unwrap();
        for (s, r) in stored.iter().zip(run) {
            assert_eq!((s.version, s.hash), (r.version, r.hash));
        }
    }
}

/// `serve` on the old log: it must exit on its own, naming the command.
fn serve_refuses(old: &str, data: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .args(["serve", "--listen", "127.0.0.1:0", "--eventstore-url", old])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve on the old log did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[cfg_attr(
    any(no_test_eventstore, no_test_eventstore_to),
    ignore = "needs two EventStoreDB servers without a chatroom log: set EVENTSTORE_URL and \
              EVENTSTORE_TO_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_log_is_upgraded_into_another_server_and_served_from_there() {
    let (old_url, new_url) = (url("EVENTSTORE_URL"), url("EVENTSTORE_TO_URL"));
    let (data, rows) = fixture();
    let old = empty_server(&old_url, "EVENTSTORE_URL").await;
    let new = empty_server(&new_url, "EVENTSTORE_TO_URL").await;
    write_old_log(&old, &rows).await;

    let err = serve_refuses(&old_url, data.path());
    assert!(err.contains("chatroom upgrade"), "{err}");

    let upgrade = [
        "upgrade",
        "--eventstore-url",
        &old_url,
        "--to-eventstore-url",
        &new_url,
    ];
    let (code, out, err) = chatroom(&upgrade, data.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("upgraded the log to format"), "{out}");
    assert!(data.path().join("read-format-1.db").exists());
    assert!(data.path().join("keys.db").exists());

    let (code, out, err) = chatroom(&["verify", "--eventstore-url", &new_url], data.path());
    assert_eq!(code, 0, "{out}{err}");
    let verified = format!("ok: {} events verified", rows.len() + 1);
    assert!(out.starts_with(&verified), "{out}");

    // A second run finds every event there, checks it and writes nothing.
    let before = new.read_all(0, 10_000).await.unwrap();
    let (code, out, err) = chatroom(&upgrade, data.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("checked and kept"), "{out}");
    let after = new.read_all(0, 10_000).await.unwrap();
    assert_eq!(after, before);
    for (o, n) in rows.iter().zip(&after[1..]) {
        assert_eq!(
            (o.event_id, o.version, o.recorded_at),
            (n.event_id, n.version, n.recorded_at)
        );
    }
    for text in [
        "hello from v1",
        "héllo wörld ✓",
        "86bc737528c703a9a44cf49aa17ee9db",
    ] {
        assert!(
            !after
                .iter()
                .any(|e| e.payload.windows(text.len()).any(|w| w == text.as_bytes())),
            "{text:?} is in the new log"
        );
    }
    // The old log stays as it was, and still refused.
    assert_eq!(old.read_all(0, 10_000).await.unwrap().len(), rows.len());
    let err = serve_refuses(&old_url, data.path());
    assert!(err.contains("chatroom upgrade"), "{err}");

    let server = Server::start_on(data.path(), &["--eventstore-url", &new_url]);
    // The read tables fill from the new log after the start.
    let deadline = Instant::now() + Duration::from_secs(30);
    let login = loop {
        let login = server
            .client()
            .call(
                "POST",
                "/api/login",
                Some(json!({"username": "ann", "password": "password-ann"})),
            )
            .await;
        if login.status == 200 || Instant::now() > deadline {
            break login;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(login.status, 200, "{}", login.body);
    let mut ann = server.client();
    ann.token = Some(login.data()["token"].as_str().unwrap().to_owned());
    let rooms = ann.call("GET", "/api/room/list", None).await;
    let room = &rooms.data()["roomList"][0];
    assert_eq!(room["name"], "Old times");
    let history = ann
        .call(
            "GET",
            &format!("/api/room/{}/messages", room["id"].as_str().unwrap()),
            None,
        )
        .await;
    let texts: Vec<&str> = history.data()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "hello from v1",
            "<b>markup</b> stays text",
            "hi Ann",
            "héllo wörld ✓"
        ]
    );
}
