//! Export bundles through the real binary: a room's span exported with its links, proof and
//! keys verifies offline; a changed text, a dropped, swapped or changed event, a dropped link,
//! an altered checkpoint or another key each make `verify-bundle` fail; after an erasure the
//! person's messages still verify and read as erased.

mod common;

use common::{Server, post_at, unique};
use serde_json::{Value, json};
use std::process::Command;

fn chatroom(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A change made to a bundle's JSON.
type Change = Box<dyn Fn(&mut Value)>;

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
    let j = bob
        .call(
            "POST",
            "/api/room/join",
            Some(json!({"roomIdHash": room["room_hash_id"]})),
        )
        .await;
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
