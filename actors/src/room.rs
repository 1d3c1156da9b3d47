//! The rules of a room, as plain data: [`State`] is what the room's stream says so far,
//! [`decide`] turns a command into the events it causes (or a refusal), and [`State::apply`]
//! folds an event in. The actor only adds mailboxes, batching and fan-out around these.

use crate::recent::Recent;
use events::Event;
use events::event::MemberJoined;
use std::collections::HashSet;

/// Longest message text, in Unicode code points, after trimming.
pub const MAX_TEXT_CHARS: usize = 4000;

/// A command to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Make `user_id` a member.
    Join {
        /// The joining user.
        user_id: String,
    },
    /// Post a message.
    Post {
        /// The author.
        user_id: String,
        /// The client's message id.
        message_id: String,
        /// The text as sent.
        text: String,
    },
}

/// Why a room refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The room's stream does not exist.
    #[error("no such room")]
    NotFound,
    /// Only members may post.
    #[error("you are not a member of this room")]
    NotMember,
    /// The text is empty after trimming.
    #[error("a message needs some text")]
    Empty,
    /// The text is longer than [`MAX_TEXT_CHARS`].
    #[error("a message may have at most {MAX_TEXT_CHARS} characters")]
    TooLong,
    /// The client message id is empty or too long.
    #[error("a message needs an id of 1 to 128 characters")]
    BadId,
}

/// What a decision produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Append this event.
    Append(Event),
    /// Post the message as `seq` (the actor seals its text as it appends it).
    Post(u64),
    /// Nothing to do: already true (a second join) or already stored (a retried post, with
    /// the first `seq`).
    AlreadyDone(Option<u64>),
}

/// The encoding of a [`State`] in a snapshot (bincode of its fields); change it whenever the
/// fields change, so that snapshots in the old encoding are ignored rather than misread.
pub const SNAPSHOT_FORMAT: u32 = 2;

/// A room as its stream describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// The room's id.
    pub room_id: String,
    /// Whether `RoomCreated` has been seen.
    pub exists: bool,
    /// Version of the last event applied.
    pub version: u64,
    /// Newest message seq.
    pub last_seq: u64,
    /// Members.
    pub members: HashSet<String>,
    /// The newest messages: the idempotency window and where each `seq` is in the stream.
    pub window: Recent,
}

impl State {
    /// An empty room state for `room_id`.
    pub fn new(room_id: impl Into<String>) -> Self {
        Self {
            room_id: room_id.into(),
            ..Self::default()
        }
    }

    /// Folds one event of the room's stream in; `version` is its stream version and
    /// `recorded_at` its time.
    pub fn apply(&mut self, event: &Event, version: u64, recorded_at: i64) {
        self.version = version;
        match event {
            Event::RoomCreated(c) => {
                self.exists = true;
                self.members.insert(c.owner.clone());
            }
            Event::MemberJoined(j) => {
                self.members.insert(j.user_id.clone());
            }
            Event::MemberLeft(l) => {
                self.members.remove(&l.user_id);
            }
            Event::MessagePosted(m) => {
                self.last_seq = m.seq;
                self.window
                    .remember(m.seq, &m.message_id, version, recorded_at);
            }
            // Events of other streams.
            _ => {}
        }
    }

    /// The seq and time of the message with this client id, if it is in the idempotency
    /// window ([`crate::recent`]).
    pub fn recent(&self, message_id: &str) -> Option<(u64, i64)> {
        self.window.find(message_id)
    }

    /// The state in [`SNAPSHOT_FORMAT`].
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("a room state always encodes")
    }

    /// A state encoded by [`State::encode`], or `None` when `bytes` are not one (or are one
    /// of another room).
    pub fn decode(room_id: &str, bytes: &[u8]) -> Option<Self> {
        let (state, read): (Self, usize) = bincode::serde::decode_from_slice(
            bytes,
            bincode::config::standard().with_limit::<{ 256 << 20 }>(),
        )
        .ok()?;
        (read == bytes.len() && state.room_id == room_id).then_some(state)
    }

    /// The stream version of the message with `seq`, if it is in the window.
    pub fn version_of(&self, seq: u64) -> Option<u64> {
        self.window.version_of(seq)
    }
}

/// Checks a message text the way the contract counts it.
///
/// # Errors
/// [`Rejection::Empty`] or [`Rejection::TooLong`].
pub fn check_text(text: &str) -> Result<(), Rejection> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Rejection::Empty);
    }
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        return Err(Rejection::TooLong);
    }
    Ok(())
}

