//! The projections' mappings, event by event.
use super::*;
use events::NewEvent;
use events::event::MemberJoined;

fn recorded(event: &Event, position: u64) -> Recorded {
    let n = NewEvent::with_id(uuid::Uuid::nil(), event, 42);
    Recorded {
        position,
        stream_id: "room-r".into(),
        version: 1,
        event_id: n.event_id,
        event_type: n.event_type.into(),
        schema_version: n.schema_version,
        recorded_at: n.recorded_at,
        payload: n.payload,
        hash: [0; 32],
    }
}

#[test]
fn a_join_touches_its_room_adds_a_member_and_uses_its_invite() {
    let e = Event::MemberJoined(MemberJoined {
        room_id: "r".into(),
        user_id: "u".into(),
        invite: Some("i".into()),
    });
    let rec = recorded(&e, 5);
    assert_eq!(
        Projection::Room.changes(&rec, &e, None),
        [Change::TouchRoom {
            room_id: "r".into(),
            seq: None,
            time: 42
        }]
    );
    assert_eq!(
        Projection::RoomMember.changes(&rec, &e, None),
        [Change::InsertMember {
            room_id: "r".into(),
            user_id: "u".into(),
            role: Role::Member,
            joined_at: 42
        }]
    );
    assert_eq!(
        Projection::RoomInvite.changes(&rec, &e, None),
        [Change::UseInvite {
            room_id: "r".into(),
            invite_id: "i".into()
        }]
    );
    for p in [
        Projection::User,
        Projection::RoomRecord,
        Projection::RoomCode,
    ] {
        assert!(p.changes(&rec, &e, None).is_empty(), "{p:?}");
    }
    let standing = Event::MemberJoined(MemberJoined {
        invite: None,
        ..match e {
            Event::MemberJoined(j) => j,
            _ => unreachable!(),
        }
    });
    assert!(
        Projection::RoomInvite
            .changes(&rec, &standing, None)
            .is_empty()
    );
}

#[test]
fn the_creator_is_the_owning_member_and_the_code_finds_the_room() {
    let e = events::testing::created("r", "o");
    let rec = recorded(&e, 1);
    assert_eq!(
        Projection::RoomMember.changes(&rec, &e, None),
        [Change::InsertMember {
            room_id: "r".into(),
            user_id: "o".into(),
            role: Role::Owner,
            joined_at: 42
        }]
    );
    assert_eq!(
        Projection::RoomCode.changes(&rec, &e, None),
        [Change::InsertCode {
            code_hash: events::event::join_code_hash(&format!("{:0>32}", "r")),
            room_id: "r".into(),
            invite_id: None
        }]
    );
}

