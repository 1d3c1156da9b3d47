//! Properties of a room under any sequence of commands: only members' posts are accepted,
//! accepted posts get `seq` 1, 2, 3, ... with no gap, and a repeated message id answers the
//! first `seq` and appends nothing.
//!
//! They are checked twice. First on the pure rules ([`room::decide`] and [`State::apply`]),
//! command by command, against a sequential model written from the contract. Then on the real
//! registry of room actors over an in-memory log: the commands go to the actor's mailbox in
//! order (posts without waiting, so consecutive ones share a batch), every answer is compared
//! with the model, the room's stream is read back and checked, and after a restart every
//! accepted id is resent and must answer its first `seq`.

use actors::room::{self, Command, Decision, MAX_TEXT_CHARS, Rejection, State};
use actors::{Error, NewRoom, Posted, Rooms, Settings};
use events::event::{MessagePosted, RoomCreated, join_code_hash, room_stream};
use events::seal::Subject;
use events::testing::joined;
use events::{Event, MemoryStore, Store};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

const OWNER: &str = "owner";
/// The owner, two users who may join, and one who never does unless a join names her.
const USERS: [&str; 4] = [OWNER, "ann", "bob", "eve"];

fn user() -> impl Strategy<Value = String> {
    proptest::sample::select(&USERS[..]).prop_map(str::to_owned)
}

/// Mostly a handful of ids, so that repeats are common; sometimes the edges of the id rule.
fn message_id() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0..6u8).prop_map(|i| format!("m{i}")),
        1 => Just(String::new()),
        1 => Just("i".repeat(128)),
        1 => Just("i".repeat(129)),
        1 => "\\PC{1,6}",
    ]
}

/// Empty, blank, ordinary, hostile, at and past the length limit, and anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" \n\t ".to_owned()),
        Just("hi".to_owned()),
        Just("<script>alert(1)</script>'); drop table event; --".to_owned()),
        Just("é".repeat(MAX_TEXT_CHARS)),
        Just(format!("  {}\n", "x".repeat(MAX_TEXT_CHARS))),
        Just("é".repeat(MAX_TEXT_CHARS + 1)),
        "\\PC{0,40}",
        any::<String>(),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        1 => user().prop_map(|user_id| Command::Join {
            user_id,
            code_hash: join_code_hash(JOIN_CODE)
        }),
        4 => (user(), message_id(), text()).prop_map(|(user_id, message_id, text)| {
            Command::Post {
                user_id,
                message_id,
                text,
                reply_to: None,
            }
        }),
    ]
}

const JOIN_CODE: &str = "00000000000000000000000000000000";

fn created(room_id: &str) -> Event {
    Event::RoomCreated(RoomCreated {
        room_id: room_id.into(),
        name: "Lobby".into(),
        description: String::new(),
        owner: OWNER.into(),
        avatar_image: String::new(),
        join_code_hash: join_code_hash(JOIN_CODE),
        join_code: events::testing::seal(&Subject::Room(room_id.into()), JOIN_CODE),
    })
}

/// What a room's event says, its sealed texts opened with the test key store: seals differ
/// by their random nonces, so events are compared by what they say.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fact {
    Created {
        room_id: String,
        name: String,
        owner: String,
        join_code_hash: [u8; 32],
        join_code: Option<String>,
    },
    Joined {
        room_id: String,
        user_id: String,
    },
    Posted {
        room_id: String,
        seq: u64,
        message_id: String,
        user_id: String,
        text: Option<String>,
        kind: String,
    },
    Other(String),
}

fn fact(event: &Event) -> Fact {
    match event {
        Event::RoomCreated(c) => Fact::Created {
            room_id: c.room_id.clone(),
            name: c.name.clone(),
            owner: c.owner.clone(),
            join_code_hash: c.join_code_hash,
            join_code: events::testing::open(&Subject::Room(c.room_id.clone()), &c.join_code),
        },
        Event::MemberJoined(j) => Fact::Joined {
            room_id: j.room_id.clone(),
            user_id: j.user_id.clone(),
        },
        Event::MessagePosted(m) => Fact::Posted {
            room_id: m.room_id.clone(),
            seq: m.seq,
            message_id: m.message_id.clone(),
            user_id: m.user_id.clone(),
            text: events::testing::open(&m.subject(), &m.text),
            kind: m.kind.clone(),
        },
        other => Fact::Other(format!("{other:?}")),
    }
}

fn facts(events: &[Event]) -> Vec<Fact> {
    events.iter().map(fact).collect()
}

/// What a room must do, written from the contract: commands take effect one after another;
/// a post is checked for membership, then its id, then its text, and only then is a repeated
/// id answered with its first `seq`.
struct Model {
    room_id: String,
    members: HashSet<String>,
    /// Client id to the `seq` it was first stored with.
    ids: HashMap<String, u64>,
    last_seq: u64,
    /// What the commands appended, in order.
    appended: Vec<Fact>,
}

