//! The operator commands of the real binary: verify on untouched and altered logs, audit of a
//! log written by schema version 1, and a rebuild on it; the retention limit with a legal
//! hold on a room, `hold list` and `hold remove`; a room's own retention beside the server's;
//! the upgrade of an altered old log and of an interrupted one.

mod common;

use common::{Server, copy_dir, post_at, traffic, unique};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

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

/// A log made by real traffic over REST, then the server stopped cleanly.
async fn some_history() -> (Server, tempfile::TempDir) {
    let mut server = Server::start(&[]);
    traffic(&server).await;
    assert!(server.terminate().success());
    let keep = tempfile::tempdir().unwrap();
    copy_dir(&server.data, keep.path());
    (server, keep)
}

fn tamper(data: &Path, sql: &str) {
    // Behind the server's back, with the append-only guard removed by hand.
    let conn = rusqlite::Connection::open(data.join("events.db")).unwrap();
    conn.execute_batch(&format!(
        "drop trigger event_no_update; drop trigger event_no_delete; {sql}"
    ))
    .unwrap();
}

fn event_id_at(data: &Path, position: i64) -> String {
    let conn = rusqlite::Connection::open(data.join("events.db")).unwrap();
    let id: Vec<u8> = conn
        .query_row(
            "select event_id from event where position = ?1",
            [position],
            |r| r.get(0),
        )
        .unwrap();
    uuid::Uuid::from_slice(&id).unwrap().to_string()
}

#[tokio::test]
async fn verify_passes_an_untouched_log_and_names_each_kind_of_alteration() {
    let (_server, clean) = some_history().await;
    let (code, out, _) = chatroom(&["verify"], clean.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");

    // The second event of the first room's stream: its owner's join; the stream goes on with
    // a second member's join.
    let (target, stream): (i64, String) = rusqlite::Connection::open(
        clean.path().join("events.db"),
    )
    .unwrap()
    .query_row(
        "select position, stream_id from event where stream_id like 'room-%' and version = 2
             order by position limit 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap();
    let cases = [
        (
            "a payload edited",
            format!("update event set payload = payload || x'00' where position = {target}"),
            true,
        ),
        (
            "a time moved",
            format!("update event set recorded_at = recorded_at + 1 where position = {target}"),
            true,
        ),
        (
            "a hash replaced",
            format!("update event set hash = zeroblob(32) where position = {target}"),
            true,
        ),
        (
            "an event deleted from the middle of a stream",
            format!("delete from event where position = {target}"),
            false,
        ),
    ];
    for (what, sql, names_it) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean.path(), dir.path());
        let expect_id = names_it.then(|| event_id_at(dir.path(), target));
        tamper(dir.path(), &sql);
        let (code, out, _err) = chatroom(&["verify"], dir.path());
        assert_eq!(code, 1, "{what}: {out} {_err}");
        assert!(out.starts_with("TAMPERED: "), "{what}: {out}");
        if let Some(id) = expect_id {
            assert!(out.contains(&id), "{what}: names the event {id}: {out}");
        } else {
            assert!(out.contains("missing"), "{what}: {out}");
        }
        assert!(
            out.contains(&format!("stream {stream}")),
            "{what}: names the stream: {out}"
        );
    }
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/log-v1"),
        dir.path(),
    );
    dir
}

const FIXTURE_CODE: &str = "86bc737528c703a9a44cf49aa17ee9db";

