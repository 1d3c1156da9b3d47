//! The standing code, extra invites, and the state in a snapshot.
use super::*;

/// One sealing of `text` for the room, so a command and the event it makes hold the same bytes.
fn room_sealed(text: &str) -> Sealed {
    use std::sync::OnceLock;
    static CODES: OnceLock<std::sync::Mutex<HashMap<String, Sealed>>> = OnceLock::new();
    CODES
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(text.to_owned())
        .or_insert_with(|| events::testing::seal(&Subject::Room("r".into()), text))
        .clone()
}

fn rotated() -> Event {
    Event::JoinCodeRotated(JoinCodeRotated {
        room_id: "r".into(),
        by: "ada".into(),
        join_code_hash: [1; 32],
        join_code: room_sealed("new code"),
    })
}

#[test]
fn a_rotated_code_is_gone_at_once_and_the_new_one_works() {
    let s = given(&staffed());
    let rotate = |by: &str| Command::RotateCode {
        by: by.into(),
        join_code_hash: [1; 32],
        join_code: room_sealed("new code"),
    };
    assert_eq!(when(&s, rotate("ada")), then(vec![rotated()]));
    assert!(matches!(
        when(&s, rotate("bob")),
        Err(Rejection::Forbidden(_))
    ));
    let mut events = staffed();
    events.push(rotated());
    let s = given(&events);
    assert_eq!(when(&s, join("eve", code())), Err(Rejection::Gone));
    assert!(when(&s, join("eve", [1; 32])).is_ok());
}

fn invite(max_uses: Option<u32>, expires_at: Option<i64>) -> Event {
    Event::InviteCreated(InviteCreated {
        room_id: "r".into(),
        invite_id: "i".into(),
        by: "ada".into(),
        code_hash: [2; 32],
        code: room_sealed("invite"),
        max_uses,
        expires_at,
    })
}

fn joined_with_invite(user: &str) -> Event {
    Event::MemberJoined(MemberJoined {
        room_id: "r".into(),
        user_id: user.into(),
        invite: Some("i".into()),
    })
}

#[test]
fn an_invite_counts_its_uses_and_is_gone_once_used_up() {
    let mut events = staffed();
    events.push(invite(Some(2), None));
    let s = given(&events);
    assert_eq!(
        when(&s, join("eve", [2; 32])),
        then(vec![joined_with_invite("eve")])
    );
    events.push(joined_with_invite("eve"));
    events.push(joined_with_invite("fay"));
    let s = given(&events);
    assert_eq!(s.invites["i"].uses, 2);
    assert_eq!(when(&s, join("gus", [2; 32])), Err(Rejection::Gone));
    // The standing code is not used up by the invite's uses.
    assert!(when(&s, join("gus", code())).is_ok());
}

#[test]
fn an_invite_expires_and_a_revoked_one_is_gone() {
    let mut events = staffed();
    events.push(invite(None, Some(NOW + 1)));
    let s = given(&events);
    assert!(when(&s, join("eve", [2; 32])).is_ok());
    let mut expired = staffed();
    expired.push(invite(None, Some(NOW)));
    assert_eq!(
        when(&given(&expired), join("eve", [2; 32])),
        Err(Rejection::Gone)
    );
    let revoke = |by: &str, id: &str| Command::RevokeInvite {
        by: by.into(),
        invite_id: id.into(),
    };
    let revoked = Event::InviteRevoked(InviteRevoked {
        room_id: "r".into(),
        invite_id: "i".into(),
        by: "ada".into(),
    });
    assert_eq!(when(&s, revoke("ada", "i")), then(vec![revoked.clone()]));
    assert_eq!(when(&s, revoke("ada", "x")), Err(Rejection::NoSuchInvite));
    assert!(matches!(
        when(&s, revoke("bob", "i")),
        Err(Rejection::Forbidden(_))
    ));
    events.push(revoked);
    assert_eq!(
        when(&given(&events), join("eve", [2; 32])),
        Err(Rejection::Gone)
    );
}

#[test]
fn a_ban_beats_any_invite() {
    let mut events = banned(None);
    events.push(invite(None, None));
    let s = given(&events);
    assert_eq!(when(&s, join("bob", [2; 32])), Err(Rejection::Banned));
}

#[test]
fn only_admins_make_invites() {
    let s = given(&staffed());
    let create = |by: &str, max_uses| Command::CreateInvite {
        by: by.into(),
        invite_id: "i".into(),
        code_hash: [2; 32],
        code: room_sealed("invite"),
        max_uses,
        expires_at: None,
    };
    assert_eq!(
        when(&s, create("ada", Some(2))),
        then(vec![invite(Some(2), None)])
    );
    assert!(matches!(
        when(&s, create("bob", None)),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        when(&s, create("ada", Some(0))),
        Err(Rejection::Invalid(_))
    ));
}

#[test]
fn the_state_survives_a_snapshot() {
    let mut events = banned(Some(NOW + 5));
    events.push(invite(Some(3), None));
    events.push(rotated());
    let s = given(&events);
    let back = State::decode("r", &s.encode()).expect("decodes");
    assert_eq!(back, s);
}