impl Model {
    fn new(room_id: &str) -> Self {
        Self {
            room_id: room_id.to_owned(),
            members: HashSet::from([OWNER.to_owned()]),
            ids: HashMap::new(),
            last_seq: 0,
            appended: Vec::new(),
        }
    }

    fn step(&mut self, command: &Command) -> Result<Decision, Rejection> {
        match command {
            Command::Join { user_id, .. } => {
                if !self.members.insert(user_id.clone()) {
                    return Ok(Decision::AlreadyDone(None));
                }
                let event = joined(&self.room_id, user_id);
                self.appended.push(fact(&event));
                Ok(Decision::Append(vec![event]))
            }
            Command::Post {
                user_id,
                message_id,
                text,
                ..
            } => {
                if !self.members.contains(user_id) {
                    return Err(Rejection::NotMember);
                }
                let id_chars = message_id.chars().count();
                if id_chars == 0 || id_chars > 128 {
                    return Err(Rejection::BadId);
                }
                let text_chars = text.trim().chars().count();
                if text_chars == 0 {
                    return Err(Rejection::Empty);
                }
                if text_chars > MAX_TEXT_CHARS {
                    return Err(Rejection::TooLong);
                }
                if let Some(&seq) = self.ids.get(message_id) {
                    return Ok(Decision::AlreadyDone(Some(seq)));
                }
                self.last_seq += 1;
                self.ids.insert(message_id.clone(), self.last_seq);
                self.appended.push(Fact::Posted {
                    room_id: self.room_id.clone(),
                    seq: self.last_seq,
                    message_id: message_id.clone(),
                    user_id: user_id.clone(),
                    text: Some(text.clone()),
                    kind: "input".into(),
                });
                Ok(Decision::Post(self.last_seq))
            }
            other => unreachable!("only joins and posts are generated, not {other:?}"),
        }
    }
}

/// The invariants of a room's stream, checked on the events alone: it starts with its
/// creation, only members post, `seq` runs 1, 2, 3, ... and no client id is stored twice.
fn check_stream(events: &[Event]) -> Result<(), TestCaseError> {
    let Some(Event::RoomCreated(c)) = events.first() else {
        return Err(TestCaseError::fail(
            "a room's stream starts with RoomCreated",
        ));
    };
    let mut members = HashSet::from([c.owner.clone()]);
    let mut ids = HashSet::new();
    let mut last_seq = 0;
    for event in &events[1..] {
        match event {
            Event::MemberJoined(j) => {
                prop_assert_eq!(&j.room_id, &c.room_id);
                members.insert(j.user_id.clone());
            }
            Event::MessagePosted(m) => {
                prop_assert_eq!(&m.room_id, &c.room_id);
                prop_assert!(
                    members.contains(&m.user_id),
                    "{} posted without being a member",
                    m.user_id
                );
                prop_assert_eq!(m.seq, last_seq + 1, "seq gap or repeat");
                last_seq = m.seq;
                prop_assert!(ids.insert(m.message_id.clone()), "id stored twice");
                let text = events::testing::open(&m.subject(), &m.text);
                prop_assert!(text.is_some(), "the text of {} opens", m.seq);
                prop_assert!(room::check_text(text.as_deref().unwrap_or_default()).is_ok());
            }
            other => return Err(TestCaseError::fail(format!("{other:?} in a room"))),
        }
    }
    Ok(())
}

/// Runs `commands` through `decide` and `apply`, as the actor does one command at a time.
fn rules_keep_the_invariants(commands: &[Command]) -> Result<(), TestCaseError> {
    const ROOM: &str = "r";
    let mut state = State::new(ROOM);
    for command in commands.iter().take(3) {
        prop_assert_eq!(
            room::decide(&state, 1, 0, command),
            Err(Rejection::NotFound)
        );
    }
    let mut stream = vec![created(ROOM), joined(ROOM, OWNER)];
    for (i, event) in stream.iter().enumerate() {
        state.apply(event, i as u64 + 1, 0);
    }
    let mut model = Model::new(ROOM);
    for command in commands {
        let expected = model.step(command);
        let got = room::decide(&state, state.last_seq + 1, 0, command);
        prop_assert_eq!(&got, &expected, "for {:?}", command);
        let event = match (got, command) {
            (Ok(Decision::Append(mut events)), _) if events.len() == 1 => events.pop(),
            // What the actor appends for a post: its text sealed for the author.
            (
                Ok(Decision::Post(seq)),
                Command::Post {
                    user_id,
                    message_id,
                    text,
                    ..
                },
            ) => {
                let subject = Subject::Text {
                    user: user_id.clone(),
                    room: ROOM.into(),
                    period: 0,
                };
                Some(Event::MessagePosted(MessagePosted {
                    room_id: ROOM.into(),
                    seq,
                    message_id: message_id.clone(),
                    user_id: user_id.clone(),
                    text: events::testing::seal(&subject, text),
                    kind: "input".into(),
                    period: 0,
                    reply_to: None,
                }))
            }
            _ => None,
        };
        if let Some(event) = event {
            stream.push(event.clone());
            state.apply(&event, stream.len() as u64, 0);
        }
        prop_assert_eq!(state.last_seq, model.last_seq);
        prop_assert_eq!(state.version, stream.len() as u64);
    }
    check_stream(&stream)?;
    prop_assert_eq!(&facts(&stream[2..]), &model.appended);
    for (id, &seq) in &model.ids {
        prop_assert_eq!(state.recent(id).map(|(s, _)| s), Some(seq));
    }
    Ok(())
}

