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

#[tokio::test]
async fn the_wal_is_checkpointed_and_stays_bounded_while_the_store_runs() {
    // A WAL that is never checkpointed (or never starts over) grows with every append: an
    // earlier attempt at checkpointing off the writer thread let it reach 28 GB under load.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let wal = dir.path().join("events.db-wal");
    let store = SqliteStore::open(&path).unwrap();
    let mut version = 0;
    let mut largest_wal = 0;
    for _ in 0..900 {
        let batch: Vec<NewEvent> = (version + 1..=version + 100).map(joined).collect();
        let expected = if version == 0 {
            Expected::NoStream
        } else {
            Expected::Exact(version)
        };
        store.append("room-r", expected, batch).await.unwrap();
        version += 100;
        largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    let db = std::fs::metadata(&path).unwrap().len();
    assert!(
        db > largest_wal,
        "the database file ({db} bytes) should hold most of the log, the WAL peaked at {largest_wal}"
    );
    assert!(
        largest_wal < 16 << 20,
        "the WAL grew to {largest_wal} bytes"
    );
    assert_eq!(store.read_all(0, 100_000).await.unwrap().len(), 90_000);
}

#[test]
fn stable_plans_turns_on_the_query_planner_stability_guarantee() {
    use rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG;
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    assert!(!conn.db_config(SQLITE_DBCONFIG_ENABLE_QPSG).unwrap());
    events::stable_plans(&conn).unwrap();
    assert!(conn.db_config(SQLITE_DBCONFIG_ENABLE_QPSG).unwrap());
}
