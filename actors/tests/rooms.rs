//! Room actors driven through the registry on an in-memory log.

use actors::room::Rejection;
use actors::{Delivery, Error, NewRoom, Rooms, Settings, Sink, Subscriber};
use events::{MemoryStore, Store};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use actors::Resume;
use common::wait_until;

/// The hash of the join code the tests' rooms are made with.
fn code_hash() -> [u8; 32] {
    events::event::join_code_hash(&"0".repeat(32))
}

#[derive(Default)]
struct Collect {
    got: Mutex<Vec<Delivery>>,
    closed: Mutex<bool>,
    capacity: Option<usize>,
}

impl Sink for Collect {
    fn deliver(&self, d: &Delivery) -> bool {
        let mut got = self.got.lock().unwrap();
        if self.capacity.is_some_and(|c| got.len() >= c) {
            return false;
        }
        got.push(d.clone());
        true
    }
    fn closed(&self) {
        *self.closed.lock().unwrap() = true;
    }
}

impl Collect {
    fn seqs(&self) -> Vec<u64> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|d| match d {
                Delivery::Message(m) => Some(m.seq),
                Delivery::Joined(_) | Delivery::Event(_) | Delivery::Updated(_) => None,
            })
            .collect()
    }
}

fn settings() -> Settings {
    Settings::new(Duration::from_secs(60), events::testing::keys())
}

