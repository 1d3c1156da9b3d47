//! The embedded log's event-id index, kept in a file of its own beside the log: retries are
//! recognised whether their first try is still in memory, in the index file, or only in the
//! log (after a restart, a lost or stale index file, or the upgrade of an older log).

mod support;

use events::{Error, Expected, IdIndexOptions, NewEvent, Recorded, SqliteStore, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::joined;

/// Appends `n` events to `stream`, one append each, and returns what was recorded.
async fn fill(store: &SqliteStore, stream: &str, n: u64) -> Vec<Recorded> {
    let mut out = Vec::new();
    for i in 1..=n {
        out.extend(
            store
                .append(stream, Expected::Any, vec![joined(i)])
                .await
                .unwrap(),
        );
    }
    out
}

/// Appends the id of `first` again (on another stream, with another payload) and expects the
/// log to answer with `first` itself, writing nothing.
async fn expect_duplicate(store: &SqliteStore, first: &Recorded) {
    let head = *store.head().borrow();
    let retry = NewEvent {
        event_id: first.event_id,
        ..joined(999_999)
    };
    match store.append("elsewhere", Expected::Any, vec![retry]).await {
        Err(Error::Duplicate(found)) => assert_eq!(*found, *first),
        other => panic!(
            "expected the retry of {} to be refused, got {other:?}",
            first.event_id
        ),
    }
    assert_eq!(
        *store.head().borrow(),
        head,
        "a refused retry wrote nothing"
    );
}

/// The ids in the index file: its young table and every run.
fn ids_in_file(log: &Path) -> i64 {
    let conn = rusqlite::Connection::open(SqliteStore::id_index_path(log)).unwrap();
    tables_in_file(&conn)
        .iter()
        .map(|t| {
            conn.query_row(&format!("select count(*) from {t}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
        })
        .sum()
}

/// The young table and the runs' tables of an index file.
fn tables_in_file(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare("select name from sqlite_master where type = 'table' and name like 'event_id%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The runs an index file lists: (level, ids) in the order they were made.
fn runs_in_file(log: &Path) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open(SqliteStore::id_index_path(log)).unwrap();
    conn.prepare("select level, ids from run order by id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A small index: 200 ids make a run, three runs of a level make one of the next.
const SMALL: IdIndexOptions = IdIndexOptions {
    young_max: 200,
    fan_in: 3,
};

/// Appends `n` events to `stream` in appends of `each`, writing the index's batch after each.
async fn fill_in_batches(store: &SqliteStore, stream: &str, n: u64, each: u64) -> Vec<Recorded> {
    let mut out = Vec::new();
    for start in (0..n).step_by(each as usize) {
        let events = (start..(start + each).min(n)).map(joined).collect();
        out.extend(store.append(stream, Expected::Any, events).await.unwrap());
        assert!(store.flush_id_index(Duration::from_secs(10)));
    }
    out
}

/// Waits until the index file lists runs as `done` says they should be.
fn wait_for_runs(log: &Path, done: impl Fn(&[(i64, i64)]) -> bool) -> Vec<(i64, i64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let runs = runs_in_file(log);
        if done(&runs) {
            return runs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "runs never settled: {runs:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The index keeps ids in a small young table, seals it into runs and merges runs level by
/// level, so no insert or lookup works on a tree as large as the history. Every id, in
/// whichever table it ended, is still recognised as a retry: before and after a restart,
/// after the stored filters are found in an unknown layout (they are made again), and after
/// a merge left a table behind (it is dropped).
#[tokio::test]
async fn ids_sealed_into_runs_and_merged_are_recognised_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open_with(&path, SMALL).unwrap();
    let written = fill_in_batches(&store, "room-r", 4_000, 50).await;
    // 4,000 ids: 20 runs of 200, three of a level merged into the next, every id in one run.
    let runs = wait_for_runs(&path, |runs| {
        runs.iter().map(|r| r.1).sum::<i64>() == 4_000
            && (0..2).all(|l| runs.iter().filter(|r| r.0 == l).count() < 3)
    });
    assert!(
        runs.iter().any(|r| r.0 == 2),
        "runs of 200 were merged twice over: {runs:?}"
    );
    assert_eq!(ids_in_file(&path), 4_000);
    let conn = rusqlite::Connection::open(SqliteStore::id_index_path(&path)).unwrap();
    assert_eq!(
        tables_in_file(&conn).len(),
        runs.len() + 1,
        "merged runs' tables are dropped"
    );
    drop(conn);
    for first in &written {
        expect_duplicate(&store, first).await;
    }
    let more = fill(&store, "room-r", 3).await;
    store.close();
    drop(store);

    let store = SqliteStore::open_with(&path, SMALL).unwrap();
    for first in written.iter().chain(&more).step_by(7) {
        expect_duplicate(&store, first).await;
    }
    store.close();
    drop(store);

    let conn = rusqlite::Connection::open(SqliteStore::id_index_path(&path)).unwrap();
    conn.execute_batch(
        "update run set filter_format = 0, filter = x'00';
         create table event_id_run_9999 (id blob primary key, position integer not null) without rowid;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open_with(&path, SMALL).unwrap();
    for first in written.iter().chain(&more).step_by(3) {
        expect_duplicate(&store, first).await;
    }
    let conn = rusqlite::Connection::open(SqliteStore::id_index_path(&path)).unwrap();
    assert!(!tables_in_file(&conn).contains(&"event_id_run_9999".to_owned()));
    let formats: Vec<i64> = conn
        .prepare("select distinct filter_format from run")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(formats, [1], "the filters were made again and stored");
    store.close();
    drop((store, conn));

    // A run listed without its table is damage: the file is built again from the log, in
    // one chunk of more ids than a young table takes: one run of the level its size calls
    // for, with a filter made for all of them.
    let conn = rusqlite::Connection::open(SqliteStore::id_index_path(&path)).unwrap();
    let listed: i64 = conn
        .query_row("select min(id) from run", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(&format!("drop table event_id_run_{listed}"))
        .unwrap();
    drop(conn);
    let store = SqliteStore::open_with(&path, SMALL).unwrap();
    assert_eq!(runs_in_file(&path), [(2, 4_003)]);
    for first in written.iter().chain(&more).step_by(3) {
        expect_duplicate(&store, first).await;
    }
    let fresh = fill(&store, "room-r", 3).await;
    assert_eq!(fresh.len(), 3, "new ids still pass the filters");
}

#[tokio::test]
async fn the_log_file_has_no_index_on_event_ids_and_the_index_file_gets_them_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    let written = fill(&store, "room-r", 20).await;

    // Every index of the log's table is over (stream_id, version): appending an event writes
    // no page at a random place of the log's file.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut indexes = conn
        .prepare("select name from pragma_index_list('event')")
        .unwrap();
    let names: Vec<String> = indexes
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!names.is_empty());
    for name in names {
        let columns: Vec<String> = conn
            .prepare("select name from pragma_index_info(?1)")
            .unwrap()
            .query_map([&name], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(columns, ["stream_id", "version"], "index {name}");
    }

    // The ids wait in memory for a batch (a retry is still recognised), then reach the file.
    assert_eq!(
        ids_in_file(&path),
        0,
        "ids are written in batches, not per append"
    );
    expect_duplicate(&store, &written[3]).await;
    assert!(store.flush_id_index(Duration::from_secs(10)));
    assert_eq!(ids_in_file(&path), 20);
    expect_duplicate(&store, &written[3]).await;
    expect_duplicate(&store, &written[19]).await;
    let more = fill(&store, "room-r", 5).await;
    expect_duplicate(&store, &more[0]).await;
    store.close();
    assert_eq!(ids_in_file(&path), 25, "closing writes the last batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_of_one_id_land_once() {
    // Appends that arrive together are committed in one group: a later one in the group must
    // see the id an earlier one added before the group is committed.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("events.db")).unwrap());
    for round in 0..20 {
        let event = joined(round);
        let tries: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let event = event.clone();
                tokio::spawn(async move {
                    store
                        .append(&format!("s{round}-{i}"), Expected::Any, vec![event])
                        .await
                })
            })
            .collect();
        let mut landed = Vec::new();
        let mut refused = Vec::new();
        for t in tries {
            match t.await.unwrap() {
                Ok(recorded) => landed.extend(recorded),
                Err(Error::Duplicate(found)) => refused.push(*found),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(landed.len(), 1, "round {round}: {landed:?}");
        assert!(refused.iter().all(|r| *r == landed[0]));
        assert_eq!(refused.len(), 15);
    }
    assert_eq!(store.read_all(0, 1000).await.unwrap().len(), 20);
}

#[tokio::test]
async fn a_lost_stale_foreign_or_damaged_index_file_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let ids = SqliteStore::id_index_path(&path);
    let saved = dir.path().join("saved-ids.db");

    let first = {
        let store = SqliteStore::open(&path).unwrap();
        let w = fill(&store, "room-a", 10).await;
        store.close();
        w
    };
    std::fs::copy(&ids, &saved).unwrap();
    let second = {
        let store = SqliteStore::open(&path).unwrap();
        let w = fill(&store, "room-a", 10).await;
        store.close();
        w
    };

    // Stale: the file from before the second ten. They are read back from the log on open.
    std::fs::copy(&saved, &ids).unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(ids_in_file(&path), 20);
        expect_duplicate(&store, &second[4]).await;
        expect_duplicate(&store, &first[4]).await;
        store.close();
    }

    // Lost.
    std::fs::remove_file(&ids).unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        expect_duplicate(&store, &first[0]).await;
        expect_duplicate(&store, &second[9]).await;
        store.close();
    }

    // Damaged: not a database at all.
    std::fs::write(
        &ids,
        b"this is not a SQLite database, and it is long enough to look like a header",
    )
    .unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        expect_duplicate(&store, &first[1]).await;
        store.close();
    }

    // Foreign: the index of another log (as after restoring the log from a backup and keeping
    // the newer index). Its ids must not count as this log's, nor hide this log's own.
    let other_path = dir.path().join("other.db");
    let other = {
        let store = SqliteStore::open(&other_path).unwrap();
        let w = fill(&store, "room-b", 30).await;
        store.close();
        w
    };
    std::fs::copy(SqliteStore::id_index_path(&other_path), &ids).unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        expect_duplicate(&store, &first[2]).await;
        expect_duplicate(&store, &second[2]).await;
        let taken = store
            .append(
                "room-c",
                Expected::Any,
                vec![NewEvent {
                    event_id: other[25].event_id,
                    ..joined(1)
                }],
            )
            .await
            .expect("an id only the other log holds is new here");
        assert_eq!(taken[0].position, 21);
        store.close();
    }
}

/// How many indexes of the log's table include the event id.
fn indexes_on_ids(conn: &rusqlite::Connection) -> i64 {
    conn.query_row(
        "select count(*) from pragma_index_list('event') l
         join pragma_index_info(l.name) i where i.name = 'event_id'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn a_log_of_the_first_layout_is_copied_without_its_unique_index() {
    // Build a log as the first migration left it (a unique index on event ids in the log's
    // own file), with events written by today's store, then open it.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db");
    let written = {
        let store = SqliteStore::open(&source).unwrap();
        let w = fill(&store, "room-a", 12).await;
        store.close();
        w
    };
    let path = dir.path().join("events.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        events::migrate::apply(&mut conn, &SqliteStore::MIGRATIONS[..1]).unwrap();
        conn.execute("attach database ?1 as source", [source.to_str().unwrap()])
            .unwrap();
        conn.execute_batch("insert into event select * from source.event; detach database source;")
            .unwrap();
        let unique_on_ids = indexes_on_ids(&conn);
        assert_eq!(
            unique_on_ids, 1,
            "the first layout indexes event ids in the log"
        );
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.read_all(0, 100).await.unwrap(), written);
    expect_duplicate(&store, &written[7]).await;
    let next = store
        .append("room-a", Expected::Exact(12), vec![joined(13)])
        .await
        .unwrap();
    assert_eq!(next[0].position, 13);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let unique_on_ids = indexes_on_ids(&conn);
    assert_eq!(unique_on_ids, 0);
    for sql in ["update event set payload = x'00'", "delete from event"] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn a_log_with_an_id_altered_by_hand_still_opens() {
    // `chatroom verify` must be able to open a tampered log to report it; building the id
    // index leaves out an event whose id is not a UUID instead of failing the open.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let written = {
        let store = SqliteStore::open(&path).unwrap();
        let w = fill(&store, "room-a", 5).await;
        store.close();
        w
    };
    std::fs::remove_file(SqliteStore::id_index_path(&path)).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "drop trigger event_no_update;
             update event set event_id = x'0102' where position = 3;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(*store.head().borrow(), 5);
    expect_duplicate(&store, &written[4]).await;
    expect_duplicate(&store, &written[0]).await;
    assert!(store.flush_id_index(Duration::from_secs(10)));
    assert_eq!(ids_in_file(&path), 4);
}

/// The writer looks a group's ids up in memory and then in the file, while the flusher moves
/// batches from memory to the file. Retries sent while batches move, alone and several in one
/// append, are each recognised, and so is a retry of an id appended earlier in the same group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_racing_the_flusher_are_recognised() {
    race_the_flusher(IdIndexOptions::default()).await;
}

/// The same, with an index that seals a run every 200 ids and merges every three runs, so
/// lookups race seals and merges too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_racing_seals_and_merges_are_recognised() {
    race_the_flusher(SMALL).await;
}

async fn race_the_flusher(options: IdIndexOptions) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_with(dir.path().join("events.db"), options).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut flushes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(store.flush_id_index(Duration::from_secs(10)));
                flushes += 1;
            }
            flushes
        })
    };
    let mut all = Vec::new();
    for round in 0..300 {
        let fresh = fill(&store, &format!("s{round}"), 3).await;
        all.extend(fresh.iter().cloned());
        let mut retries = Vec::new();
        for (i, first) in fresh.iter().chain(all.iter().step_by(97)).enumerate() {
            let (store, first) = (store.clone(), first.clone());
            retries.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    expect_duplicate(&store, &first).await;
                } else {
                    // A new event, then the retry, in one append: refused as a whole.
                    let both = vec![
                        joined(1),
                        NewEvent {
                            event_id: first.event_id,
                            ..joined(2)
                        },
                    ];
                    match store.append("elsewhere", Expected::Any, both).await {
                        Err(Error::Duplicate(found)) => assert_eq!(*found, first),
                        other => panic!("retry of {}: {other:?}", first.event_id),
                    }
                }
            }));
        }
        for r in retries {
            r.await.unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(flusher.join().unwrap() > 10, "the flusher ran throughout");
    assert!(
        store
            .read_stream("elsewhere", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
