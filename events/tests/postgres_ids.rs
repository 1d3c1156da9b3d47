//! The PostgreSQL log's event-id index: retries are recognised wherever the first try's id
//! is (the young table, a run with its filter, a run without one, a run made from an older
//! log's ids), by every process, while other processes seal and merge runs under it.
//!
//! Runs when `CHATROOM_TEST_DATABASE_URL` is set (see `tests/postgres.rs`); skips otherwise.

mod support;

use events::postgres::{MIGRATION, scratch_database};
use events::{
    Error, Expected, IdIndexOptions, NewEvent, PostgresOptions, PostgresStore, Recorded, Store,
};
use std::sync::Arc;
use std::time::Duration;
use support::{admin, joined};

/// Small runs, so that a few hundred events seal and merge two levels up.
const SMALL: IdIndexOptions = IdIndexOptions {
    young_max: 20,
    fan_in: 3,
};

async fn small(url: &str, upkeep_every: Option<Duration>) -> PostgresStore {
    PostgresStore::connect_with_options(
        url,
        PostgresOptions {
            ids: SMALL,
            upkeep_every,
            ..PostgresOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Appends the id of `first` again (on its own stream, whose head `store` may know and then
/// writes without a lookup, with another payload) and expects the log to answer with `first`
/// itself.
async fn expect_duplicate(store: &PostgresStore, first: &Recorded) {
    let retry = NewEvent {
        event_id: first.event_id,
        ..joined(999_999)
    };
    match store
        .append(&first.stream_id, Expected::Any, vec![retry])
        .await
    {
        Err(Error::Duplicate(found)) => assert_eq!(*found, *first),
        other => panic!(
            "expected the retry of {} to be refused, got {other:?}",
            first.event_id
        ),
    }
}

/// (level, ids) of every listed run (the ids counted in its table: a run's `ids` is set with
/// its filter), and the ids in the young table.
async fn runs(db: &tokio_postgres::Client) -> (Vec<(i32, i64)>, i64) {
    let count = |table: String| async move {
        db.query_one(&format!("select count(*) from {table}"), &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let mut listed = Vec::new();
    for row in db
        .query("select run, level from event_id_run order by run", &[])
        .await
        .unwrap()
    {
        let run: i64 = row.get(0);
        listed.push((row.get(1), count(format!("event_id_run_{run}")).await));
    }
    (listed, count("event_id_young".into()).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_sealed_into_runs_and_merged_are_recognised_by_every_process() {
    let Some(url) = scratch_database(&[MIGRATION, events::postgres_ids::MIGRATION]).await else {
        return;
    };
    let db = admin(&url).await;
    let a = small(&url, None).await;
    let b = small(&url, None).await;
    let mut first = Vec::new();
    for i in 0..300u64 {
        let (this, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        first.extend(
            this.append(&format!("room-{}", i % 7), Expected::Any, vec![joined(i)])
                .await
                .unwrap(),
        );
        if i % 10 == 9 {
            other.maintain_ids().await.unwrap();
        }
    }
    let (listed, young) = runs(&db).await;
    assert_eq!(listed.iter().map(|r| r.1).sum::<i64>() + young, 300);
    assert!(
        listed.iter().any(|r| r.0 == 2),
        "merged two levels up: {listed:?}"
    );
    // Each id through both processes: one of them has not read the runs since the last
    // change, and must find out under the append lock.
    for (n, e) in first.iter().enumerate() {
        let (this, other) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        expect_duplicate(this, e).await;
        expect_duplicate(other, e).await;
    }

    // Runs without a filter (a process sealed and stopped before making it, or a filter of a
    // layout this build does not know): the database probes them.
    db.batch_execute(
        "update event_id_run set filter = null where run % 2 = 0;
         update event_id_run set filter_format = 99 where run % 2 = 1;
         update event_id_state set generation = generation + 1",
    )
    .await
    .unwrap();
    for e in first.iter().step_by(7) {
        expect_duplicate(&a, e).await;
        expect_duplicate(&b, e).await;
    }
    let upkeep = b.maintain_ids().await.unwrap();
    assert_eq!(upkeep.filtered as usize, listed.len(), "{upkeep:?}");
    for e in first.iter().step_by(5) {
        expect_duplicate(&a, e).await;
    }
    // New ids still go in, and nothing was written twice.
    a.append("room-new", Expected::NoStream, vec![joined(1)])
        .await
        .unwrap();
    let dup: i64 = db
        .query_one("select count(*) - count(distinct event_id) from event", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dup, 0);
    assert_eq!(a.read_all(0, 10_000).await.unwrap().len(), 301);
}

#[tokio::test]
async fn a_retry_on_a_known_head_through_a_stale_view_is_recognised() {
    // The one-round-trip path: a process whose writer knows the stream's head (it wrote the
    // last event) and has not read the runs since another process sealed the id away. Its
    // filters know no run holding the id, and the young table no longer holds it: only the
    // check of the view under the append lock can send it to the runs.
    let Some(url) = scratch_database(&[MIGRATION, events::postgres_ids::MIGRATION]).await else {
        return;
    };
    let a = small(&url, None).await;
    let b = small(&url, None).await;
    for i in 0..SMALL.young_max {
        a.append(&format!("room-{}", i % 3), Expected::Any, vec![joined(i)])
            .await
            .unwrap();
    }
    let last = a
        .append("room-last", Expected::NoStream, vec![joined(1_000)])
        .await
        .unwrap()
        .remove(0);
    let upkeep = b.maintain_ids().await.unwrap();
    assert_eq!((upkeep.sealed, upkeep.filtered), (1, 1), "{upkeep:?}");
    let db = admin(&url).await;
    let (listed, young) = runs(&db).await;
    assert_eq!((listed.len(), young), (1, 0), "{listed:?}");
    expect_duplicate(&a, &last).await;
    expect_duplicate(&b, &last).await;
    let count: i64 = db
        .query_one("select count(*) from event", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count as u64, SMALL.young_max + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_racing_seals_and_merges_in_other_processes_are_recognised() {
    let Some(url) = scratch_database(&[MIGRATION, events::postgres_ids::MIGRATION]).await else {
        return;
    };
    // Three processes, each keeping the index up every few milliseconds, append and retry
    // at once: every retry must find its first try, wherever the id has moved meanwhile.
    let stores: Vec<Arc<PostgresStore>> =
        futures::future::join_all((0..3).map(|_| small(&url, Some(Duration::from_millis(5)))))
            .await
            .into_iter()
            .map(Arc::new)
            .collect();
    let tasks = (0..6u64).map(|t| {
        let this = stores[t as usize % 3].clone();
        let other = stores[(t as usize + 1) % 3].clone();
        tokio::spawn(async move {
            let mut mine: Vec<Recorded> = Vec::new();
            for i in 0..100u64 {
                let n = t * 1_000 + i;
                let e = this
                    .append(&format!("room-{t}"), Expected::Any, vec![joined(n)])
                    .await
                    .unwrap();
                mine.extend(e);
                // A retry of an older id of this task, through another process.
                let old = &mine[(i as usize * 7) % mine.len()];
                expect_duplicate(&other, old).await;
            }
            mine
        })
    });
    let written: Vec<Recorded> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    assert_eq!(written.len(), 600);
    let db = admin(&url).await;
    let dup: i64 = db
        .query_one("select count(*) - count(distinct event_id) from event", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dup, 0, "an id was written twice");
    let (listed, young) = runs(&db).await;
    assert!(listed.len() >= 2, "{listed:?}");
    assert_eq!(listed.iter().map(|r| r.1).sum::<i64>() + young, 600);
    for e in written.iter().step_by(3) {
        expect_duplicate(&stores[0], e).await;
    }
}

#[tokio::test]
async fn an_older_logs_ids_become_a_run_and_are_recognised() {
    // A log from before the index (its ids in a unique index on the log table) is migrated:
    // its ids become run 1, recognised before any process has made its filter and after.
    let Some(url) = scratch_database(&[MIGRATION]).await else {
        return;
    };
    let db = admin(&url).await;
    db.batch_execute(
        "insert into event (stream_id, version, event_id, event_type, schema_version,
                            recorded_at, payload, hash)
         select 'room-old', n, gen_random_uuid(), 'MemberJoined', 1, 0, '\\x00',
                decode(repeat('00', 32), 'hex')
         from generate_series(1, 300) as n",
    )
    .await
    .unwrap();
    let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    events::migrate::apply_postgres(&mut client, &[events::postgres_ids::MIGRATION])
        .await
        .unwrap();
    assert_eq!(runs(&db).await, (vec![(0, 300)], 0));
    let store = small(&url, None).await;
    let old = store.read_stream("room-old", 1, 1_000).await.unwrap();
    assert_eq!(old.len(), 300);
    for e in old.iter().step_by(11) {
        expect_duplicate(&store, e).await;
    }
    let upkeep = store.maintain_ids().await.unwrap();
    assert_eq!(upkeep.filtered, 1, "{upkeep:?}");
    // 300 ids make a run of level 2 (past 3 x 3 runs of 20, the young table's size).
    assert_eq!(runs(&db).await.0, vec![(2, 300)]);
    for e in &old {
        expect_duplicate(&store, e).await;
    }
    let new = store
        .append("room-old", Expected::Exact(300), vec![joined(1)])
        .await
        .unwrap();
    expect_duplicate(&store, &new[0]).await;
}
