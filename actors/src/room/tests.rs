//! Given events, when a command, then events (or a refusal): one test per rule of the room.
use super::*;
use events::event::{
    Archival, InviteCreated, InviteRevoked, JoinCodeRotated, Lifted, MemberBanned, MemberJoined,
    MemberKicked, MemberLeft, MemberMuted, MessagePosted, RoleChanged, RoomUpdated, join_code_hash,
};
use events::seal::Subject;

const NOW: i64 = 1_000_000;

fn created() -> Event {
    events::testing::created("r", "owner")
}

/// The standing code of [`created`]'s room.
fn code() -> [u8; 32] {
    join_code_hash(&format!("{:0>32}", "r"))
}

fn joined(user: &str) -> Event {
    Event::MemberJoined(MemberJoined {
        room_id: "r".into(),
        user_id: user.into(),
        invite: None,
    })
}

fn posted(seq: u64, user: &str, id: &str) -> Event {
    Event::MessagePosted(MessagePosted {
        room_id: "r".into(),
        seq,
        message_id: id.into(),
        user_id: user.into(),
        text: sealed(user, &format!("text {seq}")),
        kind: "input".into(),
        period: 0,
        reply_to: None,
    })
}

fn sealed(user: &str, text: &str) -> Sealed {
    events::testing::seal(&Subject::User(user.into()), text)
}

fn role(user: &str, role: Role, by: Option<&str>) -> Event {
    Event::RoleChanged(RoleChanged {
        room_id: "r".into(),
        user_id: user.into(),
        by: by.map(Into::into),
        role,
    })
}

fn post(user: &str, id: &str, text: &str) -> Command {
    Command::Post {
        user_id: user.into(),
        message_id: id.into(),
        text: text.into(),
        reply_to: None,
    }
}

fn join(user: &str, code_hash: [u8; 32]) -> Command {
    Command::Join {
        user_id: user.into(),
        code_hash,
    }
}

fn moderate(by: &str, user: &str, act: Act) -> Command {
    Command::Moderate {
        by: by.into(),
        user_id: user.into(),
        act,
    }
}

fn kick(by: &str, user: &str) -> Command {
    moderate(by, user, Act::Kick { reason: None })
}

fn given(events: &[Event]) -> State {
    let mut s = State::new("r");
    for (i, e) in events.iter().enumerate() {
        s.apply(e, i as u64 + 1, 0);
    }
    s
}

/// A room with an owner, an admin `ada` and a member `bob`.
fn staffed() -> Vec<Event> {
    vec![
        created(),
        joined("owner"),
        joined("ada"),
        joined("bob"),
        role("ada", Role::Admin, Some("owner")),
    ]
}

fn when(state: &State, command: Command) -> Result<Decision, Rejection> {
    decide(state, state.last_seq + 1, NOW, &command)
}

fn then(events: Vec<Event>) -> Result<Decision, Rejection> {
    Ok(Decision::Append(events))
}

#[test]
fn nothing_happens_in_a_room_that_does_not_exist() {
    let s = given(&[]);
    assert_eq!(when(&s, post("a", "1", "hi")), Err(Rejection::NotFound));
    assert_eq!(when(&s, join("a", code())), Err(Rejection::NotFound));
}

#[test]
fn the_owner_is_a_member_and_posts_seq_one() {
    let s = given(&[created()]);
    assert_eq!(s.role_of("owner"), Some(Role::Owner));
    assert_eq!(
        when(&s, post("owner", "m1", "hello")),
        Ok(Decision::Post(1))
    );
}

#[test]
fn non_members_cannot_post_until_they_join() {
    let s = given(&[created()]);
    assert_eq!(when(&s, post("bob", "1", "hi")), Err(Rejection::NotMember));
    assert_eq!(when(&s, join("bob", code())), then(vec![joined("bob")]));
    let s = given(&[created(), joined("bob")]);
    assert_eq!(s.role_of("bob"), Some(Role::Member));
    assert_eq!(when(&s, post("bob", "1", "hi")), Ok(Decision::Post(1)));
}

#[test]
fn joining_twice_changes_nothing_whatever_the_code() {
    let s = given(&[created(), joined("bob")]);
    assert_eq!(
        when(&s, join("bob", code())),
        Ok(Decision::AlreadyDone(None))
    );
    assert_eq!(
        when(&s, join("bob", [9; 32])),
        Ok(Decision::AlreadyDone(None))
    );
}

