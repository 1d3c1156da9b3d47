//! The idempotency window (`actors::recent`) on the real logs, embedded (SQLite) and
//! PostgreSQL: a retried client id inside it answers the first `seq`, also after a restart
//! (the window comes back from the stream's tail) and through another process (the loser of
//! the expected-version race reads the tail); past it, the same id is a new message.
//!
//! The PostgreSQL cases run when `CHATROOM_TEST_DATABASE_URL` points at a server where the
//! user may create databases (`./scripts/test` starts a throwaway one).

use actors::recent::{WINDOW_AGE_MS, WINDOW_MESSAGES};
use actors::{NewRoom, Rooms, Settings};
use events::event::room_stream;
use events::{Event, Expected, NewEvent, PostgresStore, SqliteStore, Store};
use std::sync::Arc;
use std::time::Duration;

/// The hash of the join code the tests' rooms are made with.
fn code_hash() -> [u8; 32] {
    events::event::join_code_hash(&"3".repeat(32))
}

fn settings() -> Settings {
    Settings::new(Duration::from_secs(60), events::testing::keys())
}

/// A fresh, migrated database on the server `CHATROOM_TEST_DATABASE_URL` names.
async fn postgres_url() -> String {
    let admin = std::env::var("CHATROOM_TEST_DATABASE_URL")
        .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL");
    events::testing::scratch_database(&admin, &events::postgres::LOG_MIGRATIONS).await
}

async fn new_room(rooms: &Rooms) -> String {
    let room = rooms
        .create(NewRoom {
            name: "window".into(),
            description: String::new(),
            owner: "owner".into(),
            avatar_image: String::new(),
            join_code: "3".repeat(32),
        })
        .await
        .unwrap()
        .room_id;
    rooms.join(&room, "guest", code_hash()).await.unwrap();
    room
}

async fn messages_in(store: &dyn Store, room: &str) -> Vec<(u64, String)> {
    store
        .read_stream(&room_stream(room), 1, 1_000_000)
        .await
        .unwrap()
        .iter()
        .filter_map(|r| match r.decode().unwrap() {
            Event::MessagePosted(m) => Some((m.seq, m.message_id)),
            _ => None,
        })
        .collect()
}

/// A retry inside the window answers the first seq, before and after the room's process
/// restarts on the same log (`reopen` gives a new store on it).
async fn retries_survive_a_restart<F, Fut>(reopen: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    let store = reopen().await;
    let rooms = Rooms::start(store.clone(), settings()).await.unwrap();
    let room = new_room(&rooms).await;
    let first = rooms.post(&room, "guest", "a", "hello").await.unwrap();
    for i in 0..50 {
        rooms
            .post(&room, "owner", &format!("n{i}"), "x")
            .await
            .unwrap();
    }
    let again = rooms.post(&room, "guest", "a", "hello").await.unwrap();
    assert_eq!((again.seq, again.duplicate), (first.seq, true));
    rooms.shutdown().await;
    drop(rooms);
    drop(store);

    let store = reopen().await;
    let rooms = Rooms::start(store.clone(), settings()).await.unwrap();
    let after = rooms.post(&room, "guest", "a", "hello").await.unwrap();
    assert_eq!(
        (after.seq, after.duplicate, after.time_ms),
        (first.seq, true, first.time_ms)
    );
    let next = rooms.post(&room, "guest", "b", "x").await.unwrap();
    assert_eq!((next.seq, next.duplicate), (52, false));
    let stored = messages_in(&*store, &room).await;
    assert_eq!(stored.len(), 52);
    assert_eq!(stored.iter().filter(|(_, id)| id == "a").count(), 1);
    rooms.shutdown().await;
}

