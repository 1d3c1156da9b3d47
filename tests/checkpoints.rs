//! Signed checkpoints through the real binary, on the embedded store and on PostgreSQL: a
//! checkpoint of an untouched log verifies; the log's newest events of a stream deleted, two
//! events of different streams swapped (which every stream's hash chain still accepts) or a
//! byte flipped, each behind the server's back with the database's own tools, make `verify
//! --checkpoint` fail and say where; so do an altered checkpoint, a foreign key and a
//! checkpoint signed over heads the log never had. A version 1 checkpoint (no heads), as files
//! already written hold them, still verifies. The server signs checkpoints into its data folder
//! on its own.

mod common;

use common::{Server, chatroom_cli as chatroom, copy_dir, traffic};
use events::checkpoint::{Checkpoint, LogKey};
use events::heads::HeadsRoot;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `cp` signed again with the log's key (its `seed`) over `heads`: with none, as version 1
/// wrote it; written to `out`.
fn resigned(cp: &Path, seed: &[u8], heads: Option<HeadsRoot>, out: &Path) {
    let cp: Checkpoint = serde_json::from_str(&std::fs::read_to_string(cp).unwrap()).unwrap();
    let key = LogKey::from_seed(seed.try_into().unwrap());
    let mut head = cp.verify(&key.public()).unwrap();
    head.heads = heads;
    let text = serde_json::to_string_pretty(&key.sign(&head, cp.time)).unwrap();
    std::fs::write(out, text).unwrap();
}