#[test]
fn a_message_becomes_a_record_with_its_position() {
    let e = events::testing::posted("r", 3, "u", "<b>hi</b>");
    let rec = recorded(&e, 9);
    match &Projection::RoomRecord.changes(&rec, &e, Some("<b>hi</b>"))[..] {
        [
            Change::InsertRecord {
                seq: 3,
                position: 9,
                message,
                ..
            },
        ] => assert_eq!(message, "<b>hi</b>"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn changes_of_a_message_carry_its_version_and_the_order_of_reacting() {
    let post = Event::MessagePosted(events::event::MessagePosted {
        reply_to: Some(2),
        ..match events::testing::posted("r", 3, "u", "hi") {
            Event::MessagePosted(m) => m,
            _ => unreachable!(),
        }
    });
    let mut rec = recorded(&post, 9);
    rec.version = 7;
    match &Projection::RoomRecord.changes(&rec, &post, Some("hi"))[..] {
        [
            Change::InsertRecord {
                version: 7,
                reply_to: Some(2),
                ..
            },
        ] => {}
        other => panic!("{other:?}"),
    }
    let edit = Event::MessageEdited(events::event::MessageEdited {
        room_id: "r".into(),
        seq: 3,
        user_id: "u".into(),
        text: events::testing::seal(
            &events::seal::Subject::Room("r".into()),
            "unused: the opened text is given",
        ),
        period: 0,
    });
    rec.version = 8;
    assert_eq!(
        Projection::RoomRecord.changes(&rec, &edit, Some("  New\tText ")),
        [Change::EditRecord {
            room_id: "r".into(),
            seq: 3,
            message: Some("  New\tText ".into()),
            search_text: "new text".into(),
            time: 42,
            version: 8,
        }]
    );
    assert_eq!(
        Projection::RoomRecord.changes(&rec, &edit, None),
        [Change::EditRecord {
            room_id: "r".into(),
            seq: 3,
            message: None,
            search_text: String::new(),
            time: 42,
            version: 8,
        }]
    );
    let reaction = events::event::Reaction {
        room_id: "r".into(),
        seq: 3,
        user_id: "v".into(),
        emoji: "👍".into(),
    };
    let off = Event::ReactionRemoved(reaction);
    let rec = recorded(&off, 11);
    assert_eq!(
        Projection::RoomRecord.changes(&rec, &off, None),
        [Change::React {
            room_id: "r".into(),
            seq: 3,
            emoji: "👍".into(),
            user_id: "v".into(),
            on: false,
            position: 11,
            version: 1,
        }]
    );
    for p in ALL.into_iter().filter(|p| *p != Projection::RoomRecord) {
        assert!(p.changes(&rec, &off, None).is_empty(), "{p:?}");
        assert!(p.changes(&rec, &edit, None).is_empty(), "{p:?}");
    }
    assert_eq!(
        Projection::RoomRecord.tables(),
        ["room_record", "room_reaction", "room_record_version"]
    );
}

#[test]
fn a_direct_room_has_its_pair_and_no_code_and_blocks_follow_their_users() {
    let opened = Event::DirectRoomOpened(events::event::DirectRoomOpened {
        room_id: "d".into(),
        users: ["a".into(), "b".into()],
        by: "b".into(),
    });
    let rec = recorded(&opened, 1);
    match &Projection::Room.changes(&rec, &opened, None)[..] {
        [
            Change::InsertRoom {
                direct: Some(pair),
                owner,
                room_hash_id,
                ..
            },
        ] => {
            assert_eq!(pair, &["a".to_owned(), "b".to_owned()]);
            assert_eq!((owner.as_str(), room_hash_id.as_str()), ("", "direct:d"));
        }
        other => panic!("{other:?}"),
    }
    for p in ALL.into_iter().filter(|p| *p != Projection::Room) {
        assert!(p.changes(&rec, &opened, None).is_empty(), "{p:?}");
    }
    // Blocks are kept by the projection of users, whose streams hold them.
    let block = events::event::Block {
        by: "a".into(),
        user_id: "b".into(),
    };
    let on = Event::UserBlocked(block.clone());
    let off = Event::UserUnblocked(block);
    let erased = Event::UserErased(events::event::UserErased {
        user_id: "b".into(),
        by_operator: false,
    });
    let p = Projection::User;
    assert_eq!(
        p.changes(&rec, &on, None),
        [Change::InsertBlock {
            by: "a".into(),
            user_id: "b".into(),
            time: 42
        }]
    );
    assert_eq!(
        p.changes(&rec, &off, None),
        [Change::RemoveBlock {
            by: "a".into(),
            user_id: "b".into()
        }]
    );
    assert_eq!(
        p.changes(&rec, &erased, None),
        [
            Change::EraseUser {
                id: "b".into(),
                time: 42
            },
            Change::EraseBlocks {
                user_id: "b".into()
            }
        ]
    );
    assert_eq!(p.tables(), ["user", "user_block"]);
    for p in ALL.into_iter().filter(|p| *p != Projection::User) {
        assert!(p.changes(&rec, &on, None).is_empty(), "{p:?}");
    }
}

#[test]
fn search_patterns_escape_like_wildcards() {
    assert_eq!(like_pattern("  Hello\tWorld "), "%hello world%");
    assert_eq!(like_pattern("100%_\\x"), "%100\\%\\_\\\\x%");
}

#[test]
fn names_round_trip() {
    for p in ALL {
        assert_eq!(Projection::by_name(p.name()), Some(p));
    }
    assert_eq!(Projection::by_name("nope"), None);
}
