//! Given events, when a command, then events (or a refusal): one test per rule of the room.
//! Here the helpers and part 1's rules; governance, invites and messages in their own files.
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

mod direct;
mod governance;
mod invites;
mod messages;
