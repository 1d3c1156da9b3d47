//! Direct rooms: two people, nothing to govern, and the way back in after leaving.
use super::*;
use events::event::DirectRoomOpened;

/// The events of a direct room of `ann` and `bob` as `POST /api/dm` writes them.
fn opened() -> Vec<Event> {
    vec![
        Event::DirectRoomOpened(DirectRoomOpened {
            room_id: "r".into(),
            users: ["ann".into(), "bob".into()],
            by: "bob".into(),
        }),
        joined("bob"),
        joined("ann"),
    ]
}

fn reopen(user: &str) -> Command {
    Command::Reopen {
        user_id: user.into(),
    }
}

fn left(user: &str) -> Event {
    Event::MemberLeft(MemberLeft {
        room_id: "r".into(),
        user_id: user.into(),
    })
}

#[test]
fn both_are_plain_members_and_nobody_owns_it() {
    let s = given(&opened());
    assert!(s.exists && s.is_direct());
    assert_eq!(s.owner, None);
    assert_eq!(s.role_of("ann"), Some(Role::Member));
    assert_eq!(s.role_of("bob"), Some(Role::Member));
    assert_eq!(s.other_of("ann"), Some("bob"));
    assert_eq!(s.other_of("bob"), Some("ann"));
    assert_eq!(s.other_of("cat"), None);
    assert_eq!(when(&s, post("ann", "m1", "hi")), Ok(Decision::Post(1)));
    assert_eq!(when(&s, post("cat", "m1", "hi")), Err(Rejection::NotMember));
    assert!(!given(&staffed()).is_direct());
}

#[test]
fn nothing_in_it_can_be_governed() {
    let s = given(&opened());
    let refused = [
        join("cat", [0; 32]),
        join("ann", [0; 32]),
        kick("ann", "bob"),
        moderate(
            "ann",
            "bob",
            Act::Ban {
                reason: None,
                until: None,
            },
        ),
        moderate("ann", "bob", Act::Mute { until: NOW + 1 }),
        moderate("ann", "bob", Act::Unmute),
        Command::SetRole {
            by: "ann".into(),
            user_id: "bob".into(),
            role: Role::Owner,
        },
        Command::Update {
            by: "ann".into(),
            change: Change {
                name: Some("ours".into()),
                ..Change::default()
            },
        },
        Command::RotateCode {
            by: "ann".into(),
            join_code_hash: [1; 32],
            join_code: sealed("ann", "code"),
        },
        Command::CreateInvite {
            by: "ann".into(),
            invite_id: "i".into(),
            code_hash: [2; 32],
            code: sealed("ann", "code"),
            max_uses: None,
            expires_at: None,
        },
        Command::RevokeInvite {
            by: "ann".into(),
            invite_id: "i".into(),
        },
    ];
    for command in refused {
        assert!(
            matches!(when(&s, command.clone()), Err(Rejection::Forbidden(_))),
            "{command:?}"
        );
    }
}

#[test]
fn a_leaver_comes_back_by_reopening_and_nobody_else_can() {
    let mut events = opened();
    assert_eq!(
        when(
            &given(&events),
            Command::Leave {
                user_id: "ann".into()
            }
        ),
        then(vec![left("ann")])
    );
    events.push(left("ann"));
    let s = given(&events);
    assert!(!s.is_member("ann"));
    assert_eq!(when(&s, post("ann", "m", "hi")), Err(Rejection::NotMember));
    assert_eq!(when(&s, reopen("ann")), then(vec![joined("ann")]));
    assert_eq!(when(&s, reopen("bob")), Ok(Decision::AlreadyDone(None)));
    assert!(matches!(
        when(&s, reopen("cat")),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        when(&given(&staffed()), reopen("bob")),
        Err(Rejection::Forbidden(_))
    ));
}

#[test]
fn an_erased_side_leaves_and_the_room_is_not_archived() {
    let s = given(&opened());
    assert_eq!(
        when(
            &s,
            Command::Erase {
                user_id: "bob".into()
            }
        ),
        then(vec![left("bob")])
    );
}

#[test]
fn a_direct_room_survives_a_snapshot() {
    let s = given(&opened());
    let back = State::decode("r", &s.encode()).unwrap();
    assert_eq!(back.direct, s.direct);
    assert!(back.is_direct());
}
