//! Export bundles through the real binary: a room's span exported with its links, proof and
//! keys verifies offline; a changed text, a dropped, swapped or changed event, a dropped link,
//! an altered checkpoint or another key each make `verify-bundle` fail; after an erasure the
//! person's messages still verify and read as erased. On the embedded store and PostgreSQL, a
//! bundle that reaches the room's last event proves it by the room's head in the checkpoint:
//! its last events dropped, its head forged or another stream's, it fails; a bundle of
//! format 1 (no head) still verifies, saying what it cannot show.

mod common;

use common::{Server, chatroom_cli, post_at, unique};

use events::Store;
use events::checkpoint::{Checkpoint, LogKey};
use events::merkle::{self, Builder, Hash};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn chatroom(args: &[&str]) -> (i32, String) {
    chatroom_cli(args, &[])
}

/// `chatroom` with `args` and then `store` (its storage options).
fn chatroom_on(args: &[&str], store: &[String]) -> (i32, String) {
    let store: Vec<&str> = store.iter().map(String::as_str).collect();
    chatroom_cli(args, &store)
}

/// A change made to a bundle's JSON.
type Change<'a> = Box<dyn Fn(&mut Value) + 'a>;

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn a_bundle_verifies_offline_and_any_change_to_it_fails() {
    let mut server = Server::start(&["--checkpoint-every-secs", "0"]);
    let mut ann = server.client();
    let ann_id = ann.register(&unique("ann")).await["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let room = ann.create_room("audited").await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut bob = server.client();
    let bob_id = bob.register(&unique("bob")).await["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let j = bob.join(&room).await;
    assert_eq!(j.status, 200);
    assert!(server.terminate().success());
    let data = server.data.clone();
    let minute = 60_000;
    let base = events::now_ms() + 60 * minute;
    for seq in 1..=6u64 {
        let who = if seq % 2 == 1 { &ann_id } else { &bob_id };
        post_at(
            &data,
            &room_id,
            seq,
            who,
            &format!("text {seq}"),
            base + seq as i64 * 10 * minute,
        )
        .await;
    }
    let d = data.to_str().unwrap();
    let (code, public) = chatroom(&["public-key", "--data-dir", d]);
    assert_eq!(code, 0, "{public}");
    let public = public.lines().next().unwrap().to_owned();
    let bundle = data.join("bundle.json");
    let b = bundle.to_str().unwrap();
    let (from, to) = (rfc3339(base + 15 * minute), rfc3339(base + 45 * minute));
    let export = [
        "export",
        "--data-dir",
        d,
        "--room",
        &room_id,
        "--from",
        &from,
        "--to",
        &to,
        "--out",
        b,
    ];
    let (code, out) = chatroom(&export);
    assert_eq!(code, 0, "{out}");
    let (code, out) = chatroom(&["verify-bundle", b, "--public-key", &public]);
    assert_eq!(code, 0, "untouched: {out}");
    assert!(out.contains("ok: 3 events of room"), "{out}");
    for seq in 2..=4 {
        assert!(out.contains(&format!("\"text {seq}\"")), "{out}");
    }
    assert!(!out.contains("text 1") && !out.contains("text 5"), "{out}");

    let original: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let flip = |hex: &str| {
        let mut bytes = hex::decode(hex).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        hex::encode(bytes)
    };
    let other = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let cases: Vec<(&str, Change)> = vec![
        (
            "a text changed",
            Box::new(|v| v["events"][1]["text"] = json!("text 9")),
        ),
        (
            "an event dropped",
            Box::new(|v| {
                v["events"].as_array_mut().unwrap().remove(1);
            }),
        ),
        (
            "two events swapped",
            Box::new(|v| v["events"].as_array_mut().unwrap().swap(0, 1)),
        ),
        (
            "a payload byte flipped",
            Box::new(move |v| {
                let p = v["events"][0]["payload"].as_str().unwrap().to_owned();
                v["events"][0]["payload"] = json!(flip(&p));
            }),
        ),
        (
            "the link after dropped",
            Box::new(|v| v["after"] = Value::Null),
        ),
        (
            "the link before dropped",
            Box::new(|v| v["before"] = Value::Null),
        ),
        (
            "a leaf moved",
            Box::new(|v| {
                let leaf = v["events"][2]["leaf"].as_u64().unwrap();
                v["events"][2]["leaf"] = json!(leaf + 1);
            }),
        ),
        (
            "the checkpoint's root changed",
            Box::new(|v| {
                v["checkpoint"]["root"] = json!("00".repeat(32));
            }),
        ),
        (
            "a key removed",
            Box::new(|v| {
                let keys = v["keys"].as_object_mut().unwrap();
                let first = keys.keys().next().unwrap().clone();
                keys.remove(&first);
            }),
        ),
    ];
    for (what, change) in &cases {
        let mut v = original.clone();
        change(&mut v);
        let file = data.join("changed.json");
        std::fs::write(&file, v.to_string()).unwrap();
        let (code, out) = chatroom(&[
            "verify-bundle",
            file.to_str().unwrap(),
            "--public-key",
            &public,
        ]);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.starts_with("TAMPERED: "), "{what}: {out}");
    }
    let (code, out) = chatroom(&["verify-bundle", b, "--public-key", other]);
    assert_eq!(code, 1, "another key: {out}");

    // Bob erased: his texts' keys are gone; the bundle still verifies and reads him as erased.
    let (code, out) = chatroom(&["erase-user", "--data-dir", d, &bob_id]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = chatroom(&export);
    assert_eq!(code, 0, "{out}");
    let (code, out) = chatroom(&["verify-bundle", b, "--public-key", &public]);
    assert_eq!(code, 0, "after the erasure: {out}");
    assert!(out.contains("\"text 3\""), "{out}");
    assert!(!out.contains("text 2") && !out.contains("text 4"), "{out}");
    assert_eq!(out.matches("(erased)").count(), 2, "{out}");
}

/// Two rooms of one person's messages over REST, `n` in the first and 1 in the other; their
/// ids.
async fn two_rooms(server: &Server, n: usize) -> (String, String) {
    let mut ann = server.client();
    ann.register(&unique("ann")).await;
    let mut ids = Vec::new();
    for (name, count) in [("kept", n), ("other", 1)] {
        let room = ann.create_room(name).await;
        let id = room["id"].as_str().unwrap().to_owned();
        for i in 1..=count {
            let body = json!({"id": format!("{name}-{i}"), "message": format!("{name} {i}")});
            let r = ann
                .call("POST", &format!("/api/room/{id}/messages"), Some(body))
                .await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            // Each message a millisecond of its own, so that a span can end between two.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ids.push(id);
    }
    (ids.remove(0), ids.remove(0))
}

/// The chain hashes of every event of the log, in log order: what an operator who edits a
/// bundle needs to make its proof again.
async fn log_hashes(store: &dyn Store) -> Vec<Hash> {
    let (mut hashes, mut at) = (Vec::new(), 0);
    loop {
        let page = store.read_all(at, 1000).await.unwrap();
        let Some(last) = page.last() else {
            return hashes;
        };
        at = last.position;
        hashes.extend(page.iter().map(|e| e.hash));
    }
}

/// Makes `v`'s batch proof again, from the log's `hashes`, for the events and links it holds
/// now, as the operator who dropped some could.
fn reprove(v: &mut Value, hashes: &[Hash]) {
    let size = v["checkpoint"]["size"].as_u64().unwrap();
    let mut leaves: Vec<u64> = vec![];
    for part in ["before", "after"] {
        if let Some(leaf) = v[part]["leaf"].as_u64() {
            leaves.push(leaf);
        }
    }
    for e in v["events"].as_array().unwrap() {
        leaves.push(e["leaf"].as_u64().unwrap());
    }
    leaves.sort_unstable();
    let proof: Vec<String> = merkle::batch_ranges(size, &leaves)
        .into_iter()
        .map(|r| {
            let mut tree = Builder::new();
            for h in &hashes[r.start as usize..r.end as usize] {
                tree.push(h);
            }
            hex::encode(tree.root())
        })
        .collect();
    v["proof"] = json!(proof);
}

/// Runs `verify-bundle` on `v` written to `dir`.
fn verify(v: &Value, dir: &Path, public: &str) -> (i32, String) {
    let file = dir.join("changed.json");
    std::fs::write(&file, v.to_string()).unwrap();
    chatroom(&[
        "verify-bundle",
        file.to_str().unwrap(),
        "--public-key",
        public,
    ])
}

/// The whole room `room` exported: it proves its end by the room's head; truncated, with its
/// head forged or another stream's, it fails; and so on, as the module header says. `seed` is
/// the log's signing key, to sign a format 1 bundle as exports of that format did.
fn the_room_s_end_is_proven(
    store: &[String],
    hashes: &[Hash],
    (room, other): (&str, &str),
    seed: &[u8],
    dir: &Path,
) {
    let (code, public) = chatroom_on(&["public-key"], store);
    assert_eq!(code, 0, "{public}");
    let public = public.lines().next().unwrap().to_owned();
    let export = |room: &str, to: Option<String>, name: &str| -> Value {
        let out = dir.join(name);
        let mut args = vec!["export", "--room", room, "--out", out.to_str().unwrap()];
        if let Some(t) = &to {
            args.extend(["--to", t.as_str()]);
        }
        let (code, text) = chatroom_on(&args, store);
        assert_eq!(code, 0, "{text}");
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
    };
    let whole = export(room, None, "whole.json");
    let others = export(other, None, "other.json");
    assert_eq!(whole["format"], "chatroom-bundle/2");
    assert_eq!(whole["checkpoint"]["format"], "chatroom-checkpoint/2");
    assert!(whole["after"].is_null(), "{whole}");
    let events = whole["events"].as_array().unwrap().clone();
    let last = events.last().unwrap();
    assert_eq!(whole["head"]["version"], last["version"], "{whole}");
    assert_eq!(whole["head"]["hash"], last["hash"], "{whole}");
    // The log did not change between the two exports: one heads root.
    assert_eq!(whole["checkpoint"]["heads"], others["checkpoint"]["heads"]);
    let (code, out) = verify(&whole, dir, &public);
    assert_eq!(code, 0, "untouched: {out}");
    assert!(out.contains("complete for the span: "), "{out}");
    assert!(out.contains("nothing of the room came after it"), "{out}");
    assert!(out.contains("\"kept 4\""), "{out}");

    // The proof made again after each change: only the head can tell.
    let drop_last = |v: &mut Value, n: usize| {
        let e = v["events"].as_array_mut().unwrap();
        e.truncate(e.len() - n);
        reprove(v, hashes);
    };
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "its last event dropped, its proof as it was",
            Box::new(|v| {
                v["events"].as_array_mut().unwrap().pop();
            }),
            "do not make the checkpoint's root",
        ),
        (
            "its last event dropped",
            Box::new(move |v| drop_last(v, 1)),
            "the room's last event was left out",
        ),
        (
            "its last two events dropped",
            Box::new(move |v| drop_last(v, 2)),
            "the room's last 2 events were left out",
        ),
        (
            "its last event dropped and the head made to match",
            Box::new(move |v| {
                drop_last(v, 1);
                let last = v["events"].as_array().unwrap().last().unwrap().clone();
                for field in ["version", "position", "hash"] {
                    v["head"][field] = last[field].clone();
                }
            }),
            "do not make the checkpoint's heads root",
        ),
        (
            "a forged head leaf: a later version",
            Box::new(|v| {
                let version = v["head"]["version"].as_u64().unwrap();
                v["head"]["version"] = json!(version + 1);
            }),
            "do not make the checkpoint's heads root",
        ),
        (
            "a forged head leaf: another leaf",
            Box::new(|v| {
                let leaf = v["head"]["leaf"].as_u64().unwrap();
                v["head"]["leaf"] = json!(leaf ^ 1);
            }),
            "do not make the checkpoint's heads root",
        ),
        (
            "the head of another stream, with its proof",
            {
                let head = others["head"].clone();
                Box::new(move |v| v["head"] = head.clone())
            },
            "its head is of stream",
        ),
        (
            "the head proof of another stream, named as the room's",
            {
                let head = others["head"].clone();
                Box::new(move |v| {
                    let stream = v["head"]["stream_id"].clone();
                    v["head"] = head.clone();
                    v["head"]["stream_id"] = stream;
                })
            },
            "do not make the checkpoint's heads root",
        ),
        (
            "the head removed",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("head");
            }),
            "carries no head of the room",
        ),
        (
            "made to look like format 1",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("head");
                v["format"] = json!("chatroom-bundle/1");
            }),
            "format 1 with a checkpoint of version 2",
        ),
    ];
    for (what, change, says) in &cases {
        let mut v = whole.clone();
        change(&mut v);
        let (code, out) = verify(&v, dir, &public);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.starts_with("TAMPERED: "), "{what}: {out}");
        assert!(out.contains(says), "{what}: says {says:?}: {out}");
    }

    // A span that ends before the room's last events: the link after it is at or before the
    // room's head.
    let to = events[events.len() - 3]["recorded_at"].as_i64().unwrap();
    let span = export(room, Some(rfc3339(to)), "span.json");
    assert!(!span["after"].is_null(), "{span}");
    let (code, out) = verify(&span, dir, &public);
    assert_eq!(code, 0, "a span ending early: {out}");
    assert!(
        out.contains("at or before the room's head in the checkpoint"),
        "{out}"
    );

    // A bundle as format 1 wrote it: no head, a version 1 checkpoint. It verifies, saying
    // that it cannot show its end.
    let key = LogKey::from_seed(seed.try_into().unwrap());
    let cp: Checkpoint = serde_json::from_value(whole["checkpoint"].clone()).unwrap();
    let mut head = cp.verify(&key.public()).unwrap();
    head.heads = None;
    let mut old = whole.clone();
    old.as_object_mut().unwrap().remove("head");
    old["format"] = json!("chatroom-bundle/1");
    old["checkpoint"] = serde_json::to_value(key.sign(&head, cp.time)).unwrap();
    assert_eq!(old["checkpoint"]["format"], "chatroom-checkpoint/1");
    let (code, out) = verify(&old, dir, &public);
    assert_eq!(code, 0, "format 1: {out}");
    assert!(out.contains("cannot show that none came after it"), "{out}");
    assert!(out.contains("checkpoint v1 of"), "{out}");
}

