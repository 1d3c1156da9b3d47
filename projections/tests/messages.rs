//! The read side of messages that change, on both engines: given a room's posts, answers,
//! edits, deletions and reactions, history, search and the single message show each message
//! as it is now, with the room's version of its latest change, and its author's export lists
//! every text it had; a rebuild gives the same rows; erasure and retention leave no text of
//! any version in any table; and the migration from before empties the records for the log
//! to fill again.
//!
//! The PostgreSQL tests run when `CHATROOM_TEST_DATABASE_URL` is set, as in `postgres.rs`.

mod common;

use common::*;
use events::event::UserErased;
use events::testing::{created, joined, posted, registered};
use events::{Event, Expected, MemoryStore, NewEvent, Store};
use projections::{Projection, ReadDb, Reads, Workers, postgres, rebuild, sqlite};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The log of room `r`: each event with a name the checks refer to it by (its stream
/// version and time are looked up by that name).
fn log() -> Vec<(&'static str, Event)> {
    vec![
        ("", registered("o", "Olga")),
        ("", registered("a", "Ann")),
        ("", registered("b", "Bob")),
        ("", created("r", "o")),
        ("", joined("r", "o")),
        ("", joined("r", "a")),
        ("", joined("r", "b")),
        ("post 1", posted("r", 1, "a", "Hello world")),
        ("post 2", replied("r", 2, "b", "An answer", 1)),
        ("", reacted("r", 1, "b", "👍", true)),
        ("", reacted("r", 1, "o", "🎉", true)),
        ("", reacted("r", 1, "o", "👍", true)),
        // Twice the same, and one taken back that is not there: nothing changes but versions.
        ("", reacted("r", 1, "b", "👍", true)),
        ("", reacted("r", 1, "a", "👀", false)),
        // 👍 came first and stays first while o still uses it; b comes back after o.
        ("", reacted("r", 1, "b", "👍", false)),
        ("", reacted("r", 1, "a", "🎉", true)),
        ("", reacted("r", 1, "b", "👍", true)),
        // A symbol nobody uses any more goes, and comes back last.
        ("", reacted("r", 1, "a", "👀", true)),
        ("", reacted("r", 1, "a", "👀", false)),
        ("edit 1a", edited("r", 1, "a", "Hello EDITED world")),
        ("post 3", posted("r", 3, "b", "soon gone")),
        ("", reacted("r", 3, "a", "x", true)),
        ("edit 3", edited("r", 3, "b", "going, going")),
        ("delete 3", deleted("r", 3, "o")),
        ("post 4", replied("r", 4, "a", "Ann again", 3)),
        ("edit 1b", edited("r", 1, "a", "  Final\twords ")),
    ]
}

/// The stream version and time of each named event of [`log`].
type Marks = HashMap<&'static str, (u64, i64)>;

async fn fill(store: &dyn Store) -> (u64, Marks) {
    let mut marks = HashMap::new();
    let mut head = 0;
    for (i, (name, e)) in log().into_iter().enumerate() {
        let stream = match &e {
            Event::UserRegistered(u) => format!("user-{}", u.user_id),
            _ => "room-r".to_owned(),
        };
        let time = 10_000 + 1_000 * i as i64;
        let rec = store
            .append(
                &stream,
                Expected::Any,
                vec![NewEvent::with_id(uuid::Uuid::new_v4(), &e, time)],
            )
            .await
            .unwrap();
        let rec = rec.last().unwrap();
        head = rec.position;
        marks.insert(name, (rec.version, time));
    }
    (head, marks)
}

fn version(marks: &Marks, name: &str) -> u64 {
    marks[name].0
}

fn time(marks: &Marks, name: &str) -> i64 {
    marks[name].1
}

fn reactions(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|(e, users)| {
            (
                (*e).to_owned(),
                users.iter().map(|u| (*u).to_owned()).collect(),
            )
        })
        .collect()
}