#[test]
fn seq_follows_the_last_message_without_gaps() {
    let s = given(&[
        created(),
        posted(1, "owner", "a"),
        joined("bob"),
        posted(2, "bob", "b"),
    ]);
    assert_eq!(when(&s, post("bob", "c", "x")), Ok(Decision::Post(3)));
    assert_eq!(s.version_of(1), Some(2));
    assert_eq!(s.version_of(2), Some(4));
    assert_eq!(s.version_of(3), None);
}

#[test]
fn a_retried_id_answers_the_first_seq() {
    let s = given(&[created(), posted(1, "owner", "a"), posted(2, "owner", "b")]);
    assert_eq!(
        when(&s, post("owner", "a", "again")),
        Ok(Decision::AlreadyDone(Some(1)))
    );
}

#[test]
fn text_and_id_limits() {
    let s = given(&[created()]);
    assert_eq!(when(&s, post("owner", "1", "   \n")), Err(Rejection::Empty));
    let long = "é".repeat(MAX_TEXT_CHARS + 1);
    assert_eq!(when(&s, post("owner", "1", &long)), Err(Rejection::TooLong));
    let max = format!("  {}  ", "é".repeat(MAX_TEXT_CHARS));
    assert_eq!(when(&s, post("owner", "1", &max)), Ok(Decision::Post(1)));
    assert_eq!(when(&s, post("owner", "", "hi")), Err(Rejection::BadId));
    assert_eq!(
        when(&s, post("owner", &"x".repeat(129), "hi")),
        Err(Rejection::BadId)
    );
}

#[test]
fn a_retry_past_the_window_is_a_new_message() {
    let minute = 60_000;
    let mut s = given(&[created(), posted(1, "owner", "old")]);
    let last = crate::recent::WINDOW_MESSAGES as u64 + 1;
    for seq in 2..=last {
        s.apply(
            &posted(seq, "owner", &format!("id{seq}")),
            seq + 1,
            11 * minute,
        );
    }
    assert_eq!(
        when(&s, post("owner", "old", "again")),
        Ok(Decision::Post(last + 1))
    );
    assert_eq!(
        when(&s, post("owner", "id2", "again")),
        Ok(Decision::AlreadyDone(Some(2)))
    );
}

#[test]
fn members_leave_but_the_owner_must_transfer_first() {
    let s = given(&staffed());
    let leave = |u: &str| Command::Leave { user_id: u.into() };
    assert_eq!(
        when(&s, leave("bob")),
        then(vec![Event::MemberLeft(MemberLeft {
            room_id: "r".into(),
            user_id: "bob".into(),
        })])
    );
    assert_eq!(when(&s, leave("owner")), Err(Rejection::OwnerMustTransfer));
    assert_eq!(when(&s, leave("eve")), Err(Rejection::NotMember));
    let mut after = staffed();
    after.push(Event::MemberLeft(MemberLeft {
        room_id: "r".into(),
        user_id: "bob".into(),
    }));
    let s = given(&after);
    assert!(!s.is_member("bob"));
    assert_eq!(when(&s, post("bob", "1", "hi")), Err(Rejection::NotMember));
}

#[test]
fn the_owner_and_admins_kick_members_and_a_kicked_member_may_rejoin() {
    let s = given(&staffed());
    let kicked = |by: &str| {
        then(vec![Event::MemberKicked(MemberKicked {
            room_id: "r".into(),
            user_id: "bob".into(),
            by: by.into(),
            reason: None,
        })])
    };
    assert_eq!(when(&s, kick("ada", "bob")), kicked("ada"));
    assert_eq!(when(&s, kick("owner", "bob")), kicked("owner"));
    let mut after = staffed();
    after.push(Event::MemberKicked(MemberKicked {
        room_id: "r".into(),
        user_id: "bob".into(),
        by: "ada".into(),
        reason: Some(sealed("ada", "spam")),
    }));
    let s = given(&after);
    assert!(!s.is_member("bob"));
    assert_eq!(when(&s, join("bob", code())), then(vec![joined("bob")]));
}