#[tokio::test]
async fn embedded_bundles_prove_the_room_s_end() {
    let mut server = Server::start(&["--checkpoint-every-secs", "0"]);
    let (room, other) = two_rooms(&server, 4).await;
    assert!(server.terminate().success());
    let store = vec![
        "--data-dir".to_owned(),
        server.data.to_str().unwrap().to_owned(),
    ];
    let seed = std::fs::read_to_string(server.data.join("log-signing.key")).unwrap();
    let seed = hex::decode(seed.trim()).unwrap();
    let log = events::SqliteStore::open(server.data.join("events.db")).unwrap();
    let hashes = log_hashes(&log).await;
    log.close();
    the_room_s_end_is_proven(&store, &hashes, (&room, &other), &seed, &server.data);
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bundles_prove_the_room_s_end() {
    let admin = std::env::var("CHATROOM_TEST_DATABASE_URL").unwrap();
    let url = events::testing::scratch_database(&admin, &[]).await;
    let mut server = Server::start(&["--database-url", &url, "--checkpoint-every-secs", "0"]);
    let (room, other) = two_rooms(&server, 4).await;
    assert!(server.terminate().success());
    let data = tempfile::tempdir().unwrap();
    let store = vec![
        "--database-url".to_owned(),
        url.clone(),
        "--data-dir".to_owned(),
        data.path().to_str().unwrap().to_owned(),
    ];
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let seed: Vec<u8> = db
        .query_one("select seed from log_signing_key where id = 1", &[])
        .await
        .unwrap()
        .get(0);
    let log = events::PostgresStore::connect(&url).await.unwrap();
    let hashes = log_hashes(&log).await;
    the_room_s_end_is_proven(&store, &hashes, (&room, &other), &seed, data.path());
}