async fn setup() -> (Arc<dyn Store>, Rooms, String) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let rooms = Rooms::start(store.clone(), settings()).await.unwrap();
    let created = rooms
        .create(NewRoom {
            name: "Lobby".into(),
            description: String::new(),
            owner: "owner".into(),
            avatar_image: String::new(),
            join_code: "0".repeat(32),
        })
        .await
        .unwrap();
    (store, rooms, created.room_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_get_gap_free_seqs_and_subscribers_see_them_in_order() {
    let (_, rooms, room) = setup().await;
    let sink = Arc::new(Collect::default());
    rooms
        .subscribe(
            &room,
            Subscriber {
                id: 1,
                user_id: "owner".into(),
                sink: sink.clone(),
            },
            Resume::No,
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..10 {
        let rooms = rooms.clone();
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let p = rooms
                    .post(&room, "owner", &format!("{t}-{i}"), "hi")
                    .await
                    .unwrap();
                seqs.push(p.seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one sender's order kept"
        );
        all.extend(seqs);
    }
    all.sort();
    assert_eq!(all, (1..=200).collect::<Vec<_>>());
    wait_until(|| sink.seqs().len() == 200).await;
    assert_eq!(sink.seqs(), (1..=200).collect::<Vec<_>>());
}

#[tokio::test]
async fn posts_sent_without_waiting_are_batched_and_keep_their_order() {
    let (store, rooms, room) = setup().await;
    let handle = rooms.room(&room).await.unwrap();
    let receivers: Vec<_> = (0..50)
        .map(|i| handle.post("owner", &format!("m{i}"), "x", None).unwrap())
        .collect();
    let mut seqs = Vec::new();
    for r in receivers {
        seqs.push(r.await.unwrap().unwrap().seq);
    }
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    // Two events at creation, then the 50 posts; far fewer appends than posts is what batching
    // means, and it shows as fewer distinct commit times only on a real disk, so here we only
    // check nothing was lost or doubled.
    assert_eq!(store.read_all(0, 1000).await.unwrap().len(), 52);
}

#[tokio::test]
async fn members_only_and_joining_twice_is_harmless() {
    let (_, rooms, room) = setup().await;
    assert_eq!(
        rooms.post(&room, "bob", "1", "hi").await.unwrap_err(),
        Error::Rejected(Rejection::NotMember)
    );
    let sink = Arc::new(Collect::default());
    let sub = Subscriber {
        id: 9,
        user_id: "bob".into(),
        sink,
    };
    assert_eq!(
        rooms
            .subscribe(&room, sub.clone(), Resume::No)
            .await
            .unwrap_err(),
        Error::Rejected(Rejection::NotMember)
    );
    rooms.join(&room, "bob", code_hash()).await.unwrap();
    rooms.join(&room, "bob", code_hash()).await.unwrap();
    assert_eq!(rooms.post(&room, "bob", "1", "hi").await.unwrap().seq, 1);
    rooms.subscribe(&room, sub, Resume::No).await.unwrap();
    assert_eq!(
        rooms
            .post("no-such-room", "bob", "1", "hi")
            .await
            .unwrap_err(),
        Error::Rejected(Rejection::NotFound)
    );
}

#[tokio::test]
async fn a_retry_returns_the_first_seq_also_after_a_restart() {
    let (store, rooms, room) = setup().await;
    let first = rooms.post(&room, "owner", "same", "hello").await.unwrap();
    let again = rooms.post(&room, "owner", "same", "hello").await.unwrap();
    assert_eq!((again.seq, again.duplicate), (first.seq, true));
    assert_eq!(again.time_ms, first.time_ms);
    for i in 0..1500 {
        rooms
            .post(&room, "owner", &format!("n{i}"), "x")
            .await
            .unwrap();
    }
    rooms.shutdown().await;
    // A fresh registry rebuilds from the log; "same" is older than the room's recent memory,
    // so the log itself answers.
    let rooms = Rooms::start(store.clone(), settings()).await.unwrap();
    let after = rooms.post(&room, "owner", "same", "hello").await.unwrap();
    assert_eq!((after.seq, after.duplicate), (first.seq, true));
    let next = rooms.post(&room, "owner", "new", "x").await.unwrap();
    assert_eq!(next.seq, 1502);
    assert_eq!(store.read_all(0, 10_000).await.unwrap().len(), 2 + 1501 + 1);
}

#[tokio::test]
async fn resume_replays_what_was_missed_then_goes_live() {
    let (_, rooms, room) = setup().await;
    for i in 1..=10 {
        rooms
            .post(&room, "owner", &format!("m{i}"), "x")
            .await
            .unwrap();
    }
    let sink = Arc::new(Collect::default());
    let sub = |id| Subscriber {
        id,
        user_id: "owner".into(),
        sink: sink.clone(),
    };
    let s = rooms
        .subscribe(&room, sub(1), Resume::Seq(7))
        .await
        .unwrap();
    assert_eq!((s.last_seq, s.recovered), (10, true));
    rooms.post(&room, "owner", "m11", "x").await.unwrap();
    wait_until(|| sink.seqs().len() == 4).await;
    assert_eq!(sink.seqs(), [8, 9, 10, 11]);
    let s = rooms
        .subscribe(&room, sub(2), Resume::Seq(11))
        .await
        .unwrap();
    assert!(s.recovered);
    let s = rooms
        .subscribe(&room, sub(3), Resume::Seq(50))
        .await
        .unwrap();
    assert!(!s.recovered);
    let s = rooms.subscribe(&room, sub(4), Resume::No).await.unwrap();
    assert!(!s.recovered);
}

#[tokio::test]
async fn resume_past_the_cap_replays_nothing() {
    let (_, rooms, room) = setup().await;
    for i in 0..1002 {
        rooms
            .post(&room, "owner", &format!("m{i}"), "x")
            .await
            .unwrap();
    }
    let sink = Arc::new(Collect::default());
    let s = rooms
        .subscribe(
            &room,
            Subscriber {
                id: 1,
                user_id: "owner".into(),
                sink: sink.clone(),
            },
            Resume::Seq(1),
        )
        .await
        .unwrap();
    assert_eq!((s.last_seq, s.recovered), (1002, false));
    assert!(sink.seqs().is_empty());
    let s = rooms
        .subscribe(
            &room,
            Subscriber {
                id: 2,
                user_id: "owner".into(),
                sink: sink.clone(),
            },
            Resume::Seq(2),
        )
        .await
        .unwrap();
    assert!(s.recovered);
    assert_eq!(sink.seqs(), (3..=1002).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_subscriber_that_cannot_keep_up_is_dropped_and_told() {
    let (_, rooms, room) = setup().await;
    let slow = Arc::new(Collect {
        capacity: Some(3),
        ..Collect::default()
    });
    rooms
        .subscribe(
            &room,
            Subscriber {
                id: 1,
                user_id: "owner".into(),
                sink: slow.clone(),
            },
            Resume::No,
        )
        .await
        .unwrap();
    for i in 0..5 {
        rooms
            .post(&room, "owner", &format!("m{i}"), "x")
            .await
            .unwrap();
    }
    wait_until(|| *slow.closed.lock().unwrap()).await;
    assert_eq!(slow.seqs(), [1, 2]);
}

#[tokio::test]
async fn idle_rooms_stop_and_come_back_from_the_log() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let rooms = Rooms::start(
        store.clone(),
        Settings::new(Duration::from_millis(100), events::testing::keys()),
    )
    .await
    .unwrap();
    let room = rooms
        .create(NewRoom {
            name: "x".into(),
            description: String::new(),
            owner: "owner".into(),
            avatar_image: String::new(),
            join_code: "1".repeat(32),
        })
        .await
        .unwrap()
        .room_id;
    rooms.post(&room, "owner", "a", "x").await.unwrap();
    assert_eq!(rooms.active(), 1);
    wait_until(|| rooms.active() == 0).await;
    assert_eq!(rooms.post(&room, "owner", "b", "x").await.unwrap().seq, 2);
}

#[tokio::test]
async fn registration_keeps_names_unique_ignoring_case() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let keys = events::testing::keys();
    let register = |name: &'static str| {
        let (store, keys) = (store.clone(), keys.clone());
        async move { actors::users::register(&*store, &keys, &actors::users::new_id(), name).await }
    };
    register("Alice").await.unwrap();
    assert!(matches!(
        register("aLICE").await,
        Err(actors::users::Error::NameTaken)
    ));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(register("Bob")));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap().is_ok() as usize;
    }
    assert_eq!(wins, 1);
}