#[test]
fn a_schema_1_log_audits_verifies_and_rebuilds() {
    let data = fixture();
    let (code, out, err) = chatroom(&["verify"], data.path());
    assert_eq!(code, 0, "{out}{err}");
    // Format 1 held names and texts in clear: today's commands read it once upgraded.
    let (code, out, err) = chatroom(&["upgrade"], data.path());
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = chatroom(&["verify"], data.path());
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = chatroom(
        &["audit", "--room", FIXTURE_CODE, "--format", "json"],
        data.path(),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<(u64, &str, &str)> = lines
        .iter()
        .filter(|l| l["type"] == "MessagePosted")
        .map(|l| {
            (
                l["seq"].as_u64().unwrap(),
                l["user_name"].as_str().unwrap(),
                l["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        messages,
        [
            (1, "Ann", "hello from v1"),
            (2, "Ann", "<b>markup</b> stays text"),
            (3, "Bob", "hi Ann"),
            (4, "Bob", "héllo wörld ✓")
        ]
    );
    // Names and texts come opened from the key store; the join code is never printed.
    assert!(!out.contains(FIXTURE_CODE), "{out}");
    assert_eq!(lines[0]["type"], "RoomCreated");
    assert!(
        lines
            .iter()
            .all(|l| l["event_id"].is_string() && l["position"].is_u64())
    );

    // --until alone: the room as it stood when the second message was posted.
    let second = lines.iter().find(|l| l["seq"] == 2).unwrap()["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, out, _) = chatroom(
        &[
            "audit",
            "--room",
            FIXTURE_CODE,
            "--format",
            "json",
            "--until",
            &second,
        ],
        data.path(),
    );
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["state"]["last_seq"], 2, "{last}");
    assert_eq!(last["state"]["members"].as_array().unwrap().len(), 2);
    // --since: only what came after.
    let (_, out, _) = chatroom(
        &[
            "audit",
            "--room",
            FIXTURE_CODE,
            "--format",
            "csv",
            "--since",
            &second,
        ],
        data.path(),
    );
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("position,time,event_id"));
    assert_eq!(rows.len(), 1 + 3, "{out}");
    let (_, out, _) = chatroom(&["audit", "--user", "BOB"], data.path());
    assert_eq!(
        out.lines().count(),
        5,
        "claim, registration, join, two messages: {out}"
    );
    let (code, _, err) = chatroom(&["audit", "--user", "nobody"], data.path());
    assert_ne!(code, 0);
    assert!(err.contains("no user"), "{err}");

    // The read tables the old server built lack the search column's data: a rebuild fills it.
    let (code, out, err) = chatroom(&["projections", "rebuild"], data.path());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.matches("switched over").count(),
        projections::ALL.len(),
        "{out}"
    );
    let conn = rusqlite::Connection::open(data.path().join("read.db")).unwrap();
    let filled: i64 = conn
        .query_row(
            "select count(*) from room_record where search_text <> ''",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(filled, 4);
    let (_, out, _) = chatroom(&["projections", "status"], data.path());
    assert!(
        out.contains("room_record") && !out.contains("unfinished"),
        "{out}"
    );
}

#[tokio::test]
async fn a_server_on_a_schema_1_log_serves_its_history() {
    let data = fixture();
    let (code, out, err) = chatroom(&["upgrade"], data.path());
    assert_eq!(code, 0, "{out}{err}");
    let server = Server::start_on(data.path(), &[]);
    let c = server.client();
    let login = c
        .call(
            "POST",
            "/api/login",
            Some(json!({"username": "ann", "password": "password-ann"})),
        )
        .await;
    assert_eq!(login.status, 200);
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

/// mimalloc asks for transparent huge pages on its arenas, and each one is resident in full
/// once touched; the server turns them off for itself at start (`src/main.rs`).
#[cfg(target_os = "linux")]
#[test]
fn the_server_runs_without_transparent_huge_pages() {
    let server = Server::start(&[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .expect("the kernel reports THP_enabled (Linux 5.0 and later)")
        .trim();
    assert_eq!(thp, "0", "THP_enabled of the server process");
}

/// The texts of a room's messages in an audit, by seq.
fn audited_texts(data: &Path, room: &str) -> Vec<(u64, String)> {
    let (code, out, err) = chatroom(&["audit", "--room", room, "--format", "json"], data);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "MessagePosted")
        .map(|l| {
            (
                l["seq"].as_u64().unwrap(),
                l["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn retention_turns_old_messages_into_placeholders_and_a_room_hold_keeps_their_keys() {
    let mut first = Server::start(&[]);
    let mut ann = first.client();
    let me = ann.register(&unique("ann")).await;
    let user = me["userId"].as_str().unwrap().to_owned();
    let held = ann.create_room("held").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let free = ann.create_room("free").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first.terminate().success());
    let data = first.data.clone();
    let now = events::now_ms();
    for room in [&held, &free] {
        post_at(
            &data,
            room,
            1,
            &user,
            "Three days old",
            now - 3 * 86_400_000,
        )
        .await;
        post_at(&data, room, 2, &user, "Written today", now).await;
    }
    let (code, hold, err) = chatroom(
        &["hold", "add", "--room", &held, "--reason", "case 12"],
        &data,
    );
    assert_eq!(code, 0, "{err}");
    let hold = hold.trim().to_owned();
    let (code, _, err) = chatroom(
        &["hold", "add", "--room", "no-such-room", "--reason", "x"],
        &data,
    );
    assert_ne!(code, 0);
    assert!(err.contains("no room has the id"), "{err}");

    let mut server = Server::start_on(&data, &["--retention-days", "1"]);
    let mut reader = server.client();
    reader.token = ann.token.clone();
    for room in [&held, &free] {
        let path = format!("/api/room/{room}/messages");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let messages = loop {
            let page = reader.call("GET", &path, None).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let messages = page.data()["messages"].as_array().unwrap().clone();
            if messages.len() == 2 && messages[0]["deleted"] == true {
                break messages;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the old message of {room} is still readable: {messages:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        // What people see follows the limit at once, held or not.
        assert_eq!(
            (&messages[0]["message"], &messages[0]["seq"]),
            (&json!(""), &json!(1))
        );
        assert_eq!(
            (&messages[1]["message"], &messages[1]["deleted"]),
            (&json!("Written today"), &json!(false))
        );
    }
    assert!(server.terminate().success());

    // The free room's old key is gone; the held room's stays for the operator.
    assert_eq!(
        audited_texts(&data, &free),
        [(1, "(erased)".into()), (2, "Written today".into())]
    );
    assert_eq!(
        audited_texts(&data, &held),
        [(1, "Three days old".into()), (2, "Written today".into())]
    );
    let (_, listed, _) = chatroom(&["hold", "list", "--retention-days", "1"], &data);
    assert!(listed.contains(&format!("{hold}  room {held}")), "{listed}");
    assert!(listed.contains("reason \"case 12\""), "{listed}");
    assert!(
        listed.contains("pending: 1 text keys of this room past the 1-day retention limit"),
        "{listed}"
    );

    let (code, _, err) = chatroom(&["hold", "remove", "no-such-hold"], &data);
    assert_ne!(code, 0);
    assert!(err.contains("no hold has the id"), "{err}");
    let (code, out, err) = chatroom(&["hold", "remove", &hold, "--retention-days", "1"], &data);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        audited_texts(&data, &held),
        [(1, "(erased)".into()), (2, "Written today".into())]
    );
    let (_, listed, _) = chatroom(&["hold", "list", "--retention-days", "1"], &data);
    assert_eq!(listed, "no legal holds\n");
    let (code, out, _) = chatroom(&["verify"], &data);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn a_rooms_own_retention_applies_where_it_is_shorter_than_the_servers() {
    let mut first = Server::start(&[]);
    let mut ann = first.client();
    let me = ann.register(&unique("ann")).await;
    let user = me["userId"].as_str().unwrap().to_owned();
    let mut rooms = Vec::new();
    for name in ["one day", "thirty days", "no limit"] {
        rooms.push(
            ann.create_room(name).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(first.terminate().success());
    let data = first.data.clone();
    let now = events::now_ms();
    for (room, days) in rooms.iter().zip([Some(1), Some(30), None]) {
        if let Some(days) = days {
            set_retention_at(&data, room, &user, days, now - 86_400_000).await;
        }
        post_at(
            &data,
            room,
            1,
            &user,
            "Twenty days old",
            now - 20 * 86_400_000,
        )
        .await;
        post_at(
            &data,
            room,
            2,
            &user,
            "Three days old",
            now - 3 * 86_400_000,
        )
        .await;
        post_at(&data, room, 3, &user, "Written today", now).await;
    }

    let mut server = Server::start_on(&data, &["--retention-days", "10"]);
    let mut reader = server.client();
    reader.token = ann.token.clone();
    // The shorter limit wins: the room's own one day, else the server's ten.
    let expected = [
        [true, true, false],
        [true, false, false],
        [true, false, false],
    ];
    for (room, deleted) in rooms.iter().zip(expected) {
        let path = format!("/api/room/{room}/messages");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let page = reader.call("GET", &path, None).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let seen: Vec<bool> = page.data()["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["deleted"] == true)
                .collect();
            if seen == deleted {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{room}: placeholders {seen:?}, expected {deleted:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let mine = reader.call("GET", "/api/room/list", None).await;
    let listed = mine.data()["roomList"].as_array().unwrap().clone();
    let days =
        |room: &str| listed.iter().find(|r| r["id"] == room).unwrap()["retention_days"].clone();
    assert_eq!(
        [days(&rooms[0]), days(&rooms[1]), days(&rooms[2])],
        [json!(1), json!(30), Value::Null]
    );
    assert!(server.terminate().success());

    // The keys went with the texts: the three-day-old one only where the room said one day.
    assert_eq!(
        audited_texts(&data, &rooms[0]),
        [
            (1, "(erased)".into()),
            (2, "(erased)".into()),
            (3, "Written today".into())
        ]
    );
    for room in &rooms[1..] {
        assert_eq!(
            audited_texts(&data, room),
            [
                (1, "(erased)".into()),
                (2, "Three days old".into()),
                (3, "Written today".into())
            ]
        );
    }
}

/// Appends the owner's `RoomUpdated` setting the room's own retention to `days`, at `time`,
/// straight to the log of a stopped server.
async fn set_retention_at(data: &Path, room: &str, owner: &str, days: u32, time: i64) {
    use events::event::{Event, RoomUpdated, room_stream};
    use events::{Expected, NewEvent, Store};
    let updated = Event::RoomUpdated(RoomUpdated {
        room_id: room.to_owned(),
        by: owner.to_owned(),
        name: None,
        description: None,
        avatar_image: None,
        retention_days: Some(Some(days)),
    });
    let store = events::SqliteStore::open(data.join("events.db")).unwrap();
    store
        .append(
            &room_stream(room),
            Expected::Any,
            vec![NewEvent::with_id(uuid::Uuid::new_v4(), &updated, time)],
        )
        .await
        .unwrap();
    store.close();
}

fn a606a83() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-a606a83"),
        dir.path(),
    );
    dir
}

/// Every file of a folder with its bytes.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn upgrade_refuses_an_altered_old_log_and_changes_nothing() {
    let data = a606a83();
    tamper(
        data.path(),
        "update event set recorded_at = recorded_at + 1 where position = 9",
    );
    let before = contents(data.path());
    let (code, out, err) = chatroom(&["upgrade"], data.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("TAMPERED: "), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(contents(data.path()) == before, "the folder is as it was");
}

#[test]
fn an_interrupted_upgrade_is_finished_or_started_over_by_the_next_run() {
    // Interrupted during the copy: the partial new log is thrown away.
    let data = a606a83();
    std::fs::write(data.path().join("events-upgrading.db"), b"half a log").unwrap();
    let (code, out, err) = chatroom(&["upgrade"], data.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(!data.path().join("events-upgrading.db").exists());
    let done = data.path().to_path_buf();

    // Interrupted once the new log was complete, before the old files were moved aside.
    let again = a606a83();
    for (from, to) in [
        ("events.db", "events-upgraded.db"),
        ("keys.db", "keys.db"),
        ("sessions.db", "sessions.db"),
    ] {
        std::fs::copy(done.join(from), again.path().join(to)).unwrap();
    }
    let (code, out, err) = chatroom(&["upgrade"], again.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("finishing an upgrade"), "{out}");
    for kept in ["events-format-1.db", "read-format-1.db"] {
        assert!(again.path().join(kept).exists(), "{kept}");
    }
    assert!(!again.path().join("events-upgraded.db").exists());
    let (code, out, _) = chatroom(&["verify"], again.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: 11 events verified"), "{out}");
    let (_, out, _) = chatroom(&["upgrade"], again.path());
    assert!(out.contains("already in today's format"), "{out}");
}
