//! The conformance suite on the SQLite store, plus what only a file on disk can get wrong.

mod support;

use events::{Error, Event, Expected, NewEvent, SqliteStore, Store};
use std::sync::Arc;
use support::joined;

fn fresh() -> Arc<dyn Store> {
    // The directory must outlive the store: leak it for the test's lifetime.
    let dir = tempfile::tempdir().unwrap().keep();
    Arc::new(SqliteStore::open(dir.join("events.db")).unwrap())
}

events::conformance_tests!(fresh());

#[tokio::test]
async fn opening_removes_the_event_id_index_of_an_earlier_version_and_keeps_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let written = {
        let store = SqliteStore::open(&path).unwrap();
        let w = store
            .append("room-r", Expected::NoStream, (1..=3).map(joined).collect())
            .await
            .unwrap();
        store.close();
        w
    };
    // What versions before the window left beside the log: the index and its WAL files.
    for name in ["events-ids.db", "events-ids.db-wal", "events-ids.db-shm"] {
        std::fs::write(dir.path().join(name), b"an index of every event id").unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    for name in ["events-ids.db", "events-ids.db-wal", "events-ids.db-shm"] {
        assert!(!dir.path().join(name).exists(), "{name} is left");
    }
    assert_eq!(store.read_all(0, 100).await.unwrap(), written);
    store
        .append("room-r", Expected::Exact(3), vec![joined(4)])
        .await
        .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_and_stays_bounded_while_the_store_runs() {
    // Checkpoints run on a thread of their own, which under steady load never catches up
    // with the newest commit; a WAL that only a complete checkpoint lets start over would grow
    // with every append (an earlier attempt let it reach 28 GB under load). Sixteen writers
    // append at once until the database file is larger than the bound the WAL must stay under.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let wal = dir.path().join("events.db-wal");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let bound = u64::from(SqliteStore::WRITER_CHECKPOINT_PAGES) * 4096 * 5 / 4;
    let payload = "x".repeat(300);
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            let path = path.clone();
            let wal = wal.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut version = 0;
                let mut largest_wal = 0;
                while std::fs::metadata(&path).unwrap().len() <= bound + (8 << 20) {
                    let batch: Vec<NewEvent> = (version + 1..=version + 100)
                        .map(|n| {
                            NewEvent::new(&Event::MemberJoined(events::event::MemberJoined {
                                room_id: format!("r{w}"),
                                user_id: format!("{payload}{n}"),
                                invite: None,
                            }))
                        })
                        .collect();
                    let expected = if version == 0 {
                        Expected::NoStream
                    } else {
                        Expected::Exact(version)
                    };
                    store
                        .append(&format!("room-r{w}"), expected, batch)
                        .await
                        .unwrap();
                    version += 100;
                    largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                }
                (version, largest_wal)
            })
        })
        .collect();
    let (mut total, mut largest_wal) = (0, 0);
    for w in writers {
        let (appended, wal_peak) = w.await.unwrap();
        total += appended;
        largest_wal = largest_wal.max(wal_peak);
    }
    assert!(
        largest_wal < bound,
        "the WAL grew to {largest_wal} bytes (bound {bound}) while the log reached {} bytes",
        std::fs::metadata(&path).unwrap().len()
    );
    // Once appends stop, the checkpoint thread copies the rest: the database file alone (a
    // copy without its WAL) soon holds every event. A copy taken while a checkpoint is
    // writing the file can be torn (SQLite promises a consistent file only together with its
    // WAL), so such a copy is only a reason to look again.
    let copy = dir.path().join("copy.db");
    let mut in_file = Err(String::from("not read yet"));
    for _ in 0..50 {
        std::fs::copy(&path, &copy).unwrap();
        in_file = rusqlite::Connection::open(&copy)
            .and_then(|c| c.query_row("select count(*) from event", [], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(|e| e.to_string());
        if in_file == Ok(total) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        in_file,
        Ok(total),
        "events in the database file without its WAL"
    );
    assert_eq!(
        store.read_all(0, 1_000_000).await.unwrap().len() as u64,
        total
    );
}

#[test]
fn stable_plans_turns_on_the_query_planner_stability_guarantee() {
    use rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG;
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    assert!(!conn.db_config(SQLITE_DBCONFIG_ENABLE_QPSG).unwrap());
    events::stable_plans(&conn).unwrap();
    assert!(conn.db_config(SQLITE_DBCONFIG_ENABLE_QPSG).unwrap());
}

#[tokio::test]
async fn closing_the_store_removes_the_wal() {
    // docs/operations.md: the WAL "is removed when the server stops cleanly". SQLite removes
    // it when the last connection closes; a pooled reader left open prevented that.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let wal = dir.path().join("events.db-wal");
    let store = SqliteStore::open(&path).unwrap();
    store
        .append("room-r", Expected::NoStream, (1..=5).map(joined).collect())
        .await
        .unwrap();
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 5);
    assert!(wal.exists());
    store.close();
    assert!(!wal.exists(), "the WAL outlived the store");
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.read_all(0, 10).await.unwrap().len(), 5);
}

/// The writer runs a group of appends in one transaction, an append of several events inside
/// a savepoint and one of a single event without. An append whose insert the database refuses
/// (here a trigger added for the test, in a real log a full disk) fails as unavailable and
/// leaves nothing, whatever its size and wherever it falls in its group, and the appends it
/// shared a group with land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_the_database_refuses_leaves_nothing_and_its_group_lands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "create trigger refuse_for_the_test before insert on event
             when new.stream_id like 'refused-%' and new.version = 2
             begin select raise(abort, 'refused by the test'); end;",
        )
        .unwrap();
    for round in 0..20 {
        let single = format!("refused-single-{round}");
        store
            .append(&single, Expected::NoStream, vec![joined(1)])
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            let (stream, expected, events) = match i {
                // Refused at its only event.
                13 => (single.clone(), Expected::Exact(1), vec![joined(2)]),
                // Refused at its second event: the first must go too.
                27 => (
                    format!("refused-several-{round}"),
                    Expected::NoStream,
                    (1..=3).map(joined).collect(),
                ),
                // Several events that land.
                i if i % 10 == 5 => (
                    format!("fine-{round}-{i}"),
                    Expected::NoStream,
                    (1..=3).map(joined).collect(),
                ),
                i => (
                    format!("fine-{round}-{i}"),
                    Expected::NoStream,
                    vec![joined(1)],
                ),
            };
            tasks.push(tokio::spawn(async move {
                (
                    stream.clone(),
                    store.append(&stream, expected, events).await,
                )
            }));
        }
        for task in tasks {
            let (stream, result) = task.await.unwrap();
            let held = store.read_stream(&stream, 0, 10).await.unwrap();
            if stream.starts_with("refused-") {
                assert!(
                    matches!(result, Err(Error::Unavailable(_))),
                    "{stream}: {result:?}"
                );
                let before = usize::from(stream.starts_with("refused-single-"));
                assert_eq!(held.len(), before, "{stream} holds only what it held");
            } else {
                assert_eq!(result.unwrap(), held, "{stream}");
            }
        }
    }
    // The refused appends left their streams where they were.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("drop trigger refuse_for_the_test")
        .unwrap();
    store
        .append("refused-single-0", Expected::Exact(1), vec![joined(2)])
        .await
        .unwrap();
    store
        .append("refused-several-0", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap();
}
