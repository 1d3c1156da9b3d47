//! Dead letters on both engines: an undecodable event and a message the read tables refuse
//! (a second message with a seq the room already has, as only a faulty writer writes) are
//! parked with their error while the projections go past them; once the row in the way is
//! removed, a retry applies the refused message and takes it out of the table, and the
//! undecodable one stays parked.
//!
//! The PostgreSQL test runs when `CHATROOM_TEST_DATABASE_URL` is set, as in `postgres.rs`.

mod common;

use events::testing::{created, joined, posted, registered};
use events::{Event, Expected, MemoryStore, NewEvent, Store};
use projections::{ALL, ReadDb, Reads, Workers, dead};
use std::sync::Arc;
use std::time::Duration;

/// Appends the log; the positions of the undecodable event and of the refused message.
async fn fill(store: &dyn Store) -> (u64, u64, u64) {
    let append = |stream: &str, e: NewEvent| {
        let stream = stream.to_owned();
        async move {
            store
                .append(&stream, Expected::Any, vec![e])
                .await
                .unwrap()
                .last()
                .unwrap()
                .position
        }
    };
    let event = |e: &Event| NewEvent::new(e);
    append("user-o", event(&registered("o", "Olga"))).await;
    for e in [
        created("r", "o"),
        joined("r", "o"),
        posted("r", 1, "o", "one"),
    ] {
        append("room-r", event(&e)).await;
    }
    let mut garbage = event(&posted("r", 2, "o", "two"));
    garbage.payload = b"not an event".to_vec();
    let undecodable = append("room-r", garbage).await;
    append("room-r", event(&posted("r", 2, "o", "two"))).await;
    let refused = append("room-r", event(&posted("r", 1, "o", "one again"))).await;
    let head = append("room-r", event(&posted("r", 3, "o", "three"))).await;
    (undecodable, refused, head)
}

async fn parks_and_goes_on(reads: Reads, unblock: impl AsyncFnOnce()) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (undecodable, refused, head) = fill(&*store).await;
    let keys = events::testing::keys();
    let workers = Workers::start(store.clone(), reads.clone(), keys.clone())
        .await
        .unwrap();
    assert!(
        workers.wait_for(head, Duration::from_secs(30)).await,
        "the projections went past the events they cannot apply"
    );
    let text = |seq| {
        let reads = reads.clone();
        async move { reads.message("r", seq).await.unwrap().map(|m| m.message) }
    };
    assert_eq!(text(1).await.as_deref(), Some("one"));
    assert_eq!(text(2).await.as_deref(), Some("two"));
    assert_eq!(text(3).await.as_deref(), Some("three"));

    let parked = dead::list(&reads).await.unwrap();
    let at = |position| {
        let mut names: Vec<&str> = parked
            .iter()
            .filter(|d| d.position == position)
            .map(|d| d.projection.as_str())
            .collect();
        names.sort_unstable();
        names
    };
    let mut all = ALL.map(|p| p.name());
    all.sort_unstable();
    assert_eq!(at(undecodable), all, "no projection reads it");
    assert_eq!(at(refused), ["room_record"], "the others applied it");
    assert_eq!(parked.len(), ALL.len() + 1);
    let counts = dead::counts(&reads).await.unwrap();
    assert_eq!(counts.len(), ALL.len());
    assert_eq!(
        counts.iter().find(|(p, _)| p == "room_record").map(|c| c.1),
        Some(2)
    );
    let letter = parked.iter().find(|d| d.position == refused).unwrap();
    assert_eq!((letter.stream.as_str(), letter.version), ("room-r", 6));
    assert!(
        letter.error.to_lowercase().contains("unique"),
        "{}",
        letter.error
    );
    let letter = parked.iter().find(|d| d.position == undecodable).unwrap();
    assert!(letter.error.contains("undecodable"), "{}", letter.error);

    // Still in the way: the retry parks it again.
    let retried = dead::retry(&reads, &store, &keys).await.unwrap();
    assert!(retried.applied.is_empty());
    assert_eq!(retried.still.len(), parked.len());
    assert_eq!(text(1).await.as_deref(), Some("one"));

    unblock().await;
    let retried = dead::retry(&reads, &store, &keys).await.unwrap();
    assert_eq!(
        retried
            .applied
            .iter()
            .map(|d| (d.projection.as_str(), d.position))
            .collect::<Vec<_>>(),
        [("room_record", refused)]
    );
    assert_eq!(retried.still.len(), ALL.len());
    assert_eq!(text(1).await.as_deref(), Some("one again"));
    assert!(
        dead::counts(&reads)
            .await
            .unwrap()
            .iter()
            .all(|(_, n)| *n == 1)
    );
    // Retried once: the checkpoints did not move back, nothing applies twice.
    assert_eq!(
        reads
            .checkpoint(projections::Projection::RoomRecord)
            .await
            .unwrap(),
        head
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_parks_what_it_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    let db = ReadDb::open(&path).unwrap();
    parks_and_goes_on(Reads::Sqlite(db), async || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "delete from room_record where room_id = 'r' and seq = 1",
            [],
        )
        .unwrap();
    })
    .await;
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_parks_what_it_cannot_apply() {
    let admin = std::env::var("CHATROOM_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL");
    let url = events::testing::scratch_database(&admin, &common::POSTGRES_MIGRATIONS).await;
    let pool = events::postgres::pool(&url, 8).unwrap();
    let fix = pool.clone();
    parks_and_goes_on(Reads::Postgres(pool), async move || {
        fix.get()
            .await
            .unwrap()
            .execute(
                "delete from room_record where room_id = 'r' and seq = 1",
                &[],
            )
            .await
            .unwrap();
    })
    .await;
}