fn settings() -> Settings {
    Settings::new(Duration::from_secs(60), events::testing::keys())
}

async fn read_room(store: &dyn Store, room_id: &str) -> Vec<Event> {
    store
        .read_stream(&room_stream(room_id), 1, usize::MAX)
        .await
        .expect("the memory store reads")
        .iter()
        .map(|r| r.decode().expect("stored events decode"))
        .collect()
}

/// Compares an actor's answer to a post with what the model expected.
fn check_post(
    command: &Command,
    expected: &Result<Decision, Rejection>,
    got: Result<Posted, Error>,
) -> Result<(), TestCaseError> {
    match (expected, got) {
        (Err(r), Err(Error::Rejected(g))) => prop_assert_eq!(r, &g, "for {:?}", command),
        (Ok(Decision::Post(seq)), Ok(p)) => {
            prop_assert_eq!((p.seq, p.duplicate), (*seq, false), "for {:?}", command);
        }
        (Ok(Decision::AlreadyDone(Some(seq))), Ok(p)) => {
            prop_assert_eq!((p.seq, p.duplicate), (*seq, true), "for {:?}", command);
        }
        (e, g) => {
            return Err(TestCaseError::fail(format!(
                "for {command:?}: expected {e:?}, got {g:?}"
            )));
        }
    }
    Ok(())
}

/// Runs `commands` through the real registry and actors over a [`MemoryStore`].
async fn actors_keep_the_invariants(commands: Vec<Command>) -> Result<(), TestCaseError> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let rooms = Rooms::start(store.clone(), settings()).await.unwrap();
    let room_id = rooms
        .create(NewRoom {
            name: "Lobby".into(),
            description: String::new(),
            owner: OWNER.into(),
            avatar_image: String::new(),
            join_code: JOIN_CODE.into(),
        })
        .await
        .unwrap()
        .room_id;
    let room = rooms.room(&room_id).await.unwrap();
    let mut model = Model::new(&room_id);
    let mut waiting = Vec::new();
    for command in commands {
        let expected = model.step(&command);
        match &command {
            // Sent without waiting: the mailbox keeps their order and batches them.
            Command::Post {
                user_id,
                message_id,
                text,
                ..
            } => {
                let answer = room.post(user_id, message_id, text, None).unwrap();
                waiting.push((command, expected, answer));
            }
            // A join is awaited, as clients do before posting; the posts sent before it are
            // ahead of it in the mailbox.
            Command::Join { user_id, code_hash } => {
                let answer = rooms.join(&room_id, user_id, *code_hash).await;
                prop_assert!(answer.is_ok(), "join answered {:?}", answer);
            }
            other => unreachable!("only joins and posts are generated, not {other:?}"),
        }
    }
    for (command, expected, answer) in waiting {
        let got = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .expect("every post is answered")
            .expect("the room answers before it stops");
        check_post(&command, &expected, got)?;
    }

    let stream = read_room(&*store, &room_id).await;
    check_stream(&stream)?;
    prop_assert_eq!(
        facts(&stream[..2]),
        facts(&[created(&room_id), joined(&room_id, OWNER)])
    );
    prop_assert_eq!(&facts(&stream[2..]), &model.appended);

    // A fresh registry rebuilds the room from the log and still answers every retry with the
    // first seq, appending nothing.
    rooms.shutdown().await;
    let rooms = Rooms::start(store.clone(), settings()).await.unwrap();
    for (id, &seq) in &model.ids {
        let p = rooms.post(&room_id, OWNER, id, "retried").await.unwrap();
        prop_assert_eq!((p.seq, p.duplicate), (seq, true), "retry of {:?}", id);
    }
    prop_assert_eq!(read_room(&*store, &room_id).await.len(), stream.len());
    rooms.shutdown().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_commands_keep_the_room_rules(commands in prop::collection::vec(command(), 0..80)) {
        rules_keep_the_invariants(&commands)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_commands_keep_the_logged_room_valid(
        commands in prop::collection::vec(command(), 0..30),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(actors_keep_the_invariants(commands))?;
    }
}