/// A room of more messages than the window counts, whose first message was sent more than ten
/// minutes before the others: that one's client id is past the window once the room starts
/// (reading the stream), the others are not.
async fn past_the_window_is_a_new_message(store: Arc<dyn Store>) {
    let room = format!("old-{}", uuid::Uuid::new_v4().simple());
    let stream = room_stream(&room);
    let long_ago = events::now_ms() - WINDOW_AGE_MS - 60_000;
    let created = events::testing::created(&room, "owner");
    store
        .append(
            &stream,
            Expected::NoStream,
            vec![NewEvent::with_id(uuid::Uuid::new_v4(), &created, long_ago)],
        )
        .await
        .unwrap();
    let total = WINDOW_MESSAGES as u64 + 1;
    let mut seq = 0;
    while seq < total {
        let batch: Vec<NewEvent> = (seq + 1..=total.min(seq + 2_000))
            .map(|s| {
                let mut m = events::testing::posted(&room, s, "owner", "then");
                if let Event::MessagePosted(p) = &mut m {
                    p.message_id = format!("m{s}");
                }
                let sent = if s == 1 {
                    long_ago - WINDOW_AGE_MS - 1
                } else {
                    long_ago
                };
                NewEvent::with_id(uuid::Uuid::new_v4(), &m, sent)
            })
            .collect();
        let n = batch.len() as u64;
        store
            .append(&stream, Expected::Exact(seq + 1), batch)
            .await
            .unwrap();
        seq += n;
    }
    let rooms = Rooms::start(store.clone(), settings()).await.unwrap();
    let inside = rooms.post(&room, "owner", "m2", "again").await.unwrap();
    assert_eq!((inside.seq, inside.duplicate), (2, true));
    let past = rooms.post(&room, "owner", "m1", "again").await.unwrap();
    assert_eq!((past.seq, past.duplicate), (total + 1, false));
    // ... and from then on it is that new message's id.
    let retry = rooms.post(&room, "owner", "m1", "again").await.unwrap();
    assert_eq!((retry.seq, retry.duplicate), (total + 1, true));
    rooms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_retries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    retries_survive_a_restart(|| {
        let path = path.clone();
        async move { Arc::new(SqliteStore::open(path).unwrap()) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_past_the_window_is_a_new_message() {
    let dir = tempfile::tempdir().unwrap();
    past_the_window_is_a_new_message(Arc::new(
        SqliteStore::open(dir.path().join("events.db")).unwrap(),
    ))
    .await;
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retries_survive_a_restart() {
    let url = postgres_url().await;
    retries_survive_a_restart(|| {
        let url = url.clone();
        async move { Arc::new(PostgresStore::connect(&url).await.unwrap()) as Arc<dyn Store> }
    })
    .await;
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_past_the_window_is_a_new_message() {
    let url = postgres_url().await;
    past_the_window_is_a_new_message(Arc::new(PostgresStore::connect(&url).await.unwrap())).await;
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_never_store_one_id_twice() {
    let url = postgres_url().await;
    // Two stores with their own writers and notifications, and a registry each: two server
    // processes on one database.
    let a: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let rooms_a = Rooms::start(a.clone(), settings()).await.unwrap();
    let rooms_b = Rooms::start(b.clone(), settings()).await.unwrap();
    let room = new_room(&rooms_a).await;
    // Both rooms are running before the races, each with its own view of the stream.
    rooms_b.post(&room, "guest", "warm", "x").await.unwrap();
    rooms_a.post(&room, "owner", "warm-a", "x").await.unwrap();
    // A retry through the process that did not write it.
    let first = rooms_a.post(&room, "owner", "once", "x").await.unwrap();
    let retry = rooms_b.post(&room, "owner", "once", "x").await.unwrap();
    assert_eq!((retry.seq, retry.duplicate), (first.seq, true));
    // The same ids sent through both processes at the same moment: each stored once, and
    // both senders told its one seq.
    let mut races = Vec::new();
    for i in 0..40 {
        let id = format!("race{i}");
        let (ra, rb, room) = (rooms_a.clone(), rooms_b.clone(), room.clone());
        races.push(tokio::spawn(async move {
            let (x, y) = tokio::join!(
                ra.post(&room, "guest", &id, "x"),
                rb.post(&room, "guest", &id, "x")
            );
            let (x, y) = (x.unwrap(), y.unwrap());
            assert_eq!(x.seq, y.seq, "{id}");
            assert!(x.duplicate || y.duplicate, "{id} answered as new twice");
        }));
    }
    for r in races {
        r.await.unwrap();
    }
    let stored = messages_in(&*a, &room).await;
    let mut ids: Vec<&str> = stored.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 43);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 43, "an id stored twice");
    let seqs: Vec<u64> = stored.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=43).collect::<Vec<_>>());
    rooms_a.shutdown().await;
    rooms_b.shutdown().await;
}