/// What the queries must answer of [`log`].
async fn answers_as_logged(reads: &Reads, marks: &Marks) {
    let page = reads
        .member_messages("r", "b", None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let one = &page[0];
    assert_eq!(one.message, "  Final\twords ");
    assert_eq!(one.time, time(marks, "post 1"), "the time of the post");
    assert_eq!(one.edited_at, Some(time(marks, "edit 1b")));
    assert_eq!(one.version, version(marks, "edit 1b"));
    assert_eq!(
        one.reactions,
        reactions(&[("👍", &["o", "b"]), ("🎉", &["o", "a"])]),
        "the symbols in the order they came, each one's users in the order of reacting"
    );
    assert_eq!((one.reply_to, one.deleted), (None, false));
    let two = &page[1];
    assert_eq!(
        (
            two.message.as_str(),
            two.reply_to,
            two.edited_at,
            two.version
        ),
        ("An answer", Some(1), None, version(marks, "post 2"))
    );
    assert!(two.reactions.is_empty());
    let three = &page[2];
    assert_eq!(
        (
            three.message.as_str(),
            three.deleted,
            three.reply_to,
            three.version,
            three.user_name.as_str()
        ),
        ("", true, None, version(marks, "delete 3"), "Bob")
    );
    assert!(three.reactions.is_empty(), "a placeholder has no reactions");
    assert_eq!(page[3].reply_to, Some(3), "an answer to a deleted message");

    // One message as it is now, as the page shows it.
    for row in &page {
        assert_eq!(
            reads.message("r", row.seq).await.unwrap().as_ref(),
            Some(row)
        );
    }
    assert_eq!(reads.message("r", 5).await.unwrap(), None);
    assert_eq!(reads.message("r", u64::MAX).await.unwrap(), None);
    assert_eq!(reads.message("nope", 1).await.unwrap(), None);
    let before = reads
        .member_messages("r", "b", Some(3), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before, [page[1].clone()]);

    // Search by the latest texts only, never a placeholder.
    let found = |q: &'static str| async move {
        reads
            .search("r", "a", q, 10)
            .await
            .unwrap()
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(found("final WORDS").await, [1]);
    assert_eq!(found("hello").await, Vec::<u64>::new(), "the old texts");
    assert_eq!(found("going").await, Vec::<u64>::new(), "deleted");
    assert_eq!(found("soon").await, Vec::<u64>::new(), "deleted");
    assert_eq!(found("an").await, [4, 2], "newest first");
    let hit = reads.search("r", "a", "final", 1).await.unwrap().unwrap();
    assert_eq!(hit, [page[0].clone()], "as history shows it");

    // Each author's export: every text of each message, the deleted one's too.
    let texts = |user: &'static str| async move {
        reads
            .messages_by(user)
            .await
            .unwrap()
            .into_iter()
            .map(|m| {
                let versions: Vec<(String, i64)> = m
                    .versions
                    .into_iter()
                    .map(|v| (v.message, v.time))
                    .collect();
                (m.seq, m.message_id, m.deleted, versions)
            })
            .collect::<Vec<_>>()
    };
    let v = |t: &str, name: &str| (t.to_owned(), time(marks, name));
    assert_eq!(
        texts("a").await,
        [
            (
                1,
                "r-m1".to_owned(),
                false,
                vec![
                    v("Hello world", "post 1"),
                    v("Hello EDITED world", "edit 1a"),
                    v("  Final\twords ", "edit 1b")
                ]
            ),
            (4, "r-m4".to_owned(), false, vec![v("Ann again", "post 4")]),
        ]
    );
    assert_eq!(
        texts("b").await,
        [
            (2, "r-m2".to_owned(), false, vec![v("An answer", "post 2")]),
            (
                3,
                "r-m3".to_owned(),
                true,
                vec![v("soon gone", "post 3"), v("going, going", "edit 3")]
            ),
        ]
    );
    assert!(texts("o").await.is_empty());
}

/// Every row of the tables of `room_record` as text (the event ids left out), in key order.
async fn rows(reads: &Reads) -> Vec<Vec<Option<String>>> {
    let selects = [
        "select cast(room_id as text), cast(seq as text), message_id, user_id, message,
                cast(time as text), cast(position as text), search_text,
                cast(deleted as text), cast(version as text), cast(reply_to as text),
                cast(edited_at as text), cast(edits as text)
         from room_record order by room_id, seq",
        "select room_id, cast(seq as text), emoji, user_id, cast(position as text),
                cast(since as text)
         from room_reaction order by room_id, seq, position",
        "select room_id, cast(seq as text), cast(edit as text), user_id, message,
                cast(time as text)
         from room_record_version order by room_id, seq, edit",
    ];
    let mut out = Vec::new();
    match reads {
        Reads::Sqlite(db) => {
            let db = db.clone();
            out = db
                .with(move |c| {
                    let mut out = Vec::new();
                    for sql in selects {
                        let mut s = c.prepare(sql)?;
                        let n = s.column_count();
                        let rows = s.query_map([], |r| {
                            (0..n).map(|i| r.get::<_, Option<String>>(i)).collect()
                        })?;
                        for row in rows {
                            out.push(row?);
                        }
                        out.push(vec![None]);
                    }
                    Ok(out)
                })
                .await
                .unwrap();
        }
        Reads::Postgres(pool) => {
            let c = pool.get().await.unwrap();
            for sql in selects {
                for row in c.query(sql, &[]).await.unwrap() {
                    out.push((0..row.len()).map(|i| row.get(i)).collect());
                }
                out.push(vec![None]);
            }
        }
    }
    out
}

/// Whether `text` is in any column of any row of the tables of `room_record`.
async fn anywhere(reads: &Reads, text: &str) -> bool {
    rows(reads)
        .await
        .iter()
        .flatten()
        .flatten()
        .any(|cell| cell.contains(text))
}

