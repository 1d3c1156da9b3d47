//! Leaving, moderation, roles, erased owners, settings and archiving.
use super::*;

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