#[test]
fn an_admin_acts_on_members_only_and_nobody_on_the_owner() {
    let mut events = staffed();
    events.push(joined("cat"));
    events.push(role("cat", Role::Admin, Some("owner")));
    let s = given(&events);
    let forbidden = |r| matches!(r, Err(Rejection::Forbidden(_)));
    assert!(forbidden(when(&s, kick("ada", "cat"))));
    assert!(forbidden(when(&s, kick("ada", "owner"))));
    assert!(forbidden(when(&s, kick("owner", "owner"))));
    assert!(forbidden(when(&s, kick("bob", "ada"))));
    assert!(forbidden(when(&s, kick("bob", "cat"))));
    assert!(forbidden(when(
        &s,
        moderate(
            "ada",
            "cat",
            Act::Ban {
                reason: None,
                until: None
            }
        )
    )));
    assert!(when(&s, kick("owner", "cat")).is_ok());
    assert_eq!(when(&s, kick("eve", "bob")), Err(Rejection::NotMember));
}

#[test]
fn kick_and_mute_of_a_non_member_are_not_found_but_a_ban_is_not() {
    let s = given(&staffed());
    assert_eq!(when(&s, kick("ada", "eve")), Err(Rejection::NoSuchMember));
    assert_eq!(
        when(&s, moderate("ada", "eve", Act::Mute { until: NOW + 1 })),
        Err(Rejection::NoSuchMember)
    );
    assert_eq!(
        when(
            &s,
            moderate(
                "ada",
                "eve",
                Act::Ban {
                    reason: None,
                    until: None
                }
            )
        ),
        then(vec![Event::MemberBanned(MemberBanned {
            room_id: "r".into(),
            user_id: "eve".into(),
            by: "ada".into(),
            reason: None,
            until: None,
        })])
    );
}

fn banned(until: Option<i64>) -> Vec<Event> {
    let mut events = staffed();
    events.push(Event::MemberBanned(MemberBanned {
        room_id: "r".into(),
        user_id: "bob".into(),
        by: "ada".into(),
        reason: Some(sealed("ada", "trolling")),
        until,
    }));
    events
}

#[test]
fn a_ban_removes_the_member_and_refuses_every_rejoin_until_it_ends_or_is_lifted() {
    let s = given(&banned(None));
    assert!(!s.is_member("bob"));
    assert_eq!(when(&s, join("bob", code())), Err(Rejection::Banned));
    assert_eq!(when(&s, post("bob", "1", "hi")), Err(Rejection::NotMember));

    let s = given(&banned(Some(NOW + 1)));
    assert_eq!(when(&s, join("bob", code())), Err(Rejection::Banned));
    let s = given(&banned(Some(NOW)));
    assert_eq!(when(&s, join("bob", code())), then(vec![joined("bob")]));

    let s = given(&banned(None));
    let lifted = Event::MemberUnbanned(Lifted {
        room_id: "r".into(),
        user_id: "bob".into(),
        by: "owner".into(),
    });
    assert_eq!(
        when(&s, moderate("owner", "bob", Act::Unban)),
        then(vec![lifted.clone()])
    );
    let mut events = banned(None);
    events.push(lifted);
    let s = given(&events);
    assert_eq!(
        when(&s, moderate("owner", "bob", Act::Unban)),
        Ok(Decision::AlreadyDone(None))
    );
    assert_eq!(when(&s, join("bob", code())), then(vec![joined("bob")]));
}

#[test]
fn a_muted_member_reads_but_cannot_post_until_the_mute_ends_or_is_lifted() {
    let mute = |until| {
        let mut events = staffed();
        events.push(Event::MemberMuted(MemberMuted {
            room_id: "r".into(),
            user_id: "bob".into(),
            by: "ada".into(),
            until,
        }));
        events
    };
    let s = given(&mute(NOW + 1));
    assert!(s.is_member("bob"));
    assert_eq!(when(&s, post("bob", "1", "hi")), Err(Rejection::Muted));
    assert_eq!(
        when(&s, moderate("ada", "bob", Act::Unmute)),
        then(vec![Event::MemberUnmuted(Lifted {
            room_id: "r".into(),
            user_id: "bob".into(),
            by: "ada".into(),
        })])
    );
    let s = given(&mute(NOW));
    assert_eq!(when(&s, post("bob", "1", "hi")), Ok(Decision::Post(1)));
    assert_eq!(
        when(&s, moderate("ada", "bob", Act::Unmute)),
        Ok(Decision::AlreadyDone(None))
    );
}

