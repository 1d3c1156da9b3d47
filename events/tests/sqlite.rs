//! The conformance suite on the SQLite store, plus what only a file on disk can get wrong.

use events::{Error, Event, Expected, NewEvent, SqliteStore, Store};
use std::sync::Arc;

fn fresh() -> Arc<dyn Store> {
    // The directory must outlive the store: leak it for the test's lifetime.
    let dir = tempfile::tempdir().unwrap().keep();
    Arc::new(SqliteStore::open(dir.join("events.db")).unwrap())
}

events::conformance_tests!(fresh());

fn joined(n: u64) -> NewEvent {
    NewEvent::new(&Event::MemberJoined(events::event::MemberJoined {
        room_id: "r".into(),
        user_id: format!("u{n}"),
    }))
}

#[tokio::test]
async fn appends_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let written = {
        let store = SqliteStore::open(&path).unwrap();
        let w = store
            .append("room-r", Expected::NoStream, (1..=5).map(joined).collect())
            .await
            .unwrap();
        store.close();
        w
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.read_all(0, 100).await.unwrap(), written);
    assert_eq!(*store.head().borrow(), written.last().unwrap().position);
    let more = store
        .append("room-r", Expected::Exact(5), vec![joined(6)])
        .await
        .unwrap();
    assert_eq!(more[0].position, written.last().unwrap().position + 1);
}

#[tokio::test]
async fn the_database_refuses_update_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .append("room-r", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "update event set payload = x'00'",
        "update event set version = 2",
        "delete from event",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn closed_store_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    store.close();
    assert!(matches!(
        store.append("s", Expected::Any, vec![joined(1)]).await,
        Err(Error::Unavailable(_))
    ));
}
