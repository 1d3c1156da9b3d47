//! Rebuilds beside the live tables: interrupted ones resume or start over, and the live
//! tables stay whole until the one-step switch.

use events::testing::{Watched, created, joined, new_events, posted};
use events::{Expected, MemoryStore, Store};
use projections::{Projection, ReadDb, Reads, Workers, rebuild};
use std::sync::Arc;
use std::time::Duration;

async fn seed(store: &dyn Store, messages: u64) {
    let events = [created("r", "a"), joined("r", "a")]
        .into_iter()
        .chain((1..=messages).map(|seq| posted("r", seq, "a", &format!("Message Number {seq}"))));
    store
        .append("room-r", Expected::Any, new_events(events))
        .await
        .unwrap();
}

fn count(path: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn an_interrupted_rebuild_leaves_the_live_table_and_resumes_or_restarts() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    seed(&*store, 12_000).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    let db = ReadDb::open(&path).unwrap();
    let reads = Reads::Sqlite(db.clone());
    let workers = Workers::start(store.clone(), reads.clone(), events::testing::keys())
        .await
        .unwrap();
    assert!(workers.wait_for(12_002, Duration::from_secs(30)).await);
    workers.shutdown().await;
    let live_before = count(&path, "select count(*) from room_record");
    assert_eq!(live_before, 12_000);

    // Interrupted after two batches.
    let flaky: Arc<dyn Store> = Arc::new(Watched::new(store.clone()).interrupting_log_read(2));
    let p = Projection::RoomRecord;
    assert_eq!(rebuild::prepare(&reads, p, false).await.unwrap(), 0);
    assert!(
        rebuild::fill(&reads, &flaky, &events::testing::keys(), p, |_| {})
            .await
            .is_err()
    );
    let partway = rebuild::pending(&reads, p).await.unwrap().unwrap();
    assert!(partway > 0 && partway < 12_002, "{partway}");
    assert_eq!(
        count(&path, "select count(*) from room_record"),
        live_before,
        "live untouched"
    );
    assert_eq!(
        count(
            &path,
            "select count(*) from room_record where search_text = ''"
        ),
        0,
        "live rows as they were"
    );

    // Resume: starts where it stopped.
    assert_eq!(rebuild::prepare(&reads, p, false).await.unwrap(), partway);
    // Start over: back to 0.
    assert_eq!(rebuild::prepare(&reads, p, true).await.unwrap(), 0);
    rebuild::fill(&reads, &store, &events::testing::keys(), p, |_| {})
        .await
        .unwrap();
    // Traffic after the fill is picked up by the switch.
    store
        .append(
            "room-r",
            Expected::Any,
            new_events([posted("r", 12_001, "a", "Late")]),
        )
        .await
        .unwrap();
    let at = rebuild::switch(&reads, &store, &events::testing::keys(), p)
        .await
        .unwrap();
    assert_eq!(at, 12_003);
    assert_eq!(count(&path, "select count(*) from room_record"), 12_001);
    assert_eq!(
        count(
            &path,
            "select count(*) from projection_checkpoint where projection like '%__rebuild'"
        ),
        0
    );
    assert_eq!(reads.checkpoint(p).await.unwrap(), 12_003);
    assert!(rebuild::pending(&reads, p).await.unwrap().is_none());
    assert_eq!(
        count(
            &path,
            "select count(*) from room_record where search_text = 'message number 7'"
        ),
        1
    );
    // The live worker carries on from the switched checkpoint without applying twice.
    let workers = Workers::start(store.clone(), reads.clone(), events::testing::keys())
        .await
        .unwrap();
    seed_one(&*store, 12_002).await;
    assert!(workers.wait_for(12_004, Duration::from_secs(10)).await);
    assert_eq!(count(&path, "select count(*) from room_record"), 12_002);
    workers.shutdown().await;
}

async fn seed_one(store: &dyn Store, seq: u64) {
    store
        .append(
            "room-r",
            Expected::Any,
            new_events([posted("r", seq, "a", "x")]),
        )
        .await
        .unwrap();
}