#[test]
fn only_the_owner_changes_roles_and_a_transfer_is_two_changes() {
    let s = given(&staffed());
    let set = |by: &str, user: &str, r| Command::SetRole {
        by: by.into(),
        user_id: user.into(),
        role: r,
    };
    assert_eq!(
        when(&s, set("owner", "bob", Role::Admin)),
        then(vec![role("bob", Role::Admin, Some("owner"))])
    );
    assert!(matches!(
        when(&s, set("ada", "bob", Role::Admin)),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        when(&s, set("owner", "owner", Role::Member)),
        Err(Rejection::Forbidden(_))
    ));
    assert_eq!(
        when(&s, set("owner", "eve", Role::Admin)),
        Err(Rejection::NoSuchMember)
    );
    assert_eq!(
        when(&s, set("owner", "ada", Role::Admin)),
        Ok(Decision::AlreadyDone(None))
    );
    let transfer = vec![
        role("bob", Role::Owner, Some("owner")),
        role("owner", Role::Admin, Some("owner")),
    ];
    assert_eq!(
        when(&s, set("owner", "bob", Role::Owner)),
        then(transfer.clone())
    );
    let mut events = staffed();
    events.extend(transfer);
    let s = given(&events);
    assert_eq!(s.owner.as_deref(), Some("bob"));
    assert_eq!(s.role_of("owner"), Some(Role::Admin));
    assert!(
        when(
            &s,
            Command::Leave {
                user_id: "owner".into()
            }
        )
        .is_ok()
    );
}

#[test]
fn an_erased_owner_passes_the_room_to_the_longest_standing_admin_else_member() {
    let erase = |u: &str| Command::Erase { user_id: u.into() };
    let left = |u: &str| {
        Event::MemberLeft(MemberLeft {
            room_id: "r".into(),
            user_id: u.into(),
        })
    };
    let mut events = staffed();
    events.push(joined("cat"));
    events.push(role("cat", Role::Admin, Some("owner")));
    let s = given(&events);
    assert_eq!(
        when(&s, erase("owner")),
        then(vec![left("owner"), role("ada", Role::Owner, None)])
    );
    let s = given(&[created(), joined("owner"), joined("bob"), joined("cat")]);
    assert_eq!(
        when(&s, erase("owner")),
        then(vec![left("owner"), role("bob", Role::Owner, None)])
    );
    assert_eq!(when(&s, erase("cat")), then(vec![left("cat")]));
    assert_eq!(when(&s, erase("eve")), Ok(Decision::AlreadyDone(None)));
}

#[test]
fn a_room_left_with_nobody_is_archived() {
    let s = given(&[created(), joined("owner")]);
    assert_eq!(
        when(
            &s,
            Command::Erase {
                user_id: "owner".into()
            }
        ),
        then(vec![
            Event::MemberLeft(MemberLeft {
                room_id: "r".into(),
                user_id: "owner".into(),
            }),
            Event::RoomArchived(Archival {
                room_id: "r".into(),
                by: None,
            }),
        ])
    );
}

fn update(by: &str, change: Change) -> Command {
    Command::Update {
        by: by.into(),
        change,
    }
}

#[test]
fn admins_change_settings_and_only_the_owner_archives_or_sets_retention() {
    let s = given(&staffed());
    let name = Change {
        name: Some(" New name ".into()),
        ..Change::default()
    };
    assert_eq!(
        when(&s, update("ada", name.clone())),
        then(vec![Event::RoomUpdated(RoomUpdated {
            room_id: "r".into(),
            by: "ada".into(),
            name: Some("New name".into()),
            description: None,
            avatar_image: None,
            retention_days: None,
        })])
    );
    assert!(matches!(
        when(&s, update("bob", name)),
        Err(Rejection::Forbidden(_))
    ));
    let archive = Change {
        archived: Some(true),
        ..Change::default()
    };
    let retention = Change {
        retention_days: Some(Some(30)),
        ..Change::default()
    };
    assert!(matches!(
        when(&s, update("ada", archive.clone())),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        when(&s, update("ada", retention.clone())),
        Err(Rejection::Forbidden(_))
    ));
    assert_eq!(
        when(&s, update("owner", archive)),
        then(vec![Event::RoomArchived(Archival {
            room_id: "r".into(),
            by: Some("owner".into()),
        })])
    );
    assert!(when(&s, update("owner", retention)).is_ok());
}