/// Decides what `command` does to a room in `state`, given `next_seq` as the seq a new message
/// would get (the actor passes `last_seq + 1 + messages already waiting in its batch`).
///
/// # Errors
/// The [`Rejection`] that stops the command; nothing is appended then.
pub fn decide(state: &State, next_seq: u64, command: &Command) -> Result<Decision, Rejection> {
    if !state.exists {
        return Err(Rejection::NotFound);
    }
    match command {
        Command::Join { user_id } => {
            if state.members.contains(user_id) {
                Ok(Decision::AlreadyDone(None))
            } else {
                Ok(Decision::Append(Event::MemberJoined(MemberJoined {
                    room_id: state.room_id.clone(),
                    user_id: user_id.clone(),
                    invite: None,
                })))
            }
        }
        Command::Post {
            user_id,
            message_id,
            text,
        } => {
            if !state.members.contains(user_id) {
                return Err(Rejection::NotMember);
            }
            if message_id.is_empty() || message_id.chars().count() > 128 {
                return Err(Rejection::BadId);
            }
            check_text(text)?;
            if let Some((seq, _)) = state.recent(message_id) {
                return Ok(Decision::AlreadyDone(Some(seq)));
            }
            Ok(Decision::Post(next_seq))
        }
    }
}

#[cfg(test)]
mod tests {
    //! Given events, when a command, then events (or a refusal).
    use super::*;

    fn created() -> Event {
        events::testing::created("r", "owner")
    }

    fn joined(user: &str) -> Event {
        Event::MemberJoined(MemberJoined {
            room_id: "r".into(),
            user_id: user.into(),
            invite: None,
        })
    }

    fn posted(seq: u64, user: &str, id: &str) -> Event {
        Event::MessagePosted(events::event::MessagePosted {
            room_id: "r".into(),
            seq,
            message_id: id.into(),
            user_id: user.into(),
            text: events::testing::seal(
                &events::seal::Subject::User(user.into()),
                &format!("text {seq}"),
            ),
            kind: "input".into(),
            period: 0,
        })
    }

    fn post(user: &str, id: &str, text: &str) -> Command {
        Command::Post {
            user_id: user.into(),
            message_id: id.into(),
            text: text.into(),
        }
    }

    fn given(events: &[Event]) -> State {
        let mut s = State::new("r");
        for (i, e) in events.iter().enumerate() {
            s.apply(e, i as u64 + 1, 0);
        }
        s
    }

    fn when(state: &State, command: Command) -> Result<Decision, Rejection> {
        decide(state, state.last_seq + 1, &command)
    }

    #[test]
    fn nothing_happens_in_a_room_that_does_not_exist() {
        let s = given(&[]);
        assert_eq!(when(&s, post("a", "1", "hi")), Err(Rejection::NotFound));
        assert_eq!(
            when(
                &s,
                Command::Join {
                    user_id: "a".into()
                }
            ),
            Err(Rejection::NotFound)
        );
    }

    #[test]
    fn the_owner_is_a_member_and_posts_seq_one() {
        let s = given(&[created()]);
        assert_eq!(
            when(&s, post("owner", "m1", "hello")),
            Ok(Decision::Post(1))
        );
    }

    #[test]
    fn non_members_cannot_post_until_they_join() {
        let s = given(&[created()]);
        assert_eq!(when(&s, post("bob", "1", "hi")), Err(Rejection::NotMember));
        assert_eq!(
            when(
                &s,
                Command::Join {
                    user_id: "bob".into()
                }
            ),
            Ok(Decision::Append(joined("bob")))
        );
        let s = given(&[created(), joined("bob")]);
        assert!(matches!(
            when(&s, post("bob", "1", "hi")),
            Ok(Decision::Post(1))
        ));
    }

    #[test]
    fn joining_twice_changes_nothing() {
        let s = given(&[created(), joined("bob")]);
        assert_eq!(
            when(
                &s,
                Command::Join {
                    user_id: "bob".into()
                }
            ),
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
        match when(&s, post("bob", "c", "x")) {
            Ok(Decision::Post(seq)) => assert_eq!(seq, 3),
            other => panic!("{other:?}"),
        }
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
        assert!(matches!(
            when(&s, post("owner", "1", &max)),
            Ok(Decision::Post(1))
        ));
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
        assert!(matches!(
            when(&s, post("owner", "old", "again")),
            Ok(Decision::Post(seq)) if seq == last + 1
        ));
        assert_eq!(
            when(&s, post("owner", "id2", "again")),
            Ok(Decision::AlreadyDone(Some(2)))
        );
    }
}
