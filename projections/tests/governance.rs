//! The read side of rooms people govern, on both engines: given a room's governance events,
//! the queries answer members with roles and mutes, the caller's role, the live invites, the
//! room of any code it ever had and its settings; a rebuild of every table answers the same;
//! and the migration of a read database from before keeps its members, the owner as owner.
//!
//! The PostgreSQL tests run when `CHATROOM_TEST_DATABASE_URL` is set, as in `postgres.rs`.

mod common;

use common::*;
use events::event::{Role, UserErased, join_code_hash};
use events::testing::{created, joined, registered};
use events::{Event, Expected, MemoryStore, NewEvent, Store};
use projections::{ALL, DELETED_USER, ReadDb, Reads, Workers, postgres, rebuild, sqlite};
use std::sync::Arc;
use std::time::Duration;

/// The log of room `r`, owned by `o`, with the time of each event.
fn log() -> Vec<(Event, i64)> {
    let mut log: Vec<Event> = [
        ("o", "Olga"),
        ("a", "Ann"),
        ("m", "Max"),
        ("k", "Kim"),
        ("z", "Zed"),
        ("l", "Lou"),
        ("n", "Ned"),
        ("x", "Xia"),
    ]
    .iter()
    .map(|(id, name)| registered(id, name))
    .collect();
    log.extend([
        created("r", "o"),
        joined("r", "o"),
        joined("r", "m"),
        joined("r", "a"),
        joined("r", "k"),
        joined("r", "z"),
        joined("r", "l"),
        role("r", "a", "o", Role::Admin),
        muted("r", "m", "a", 99_000),
        kicked("r", "k", "a"),
        // Not a member: banned all the same, and nobody fewer in the room.
        banned("r", "x", "o", None),
        left("r", "l"),
        Event::UserErased(UserErased {
            user_id: "z".into(),
            by_operator: false,
        }),
        rotated("r", "a", "r2"),
        invite("r", "i1", "a", Some(1), None),
        joined_with("r", "n", "i1"),
        invite("r", "i2", "a", None, Some(5_000)),
        invite("r", "i3", "o", None, None),
        revoked("r", "i3", "o"),
        invite("r", "i4", "a", Some(3), None),
        updated("r", "a", Some("Renamed"), None, Some(Some(3))),
        archived("r", "o", true),
    ]);
    log.into_iter()
        .enumerate()
        .map(|(i, e)| (e, 1_000 + i as i64))
        .collect()
}

async fn fill(store: &dyn Store) -> u64 {
    let mut head = 0;
    for (e, time) in log() {
        let rec = store
            .append(
                "s",
                Expected::Any,
                vec![NewEvent::with_id(uuid::Uuid::new_v4(), &e, time)],
            )
            .await
            .unwrap();
        head = rec.last().unwrap().position;
    }
    head
}