#[test]
fn settings_out_of_range_or_unchanged() {
    let s = given(&staffed());
    for bad in [
        Change {
            name: Some("  ".into()),
            ..Change::default()
        },
        Change {
            name: Some("x".repeat(65)),
            ..Change::default()
        },
        Change {
            description: Some("x".repeat(257)),
            ..Change::default()
        },
        Change {
            retention_days: Some(Some(0)),
            ..Change::default()
        },
        Change {
            retention_days: Some(Some(36_501)),
            ..Change::default()
        },
    ] {
        assert!(matches!(
            when(&s, update("owner", bad)),
            Err(Rejection::Invalid(_))
        ));
    }
    let same = Change {
        name: Some("Room r".into()),
        archived: Some(false),
        retention_days: Some(None),
        ..Change::default()
    };
    assert_eq!(
        when(&s, update("owner", same)),
        Ok(Decision::AlreadyDone(None))
    );
}

fn archived() -> Vec<Event> {
    let mut events = staffed();
    events.push(Event::RoomArchived(Archival {
        room_id: "r".into(),
        by: Some("owner".into()),
    }));
    events
}

#[test]
fn an_archived_room_refuses_posts_and_joins_but_moderation_still_works() {
    let s = given(&archived());
    assert_eq!(when(&s, post("bob", "1", "hi")), Err(Rejection::Archived));
    assert_eq!(when(&s, join("eve", code())), Err(Rejection::Archived));
    assert!(when(&s, kick("ada", "bob")).is_ok());
    assert!(
        when(
            &s,
            Command::Leave {
                user_id: "bob".into()
            }
        )
        .is_ok()
    );
    let unarchive = Change {
        archived: Some(false),
        ..Change::default()
    };
    assert_eq!(
        when(&s, update("owner", unarchive)),
        then(vec![Event::RoomUnarchived(Archival {
            room_id: "r".into(),
            by: Some("owner".into()),
        })])
    );
}

#[test]
fn refusals_of_a_join_come_in_the_order_banned_gone_archived() {
    let mut events = banned(None);
    events.push(Event::RoomArchived(Archival {
        room_id: "r".into(),
        by: Some("owner".into()),
    }));
    let s = given(&events);
    assert_eq!(when(&s, join("bob", [9; 32])), Err(Rejection::Banned));
    assert_eq!(when(&s, join("eve", [9; 32])), Err(Rejection::Gone));
    assert_eq!(when(&s, join("eve", code())), Err(Rejection::Archived));
}

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

fn edit(user: &str, seq: u64, text: &str) -> Command {
    Command::Edit {
        user_id: user.into(),
        seq,
        text: text.into(),
    }
}

fn delete(by: &str, seq: u64) -> Command {
    Command::Delete { by: by.into(), seq }
}

fn react(user: &str, seq: u64, emoji: &str, on: bool) -> Command {
    Command::React {
        user_id: user.into(),
        seq,
        emoji: emoji.into(),
        on,
    }
}

fn reaction(user: &str, seq: u64, emoji: &str) -> events::event::Reaction {
    events::event::Reaction {
        room_id: "r".into(),
        seq,
        user_id: user.into(),
        emoji: emoji.into(),
    }
}

/// [`staffed`] with a message of each: 1 by bob, 2 by ada, 3 by the owner.
fn chatty() -> Vec<Event> {
    let mut events = staffed();
    events.push(posted(1, "bob", "b1"));
    events.push(posted(2, "ada", "a1"));
    events.push(posted(3, "owner", "o1"));
    events
}

fn deleted(seq: u64, by: &str) -> Event {
    Event::MessageDeleted(events::event::MessageDeleted {
        room_id: "r".into(),
        seq,
        by: by.into(),
    })
}

