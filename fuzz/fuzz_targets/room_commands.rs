//! Sequences of room commands run through the room rules (`actors::room::decide` and
//! `State::apply`), as a room actor runs them: commands are decided as they arrive, with
//! `next_seq` counting the posts already waiting, and waiting events are applied in order
//! when a batch is written (the `Flush` command here).
//!
//! Invariants, checked after every step: only members' posts are accepted; accepted posts get
//! seq 1, 2, 3, ... in the order written, with no gap; a repeated id answers its first seq
//! and appends nothing; the room remembers where each recent seq is in its stream.
//!
//! Like the actor, this harness answers a repeated id found among the waiting posts with the
//! waiting post (the rules only know what is written), and a join is written before the next
//! command is decided (the actor's callers wait for a join before posting).
#![no_main]

use actors::recent::WINDOW_MESSAGES;
use actors::room::{self, Command, Decision, MAX_TEXT_CHARS, Rejection, State};
use arbitrary::Arbitrary;
use events::Event;
use events::event::{MemberJoined, MessagePosted, RoomCreated, join_code_hash};
use events::seal::{Key, Subject};
use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};

const USERS: [&str; 4] = ["owner", "ann", "bob", "eve"];

#[derive(Arbitrary, Debug)]
enum Text {
    Hi,
    Blank,
    AtLimit,
    OverLimit,
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Id {
    Few(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Join { user: u8 },
    Post { user: u8, id: Id, text: Text },
    Flush,
}

fn user(i: u8) -> String {
    USERS[usize::from(i) % USERS.len()].to_owned()
}

fn command(op: &Op) -> Option<Command> {
    match op {
        Op::Join { user: u } => Some(Command::Join {
            user_id: user(*u),
            code_hash: join_code_hash(&"0".repeat(32)),
        }),
        Op::Post { user: u, id, text } => Some(Command::Post {
            user_id: user(*u),
            message_id: match id {
                Id::Few(i) => format!("m{}", i % 8),
                Id::Any(s) => s.clone(),
            },
            text: match text {
                Text::Hi => "hi".to_owned(),
                Text::Blank => " \n ".to_owned(),
                Text::AtLimit => "é".repeat(MAX_TEXT_CHARS),
                Text::OverLimit => "é".repeat(MAX_TEXT_CHARS + 1),
                Text::Any(s) => s.clone(),
            },
            reply_to: None,
        }),
        Op::Flush => None,
    }
}

struct Room {
    state: State,
    stream_len: u64,
    /// Events decided and waiting to be written.
    waiting: Vec<Event>,
    /// Every id ever accepted, with its seq.
    ids: HashMap<String, u64>,
    /// seq to the stream version it was written at.
    versions: Vec<u64>,
    members: HashSet<String>,
    /// Seals the texts of posts, as the actor does before it writes them.
    key: Key,
}

impl Room {
    fn new() -> Self {
        let mut state = State::new("r");
        let key = Key::random();
        let code = "0".repeat(32);
        state.apply(
            &Event::RoomCreated(RoomCreated {
                room_id: "r".into(),
                name: "Lobby".into(),
                description: String::new(),
                owner: "owner".into(),
                avatar_image: String::new(),
                join_code_hash: join_code_hash(&code),
                join_code: key.seal(&Subject::Room("r".into()), &code),
            }),
            1,
            0,
        );
        Self {
            state,
            stream_len: 1,
            waiting: Vec::new(),
            ids: HashMap::new(),
            versions: Vec::new(),
            members: HashSet::from(["owner".to_owned()]),
            key,
        }
    }

    fn flush(&mut self) {
        for event in std::mem::take(&mut self.waiting) {
            self.stream_len += 1;
            match &event {
                Event::MessagePosted(m) => {
                    assert_eq!(m.seq, self.state.last_seq + 1, "seq gap or repeat");
                    let text = self.key.open(&m.subject(), &m.text);
                    assert!(room::check_text(&text.expect("the text opens")).is_ok());
                    assert!(self.members.contains(&m.user_id), "a non-member's post");
                    self.versions.push(self.stream_len);
                }
                Event::MemberJoined(j) => {
                    self.members.insert(j.user_id.clone());
                }
                other => panic!("{other:?} decided"),
            }
            self.state.apply(&event, self.stream_len, 0);
        }
        assert_eq!(self.state.last_seq, self.versions.len() as u64);
        assert_eq!(self.state.version, self.stream_len);
    }

    fn run(&mut self, command: &Command) {
        let waiting_posts = self
            .waiting
            .iter()
            .filter(|e| matches!(e, Event::MessagePosted(_)))
            .count() as u64;
        let next = self.state.last_seq + 1 + waiting_posts;
        let decided = room::decide(&self.state, next, 0, command);
        match (command, decided) {
            (Command::Join { user_id, .. }, Ok(Decision::AlreadyDone(None))) => {
                assert!(self.members.contains(user_id));
            }
            (Command::Join { user_id, .. }, Ok(Decision::Append(events))) => {
                assert!(!self.members.contains(user_id));
                let e = Event::MemberJoined(MemberJoined {
                    room_id: "r".into(),
                    user_id: user_id.clone(),
                    invite: None,
                });
                assert_eq!(events, vec![e.clone()]);
                self.waiting.push(e);
                self.flush();
            }
            (Command::Post { user_id, .. }, Err(Rejection::NotMember)) => {
                assert!(!self.members.contains(user_id));
            }
            (Command::Post { user_id, .. }, Err(_)) => {
                assert!(self.members.contains(user_id));
            }
            (
                Command::Post {
                    user_id,
                    message_id,
                    ..
                },
                Ok(Decision::AlreadyDone(Some(seq))),
            ) => {
                assert!(self.members.contains(user_id));
                assert_eq!(self.ids.get(message_id), Some(&seq), "not the first seq");
            }
            (
                Command::Post {
                    user_id,
                    message_id,
                    text,
                    ..
                },
                Ok(Decision::Post(seq)),
            ) => {
                assert!(
                    self.members.contains(user_id),
                    "a non-member's post accepted"
                );
                assert!(room::check_text(text).is_ok());
                let m = MessagePosted {
                    room_id: "r".into(),
                    seq,
                    message_id: message_id.clone(),
                    user_id: user_id.clone(),
                    text: self.key.seal(
                        &Subject::Text {
                            user: user_id.clone(),
                            room: "r".into(),
                            period: 0,
                        },
                        text,
                    ),
                    kind: "input".into(),
                    period: 0,
                    reply_to: None,
                };
                if self
                    .waiting
                    .iter()
                    .any(|e| matches!(e, Event::MessagePosted(w) if w.message_id == *message_id))
                {
                    // The actor hands this to the waiting post with the same id.
                    return;
                }
                assert!(
                    !self.ids.contains_key(message_id),
                    "a repeated id appended again"
                );
                assert_eq!(m.seq, next);
                self.ids.insert(message_id.clone(), m.seq);
                self.waiting.push(Event::MessagePosted(m));
            }
            (c, d) => panic!("{c:?} decided {d:?}"),
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    // Past its window the room forgets old ids, and a retry of one is a new message; inputs
    // stay well inside the window.
    let mut room = Room::new();
    for op in ops.iter().take(WINDOW_MESSAGES / 2) {
        match command(op) {
            Some(c) => room.run(&c),
            None => room.flush(),
        }
    }
    room.flush();
    for (seq, &version) in room.versions.iter().enumerate() {
        assert_eq!(room.state.version_of(seq as u64 + 1), Some(version));
    }
    for (id, &seq) in &room.ids {
        assert_eq!(room.state.recent(id).map(|(s, _)| s), Some(seq));
    }
});