/// A sink that panics inside the room actor, to make it fail.
struct Exploding;

impl Sink for Exploding {
    fn deliver(&self, d: &Delivery) -> bool {
        if matches!(d, Delivery::Message(_)) {
            panic!("a sink exploded");
        }
        true
    }
    fn closed(&self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_room_is_restarted_from_the_log_and_its_subscribers_told() {
    let (_, rooms, room) = setup().await;
    rooms.post(&room, "owner", "a", "x").await.unwrap();
    let bystander = Arc::new(Collect::default());
    rooms
        .subscribe(
            &room,
            Subscriber {
                id: 1,
                user_id: "owner".into(),
                sink: bystander.clone(),
            },
            Resume::No,
        )
        .await
        .unwrap();
    rooms
        .subscribe(
            &room,
            Subscriber {
                id: 2,
                user_id: "owner".into(),
                sink: Arc::new(Exploding),
            },
            Resume::No,
        )
        .await
        .unwrap();
    // The write happens, then fan-out panics: the actor fails after the event is durable.
    let _ = rooms.post(&room, "owner", "b", "x").await;
    wait_until(|| *bystander.closed.lock().unwrap()).await;
    // The supervisor started a fresh actor from the log: seq continues after "b", and a
    // retry of "b" answers its first seq.
    let retry = rooms.post(&room, "owner", "b", "x").await.unwrap();
    assert_eq!((retry.seq, retry.duplicate), (2, true));
    assert_eq!(rooms.post(&room, "owner", "c", "x").await.unwrap().seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registries_on_one_log_never_share_a_seq_and_see_each_other() {
    // Two registries over one store stand for two server processes on one database.
    let (store, a, room) = setup().await;
    let b = Rooms::start(store.clone(), settings()).await.unwrap();
    let sink = Arc::new(Collect::default());
    a.subscribe(
        &room,
        Subscriber {
            id: 1,
            user_id: "owner".into(),
            sink: sink.clone(),
        },
        Resume::No,
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for (n, rooms) in [a.clone(), b.clone()].into_iter().enumerate() {
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..30 {
                seqs.push(
                    rooms
                        .post(&room, "owner", &format!("{n}-{i}"), "x")
                        .await
                        .unwrap()
                        .seq,
                );
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=60).collect::<Vec<_>>(), "no seq twice, none lost");
    // What b wrote reaches a's subscriber once a hears of it (the server's log follower does
    // this), in seq order, each once.
    a.observe(&room, u64::MAX);
    wait_until(|| sink.seqs().len() == 60).await;
    assert_eq!(sink.seqs(), (1..=60).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_joins_of_one_user_write_one_event() {
    let (store, rooms, room) = setup().await;
    let handle = rooms.clone();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let rooms = handle.clone();
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            rooms.join(&room, "bob", code_hash()).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let joins = store
        .read_stream(&events::event::room_stream(&room), 1, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "MemberJoined")
        .count();
    assert_eq!(joins, 2, "the owner's join and bob's, once");
}

#[tokio::test]
async fn a_batch_of_many_old_retries_answers_each_and_writes_the_rest() {
    let (store, rooms, room) = setup().await;
    // More messages than the room remembers, so retries of the first ones are answered by
    // the log's duplicate check, one by one, within a single batch.
    for i in 0..1100 {
        rooms
            .post(&room, "owner", &format!("old{i}"), "x")
            .await
            .unwrap();
    }
    let handle = rooms.room(&room).await.unwrap();
    let mut receivers: Vec<_> = (0..40)
        .map(|i| handle.post("owner", &format!("old{i}"), "x", None).unwrap())
        .collect();
    receivers.push(handle.post("owner", "new", "x", None).unwrap());
    let mut answers = Vec::new();
    for r in receivers {
        answers.push(r.await.unwrap().unwrap());
    }
    for (i, a) in answers[..40].iter().enumerate() {
        assert_eq!((a.seq, a.duplicate), (i as u64 + 1, true));
    }
    assert_eq!((answers[40].seq, answers[40].duplicate), (1101, false));
    assert_eq!(store.read_all(0, 10_000).await.unwrap().len(), 2 + 1101);
}

#[tokio::test]
async fn every_subscriber_gets_the_same_join_notice_and_message() {
    // One notice and one message per event, shared by every subscriber, so a socket sink
    // renders each once for a room of thousands rather than once per socket.
    let (_, rooms, room) = setup().await;
    let sinks: Vec<Arc<Collect>> = (0..3).map(|_| Arc::new(Collect::default())).collect();
    for (n, sink) in sinks.iter().enumerate() {
        rooms
            .join(&room, &format!("u{n}"), code_hash())
            .await
            .unwrap();
        rooms
            .subscribe(
                &room,
                Subscriber {
                    id: n as u64,
                    user_id: format!("u{n}"),
                    sink: sink.clone(),
                },
                Resume::No,
            )
            .await
            .unwrap();
    }
    rooms.post(&room, "u2", "m1", "hello").await.unwrap();
    // u2's join notice and the message reached all three sinks.
    let last_two = |s: &Collect| {
        let got = s.got.lock().unwrap();
        match &got[got.len() - 2..] {
            [Delivery::Joined(j), Delivery::Message(m)] => (j.clone(), m.clone()),
            other => panic!("expected u2's notice then the message, got {other:?}"),
        }
    };
    let (notice, message) = last_two(&sinks[0]);
    assert_eq!(notice.user_id, "u2");
    for sink in &sinks[1..] {
        let (n, m) = last_two(sink);
        assert!(Arc::ptr_eq(&n, &notice), "a notice made per subscriber");
        assert!(Arc::ptr_eq(&m, &message), "a message made per subscriber");
    }
}

#[tokio::test]
async fn changes_batched_together_each_show_the_message_as_of_their_change() {
    let (_, rooms, room) = setup().await;
    let sink = Arc::new(Collect::default());
    let subscriber = Subscriber {
        id: 1,
        user_id: "owner".into(),
        sink: sink.clone(),
    };
    rooms
        .subscribe(&room, subscriber, Resume::No)
        .await
        .unwrap();
    let seq = rooms.post(&room, "owner", "m1", "first").await.unwrap().seq;
    let react = |emoji: &str, on| actors::room::Command::React {
        user_id: "owner".into(),
        seq,
        emoji: emoji.into(),
        on,
    };
    let edit = actors::room::Command::Edit {
        user_id: "owner".into(),
        seq,
        text: "second".into(),
    };
    let delete = actors::room::Command::Delete {
        by: "owner".into(),
        seq,
    };
    // sent without waiting: one batch, in which the text changes twice
    let handle = rooms.room(&room).await.unwrap();
    let commands = [
        react("👍", true),
        edit,
        react("🎉", true),
        delete,
        react("👍", false),
    ];
    let answers: Vec<_> = commands
        .into_iter()
        .map(|c| handle.change(c).unwrap())
        .collect();
    for a in answers {
        a.await.unwrap().ok();
    }
    wait_until(|| sink.got.lock().unwrap().len() >= 5).await;
    let shown: Vec<(String, bool, Vec<String>)> = sink
        .got
        .lock()
        .unwrap()
        .iter()
        .filter_map(|d| match d {
            Delivery::Updated(m) => Some((
                m.text.clone(),
                m.deleted,
                m.reactions.iter().map(|(e, _)| e.clone()).collect(),
            )),
            _ => None,
        })
        .collect();
    let text = |t: &str, deleted, r: &[&str]| {
        (
            t.to_owned(),
            deleted,
            r.iter().map(|e| (*e).to_owned()).collect(),
        )
    };
    assert_eq!(
        shown,
        vec![
            text("first", false, &["👍"]),
            text("second", false, &["👍"]),
            text("second", false, &["👍", "🎉"]),
            text("", true, &[]),
        ],
        "a reaction on a deleted message is refused; every other change shows its own state"
    );
}