/// The version 1 checkpoint of `cp` verifies and says it signs no heads; one signed over
/// other heads than the log's fails.
fn check_versions(cp: &Path, seed: &[u8], run: impl Fn(&Path) -> (i32, String)) -> PathBuf {
    let (code, out) = run(cp);
    assert_eq!(code, 0, "version 2: {out}");
    assert!(
        out.contains(" v2 (root ") && out.contains("so do the heads of its"),
        "{out}"
    );
    let v1 = cp.with_file_name("v1.json");
    resigned(cp, seed, None, &v1);
    let text = std::fs::read_to_string(&v1).unwrap();
    assert!(
        text.contains("chatroom-checkpoint/1") && !text.contains("heads"),
        "{text}"
    );
    let (code, out) = run(&v1);
    assert_eq!(code, 0, "version 1: {out}");
    assert!(
        out.contains(" v1 (root ") && out.contains("signs no heads"),
        "{out}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cp).unwrap()).unwrap();
    let streams = doc["streams"].as_u64().unwrap();
    assert!(streams > 3, "{doc}");
    let forged = cp.with_file_name("forged-heads.json");
    let false_heads = HeadsRoot {
        streams,
        root: [0; 32],
    };
    resigned(cp, seed, Some(false_heads), &forged);
    let (code, out) = run(&forged);
    assert_eq!(code, 1, "forged heads: {out}");
    assert!(
        out.contains("TAMPERED: ") && out.contains("heads the log never had"),
        "{out}"
    );
    v1
}

fn sqlite(data: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(data.join("events.db")).unwrap();
    conn.execute_batch(&format!(
        "drop trigger event_no_update; drop trigger event_no_delete; {sql}"
    ))
    .unwrap();
}

fn sqlite_query(data: &Path, sql: &str) -> (i64, String, i64) {
    rusqlite::Connection::open(data.join("events.db"))
        .unwrap()
        .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
}

/// The last event of the stream with most events: deleting it leaves every hash chain whole.
const NEWEST_OF_LONGEST: &str = "select position, stream_id, version from event \
     where stream_id = (select stream_id from event group by stream_id \
     order by count(*) desc, stream_id limit 1) order by version desc limit 1";

/// Two neighbours of different streams whose swap every stream's chain still accepts: the
/// later one is the first of its stream.
const SWAPPABLE: &str = "select a.position, b.stream_id, b.position from event a \
     join event b on b.position = a.position + 1 \
     where a.stream_id <> b.stream_id and b.version = 1 and a.position > 1 \
     order by a.position desc limit 1";

#[tokio::test]
async fn embedded_checkpoints_catch_truncation_reordering_and_edits() {
    let mut server = Server::start(&["--checkpoint-every-secs", "1"]);
    traffic(&server).await;
    let folder = server.data.join("checkpoints");
    let deadline = Instant::now() + Duration::from_secs(20);
    let newest = loop {
        let mut names: Vec<_> = std::fs::read_dir(&folder)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        let full = names.last().is_some_and(|p| {
            let cp: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            let events: i64 = rusqlite::Connection::open(server.data.join("events.db"))
                .unwrap()
                .query_row("select count(*) from event", [], |r| r.get(0))
                .unwrap();
            cp["size"].as_u64().unwrap() == events as u64
        });
        if full {
            break names.pop().unwrap();
        }
        assert!(Instant::now() < deadline, "no checkpoint of the traffic");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(server.terminate().success());
    let clean = tempfile::tempdir().unwrap();
    copy_dir(&server.data, clean.path());
    let store = ["--data-dir", clean.path().to_str().unwrap()];
    let (code, out) = chatroom(
        &["verify", "--checkpoint", newest.to_str().unwrap()],
        &store,
    );
    assert_eq!(code, 0, "the server's own checkpoint: {out}");

    let cp = clean.path().join("cp.json");
    let (code, out) = chatroom(&["checkpoint", "--out", cp.to_str().unwrap()], &store);
    assert_eq!(code, 0, "{out}");
    let (code, public) = chatroom(&["public-key"], &store);
    assert_eq!(code, 0);
    let public = public.lines().next().unwrap().to_owned();
    assert_eq!(public.len(), 64);
    let args = |file: &Path, key: &str| -> Vec<String> {
        vec![
            "verify".into(),
            "--checkpoint".into(),
            file.to_str().unwrap().into(),
            "--public-key".into(),
            key.into(),
        ]
    };
    let run = |dir: &Path, file: &Path, key: &str| {
        let a = args(file, key);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        chatroom(&a, &["--data-dir", dir.to_str().unwrap()])
    };
    let (code, out) = run(clean.path(), &cp, &public);
    assert_eq!(code, 0, "untouched: {out}");
    assert!(out.starts_with("ok: "), "{out}");
    let seed = std::fs::read_to_string(clean.path().join("log-signing.key")).unwrap();
    let seed = hex::decode(seed.trim()).unwrap();
    let v1 = check_versions(&cp, &seed, |file| run(clean.path(), file, &public));

    // The checkpoint itself altered, or checked against another key.
    let text = std::fs::read_to_string(&cp).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["size"] = json!(doc["size"].as_u64().unwrap() - 1);
    let altered = clean.path().join("altered.json");
    std::fs::write(&altered, doc.to_string()).unwrap();
    let (code, out) = run(clean.path(), &altered, &public);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature does not verify"), "{out}");
    let other = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let (code, out) = run(clean.path(), &cp, other);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not by the key given"), "{out}");

    let (last, stream, _) = sqlite_query(clean.path(), NEWEST_OF_LONGEST);
    let (a, b_stream, b) = sqlite_query(clean.path(), SWAPPABLE);
    let cases = [
        (
            "the newest event of a stream deleted",
            format!("delete from event where position = {last}"),
        ),
        (
            "two events of different streams swapped",
            format!(
                "update event set position = -1 where position = {a};
                 update event set position = {a} where position = {b};
                 update event set position = {b} where position = -1;"
            ),
        ),
        (
            "a byte flipped",
            format!("update event set payload = x'ff' || substr(payload, 2) where position = {a}"),
        ),
    ];
    for (i, (what, sql)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean.path(), dir.path());
        sqlite(dir.path(), sql);
        let (code, out) = run(dir.path(), &cp, &public);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains("TAMPERED: "), "{what}: {out}");
        let want = match i {
            0 => format!("no event at position {last}"),
            1 => "the first difference lies in the log's events".to_owned(),
            _ => format!("at position {a}"),
        };
        assert!(out.contains(&want), "{what}: says {want:?}: {out}");
        if i == 0 {
            assert!(out.contains("1 of the events"), "{what}: {out}");
            let (code, out) = run(dir.path(), &v1, &public);
            assert_eq!(code, 1, "{what}, version 1: {out}");
            assert!(out.contains(&want), "{what}, version 1: {out}");
            // Every stream's chain, alone, still passes: only the checkpoint sees it.
            let (code, out) = chatroom(&["verify"], &["--data-dir", dir.path().to_str().unwrap()]);
            assert_eq!(code, 0, "{stream}: {out}");
        }
        if i == 1 {
            let (code, out) = chatroom(&["verify"], &["--data-dir", dir.path().to_str().unwrap()]);
            assert_eq!(code, 0, "{b_stream}: {out}");
        }
    }
}