async fn the_queries_answer_the_log_and_a_rebuild_the_same(reads: Reads) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (head, marks) = fill(&*store).await;
    let keys = events::testing::keys();
    let workers = Workers::start(store.clone(), reads.clone(), keys.clone())
        .await
        .unwrap();
    assert!(workers.wait_for(head, Duration::from_secs(30)).await);
    answers_as_logged(&reads, &marks).await;
    let live = rows(&reads).await;

    let p = Projection::RoomRecord;
    assert_eq!(rebuild::prepare(&reads, p, true).await.unwrap(), 0);
    rebuild::fill(&reads, &store, &keys, p, |_| {})
        .await
        .unwrap();
    assert_eq!(
        rebuild::switch(&reads, &store, &keys, p).await.unwrap(),
        head
    );
    assert_eq!(rows(&reads).await, live, "rebuilt as live");
    answers_as_logged(&reads, &marks).await;

    // Retention of everything before the third post: messages 1 and 2 with every text they
    // had, and their reactions; the deleted third keeps its texts.
    let cutoff = time(&marks, "post 3");
    assert_eq!(reads.scrub_before(cutoff, Some("other")).await.unwrap(), 0);
    assert_eq!(reads.scrub_before(cutoff, Some("r")).await.unwrap(), 2);
    for gone in ["Hello", "Final", "answer", "👍", "🎉"] {
        assert!(!anywhere(&reads, gone).await, "{gone} is gone");
    }
    let page = reads
        .member_messages("r", "o", None, 10)
        .await
        .unwrap()
        .unwrap();
    let shown: Vec<(bool, &str, Option<u64>, usize)> = page
        .iter()
        .map(|m| (m.deleted, m.message.as_str(), m.reply_to, m.reactions.len()))
        .collect();
    assert_eq!(
        shown,
        [
            (true, "", None, 0),
            (true, "", None, 0),
            (true, "", None, 0),
            (false, "Ann again", Some(3), 0)
        ]
    );
    assert!(reads.messages_by("a").await.unwrap()[0].versions.is_empty());
    assert!(
        anywhere(&reads, "going, going").await,
        "kept for its author"
    );

    // Erasure of b: nothing of the deleted message's texts stays either.
    let head = append(
        &*store,
        Event::UserErased(UserErased {
            user_id: "b".into(),
            by_operator: false,
        }),
    )
    .await;
    assert!(workers.wait_for(head, Duration::from_secs(30)).await);
    for gone in ["soon gone", "going, going"] {
        assert!(!anywhere(&reads, gone).await, "{gone} is gone");
    }
    let export = reads.messages_by("b").await.unwrap();
    assert!(export.iter().all(|m| m.deleted && m.versions.is_empty()));
    assert!(anywhere(&reads, "Ann again").await);
    workers.shutdown().await;
}

async fn append(store: &dyn Store, e: Event) -> u64 {
    store
        .append("user-b", Expected::Any, vec![NewEvent::new(&e)])
        .await
        .unwrap()
        .last()
        .unwrap()
        .position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_shows_messages_as_they_are_now() {
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

const BEFORE: [events::migrate::Migration; 5] = [
    events::postgres::MIGRATION,
    postgres::MIGRATION,
    postgres::SEARCH_MIGRATION,
    postgres::SEALED_MIGRATION,
    postgres::GOVERNANCE_MIGRATION,
];

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shows_messages_as_they_are_now() {
    let mut all = BEFORE.to_vec();
    all.extend([
        postgres::MESSAGES_MIGRATION,
        projections::markers::POSTGRES_MIGRATION,
        postgres::DIRECT_MIGRATION,
        projections::dead::POSTGRES_MIGRATION,
    ]);
    let url = events::testing::scratch_database(&admin_url(), &all).await;
    let pool = events::postgres::pool(&url, 8).unwrap();
    the_queries_answer_the_log_and_a_rebuild_the_same(Reads::Postgres(pool)).await;
}

/// A record of a read database from before, applied up to position 10.
const OLD_ROWS: &str = "
    insert into room_record (room_id, seq, message_id, user_id, message, time, event_id,
                             position, search_text)
    values ('r', 1, 'm1', 'a', 'old text', 5, 'x', 7, 'old text');
    insert into projection_checkpoint (projection, position)
    values ('room_record', 10), ('room', 10);";

async fn upgraded_as_before(reads: &Reads) {
    assert_eq!(reads.checkpoint(Projection::RoomRecord).await.unwrap(), 0);
    assert_eq!(reads.checkpoint(Projection::Room).await.unwrap(), 10);
    assert_eq!(rows(reads).await, [vec![None], vec![None], vec![None]]);
}

#[tokio::test]
async fn sqlite_upgrade_leaves_the_records_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    {
        let mut c = rusqlite::Connection::open(&path).unwrap();
        events::migrate::apply(&mut c, &sqlite::MIGRATIONS[..4]).unwrap();
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
async fn postgres_upgrade_leaves_the_records_to_the_log() {
    let url = events::testing::scratch_database(&admin_url(), &BEFORE).await;
    let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(OLD_ROWS).await.unwrap();
    let mut all = BEFORE.to_vec();
    all.extend([postgres::MESSAGES_MIGRATION, postgres::DIRECT_MIGRATION]);
    assert_eq!(
        events::migrate::apply_postgres(&mut client, &all)
            .await
            .unwrap(),
        2
    );
    let pool = events::postgres::pool(&url, 4).unwrap();
    upgraded_as_before(&Reads::Postgres(pool)).await;
}
