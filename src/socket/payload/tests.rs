//! Payloads as the contract reads them.
use super::*;
use serde_json::json;

fn refused(event: Event, data: Value) -> (&'static str, String) {
    let f = parse(event, &data).expect_err(&data.to_string());
    (f.code, f.message)
}

#[test]
fn a_message_is_read_with_its_id_as_sent() {
    let data = json!({"roomId": "r", "id": "m-1", "message": " hi ", "type": "input",
        "userId": "u", "extra": [1]});
    assert_eq!(
        parse(Event::UserSendMessage, &data),
        Ok(Request::Send {
            room_id: "r".into(),
            id: json!("m-1"),
            key: "m-1".into(),
            text: " hi ".into(),
            reply_to: None,
        })
    );
    let number = json!({"roomId": "r", "id": 42, "message": "x", "type": null});
    match parse(Event::UserSendMessage, &number) {
        Ok(Request::Send { id, key, .. }) => assert_eq!((id, key.as_str()), (json!(42), "42")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_malformed_message_names_its_first_fault_in_the_contract_order() {
    let send = Event::UserSendMessage;
    for (data, message) in [
        (json!("just a string"), "roomId must be a room id"),
        // Positions are not fields.
        (json!(["r", "m", "text"]), "roomId must be a room id"),
        (
            json!({"id": "m", "message": "x"}),
            "roomId must be a room id",
        ),
        // Every field wrong: roomId is named, though "id" comes first among the keys.
        (
            json!({"roomId": 5, "id": true, "message": 1, "type": 2}),
            "roomId must be a room id",
        ),
        (
            json!({"roomId": "r", "id": null, "message": "x"}),
            "id must be the message's own id (a string or number)",
        ),
        (
            json!({"roomId": "r", "id": ["m"], "message": "x"}),
            "id must be the message's own id (a string or number)",
        ),
        (json!({"roomId": "r", "id": "m"}), "message must be text"),
        (
            json!({"roomId": "r", "id": "m", "message": {"text": "x"}}),
            "message must be text",
        ),
        (
            json!({"roomId": "r", "id": "m", "message": "x", "type": "Input"}),
            "type must be \"input\"",
        ),
    ] {
        assert_eq!(
            refused(send, data.clone()),
            ("bad_request", message.into()),
            "{data}"
        );
    }
    let blank = json!({"roomId": "r", "id": "m", "message": " \n "});
    assert_eq!(refused(send, blank).0, "bad_request");
    let long = json!({"roomId": "r", "id": "m", "message": "a".repeat(4001)});
    assert_eq!(refused(send, long).0, "too_large");
}

#[test]
fn join_one_chat_keeps_the_room_id_opaque() {
    let join = |data: Value| parse(Event::JoinOneChat, &data);
    assert_eq!(
        join(json!({"roomId": "r", "since": 3})),
        Ok(Request::Join {
            rooms: vec![json!("r")],
            since: SinceMap::from([("r".into(), Field::Sent(Some(3)))]),
            since_version: SinceMap::new(),
            one: true,
        })
    );
    let both = join(json!({"roomId": "r", "since": 3, "sinceVersion": 7})).unwrap();
    let Request::Join {
        since,
        since_version,
        ..
    } = both
    else {
        panic!("a join")
    };
    assert_eq!(
        resume_of(&since, &since_version, "r"),
        Ok(actors::Resume::Version(7))
    );
    assert_eq!(
        resume_of(&since, &SinceMap::new(), "r"),
        Ok(actors::Resume::Seq(3))
    );
    assert!(join(json!({"roomId": "r", "sinceVersion": -1})).is_err());
    // A room id that is no string is refused when the room is joined, not here.
    for room in [json!(42), json!(null), json!({"id": "r"})] {
        match join(json!({"roomId": room, "since": 1})) {
            Ok(Request::Join { rooms, since, .. }) => {
                assert_eq!((rooms, since.len()), (vec![room], 0));
            }
            other => panic!("{other:?}"),
        }
    }
    let no_since = join(json!({"roomId": "r", "since": null})).unwrap();
    assert!(matches!(no_since, Request::Join { since, .. } if since.is_empty()));
    for since in [json!("abc"), json!(-1), json!(1.5), json!([1])] {
        assert_eq!(
            join(json!({"roomId": "r", "since": since}))
                .unwrap_err()
                .message,
            "since must be a whole number of 0 or more"
        );
    }
    assert_eq!(
        join(json!({"since": "x"})).unwrap_err().message,
        "roomId is missing"
    );
    for data in [json!("not an object"), json!(["r"])] {
        assert_eq!(
            join(data).unwrap_err().message,
            "join_one_chat needs {\"roomId\", \"since\"}"
        );
    }
}

#[test]
fn join_all_refuses_a_bad_since_for_its_room_only() {
    let data = json!({"roomList": ["a", "b", 7], "since": {"a": 2, "b": "x", "c": []}});
    let Ok(Request::Join {
        rooms, since, one, ..
    }) = parse(Event::JoinAll, &data)
    else {
        panic!()
    };
    assert_eq!(
        (rooms, one),
        (vec![json!("a"), json!("b"), json!(7)], false)
    );
    let none = SinceMap::new();
    assert_eq!(resume_of(&since, &none, "a"), Ok(actors::Resume::Seq(2)));
    assert_eq!(
        resume_of(&since, &none, "b").unwrap_err().code,
        "bad_request"
    );
    assert_eq!(resume_of(&since, &none, "d"), Ok(actors::Resume::No));

    let needs = "join_all needs {\"roomList\": [roomId, ...]}";
    for data in [
        json!({}),
        json!({"roomList": "a"}),
        json!({"roomList": null}),
        json!("junk"),
    ] {
        assert_eq!(refused(Event::JoinAll, data), ("bad_request", needs.into()));
    }
    assert_eq!(
        refused(Event::JoinAll, json!({"roomList": ["a"], "since": [1]})).1,
        "since must be an object {roomId: seq}"
    );
    let many = json!({"roomList": vec!["r"; 1001], "since": 5});
    assert_eq!(refused(Event::JoinAll, many).0, "too_large");
    assert!(
        !parse(Event::JoinAll, &json!({"roomList": []}))
            .unwrap()
            .joins_rooms()
    );
}

#[test]
fn user_id_is_compared_by_value() {
    let user = "4b2f";
    for (data, allowed) in [
        (json!({"userId": "4b2f"}), true),
        (json!({"other": 1}), true),
        (json!("not an object"), true),
        (json!({"userId": "4B2F"}), false),
        (json!({"userId": 4}), false),
        (json!({"userId": null}), false),
        (json!({"userId": ["4b2f"]}), false),
    ] {
        let checked = Common::of(&data).check_user(user);
        assert_eq!(checked.is_ok(), allowed, "{data}");
        if let Err(f) = checked {
            assert_eq!(f.code, "forbidden");
        }
    }
    assert_eq!(Common::of(&json!({"id": 5})).echo(), Some(&json!(5)));
    assert_eq!(Common::of(&json!([5])).echo(), None);
}

#[test]
fn changes_to_a_message_are_read_with_their_seq() {
    let edit = json!({"roomId": "r", "seq": 3, "message": "fixed"});
    assert_eq!(
        parse(Event::EditMessage, &edit),
        Ok(Request::Change {
            room_id: "r".into(),
            change: MessageChange::Edit {
                seq: 3,
                text: "fixed".into()
            },
        })
    );
    let react = json!({"roomId": "r", "seq": 3, "emoji": "👍", "on": false});
    assert_eq!(
        parse(Event::React, &react),
        Ok(Request::Change {
            room_id: "r".into(),
            change: MessageChange::React {
                seq: 3,
                emoji: "👍".into(),
                on: false
            },
        })
    );
    for (event, data) in [
        (
            Event::EditMessage,
            json!({"roomId": "r", "seq": -1, "message": "x"}),
        ),
        (
            Event::EditMessage,
            json!({"roomId": "r", "seq": 1, "message": "  "}),
        ),
        (Event::DeleteMessage, json!({"roomId": "r", "seq": "1"})),
        (Event::React, json!({"roomId": "r", "seq": 1, "emoji": "x"})),
        (
            Event::React,
            json!({"roomId": "r", "seq": 1, "emoji": 5, "on": true}),
        ),
        (
            Event::UserSendMessage,
            json!({"roomId": "r", "id": "m", "message": "x", "replyTo": 1.5}),
        ),
    ] {
        assert_eq!(refused(event, data.clone()).0, "bad_request", "{data}");
    }
    let reply = json!({"roomId": "r", "id": "m", "message": "x", "replyTo": 2});
    assert!(matches!(
        parse(Event::UserSendMessage, &reply),
        Ok(Request::Send {
            reply_to: Some(2),
            ..
        })
    ));
}

#[test]
fn mark_read_and_typing_are_read_strictly() {
    assert_eq!(
        parse(Event::MarkRead, &json!({"roomId": "r", "seq": 4})),
        Ok(Request::MarkRead {
            room_id: "r".into(),
            seq: 4
        })
    );
    assert_eq!(
        parse(Event::Typing, &json!({"roomId": "r", "seq": "ignored"})),
        Ok(Request::Typing {
            room_id: "r".into()
        })
    );
    for bad in [
        json!({"roomId": "r"}),
        json!({"roomId": "r", "seq": -1}),
        json!({"roomId": "r", "seq": 1.5}),
        json!({"roomId": 3, "seq": 1}),
        json!(["r", 1]),
    ] {
        assert_eq!(refused(Event::MarkRead, bad).0, "bad_request");
    }
    for bad in [json!({}), json!({"roomId": null}), json!("r")] {
        assert_eq!(refused(Event::Typing, bad).0, "bad_request");
    }
    assert_eq!(Event::named("mark_read"), Some(Event::MarkRead));
    assert_eq!(Event::named("typing"), Some(Event::Typing));
}