#[test]
fn a_reply_names_a_message_of_the_room_deleted_or_not() {
    let mut events = chatty();
    events.push(deleted(1, "bob"));
    let s = given(&events);
    let reply = |to| Command::Post {
        user_id: "bob".into(),
        message_id: "r".into(),
        text: "re".into(),
        reply_to: Some(to),
    };
    assert_eq!(when(&s, reply(1)), Ok(Decision::Post(4)));
    assert_eq!(when(&s, reply(3)), Ok(Decision::Post(4)));
    assert_eq!(when(&s, reply(0)), Err(Rejection::BadReply));
    assert_eq!(when(&s, reply(4)), Err(Rejection::BadReply));
}

#[test]
fn only_the_author_edits_and_never_a_deleted_message() {
    let s = given(&chatty());
    let period = s.fact(1).unwrap().period;
    assert_eq!(
        when(&s, edit("bob", 1, "fixed")),
        Ok(Decision::Edit { seq: 1, period })
    );
    assert!(matches!(
        when(&s, edit("owner", 1, "not mine")),
        Err(Rejection::Forbidden(_))
    ));
    assert_eq!(when(&s, edit("bob", 9, "x")), Err(Rejection::NoSuchMessage));
    assert_eq!(when(&s, edit("bob", 1, "  ")), Err(Rejection::Empty));
    assert_eq!(when(&s, edit("eve", 1, "x")), Err(Rejection::NotMember));
    let mut events = chatty();
    events.push(deleted(1, "bob"));
    assert!(matches!(
        when(&given(&events), edit("bob", 1, "x")),
        Err(Rejection::Conflict(_))
    ));
}

#[test]
fn an_edit_is_folded_into_the_message() {
    let mut events = chatty();
    events.push(Event::MessageEdited(events::event::MessageEdited {
        room_id: "r".into(),
        seq: 1,
        user_id: "bob".into(),
        text: sealed("bob", "fixed"),
        period: 0,
    }));
    let s = given(&events);
    let f = s.fact(1).unwrap();
    assert_eq!((f.posted, f.text, f.version), (6, 9, 9));
    assert_eq!(s.author_of(f), "bob");
}

#[test]
fn authors_delete_their_own_admins_members_and_the_owner_anyones() {
    let s = given(&chatty());
    let done = |by: &str, seq| then(vec![deleted(seq, by)]);
    assert_eq!(when(&s, delete("bob", 1)), done("bob", 1));
    assert_eq!(when(&s, delete("ada", 1)), done("ada", 1));
    assert_eq!(when(&s, delete("owner", 2)), done("owner", 2));
    assert!(matches!(
        when(&s, delete("bob", 2)),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        when(&s, delete("ada", 3)),
        Err(Rejection::Forbidden(_))
    ));
    assert_eq!(when(&s, delete("bob", 9)), Err(Rejection::NoSuchMessage));
    let mut events = chatty();
    events.push(deleted(1, "bob"));
    let s = given(&events);
    assert_eq!(when(&s, delete("ada", 1)), Ok(Decision::AlreadyDone(None)));
    assert!(s.fact(1).unwrap().deleted);
}

#[test]
fn reactions_are_idempotent_and_at_most_twenty_distinct() {
    let s = given(&chatty());
    assert_eq!(
        when(&s, react("bob", 2, "👍", true)),
        then(vec![Event::ReactionAdded(reaction("bob", 2, "👍"))])
    );
    assert_eq!(
        when(&s, react("bob", 2, "👍", false)),
        Ok(Decision::AlreadyDone(None))
    );
    let mut events = chatty();
    for i in 0..20 {
        events.push(Event::ReactionAdded(reaction("ada", 2, &format!(":e{i}:"))));
    }
    let s = given(&events);
    assert_eq!(s.reactions_of(2).len(), 20);
    assert!(matches!(
        when(&s, react("bob", 2, ":e20:", true)),
        Err(Rejection::Conflict(_))
    ));
    // A symbol already there is no new one.
    assert!(when(&s, react("bob", 2, ":e3:", true)).is_ok());
    assert_eq!(
        when(&s, react("ada", 2, ":e3:", true)),
        Ok(Decision::AlreadyDone(None))
    );
    events.push(Event::ReactionRemoved(reaction("ada", 2, ":e3:")));
    let s = given(&events);
    assert_eq!(
        s.reactions_of(2).len(),
        19,
        "a symbol with nobody left is gone"
    );
    assert!(when(&s, react("bob", 2, ":e20:", true)).is_ok());
}

