//! Projection workers following a real log into real SQLite tables.

use events::testing::{created, joined, new_events, posted, registered};
use events::{Expected, MemoryStore, Store};
use projections::{Projection, ReadDb, Target, Workers, sqlite};
use std::sync::Arc;
use std::time::Duration;

async fn seed(store: &dyn Store) -> u64 {
    for (id, name) in [("a", "Ann"), ("b", "Bob")] {
        store
            .append(
                &format!("user-{id}"),
                Expected::NoStream,
                new_events([registered(id, name)]),
            )
            .await
            .unwrap();
    }
    let room = [created("r", "a"), joined("r", "a"), joined("r", "b")]
        .into_iter()
        .chain((1..=5).map(|seq| {
            let by = if seq % 2 == 0 { "a" } else { "b" };
            posted("r", seq, by, &format!("text {seq}"))
        }));
    let rec = store
        .append("room-r", Expected::NoStream, new_events(room))
        .await
        .unwrap();
    rec.last().unwrap().position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_build_every_table_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let head = seed(&*store).await;
    let db = ReadDb::open(dir.path().join("read.db")).unwrap();
    let workers = Workers::start(
        store.clone(),
        projections::Reads::Sqlite(db.clone()),
        events::testing::keys(),
    )
    .await
    .unwrap();
    assert!(workers.wait_for(head, Duration::from_secs(10)).await);
    let (user, rooms, page, member) = db
        .with(|c| {
            Ok((
                sqlite::user_by_name(c, "ANN")?,
                sqlite::rooms_of(c, "b")?,
                sqlite::messages(c, "r", Some(5), 2)?,
                sqlite::is_member(c, "r", "b")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(user.unwrap().name, "Ann");
    assert_eq!(rooms.len(), 1);
    assert_eq!((rooms[0].member_count, rooms[0].last_seq), (2, 5));
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(page[0].user_name, "Bob");
    assert!(member);
    workers.shutdown().await;

    // More events while stopped; a restart continues from each checkpoint, applying nothing
    // twice (a second insert of a row would fail the batch).
    store
        .append(
            "room-r",
            Expected::Any,
            new_events([posted("r", 6, "a", "six")]),
        )
        .await
        .unwrap();
    let workers = Workers::start(
        store.clone(),
        projections::Reads::Sqlite(db.clone()),
        events::testing::keys(),
    )
    .await
    .unwrap();
    assert!(workers.wait_for(head + 1, Duration::from_secs(10)).await);
    assert!(workers.positions().iter().all(|(_, p)| *p == head + 1));
    let latest = db
        .with(|c| sqlite::messages(c, "r", None, 50))
        .await
        .unwrap();
    assert_eq!(latest.len(), 6);
    workers.shutdown().await;
}

#[tokio::test]
async fn a_batch_applies_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    seed(&*store).await;
    let db = ReadDb::open(dir.path().join("read.db")).unwrap();
    let mut conn = db.writer().unwrap();
    let all = store.read_all(0, 100).await.unwrap();
    let p = projections::Projection::RoomRecord;
    // A pre-existing conflicting row makes the batch fail: neither rows nor checkpoint move.
    conn.execute(
        "insert into room_record (room_id, seq, message_id, user_id, message, time, event_id,
                                  position)
         values ('r', 3, 'x', 'a', 'x', 0, x'00', 0)",
        [],
    )
    .unwrap();
    assert!(
        sqlite::commit_batch(
            &events::testing::keys(),
            &mut conn,
            &[p],
            Target::Live,
            &all
        )
        .is_err()
    );
    assert_eq!(sqlite::checkpoint(&conn, p).unwrap(), 0);
    let n: i64 = conn
        .query_row("select count(*) from room_record", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_at_different_checkpoints_each_apply_every_event_once() {
    // On SQLite one task applies each batch to every table in one transaction. Projections
    // need not stand at one position (one was just rebuilt, or is new): each must start from
    // its own checkpoint. Here `user` and `room_record` have applied the whole seed, `room`
    // and `room_member` nothing; a row applied twice would fail its batch (unique keys) and a
    // skipped one would be missing below.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let head = seed(&*store).await;
    let db = ReadDb::open(dir.path().join("read.db")).unwrap();
    let log = store.read_all(0, 100).await.unwrap();
    db.with_writer(move |c| {
        sqlite::commit_batch(
            &events::testing::keys(),
            c,
            &[Projection::User],
            Target::Live,
            &log,
        )?;
        sqlite::commit_batch(
            &events::testing::keys(),
            c,
            &[Projection::RoomRecord],
            Target::Live,
            &log,
        )
    })
    .await
    .unwrap();
    let workers = Workers::start(
        store.clone(),
        projections::Reads::Sqlite(db.clone()),
        events::testing::keys(),
    )
    .await
    .unwrap();
    assert!(workers.wait_for(head, Duration::from_secs(10)).await);
    let (user, rooms, page, member) = db
        .with(|c| {
            Ok((
                sqlite::user_by_name(c, "bob")?,
                sqlite::rooms_of(c, "a")?,
                sqlite::messages(c, "r", None, 50)?,
                sqlite::is_member(c, "r", "a")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(user.unwrap().name, "Bob");
    assert_eq!(rooms.len(), 1);
    assert_eq!((rooms[0].member_count, rooms[0].last_seq), (2, 5));
    assert_eq!(page.len(), 5);
    assert!(member);
    assert!(workers.positions().iter().all(|(_, p)| *p == head));
    workers.shutdown().await;
}
