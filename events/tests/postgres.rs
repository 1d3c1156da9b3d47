//! The conformance suite on PostgreSQL, plus what only PostgreSQL can get wrong.
//!
//! Runs when `CHATROOM_TEST_DATABASE_URL` points at a server where the user may create
//! databases (`./scripts/test` starts a throwaway one); each test gets a database of its own.
//! Built without it, every test here is ignored, and cargo says why (`build.rs`).

mod support;

use events::{Error, Expected, NewEvent, PostgresStore, Store, Subscription};
use std::sync::Arc;
use std::time::Duration;
use support::{admin, admin_url, joined};

async fn fresh_url() -> String {
    events::testing::scratch_database(&admin_url(), &events::postgres::LOG_MIGRATIONS).await
}

#[cfg(not(no_test_postgres))]
async fn fresh() -> Arc<dyn Store> {
    Arc::new(PostgresStore::connect(&fresh_url().await).await.unwrap())
}

#[cfg(not(no_test_postgres))]
events::conformance_tests!(fresh().await);

/// Stands for the conformance suite, which is not built without a server:
/// `conformance_tests!` cannot mark its tests ignored.
#[cfg(no_test_postgres)]
#[test]
#[ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"]
fn conformance_suite() {
    panic!("built without CHATROOM_TEST_DATABASE_URL: set it and build again");
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_never_skips_an_event_that_commits_late() {
    let url = fresh_url().await;
    // Several stores stand for several server processes appending at once, each with its own
    // writer; a follower reads the log as it grows.
    let mut writers = Vec::new();
    for _ in 0..4 {
        writers.push(Arc::new(PostgresStore::connect(&url).await.unwrap()));
    }
    let reader: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let follower = {
        let reader = reader.clone();
        tokio::spawn(async move {
            let mut sub = Subscription::new(reader, 0, 7);
            let mut seen = Vec::new();
            while seen.len() < 4 * 8 * 25 {
                seen.extend(sub.next().await.unwrap().into_iter().map(|e| e.position));
            }
            seen
        })
    };
    let mut tasks = Vec::new();
    for (w, store) in writers.iter().enumerate() {
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    store
                        .append(&format!("s-{w}-{t}"), Expected::Any, vec![joined(i)])
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("the follower saw every event")
        .unwrap();
    let all: Vec<u64> = reader
        .read_all(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(seen, all, "the follower saw exactly the log, in order");
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_do_not_depend_on_notifications() {
    let url = fresh_url().await;
    let deaf: Arc<dyn Store> = Arc::new(PostgresStore::connect_with(&url, false).await.unwrap());
    let other = PostgresStore::connect(&url).await.unwrap();
    let mut sub = Subscription::new(deaf, 0, 100);
    other
        .append("room-x", Expected::NoStream, vec![joined(1), joined(2)])
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("found by polling")
        .unwrap();
    assert_eq!(got.len(), 2);
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_others_head_moves_with_other_processes_appends_only() {
    let url = fresh_url().await;
    let this = PostgresStore::connect(&url).await.unwrap();
    let other = PostgresStore::connect(&url).await.unwrap();
    let mut others = this.others_head();
    let mine = this
        .append("room-a", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap();
    // This store's own notification reaches its listener in far less than a second; it must
    // not move the watch.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(*this.head().borrow(), mine[0].position);
    assert_eq!(
        *others.borrow_and_update(),
        0,
        "moved by this store's own append"
    );
    let theirs = other
        .append("room-b", Expected::NoStream, vec![joined(2)])
        .await
        .unwrap();
    let seen = tokio::time::timeout(
        Duration::from_secs(10),
        others.wait_for(|p| *p >= theirs[0].position),
    )
    .await
    .expect("the other store's notification arrives")
    .map(|p| *p)
    .unwrap();
    assert_eq!(seen, theirs[0].position);
    // A follower waking on it still reads every event, its own process's too.
    let this: Arc<dyn Store> = Arc::new(this);
    let mut sub = Subscription::waking_on(this.clone(), 0, 100, this.others_head());
    let got = sub.next().await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.position).collect::<Vec<_>>(),
        [mine[0].position, theirs[0].position]
    );
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_never_trusts_a_head_another_process_moved() {
    // Each writer remembers the heads it wrote, and appends on them without reading them
    // again; another process appending in between must be seen all the same.
    let url = fresh_url().await;
    let e: Vec<NewEvent> = (0..9).map(joined).collect();
    let ev = |n: usize| vec![e[n].clone()];
    let a = PostgresStore::connect(&url).await.unwrap();
    let b = PostgresStore::connect(&url).await.unwrap();
    a.append("room-s", Expected::NoStream, ev(1)).await.unwrap();
    // b never saw the stream: creating it again is a conflict, and writes nothing.
    let again = b.append("room-s", Expected::NoStream, ev(2)).await;
    assert!(
        matches!(
            again,
            Err(Error::Conflict {
                actual: Some(1),
                ..
            })
        ),
        "{again:?}"
    );
    b.append("room-s", Expected::Exact(1), ev(3)).await.unwrap();
    // a remembers version 1; the stream is at 2.
    let stale = a.append("room-s", Expected::Exact(1), ev(4)).await;
    assert!(
        matches!(
            stale,
            Err(Error::Conflict {
                actual: Some(2),
                ..
            })
        ),
        "{stale:?}"
    );
    b.append("room-s", Expected::Any, ev(5)).await.unwrap();
    // a learnt version 2 above; the stream is at 3.
    let any = a
        .append("room-s", Expected::Any, vec![e[6].clone(), e[7].clone()])
        .await
        .unwrap();
    assert_eq!(any.iter().map(|e| e.version).collect::<Vec<_>>(), [4, 5]);
    // b wrote version 3 and knows no more; the stream is at 5: its exact expectation on the
    // head it remembers is refused, and writes nothing.
    let behind = b.append("room-s", Expected::Exact(3), ev(6)).await;
    assert!(
        matches!(
            behind,
            Err(Error::Conflict {
                actual: Some(5),
                ..
            })
        ),
        "{behind:?}"
    );
    let ok = a.append("room-s", Expected::Exact(5), ev(8)).await.unwrap();
    assert_eq!(ok[0].version, 6);

    let stream = a.read_stream("room-s", 1, 100).await.unwrap();
    assert_eq!(
        stream.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    let mut previous = events::envelope::GENESIS;
    for e in &stream {
        assert_eq!(e.hash, e.expected_hash(&previous), "v{}", e.version);
        previous = e.hash;
    }
    let ids: Vec<_> = stream.iter().map(|e| e.event_id).collect();
    let expected: Vec<_> = [1, 3, 5, 6, 7, 8]
        .into_iter()
        .map(|n| e[n].event_id)
        .collect();
    assert_eq!(ids, expected);
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn the_database_refuses_update_delete_and_truncate() {
    let url = fresh_url().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    store
        .append("room-r", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap();
    let client = admin(&url).await;
    for sql in [
        "update event set payload = '\\x00'",
        "delete from event",
        "truncate event",
    ] {
        let err = client.batch_execute(sql).await.unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains("append-only"), "{sql}: {text}");
    }
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 1);
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[test]
fn the_writer_runs_on_a_thread_of_its_own() {
    // Appends go through a writer (and connections) with a runtime of their own, so no task
    // of the server's runtime stands between an append and its commit. Shown here by closing
    // the runtime that opened the store: the writer keeps working for another runtime.
    let opening = tokio::runtime::Runtime::new().unwrap();
    let store =
        opening.block_on(async { PostgresStore::connect(&fresh_url().await).await.unwrap() });
    opening.shutdown_background();
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let written = other.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            store.append("room-w", Expected::NoStream, vec![joined(1), joined(2)]),
        )
        .await
    });
    let written = written.expect("the append finished").unwrap();
    assert_eq!(
        written.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn a_group_the_database_refuses_stores_nothing_and_the_writer_goes_on() {
    // The writer pipelines a group's insert, notification and commit; when the insert fails
    // the commit behind it must roll back, and the append must fail rather than be acked.
    let url = fresh_url().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let db = admin(&url).await;
    db.batch_execute(
        "create function refuse_bad() returns trigger language plpgsql as $$
         begin
           if new.stream_id = 'room-bad' then raise exception 'refused for the test'; end if;
           return new;
         end $$;
         create trigger refuse_bad before insert on event
         for each row execute function refuse_bad();",
    )
    .await
    .unwrap();
    let err = store
        .append("room-bad", Expected::NoStream, vec![joined(1), joined(2)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, events::Error::Unavailable(ref m) if m.contains("refused for the test")),
        "{err:?}"
    );
    // Both of the writer's connections are still fit for appends.
    for n in 1..=4 {
        store
            .append("room-good", Expected::Any, vec![joined(n)])
            .await
            .unwrap();
    }
    assert_eq!(store.stream_version("room-bad").await.unwrap(), None);
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 4);
    db.batch_execute("drop trigger refuse_bad on event")
        .await
        .unwrap();
    let written = store
        .append("room-bad", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap();
    assert_eq!(written[0].version, 1);
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_fails_before_its_commit_releases_the_append_lock() {
    // A group that fails after its first round trip (here on a stored hash of the wrong
    // length) has begun a transaction and taken the append lock; both must end with the
    // failure, or every other writer on the database waits for that lock for ever.
    let url = fresh_url().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let db = admin(&url).await;
    db.batch_execute(
        "insert into event (stream_id, version, event_id, event_type, schema_version,
                            recorded_at, payload, hash)
         values ('room-x', 1, '00000000-0000-0000-0000-000000000001', 'MemberJoined', 1, 0,
                 '\\x00', '\\x00')",
    )
    .await
    .unwrap();
    let err = store
        .append("room-x", Expected::Any, vec![joined(2)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, events::Error::Corrupt(ref m) if m.contains("wrong length")),
        "{err:?}"
    );
    let other = PostgresStore::connect(&url).await.unwrap();
    let written = tokio::time::timeout(
        Duration::from_secs(10),
        other.append("room-y", Expected::NoStream, vec![joined(1)]),
    )
    .await
    .expect("another writer got the append lock")
    .unwrap();
    assert_eq!(written[0].version, 1);
    store
        .append("room-z", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap();
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_not_committed_in_time_is_unavailable_and_may_land_later() {
    // Another session holds the append lock, as a commit waiting for a lost synchronous
    // standby holds it: the append is answered, not left hanging, and is not cancelled.
    let url = fresh_url().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let db = admin(&url).await;
    db.batch_execute(&format!(
        "begin; select pg_advisory_xact_lock({})",
        events::postgres::APPEND_LOCK
    ))
    .await
    .unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        store.append("room-x", Expected::NoStream, vec![joined(1)]),
    )
    .await
    .expect("answered while the lock is held")
    .unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(ref m) if m.contains("may still be stored")),
        "{err:?}"
    );
    assert_eq!(store.stream_version("room-x").await.unwrap(), None);
    // While that commit hangs, later appends are refused without queueing behind it.
    let err = store
        .append("room-y", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(ref m) if m.contains("has not committed for")),
        "{err:?}"
    );
    db.batch_execute("commit").await.unwrap();
    let mut landed = None;
    for _ in 0..100 {
        landed = store.stream_version("room-x").await.unwrap();
        if landed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(landed, Some(1), "the append went on once the lock was free");
    assert_eq!(store.stream_version("room-y").await.unwrap(), None);
    store
        .append("room-y", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap();
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn postgres_snapshots_conform() {
    let url =
        events::testing::scratch_database(&admin_url(), &[events::snapshot::POSTGRES_MIGRATION])
            .await;
    let pool = events::postgres::pool(&url, 2).unwrap();
    events::snapshot::conformance(&events::snapshot::PostgresSnapshots::new(pool)).await;
}