#[test]
fn emoji_rules_and_deleted_messages() {
    let s = given(&chatty());
    for bad in ["", "a b", "\t", &"x".repeat(MAX_EMOJI_CHARS + 1)] {
        assert_eq!(
            when(&s, react("bob", 2, bad, true)),
            Err(Rejection::BadEmoji),
            "{bad:?}"
        );
    }
    assert!(when(&s, react("bob", 2, &"é".repeat(MAX_EMOJI_CHARS), true)).is_ok());
    assert!(when(&s, react("bob", 2, ":thumbsup:", true)).is_ok());
    assert_eq!(
        when(&s, react("bob", 9, "👍", true)),
        Err(Rejection::NoSuchMessage)
    );
    let mut events = chatty();
    events.push(Event::ReactionAdded(reaction("bob", 2, "👍")));
    events.push(deleted(2, "ada"));
    let s = given(&events);
    assert!(
        s.reactions_of(2).is_empty(),
        "a deleted message loses its reactions"
    );
    assert!(matches!(
        when(&s, react("bob", 2, "👍", true)),
        Err(Rejection::Conflict(_))
    ));
}

#[test]
fn a_muted_member_deletes_but_neither_edits_nor_reacts_and_an_archive_refuses_all() {
    let mut events = chatty();
    events.push(Event::MemberMuted(MemberMuted {
        room_id: "r".into(),
        user_id: "bob".into(),
        by: "ada".into(),
        until: NOW + 1,
    }));
    let s = given(&events);
    assert_eq!(when(&s, edit("bob", 1, "x")), Err(Rejection::Muted));
    assert_eq!(when(&s, react("bob", 2, "👍", true)), Err(Rejection::Muted));
    assert!(when(&s, delete("bob", 1)).is_ok());
    let mut events = chatty();
    events.push(Event::RoomArchived(Archival {
        room_id: "r".into(),
        by: Some("owner".into()),
    }));
    let s = given(&events);
    assert_eq!(when(&s, edit("bob", 1, "x")), Err(Rejection::Archived));
    assert_eq!(
        when(&s, react("bob", 2, "👍", true)),
        Err(Rejection::Archived)
    );
    assert_eq!(when(&s, delete("bob", 1)), Err(Rejection::Archived));
}

#[test]
fn a_batch_sees_the_changes_parked_before_it() {
    let s = given(&chatty());
    let mut pending = Pending::default();
    let decide = |pending: &Pending, c: Command| decide_with(&s, pending, 4, NOW, &c);
    let Ok(Decision::Append(events)) = decide(&pending, react("bob", 2, "👍", true)) else {
        panic!("a reaction")
    };
    pending.note(&events[0]);
    assert_eq!(
        decide(&pending, react("bob", 2, "👍", true)),
        Ok(Decision::AlreadyDone(None))
    );
    assert!(decide(&pending, react("bob", 2, "👍", false)).is_ok());
    let Ok(Decision::Append(events)) = decide(&pending, delete("bob", 1)) else {
        panic!("a deletion")
    };
    pending.note(&events[0]);
    assert!(matches!(
        decide(&pending, edit("bob", 1, "too late")),
        Err(Rejection::Conflict(_))
    ));
    assert_eq!(
        decide(&pending, delete("ada", 1)),
        Ok(Decision::AlreadyDone(None))
    );
    pending.clear();
    assert!(decide(&pending, edit("bob", 1, "in time")).is_ok());
}

#[test]
fn an_erasure_turns_each_of_the_messages_into_a_placeholder_first() {
    let mut events = chatty();
    events.push(posted(4, "bob", "b2"));
    events.push(deleted(4, "bob"));
    events.push(posted(5, "bob", "b3"));
    let s = given(&events);
    let erase = Command::Erase {
        user_id: "bob".into(),
    };
    assert_eq!(
        when(&s, erase.clone()),
        then(vec![
            deleted(1, "bob"),
            deleted(5, "bob"),
            Event::MemberLeft(MemberLeft {
                room_id: "r".into(),
                user_id: "bob".into(),
            }),
        ])
    );
    // Someone who had left still has their messages made placeholders.
    events.push(Event::MemberLeft(MemberLeft {
        room_id: "r".into(),
        user_id: "bob".into(),
    }));
    assert_eq!(
        when(&given(&events), erase),
        then(vec![deleted(1, "bob"), deleted(5, "bob")])
    );
}