/// A PostgreSQL database of its own, with a connection to run SQL on it.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// `url` with another database name (the scratch database's URL is `.../name`).
fn renamed(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checkpoints_catch_truncation_reordering_and_edits() {
    let admin = std::env::var("CHATROOM_TEST_DATABASE_URL").unwrap();
    let url = events::testing::scratch_database(&admin, &[]).await;
    let mut server = Server::start(&["--database-url", &url, "--checkpoint-every-secs", "0"]);
    traffic(&server).await;
    assert!(server.terminate().success());
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let store = |url: &str| {
        vec![
            "--database-url".to_owned(),
            url.to_owned(),
            "--data-dir".to_owned(),
            data_dir.clone(),
        ]
    };
    let run = |args: &[&str], url: &str| {
        let s = store(url);
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        chatroom(args, &s)
    };
    let cp = data.path().join("cp.json");
    let cp_arg = cp.to_str().unwrap();
    let (code, out) = run(&["checkpoint", "--out", cp_arg], &url);
    assert_eq!(code, 0, "{out}");
    assert!(
        !data.path().join("log-signing.key").exists(),
        "with PostgreSQL the key is kept in the database"
    );
    let (_, public) = run(&["public-key"], &url);
    let public = public.lines().next().unwrap().to_owned();
    let verify = ["verify", "--checkpoint", cp_arg, "--public-key", &public];
    let (code, out) = run(&verify, &url);
    assert_eq!(code, 0, "untouched: {out}");

    let db = connect(&url).await;
    let seed: Vec<u8> = db
        .query_one("select seed from log_signing_key where id = 1", &[])
        .await
        .unwrap()
        .get(0);
    check_versions(&cp, &seed, |file| {
        let f = file.to_str().unwrap();
        run(
            &["verify", "--checkpoint", f, "--public-key", &public],
            &url,
        )
    });
    let row = db
        .query_one(
            "select position, stream_id from event where stream_id = (select stream_id from \
             event group by stream_id order by count(*) desc, stream_id limit 1) \
             order by version desc limit 1",
            &[],
        )
        .await
        .unwrap();
    let (last, stream): (i64, String) = (row.get(0), row.get(1));
    let row = db
        .query_one(
            "select a.position, b.position from event a join event b \
             on b.position = a.position + 1 where a.stream_id <> b.stream_id \
             and b.version = 1 and a.position > 1 order by a.position desc limit 1",
            &[],
        )
        .await
        .unwrap();
    let (a, b): (i64, i64) = (row.get(0), row.get(1));
    drop(db);
    let name = url.rsplit_once('/').unwrap().1.to_owned();
    let guard_off = "alter table event disable trigger event_no_update_or_delete;";
    let cases = [
        (
            "the newest event of a stream deleted",
            format!("{guard_off} delete from event where position = {last}"),
            format!("no event at position {last}"),
        ),
        (
            "two events of different streams swapped",
            format!(
                "{guard_off} create temporary table two as select * from event \
                 where position in ({a}, {b});
                 delete from event where position in ({a}, {b});
                 insert into event overriding system value select \
                 case position when {a} then {b} else {a} end, stream_id, version, event_id, \
                 event_type, schema_version, recorded_at, payload, hash from two;"
            ),
            "the first difference lies in the log's events".to_owned(),
        ),
        (
            "a byte flipped",
            format!(
                "{guard_off} update event set payload = '\\xff'::bytea || substring(payload from 2) \
                 where position = {a}"
            ),
            format!("at position {a}"),
        ),
    ];
    let admin_db = connect(&admin).await;
    for (i, (what, sql, want)) in cases.iter().enumerate() {
        let copy = format!("{name}_t{i}");
        admin_db
            .batch_execute(&format!("create database {copy} template {name}"))
            .await
            .unwrap();
        let copy_url = renamed(&url, &copy);
        connect(&copy_url).await.batch_execute(sql).await.unwrap();
        let (code, out) = run(&verify, &copy_url);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains("TAMPERED: "), "{what}: {out}");
        assert!(out.contains(want.as_str()), "{what}: says {want:?}: {out}");
        if i < 2 {
            let (code, out) = run(&["verify"], &copy_url);
            assert_eq!(
                code, 0,
                "{what}: each chain ({stream}) still passes alone: {out}"
            );
        }
    }
}
