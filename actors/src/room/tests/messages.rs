//! Replies, edits, deletions, reactions, and what an erasure does to messages.
use super::*;

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
