//! The PostgreSQL writer's two paths (`events/src/postgres_writer.rs`), one group at a time:
//! one round trip on heads it knows, two when it must read them, and the plans its statements
//! keep. Runs when `CHATROOM_TEST_DATABASE_URL` names a server where databases may be created.

mod support;

use deadpool_postgres::Pool;
use events::Expected;
use events::postgres::{MIGRATION, WRITER_OPTIONS, pool, pool_with};
use events::testing::postgres_writer::{
    HEADS_OF, Known, NOTIFY, Statements, WriteRequest, write_known, write_read,
};
use events::testing::scratch_database;
use support::{admin_url, joined};
use tokio::sync::oneshot;

fn request(stream: &str, expected: Expected) -> WriteRequest {
    let (reply, _) = oneshot::channel();
    WriteRequest {
        stream: stream.to_owned(),
        expected,
        events: vec![joined(0)],
        reply,
    }
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn a_group_on_known_heads_takes_one_round_trip_and_a_stale_head_writes_nothing() {
    let url = scratch_database(&admin_url(), &[MIGRATION]).await;
    let pool = pool_with(&url, 1, Some(WRITER_OPTIONS)).unwrap();
    let client = pool.get().await.unwrap();
    let st = Statements::prepare(&client).await.unwrap();
    let mut known = Known::default();
    let reader = events::postgres::pool(&url, 1).unwrap();
    let stored = || async {
        let c = reader.get().await.unwrap();
        c.query_one("select count(*) from event", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    // A new stream and then the head just written: one round trip each.
    for (expected, version) in [(Expected::NoStream, 1), (Expected::Exact(1), 2)] {
        let group = [request("room-x", expected)];
        let written = write_known(&client, &st, &group, "w", &known)
            .await
            .unwrap()
            .expect("written on the known head");
        let recs = written[0].as_ref().unwrap();
        assert_eq!(recs[0].version, version);
        assert!(recs[0].position > 0);
        known.learn_results(&written);
    }
    // An unknown head, or an expected version the known head does not match (stale, or
    // a real conflict): only the database can tell, so nothing is sent.
    for group in [
        [request("room-y", Expected::Exact(1))],
        [request("room-x", Expected::Exact(5))],
    ] {
        assert!(
            write_known(&client, &st, &group, "w", &known)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(stored().await, 2);
    // A stale head (the stream has moved on): the insert collides, nothing is written,
    // and the two-trip path on the same connection writes after the real head.
    let stale = known.heads["room-x"];
    let second = write_known(
        &client,
        &st,
        &[request("room-x", Expected::Any)],
        "w",
        &known,
    )
    .await
    .unwrap()
    .unwrap();
    known.learn_results(&second);
    known.heads.insert("room-x".into(), stale);
    let group = [request("room-x", Expected::Any)];
    assert!(
        write_known(&client, &st, &group, "w", &known)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(stored().await, 3);
    let written = write_read(&client, &st, &group, "w", &mut known)
        .await
        .unwrap();
    assert_eq!(written[0].as_ref().unwrap()[0].version, 4);
    assert_eq!(known.heads["room-x"].0, 3, "learnt from the database");
    assert_eq!(stored().await, 4);
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn the_writer_plans_its_statements_once_and_every_plan_reads_through_an_index() {
    let url = scratch_database(&admin_url(), &[MIGRATION]).await;
    let show = |pool: Pool, what: &'static str| async move {
        let client = pool.get().await.unwrap();
        let row = client
            .query_one(&format!("show {what}"), &[])
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    let writer = pool_with(&url, 1, Some(WRITER_OPTIONS)).unwrap();
    assert_eq!(
        show(writer.clone(), "plan_cache_mode").await,
        "force_generic_plan"
    );
    assert_eq!(show(writer.clone(), "enable_seqscan").await, "off");
    assert_eq!(show(writer.clone(), "jit").await, "off");
    let other = pool(&url, 1).unwrap();
    assert_eq!(show(other.clone(), "plan_cache_mode").await, "auto");
    assert_eq!(show(other, "enable_seqscan").await, "on");

    // The plan each statement keeps is made on the first run, here on an empty log, and
    // must still be right once the log holds millions of events: an index, never a scan of
    // the whole table.
    let client = writer.get().await.unwrap();
    let statements = [
        ("heads", "text[]", HEADS_OF, "'{a,b}'"),
        ("notify", "text, text", NOTIFY, "'nobody_listens', 'w'"),
    ];
    for (name, ty, sql, arg) in statements {
        client
            .batch_execute(&format!("prepare {name}({ty}) as {sql}"))
            .await
            .unwrap();
        let plan: Vec<String> = client
            .query(&format!("explain execute {name}({arg})"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("Index"), "{name}: {plan}");
        assert!(!plan.contains("Seq Scan"), "{name}: {plan}");
    }
}
