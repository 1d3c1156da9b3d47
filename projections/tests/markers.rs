//! Read markers on both engines: only members mark, only forward, clamped to the room's newest
//! message; `unread` in the member's room rows counts the others' messages after the marker
//! that are not deleted; a rebuild of every projection keeps the markers (they are no
//! projection's); an erasure removes them.
//!
//! The PostgreSQL test runs when `CHATROOM_TEST_DATABASE_URL` is set, as in `postgres.rs`.

mod common;

use common::*;
use events::testing::{created, joined, posted, registered};
use events::{Event, Expected, MemoryStore, NewEvent, Store};
use projections::{ALL, Mark, ReadDb, Reads, Workers, rebuild};
use std::sync::Arc;
use std::time::Duration;

fn log() -> Vec<Event> {
    vec![
        registered("o", "Olga"),
        registered("a", "Ann"),
        registered("b", "Bob"),
        created("r", "o"),
        joined("r", "o"),
        joined("r", "a"),
        posted("r", 1, "a", "one"),
        posted("r", 2, "o", "two"),
        posted("r", 3, "a", "three"),
        edited("r", 1, "a", "one, edited"),
        posted("r", 4, "a", "four"),
        deleted("r", 4, "a"),
    ]
}

async fn fill(store: &dyn Store) -> u64 {
    let mut head = 0;
    for e in log() {
        let stream = match &e {
            Event::UserRegistered(u) => format!("user-{}", u.user_id),
            _ => "room-r".to_owned(),
        };
        let rec = store
            .append(&stream, Expected::Any, vec![NewEvent::new(&e)])
            .await
            .unwrap();
        head = rec.last().unwrap().position;
    }
    head
}

/// The marker and unread count of `user`'s row of room `r`.
async fn read_state(reads: &Reads, user: &str) -> (Option<u64>, Option<u64>) {
    let rooms = reads.rooms_of(user).await.unwrap();
    let r = rooms.iter().find(|r| r.id == "r").expect("a member");
    let for_one = reads.room_for("r", user).await.unwrap().unwrap();
    assert_eq!(
        (for_one.last_read_seq, for_one.unread),
        (r.last_read_seq, r.unread)
    );
    (r.last_read_seq, r.unread)
}

fn marked(before: u64, now: u64) -> Mark {
    Mark::Marked {
        before,
        now,
        last_seq: 4,
    }
}

async fn markers_stay_beside_the_log(reads: Reads) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let head = fill(&*store).await;
    let keys = events::testing::keys();
    let workers = Workers::start(store.clone(), reads.clone(), keys.clone())
        .await
        .unwrap();
    assert!(workers.wait_for(head, Duration::from_secs(30)).await);

    // Nothing read: the others' messages that are not deleted.
    assert_eq!(read_state(&reads, "o").await, (Some(0), Some(2)), "1 and 3");
    assert_eq!(read_state(&reads, "a").await, (Some(0), Some(1)), "2");
    // Read for nobody, or for a non-member: no read state.
    let r = reads.room_by_id("r").await.unwrap().unwrap();
    assert_eq!((r.last_read_seq, r.unread), (None, None));
    let r = reads.room_for("r", "b").await.unwrap().unwrap();
    assert_eq!((r.role, r.last_read_seq, r.unread), (None, None, None));

    assert_eq!(reads.mark_read("nope", "o", 1).await.unwrap(), Mark::NoRoom);
    assert_eq!(reads.mark_read("r", "b", 1).await.unwrap(), Mark::NotMember);
    assert_eq!(reads.mark_read("r", "o", 1).await.unwrap(), marked(0, 1));
    assert_eq!(read_state(&reads, "o").await, (Some(1), Some(1)));
    // Forward only, and clamped to the newest seq.
    assert_eq!(reads.mark_read("r", "o", 0).await.unwrap(), marked(1, 1));
    assert_eq!(reads.mark_read("r", "o", 1).await.unwrap(), marked(1, 1));
    assert_eq!(reads.mark_read("r", "o", 99).await.unwrap(), marked(1, 4));
    assert_eq!(read_state(&reads, "o").await, (Some(4), Some(0)));
    assert_eq!(
        reads.mark_read("r", "a", u64::MAX).await.unwrap(),
        marked(0, 4)
    );
    assert_eq!(reads.mark_read("r", "b", 2).await.unwrap(), Mark::NotMember);

    // Every projection rebuilt from the log: the markers are as they were.
    for p in ALL {
        rebuild::prepare(&reads, p, true).await.unwrap();
        rebuild::fill(&reads, &store, &keys, p, |_| {})
            .await
            .unwrap();
        rebuild::switch(&reads, &store, &keys, p).await.unwrap();
    }
    assert_eq!(read_state(&reads, "o").await, (Some(4), Some(0)));
    assert_eq!(
        reads.read_markers("o").await.unwrap(),
        [("r".to_owned(), 4)]
    );
    assert_eq!(reads.room_ids_of("a").await.unwrap(), ["r".to_owned()]);
    assert!(reads.room_ids_of("b").await.unwrap().is_empty());

    assert_eq!(reads.forget_markers("o").await.unwrap(), 1);
    assert!(reads.read_markers("o").await.unwrap().is_empty());
    assert_eq!(read_state(&reads, "o").await, (Some(0), Some(2)));
    assert_eq!(
        reads.read_markers("a").await.unwrap(),
        [("r".to_owned(), 4)]
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_markers_beside_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = ReadDb::open(dir.path().join("read.db")).unwrap();
    markers_stay_beside_the_log(Reads::Sqlite(db)).await;
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_markers_beside_the_log() {
    let admin = std::env::var("CHATROOM_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL");
    let url = events::testing::scratch_database(&admin, &common::POSTGRES_MIGRATIONS).await;
    let pool = events::postgres::pool(&url, 8).unwrap();
    markers_stay_beside_the_log(Reads::Postgres(pool)).await;
}
