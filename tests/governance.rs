//! A room governed through the real binary, then looked at by an operator: `chatroom audit`
//! shows every governance event (who, whom, the reason) and never a join code, and the read
//! tables of members, roles, bans and invites rebuild from the log as they were.

mod common;

use common::{Client, Server, unique};
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

async fn ok(client: &Client, method: &str, path: &str, body: Option<Value>) -> Value {
    let a = client.call(method, path, body).await;
    assert!(a.status < 300, "{method} {path}: {} {}", a.status, a.body);
    a.body["data"].clone()
}

/// Members, bans (as who may rejoin) and live invites of a room, as the API shows them.
async fn governed(owner: &Client, room: &str) -> (Value, Value) {
    let members = ok(owner, "GET", &format!("/api/room/{room}/members"), None).await;
    let invites = ok(owner, "GET", &format!("/api/room/{room}/invites"), None).await;
    (members, invites)
}

#[tokio::test]
async fn an_operator_audits_governance_and_the_read_tables_rebuild_from_the_log() {
    let mut server = Server::start(&[]);
    let mut owner = server.client();
    let mut ada = server.client();
    let mut bob = server.client();
    let mut eve = server.client();
    let names = [unique("Owner"), unique("Ada"), unique("Bob"), unique("Eve")];
    owner.register(&names[0]).await;
    let ada_id = ada.register(&names[1]).await["userId"].clone();
    let bob_id = bob.register(&names[2]).await["userId"].clone();
    let eve_id = eve.register(&names[3]).await["userId"].clone();
    let room = owner.create_room("Governed").await;
    let (room_id, first_code) = (
        room["id"].as_str().unwrap().to_owned(),
        room["room_hash_id"].as_str().unwrap().to_owned(),
    );
    for c in [&ada, &bob, &eve] {
        ok(
            c,
            "POST",
            "/api/room/join",
            Some(json!({"roomIdHash": first_code})),
        )
        .await;
    }
    let base = format!("/api/room/{room_id}");
    let ada_s = ada_id.as_str().unwrap();
    let bob_s = bob_id.as_str().unwrap();
    let eve_s = eve_id.as_str().unwrap();
    ok(
        &owner,
        "POST",
        &format!("{base}/members/{ada_s}/role"),
        Some(json!({"role": "admin"})),
    )
    .await;
    ok(
        &ada,
        "POST",
        &format!("{base}/members/{bob_s}/kick"),
        Some(json!({"reason": "spamming links"})),
    )
    .await;
    ok(
        &ada,
        "POST",
        &format!("{base}/members/{eve_s}/ban"),
        Some(json!({"reason": "abuse", "durationSecs": 3600})),
    )
    .await;
    ok(&ada, "POST", &format!("{base}/invite/rotate"), None).await;
    let invite = ok(
        &ada,
        "POST",
        &format!("{base}/invites"),
        Some(json!({"maxUses": 5})),
    )
    .await;
    let invite_code = invite["invite"]["code"].as_str().unwrap().to_owned();
    ok(
        &bob,
        "POST",
        "/api/room/join",
        Some(json!({"roomIdHash": invite_code})),
    )
    .await;
    ok(
        &owner,
        "POST",
        &format!("{base}/members/{bob_s}/mute"),
        Some(json!({"durationSecs": 600})),
    )
    .await;
    let current_code =
        ok(&owner, "GET", "/api/room/list", None).await["roomList"][0]["room_hash_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let before = governed(&owner, &room_id).await;
    assert_eq!(
        before.0["members"].as_array().unwrap().len(),
        3,
        "{}",
        before.0
    );
    assert_eq!(before.1["invites"][0]["uses"], 1);

    server.terminate();
    let (code, out, err) = chatroom(
        &["audit", "--room", &room_id, "--format", "json"],
        &server.data,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |t: &str| -> Vec<&Value> { lines.iter().filter(|l| l["type"] == t).collect() };
    let kicked = of("MemberKicked");
    assert_eq!(kicked.len(), 1);
    assert_eq!(kicked[0]["user_name"], names[1].as_str(), "the moderator");
    let text = kicked[0]["text"].as_str().unwrap();
    assert!(
        text.contains(bob_s) && text.contains(&names[2]) && text.contains("spamming links"),
        "{text}"
    );
    let banned = of("MemberBanned")[0]["text"].as_str().unwrap().to_owned();
    assert!(
        banned.contains(eve_s) && banned.contains("abuse") && banned.contains("until"),
        "{banned}"
    );
    assert_eq!(of("RoleChanged").len(), 1);
    assert_eq!(of("MemberMuted").len(), 1);
    assert_eq!(of("JoinCodeRotated").len(), 1);
    assert_eq!(of("InviteCreated").len(), 1);
    for secret in [&first_code, &current_code, &invite_code] {
        assert!(
            !out.contains(secret.as_str()),
            "the audit printed a join code"
        );
    }
    let (code, out, _) = chatroom(&["verify"], &server.data);
    assert_eq!(code, 0, "{out}");

    let (code, out, err) = chatroom(&["projections", "rebuild"], &server.data);
    assert_eq!(code, 0, "{out}{err}");
    server.relaunch();
    // Tokens survive a restart; the address may not.
    let (owner_token, eve_token) = (owner.token.clone(), eve.token.clone());
    let mut owner = server.client();
    owner.token = owner_token;
    let after = governed(&owner, &room_id).await;
    assert_eq!(after, before);
    let mut eve = server.client();
    eve.token = eve_token;
    let refused = eve
        .call(
            "POST",
            "/api/room/join",
            Some(json!({"roomIdHash": current_code})),
        )
        .await;
    assert_eq!(
        (refused.status, &refused.body["code"]),
        (403, &json!("banned"))
    );
    let gone = eve
        .call(
            "POST",
            "/api/room/join",
            Some(json!({"roomIdHash": first_code})),
        )
        .await;
    assert_eq!(gone.status, 403, "a ban comes before a code that is gone");
}
