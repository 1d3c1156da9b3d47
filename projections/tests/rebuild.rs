//! Rebuilds beside the live tables: interrupted ones resume or start over, and the live
//! tables stay whole until the one-step switch.

use async_trait::async_trait;
use events::event::{MemberJoined, MessagePosted, RoomCreated};
use events::{Error, Event, Expected, MemoryStore, NewEvent, Recorded, Store};
use projections::{Projection, ReadDb, Reads, Workers, rebuild};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// A store whose whole-log reads fail after a number of them: an interruption.
struct Flaky {
    inner: Arc<dyn Store>,
    reads_left: AtomicUsize,
}

#[async_trait]
impl Store for Flaky {
    async fn append(
        &self,
        s: &str,
        e: Expected,
        ev: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
        self.inner.append(s, e, ev).await
    }
    async fn read_stream(&self, s: &str, v: u64, l: usize) -> Result<Vec<Recorded>, Error> {
        self.inner.read_stream(s, v, l).await
    }
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        if self.reads_left.fetch_sub(1, Ordering::SeqCst) == 0 {
            return Err(Error::Unavailable("interrupted".into()));
        }
        self.inner.read_all(after, limit).await
    }
    async fn stream_version(&self, s: &str) -> Result<Option<u64>, Error> {
        self.inner.stream_version(s).await
    }
    fn head(&self) -> watch::Receiver<u64> {
        self.inner.head()
    }
}

async fn seed(store: &dyn Store, messages: u64) {
    let mut events = vec![
        NewEvent::new(&Event::RoomCreated(RoomCreated {
            room_id: "r".into(),
            name: "n".into(),
            description: String::new(),
            owner: "a".into(),
            avatar_image: String::new(),
            join_code: "c".repeat(32),
        })),
        NewEvent::new(&Event::MemberJoined(MemberJoined {
            room_id: "r".into(),
            user_id: "a".into(),
        })),
    ];
    for seq in 1..=messages {
        events.push(NewEvent::new(&Event::MessagePosted(MessagePosted {
            room_id: "r".into(),
            seq,
            message_id: format!("m{seq}"),
            user_id: "a".into(),
            text: format!("Message Number {seq}"),
            kind: "input".into(),
        })));
    }
    store.append("room-r", Expected::Any, events).await.unwrap();
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
    let workers = Workers::start(store.clone(), reads.clone()).await.unwrap();
    assert!(workers.wait_for(12_002, Duration::from_secs(30)).await);
    workers.shutdown().await;
    let live_before = count(&path, "select count(*) from room_record");
    assert_eq!(live_before, 12_000);

    // Interrupted after two batches.
    let flaky: Arc<dyn Store> = Arc::new(Flaky {
        inner: store.clone(),
        reads_left: AtomicUsize::new(2),
    });
    let p = Projection::RoomRecord;
    assert_eq!(rebuild::prepare(&reads, p, false).await.unwrap(), 0);
    assert!(rebuild::fill(&reads, &flaky, p, |_| {}).await.is_err());
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
    rebuild::fill(&reads, &store, p, |_| {}).await.unwrap();
    // Traffic after the fill is picked up by the switch.
    store
        .append(
            "room-r",
            Expected::Any,
            vec![NewEvent::new(&Event::MessagePosted(MessagePosted {
                room_id: "r".into(),
                seq: 12_001,
                message_id: "late".into(),
                user_id: "a".into(),
                text: "Late".into(),
                kind: "input".into(),
            }))],
        )
        .await
        .unwrap();
    let at = rebuild::switch(&reads, &store, p).await.unwrap();
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
    let workers = Workers::start(store.clone(), reads.clone()).await.unwrap();
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
            vec![NewEvent::new(&Event::MessagePosted(MessagePosted {
                room_id: "r".into(),
                seq,
                message_id: format!("x{seq}"),
                user_id: "a".into(),
                text: "x".into(),
                kind: "input".into(),
            }))],
        )
        .await
        .unwrap();
}