/// What the queries must answer of [`log`].
async fn answers_as_logged(reads: &Reads) {
    let members = reads.members("r").await.unwrap();
    let listed: Vec<(&str, &str, &str, Option<i64>)> = members
        .iter()
        .map(|m| {
            (
                m.user_id.as_str(),
                m.name.as_str(),
                m.role.as_str(),
                m.muted_until,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("o", "Olga", "owner", None),
            ("a", "Ann", "admin", None),
            ("m", "Max", "member", Some(99_000)),
            ("z", DELETED_USER, "member", None),
            ("n", "Ned", "member", None),
        ],
        "owner, admins, members by join time; kicked, left and banned gone"
    );
    assert!(
        members
            .windows(2)
            .skip(2)
            .all(|w| w[0].joined_at < w[1].joined_at)
    );
    assert_eq!(
        reads.member_role("r", "a").await.unwrap().as_deref(),
        Some("admin")
    );
    for gone in ["k", "l", "x"] {
        assert_eq!(reads.member_role("r", gone).await.unwrap(), None, "{gone}");
        assert_eq!(
            reads.member_messages("r", gone, None, 10).await.unwrap(),
            None,
            "{gone}'s history"
        );
        assert_eq!(reads.search("r", gone, "x", 10).await.unwrap(), None);
    }
    assert!(
        reads
            .member_messages("r", "m", None, 10)
            .await
            .unwrap()
            .is_some()
    );

    let room = reads.room_for("r", "a").await.unwrap().unwrap();
    assert_eq!(room.role.as_deref(), Some("admin"));
    assert_eq!(
        (room.name.as_str(), room.archived, room.retention_days),
        ("Renamed", true, Some(3))
    );
    assert_eq!(room.member_count, 5);
    assert_eq!(room.room_hash_id, code("r2"));
    let outsider = reads.room_for("r", "k").await.unwrap().unwrap();
    assert_eq!(outsider.role, None);
    assert_eq!(reads.room_by_id("r").await.unwrap().unwrap().role, None);
    let mine = reads.rooms_of("m").await.unwrap();
    assert_eq!(mine[0].role.as_deref(), Some("member"));
    assert!(reads.rooms_of("k").await.unwrap().is_empty());

    // Every code the room ever had finds it; the room actor tells which still work.
    let first = format!("{:0>32}", "r");
    for c in [first, code("r2"), code("i1"), code("i3")] {
        assert_eq!(
            reads
                .room_of_code(&join_code_hash(&c))
                .await
                .unwrap()
                .as_deref(),
            Some("r"),
            "{c}"
        );
    }
    assert_eq!(
        reads
            .room_of_code(&join_code_hash(&code("no")))
            .await
            .unwrap(),
        None
    );

    let live = |now: i64| async move {
        reads
            .invites("r", now)
            .await
            .unwrap()
            .into_iter()
            .map(|i| {
                (
                    i.invite_id,
                    i.code,
                    i.uses,
                    i.max_uses,
                    i.expires_at,
                    i.created_by,
                )
            })
            .collect::<Vec<_>>()
    };
    let i2 = (
        "i2".to_owned(),
        code("i2"),
        0,
        None,
        Some(5_000),
        "a".to_owned(),
    );
    let i4 = (
        "i4".to_owned(),
        code("i4"),
        0,
        Some(3),
        None,
        "a".to_owned(),
    );
    assert_eq!(
        live(4_999).await,
        [i2, i4.clone()],
        "i1 used up, i3 revoked"
    );
    assert_eq!(live(5_000).await, [i4], "i2 expired");
    assert_eq!(
        reads.retention_rooms().await.unwrap(),
        [("r".to_owned(), 3)]
    );
}

async fn the_queries_answer_the_log_and_a_rebuild_the_same(reads: Reads) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let head = fill(&*store).await;
    let workers = Workers::start(store.clone(), reads.clone(), events::testing::keys())
        .await
        .unwrap();
    assert!(workers.wait_for(head, Duration::from_secs(30)).await);
    answers_as_logged(&reads).await;
    for p in ALL {
        rebuild::prepare(&reads, p, true).await.unwrap();
        rebuild::fill(&reads, &store, &events::testing::keys(), p, |_| {})
            .await
            .unwrap();
        rebuild::switch(&reads, &store, &events::testing::keys(), p)
            .await
            .unwrap();
    }
    answers_as_logged(&reads).await;
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_the_governance_of_a_room() {
    let dir = tempfile::tempdir().unwrap();
    let db = ReadDb::open(dir.path().join("read.db")).unwrap();
    the_queries_answer_the_log_and_a_rebuild_the_same(Reads::Sqlite(db)).await;
}

fn admin_url() -> String {
    std::env::var("CHATROOM_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL")
}

const BEFORE: [events::migrate::Migration; 4] = [
    events::postgres::MIGRATION,
    postgres::MIGRATION,
    postgres::SEARCH_MIGRATION,
    postgres::SEALED_MIGRATION,
];

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_the_governance_of_a_room() {
    let mut all = BEFORE.to_vec();
    all.extend([
        postgres::GOVERNANCE_MIGRATION,
        postgres::MESSAGES_MIGRATION,
        projections::markers::POSTGRES_MIGRATION,
        postgres::DIRECT_MIGRATION,
        projections::dead::POSTGRES_MIGRATION,
    ]);
    let url = events::testing::scratch_database(&admin_url(), &all).await;
    let pool = events::postgres::pool(&url, 8).unwrap();
    the_queries_answer_the_log_and_a_rebuild_the_same(Reads::Postgres(pool)).await;
}

/// The rows of a read database from before: room `r` owned by `o`, with members `o` and `m`,
/// its tables applied up to position 10.
const OLD_ROWS: &str = "
    insert into room (id, name, description, owner, avatar_image, room_hash_id, create_time,
                      update_time, member_count, last_seq)
    values ('r', 'R', '', 'o', '', 'c', 1, 2, 2, 4);
    insert into room_member (room_id, user_id, joined_at) values ('r', 'o', 1), ('r', 'm', 2);
    insert into projection_checkpoint (projection, position)
    values ('room', 10), ('room_member', 10);";

async fn upgraded_as_before(reads: &Reads) {
    let members = reads.members("r").await.unwrap();
    let roles: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.user_id.as_str(), m.role.as_str()))
        .collect();
    assert_eq!(roles, [("o", "owner"), ("m", "member")]);
    let room = reads.room_for("r", "o").await.unwrap().unwrap();
    assert_eq!(
        (
            room.member_count,
            room.last_seq,
            room.archived,
            room.retention_days
        ),
        (2, 4, false, None)
    );
    assert_eq!(room.role.as_deref(), Some("owner"));
    for (p, at) in [
        (projections::Projection::Room, 10),
        (projections::Projection::RoomMember, 10),
        (projections::Projection::RoomCode, 0),
    ] {
        assert_eq!(reads.checkpoint(p).await.unwrap(), at, "{p:?}");
    }
}

#[tokio::test]
async fn sqlite_upgrade_keeps_the_members_with_the_owner_as_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    {
        let mut c = rusqlite::Connection::open(&path).unwrap();
        events::migrate::apply(&mut c, &sqlite::MIGRATIONS[..3]).unwrap();
        c.execute_batch(OLD_ROWS).unwrap();
    }
    let db = ReadDb::open(&path).unwrap();
    upgraded_as_before(&Reads::Sqlite(db)).await;
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn postgres_upgrade_keeps_the_members_with_the_owner_as_owner() {
    let url = events::testing::scratch_database(&admin_url(), &BEFORE).await;
    let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(OLD_ROWS).await.unwrap();
    let mut all = BEFORE.to_vec();
    all.extend([
        postgres::GOVERNANCE_MIGRATION,
        postgres::MESSAGES_MIGRATION,
        projections::markers::POSTGRES_MIGRATION,
        postgres::DIRECT_MIGRATION,
    ]);
    assert_eq!(
        events::migrate::apply_postgres(&mut client, &all)
            .await
            .unwrap(),
        4
    );
    let pool = events::postgres::pool(&url, 4).unwrap();
    upgraded_as_before(&Reads::Postgres(pool)).await;
}
