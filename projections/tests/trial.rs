//! The read tables on trial on both engines, with the live projections at different
//! checkpoints (as while a server writes, or after a rebuild of one): each scratch projection
//! is compared at its live one's checkpoint, so live tables that are behind but right do not
//! differ; a row changed afterwards does, by key and column.
//!
//! The PostgreSQL test runs when `CHATROOM_TEST_DATABASE_URL` is set, as in `postgres.rs`.

mod common;

use events::testing::{created, joined, posted, registered};
use events::{Event, Expected, MemoryStore, NewEvent, Recorded, Store};
use projections::projection::Target;
use projections::trial::{self, Difference, Verdict};
use projections::{ALL, Projection, ReadDb, Reads};
use std::sync::Arc;

fn log() -> Vec<(&'static str, Event)> {
    vec![
        ("user-o", registered("o", "Olga")),
        ("user-a", registered("a", "Ann")),
        ("room-r", created("r", "o")),
        ("room-r", joined("r", "o")),
        ("room-r", posted("r", 1, "o", "one")),
        ("room-r", joined("r", "a")),
        ("room-r", posted("r", 2, "a", "two")),
        ("room-r", posted("r", 3, "o", "three")),
    ]
}

async fn fill(store: &dyn Store) -> Vec<Recorded> {
    for (stream, e) in log() {
        store
            .append(stream, Expected::Any, vec![NewEvent::new(&e)])
            .await
            .unwrap();
    }
    store.read_all(0, 100).await.unwrap()
}

/// The live tables: `room_member` and `room_record` only up to the fifth event, the others
/// to the end.
async fn project(reads: &Reads, events: &[Recorded]) {
    let keys = events::testing::keys();
    let behind = [Projection::RoomMember, Projection::RoomRecord];
    let ahead: Vec<Projection> = ALL.into_iter().filter(|p| !behind.contains(p)).collect();
    for (projections, upto) in [(&behind[..], 5), (&ahead[..], events.len())] {
        let batch: Arc<[Recorded]> = events[..upto].to_vec().into();
        projections::dead::apply(reads, &keys, projections, Target::Live, 0, batch)
            .await
            .unwrap();
    }
}

fn check(clean: &Verdict, events: &[Recorded]) {
    assert!(clean.differ.is_empty(), "{:?}", clean.differ);
    assert_eq!(clean.tables, 10);
    let at = |p| clean.at.iter().find(|(q, _)| *q == p).unwrap().1;
    assert_eq!(at(Projection::RoomRecord), events[4].position);
    assert_eq!(at(Projection::Room), events.last().unwrap().position);
}

fn changed(tampered: &Verdict) {
    assert_eq!(tampered.differ.len(), 1, "{:?}", tampered.differ);
    let d = &tampered.differ[0];
    assert_eq!((d.table, d.rows), ("room_record", 1));
    let (key, diff) = &d.shown[0];
    // Each engine's own literals: PostgreSQL quotes every value.
    assert!(
        ["room_id = 'r', seq = 1", "room_id = 'r', seq = '1'"].contains(&key.as_str()),
        "{key}"
    );
    let Difference::Changed(columns) = diff else {
        panic!("{diff:?}")
    };
    let columns: Vec<&str> = columns.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(columns, ["message"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_compares_each_projection_at_its_checkpoint() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let events = fill(&*store).await;
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("read.db");
    project(&Reads::Sqlite(ReadDb::open(&live).unwrap()), &events).await;
    let keys = events::testing::keys();
    let run = async |n: usize| {
        let path = dir.path().join(format!("scratch-{n}.db"));
        let scratch = ReadDb::open(&path).unwrap();
        let none = async |_: &Reads| Ok(());
        trial::sqlite(&live, &scratch, &path, &store, &keys, 20, none)
            .await
            .unwrap()
    };
    check(&run(0).await, &events);
    rusqlite::Connection::open(&live)
        .unwrap()
        .execute(
            "update room_record set message = 'tampered' where seq = 1",
            [],
        )
        .unwrap();
    changed(&run(1).await);
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_compares_each_projection_at_its_checkpoint() {
    let admin = std::env::var("CHATROOM_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL");
    let url = events::testing::scratch_database(&admin, &common::POSTGRES_MIGRATIONS).await;
    let live = events::postgres::pool(&url, 4).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let events = fill(&*store).await;
    project(&Reads::Postgres(live.clone()), &events).await;
    let keys = events::testing::keys();
    let run = async |schema: &str| {
        trial::create_schema(&live, schema).await.unwrap();
        let options = format!("{url}?options=-c%20search_path%3D{schema}");
        let scratch = events::postgres::pool(&options, 2).unwrap();
        let none = async |_: &Reads| Ok(());
        let verdict = trial::postgres(&live, &scratch, schema, &store, &keys, 20, none)
            .await
            .unwrap();
        trial::drop_schema(&live, schema).await.unwrap();
        verdict
    };
    check(&run("trial_a").await, &events);
    live.get()
        .await
        .unwrap()
        .execute(
            "update room_record set message = 'tampered' where seq = 1",
            &[],
        )
        .await
        .unwrap();
    changed(&run("trial_b").await);
}
