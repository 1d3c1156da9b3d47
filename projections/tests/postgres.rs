//! The sinks, which apply each batch as a [`projections::Plan`] (PostgreSQL with a few
//! statements, SQLite with an insert per row and an update per room), against the SQLite sink
//! given one event at a time, which is change by change: the same log must give the same rows,
//! whatever the batches, for the live workers and for rebuilds.
//!
//! The PostgreSQL tests run when `CHATROOM_TEST_DATABASE_URL` points at a server where the
//! user may create databases (`./scripts/test` starts a throwaway one); each test gets a
//! database of its own. Built without it, each of them is ignored, and cargo says why
//! (`events/build.rs`). The SQLite test always runs.

mod common;

use common::*;
use deadpool_postgres::Pool;
use events::event::Role;
use events::testing::{
    Watched, created as room, joined as join, posted as message, registered as user,
};
use events::{Event, Expected, MemoryStore, NewEvent, Recorded, Store};
use projections::{ALL, Projection, ReadDb, Reads, Target, Workers, postgres, rebuild, sqlite};
use std::sync::Arc;
use std::time::Duration;

/// A fresh, migrated database.
///
/// # Panics
/// Without `CHATROOM_TEST_DATABASE_URL`: only a test the build left ignored gets here, when
/// run with `--ignored`.
async fn fresh_pool() -> Pool {
    let admin = std::env::var("CHATROOM_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL");
    let url = events::testing::scratch_database(
        &admin,
        &[
            events::postgres::MIGRATION,
            postgres::MIGRATION,
            postgres::SEARCH_MIGRATION,
            postgres::SEALED_MIGRATION,
            postgres::GOVERNANCE_MIGRATION,
            postgres::MESSAGES_MIGRATION,
            projections::markers::POSTGRES_MIGRATION,
            postgres::DIRECT_MIGRATION,
            projections::dead::POSTGRES_MIGRATION,
        ],
    )
    .await;
    events::postgres::pool(&url, 8).unwrap()
}

/// A log of several rooms whose joins and messages interleave, with times that do not always
/// grow, a second join of one member, and (as only a faulty writer would leave) a join and a
/// message before their room's creation; and a room's governance among the messages: roles
/// and a transfer, mutes, a kick and a join right after it, bans of a member and of a
/// non-member, settings, archival, a new standing code and invites used and revoked.
fn history() -> Vec<(Event, i64)> {
    let mut log = Vec::new();
    let mut t = 1_000;
    let mut at = |e: Event, log: &mut Vec<(Event, i64)>, dt: i64| {
        t += dt;
        log.push((e, t));
    };
    at(join("late", "u0"), &mut log, 1);
    at(message("late", 1, "u0", "early"), &mut log, 1);
    for i in 0..8 {
        at(user(&format!("u{i}"), &format!("User{i}")), &mut log, 2);
    }
    at(room("late", "u0"), &mut log, 1);
    let rooms = ["a", "b", "c", "late"];
    for (i, r) in rooms.iter().take(3).enumerate() {
        at(room(r, &format!("u{i}")), &mut log, 1);
        at(join(r, &format!("u{i}")), &mut log, 1);
    }
    for i in 3..8 {
        at(join(rooms[i % 4], &format!("u{i}")), &mut log, 1);
    }
    let mut seqs = [0u64, 0, 0, 1];
    for i in 0..700u64 {
        let k = (i * 7 % 11 % 4) as usize;
        seqs[k] += 1;
        let text = format!("  Message\t{i}  IN {} ", rooms[k]);
        // Late and early clocks: times go back now and then.
        let dt = if i % 5 == 0 { -9 } else { 3 };
        let (r, s, author) = (rooms[k], seqs[k], format!("u{}", i % 8));
        // Now and then an answer to the message before.
        let post = if i % 97 == 3 && s > 1 {
            replied(r, s, &author, &text, s - 1)
        } else {
            message(r, s, &author, &text)
        };
        at(post, &mut log, dt);
        match i {
            // A second join, with an earlier time than the first.
            100 => at(join("a", "u4"), &mut log, -50),
            200 => at(room("d", "u3"), &mut log, 1),
            201..=204 => at(join("d", &format!("u{}", i - 201)), &mut log, 2),
            300 => at(user("u8", "USER8"), &mut log, 1),
            301 => at(join("b", "u8"), &mut log, 1),
            400 => at(role("a", "u4", "u0", Role::Admin), &mut log, 1),
            401 => at(muted("a", "u4", "u0", 5_000), &mut log, 1),
            402 => at(unmuted("a", "u4", "u0"), &mut log, 1),
            403 => at(muted("a", "u4", "u0", 6_000), &mut log, 1),
            404 => at(join("a", "u5"), &mut log, 1),
            405 => {
                at(kicked("a", "u5", "u4"), &mut log, 1);
                at(join("a", "u5"), &mut log, 1);
            }
            406 => at(banned("a", "u5", "u0", None), &mut log, 1),
            407 => {
                at(banned("a", "u6", "u0", Some(9_999)), &mut log, 1);
                at(unbanned("a", "u6", "u0"), &mut log, 1);
                at(banned("a", "u6", "u4", Some(12_345)), &mut log, 1);
                at(banned("a", "u6", "u0", Some(2_222)), &mut log, 1);
            }
            408 => {
                at(role("a", "u4", "u0", Role::Owner), &mut log, 1);
                at(role("a", "u0", "u0", Role::Admin), &mut log, 1);
            }
            409 => at(
                updated("a", "u4", Some("A2"), None, Some(Some(30))),
                &mut log,
                1,
            ),
            410 => at(
                updated("a", "u4", None, Some("d"), Some(None)),
                &mut log,
                -20,
            ),
            411 => at(updated("b", "u1", None, None, Some(Some(7))), &mut log, 1),
            412 => {
                at(archived("b", "u1", true), &mut log, 1);
                at(archived("b", "u1", false), &mut log, 1);
                at(archived("c", "u2", true), &mut log, 1);
            }
            413 => at(rotated("a", "u4", "a2"), &mut log, 1),
            414 => {
                at(invite("a", "i1", "u4", Some(2), None), &mut log, 1);
                at(joined_with("a", "u1", "i1"), &mut log, 1);
                at(joined_with("a", "u2", "i1"), &mut log, 1);
            }
            415 => {
                at(invite("a", "i2", "u0", None, Some(50_000)), &mut log, 1);
                at(revoked("a", "i2", "u0"), &mut log, 1);
            }
            416 => {
                at(left("a", "u1"), &mut log, 1);
                at(joined_with("a", "u1", "i1"), &mut log, 1);
            }
            // Messages that change: edited twice, reacted to (added, repeated, taken back,
            // taken back again, added again), deleted, and changed after their deletion (only
            // a faulty writer's log); an answer deleted; an erased author's edited message.
            500 => {
                at(edited(r, s, &author, "Edited\tONCE"), &mut log, 1);
                at(edited(r, s, &author, " edited  TWICE"), &mut log, -4);
            }
            501 => {
                for (u, e, on) in [
                    ("u1", "👍", true),
                    ("u2", "🎉", true),
                    ("u3", "👍", true),
                    ("u1", "👍", true),
                    ("u2", "🎉", false),
                    ("u2", "🎉", false),
                    ("u2", "👍", true),
                    ("u1", "👍", false),
                    ("u1", "👍", true),
                    ("u4", ":+1:", true),
                ] {
                    at(reacted(r, s, u, e, on), &mut log, 1);
                }
            }
            502 => {
                at(reacted(r, s, "u4", "x", true), &mut log, 1);
                at(edited(r, s, &author, "changed"), &mut log, 1);
                at(deleted(r, s, "u0"), &mut log, 1);
                at(reacted(r, s, "u5", "late", true), &mut log, 1);
                at(edited(r, s, &author, "after the deletion"), &mut log, 1);
                at(deleted(r, s, "u0"), &mut log, 1);
            }
            503 => {
                at(edited(r, s, &author, "u7 edits"), &mut log, 1);
                at(reacted(r, s, "u1", "👀", true), &mut log, 1);
            }
            585 => at(deleted(r, s, &author), &mut log, 1),
            _ => {}
        }
    }
    // A direct room of u1 and u7, and blocks made, lifted and made again; u7's erasure takes
    // the block on them.
    at(
        Event::DirectRoomOpened(events::event::DirectRoomOpened {
            room_id: "dm".into(),
            users: ["u1".into(), "u7".into()],
            by: "u7".into(),
        }),
        &mut log,
        1,
    );
    at(join("dm", "u7"), &mut log, 0);
    at(join("dm", "u1"), &mut log, 0);
    let block = |by: &str, user: &str, on: bool| {
        let b = events::event::Block {
            by: by.into(),
            user_id: user.into(),
        };
        if on {
            Event::UserBlocked(b)
        } else {
            Event::UserUnblocked(b)
        }
    };
    for (by, user, on) in [
        ("u1", "u7", true),
        ("u2", "u3", true),
        ("u2", "u3", true),
        ("u3", "u2", true),
        ("u2", "u3", false),
    ] {
        at(block(by, user, on), &mut log, 1);
    }
    at(
        Event::UserErased(events::event::UserErased {
            user_id: "u7".into(),
            by_operator: false,
        }),
        &mut log,
        1,
    );
    log
}

async fn seeded_store() -> (Arc<dyn Store>, Vec<Recorded>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    append(&*store, history()).await;
    let all = store.read_all(0, usize::MAX).await.unwrap();
    (store, all)
}

async fn append(store: &dyn Store, events: Vec<(Event, i64)>) {
    for (e, time) in events {
        store
            .append(
                "s",
                Expected::Any,
                vec![NewEvent::with_id(uuid::Uuid::new_v4(), &e, time)],
            )
            .await
            .unwrap();
    }
}

/// A cell of a read table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cell {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
    Null,
}

#[derive(Clone, Copy)]
enum Kind {
    T,
    I,
    B,
    /// An integer or null.
    N,
    /// A text or null.
    O,
    /// A flag: boolean in PostgreSQL, 0 or 1 in SQLite.
    F,
}

/// A read table: its name, columns and key.
type Table = (&'static str, &'static [(&'static str, Kind)], &'static str);

/// Every read table: the main table of each projection in the order of `ALL`, then the other
/// tables of `room_record`, then that of `user`.
const TABLES: [Table; 10] = [
    (
        "\"user\"",
        &[
            ("id", Kind::T),
            ("name", Kind::T),
            ("name_lower", Kind::O),
            ("avatar_image", Kind::T),
            ("created_at", Kind::I),
            ("erased_at", Kind::N),
        ],
        "id",
    ),
    (
        "room",
        &[
            ("id", Kind::T),
            ("name", Kind::T),
            ("description", Kind::T),
            ("owner", Kind::T),
            ("avatar_image", Kind::T),
            ("room_hash_id", Kind::T),
            ("create_time", Kind::I),
            ("update_time", Kind::I),
            ("last_seq", Kind::I),
            ("archived", Kind::F),
            ("retention_days", Kind::N),
            ("direct_a", Kind::O),
            ("direct_b", Kind::O),
        ],
        "id",
    ),
    (
        "room_member",
        &[
            ("room_id", Kind::T),
            ("user_id", Kind::T),
            ("joined_at", Kind::I),
            ("role", Kind::T),
            ("muted_until", Kind::N),
        ],
        "room_id, user_id",
    ),
    (
        "room_record",
        &[
            ("room_id", Kind::T),
            ("seq", Kind::I),
            ("message_id", Kind::T),
            ("user_id", Kind::T),
            ("message", Kind::T),
            ("time", Kind::I),
            ("event_id", Kind::B),
            ("position", Kind::I),
            ("search_text", Kind::T),
            ("deleted", Kind::F),
            ("version", Kind::I),
            ("reply_to", Kind::N),
            ("edited_at", Kind::N),
            ("edits", Kind::I),
        ],
        "room_id, seq",
    ),
    (
        "room_ban",
        &[
            ("room_id", Kind::T),
            ("user_id", Kind::T),
            ("until", Kind::N),
            ("banned_by", Kind::T),
            ("banned_at", Kind::I),
        ],
        "room_id, user_id",
    ),
    (
        "room_invite",
        &[
            ("room_id", Kind::T),
            ("invite_id", Kind::T),
            ("code", Kind::T),
            ("code_hash", Kind::B),
            ("max_uses", Kind::N),
            ("uses", Kind::I),
            ("expires_at", Kind::N),
            ("created_by", Kind::T),
            ("created_at", Kind::I),
            ("revoked", Kind::F),
        ],
        "room_id, invite_id",
    ),
    (
        "room_code",
        &[
            ("code_hash", Kind::B),
            ("room_id", Kind::T),
            ("invite_id", Kind::O),
        ],
        "code_hash",
    ),
    (
        "room_reaction",
        &[
            ("room_id", Kind::T),
            ("seq", Kind::I),
            ("emoji", Kind::T),
            ("user_id", Kind::T),
            ("position", Kind::I),
            ("since", Kind::I),
        ],
        // By the order of reacting: engines may collate the symbols differently.
        "room_id, seq, position",
    ),
    (
        "room_record_version",
        &[
            ("room_id", Kind::T),
            ("seq", Kind::I),
            ("edit", Kind::I),
            ("user_id", Kind::T),
            ("message", Kind::T),
            ("time", Kind::I),
        ],
        "room_id, seq, edit",
    ),
    (
        "user_block",
        &[
            ("blocker_id", Kind::T),
            ("blocked_id", Kind::T),
            ("blocked_at", Kind::I),
        ],
        "blocker_id, blocked_id",
    ),
];

type Dump = Vec<(String, Vec<Vec<Cell>>)>;

fn select(table: &str, columns: &[(&str, Kind)], key: &str) -> String {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    format!("select {} from {table} order by {key}", names.join(", "))
}

async fn dump_pg(pool: &Pool) -> Dump {
    let c = pool.get().await.unwrap();
    let mut out = Vec::new();
    for (table, columns, key) in TABLES {
        let rows = c.query(&select(table, columns, key), &[]).await.unwrap();
        let rows = rows
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, k))| match k {
                        Kind::T => Cell::Text(r.get(i)),
                        Kind::I => Cell::Int(r.get(i)),
                        Kind::B => Cell::Bytes(r.get(i)),
                        Kind::N => r.get::<_, Option<i64>>(i).map_or(Cell::Null, Cell::Int),
                        Kind::O => r.get::<_, Option<String>>(i).map_or(Cell::Null, Cell::Text),
                        Kind::F => Cell::Int(r.get::<_, bool>(i).into()),
                    })
                    .collect()
            })
            .collect();
        out.push((table.to_owned(), rows));
    }
    out
}

fn dump_sqlite(conn: &rusqlite::Connection) -> Dump {
    let mut out = Vec::new();
    for (table, columns, key) in TABLES {
        let mut s = conn.prepare(&select(table, columns, key)).unwrap();
        let rows = s
            .query_map([], |r| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, k))| {
                        Ok(match k {
                            Kind::T => Cell::Text(r.get(i)?),
                            Kind::I => Cell::Int(r.get(i)?),
                            Kind::B => Cell::Bytes(r.get(i)?),
                            Kind::N => r.get::<_, Option<i64>>(i)?.map_or(Cell::Null, Cell::Int),
                            Kind::O => r
                                .get::<_, Option<String>>(i)?
                                .map_or(Cell::Null, Cell::Text),
                            Kind::F => Cell::Int(r.get(i)?),
                        })
                    })
                    .collect()
            })
            .unwrap()
            .collect::<Result<Vec<Vec<Cell>>, _>>()
            .unwrap();
        out.push((table.to_owned(), rows));
    }
    out
}

/// The rows the SQLite sink makes of `log` in batches of `size` events.
fn sqlite_rows(log: &[Recorded], size: usize) -> Dump {
    let dir = tempfile::tempdir().unwrap();
    let db = ReadDb::open(dir.path().join("read.db")).unwrap();
    let mut conn = db.writer().unwrap();
    for p in ALL {
        for chunk in log.chunks(size) {
            sqlite::commit_batch(
                &events::testing::keys(),
                &mut conn,
                &[p],
                Target::Live,
                chunk,
            )
            .unwrap();
        }
    }
    dump_sqlite(&conn)
}

/// The rows the SQLite sink makes of `log`, one event at a time: an event gives each
/// projection at most one change, so this is change by change.
fn reference(log: &[Recorded]) -> Dump {
    sqlite_rows(log, 1)
}

#[tokio::test]
async fn sqlite_batches_of_any_size_give_the_rows_of_change_by_change() {
    let (_, log) = seeded_store().await;
    let expected = reference(&log);
    history_as_logged(&expected);
    for size in [2, 3, 64, 1000, log.len()] {
        assert_same(
            &sqlite_rows(&log, size),
            &expected,
            &format!("batches of {size}"),
        );
    }
}

/// The rows of [`history`] hold what its log says: the faulty message counts nowhere, the
/// second join once, every message moved its room's last seq, and the governance of room `a`
/// (and the settings of `b` and `c`) show as the room actor meant them.
fn history_as_logged(dump: &Dump) {
    let text = |t: &str| Cell::Text(t.into());
    let rows = |table: usize, room: &str| -> Vec<Vec<Cell>> {
        let key = if table == 6 { 1 } else { 0 };
        dump[table]
            .1
            .iter()
            .filter(|r| r[key] == text(room))
            .cloned()
            .collect()
    };
    let room = |id: &str| rows(1, id).pop().unwrap();
    let d = room("dm");
    assert_eq!(
        (&d[3], &d[5], &d[11], &d[12]),
        (&text(""), &text("direct:dm"), &text("u1"), &text("u7")),
        "a direct room's row"
    );
    assert_eq!(room("a")[11], Cell::Null, "a group room has no pair");
    let blocks: Vec<(Cell, Cell)> = dump[9]
        .1
        .iter()
        .map(|b| (b[0].clone(), b[1].clone()))
        .collect();
    assert_eq!(
        blocks,
        [(text("u3"), text("u2"))],
        "lifted and erased blocks go"
    );
    assert_ne!(room("a")[8], Cell::Int(0), "a's last seq");
    // u0's join before the room existed made them a member, and its creation found them.
    let late: Vec<Cell> = rows(2, "late").iter().map(|m| m[1].clone()).collect();
    assert_eq!(late, [text("u0"), text("u3"), text("u7")], "late's members");
    let a: Vec<(Cell, Cell, Cell)> = rows(2, "a")
        .iter()
        .map(|m| (m[1].clone(), m[3].clone(), m[4].clone()))
        .collect();
    assert_eq!(
        a,
        [
            (text("u0"), text("admin"), Cell::Null),
            (text("u1"), text("member"), Cell::Null),
            (text("u2"), text("member"), Cell::Null),
            (text("u4"), text("owner"), Cell::Int(6_000)),
        ],
        "a's members: u5 kicked, back and banned; u1 left and back"
    );
    let a = room("a");
    assert_eq!(
        (&a[1], &a[2], &a[3], &a[5], &a[9], &a[10]),
        (
            &text("A2"),
            &text("d"),
            &text("u4"),
            &text(&code("a2")),
            &Cell::Int(0),
            &Cell::Null
        ),
        "a's settings, owner and new code"
    );
    assert_eq!(
        (&room("b")[9], &room("b")[10]),
        (&Cell::Int(0), &Cell::Int(7))
    );
    assert_eq!(room("c")[9], Cell::Int(1), "c archived");
    let bans: Vec<(Cell, Cell, Cell)> = rows(4, "a")
        .iter()
        .map(|b| (b[1].clone(), b[2].clone(), b[3].clone()))
        .collect();
    assert_eq!(
        bans,
        [
            (text("u5"), Cell::Null, text("u0")),
            (text("u6"), Cell::Int(2_222), text("u0"))
        ],
        "the last ban of each"
    );
    let invites: Vec<(Cell, Cell, Cell, Cell, Cell)> = rows(5, "a")
        .iter()
        .map(|i| {
            (
                i[1].clone(),
                i[2].clone(),
                i[4].clone(),
                i[5].clone(),
                i[9].clone(),
            )
        })
        .collect();
    assert_eq!(
        invites,
        [
            (
                text("i1"),
                text(&code("i1")),
                Cell::Int(2),
                Cell::Int(3),
                Cell::Int(0)
            ),
            (
                text("i2"),
                text(&code("i2")),
                Cell::Null,
                Cell::Int(0),
                Cell::Int(1)
            ),
        ]
    );
    // Every code a room ever had: five rooms', a's new one and its two invites'.
    assert_eq!(dump[6].1.len(), 8);
    assert_eq!(rows(6, "a").len(), 4);

    // Message 500: twice edited, its two earlier texts kept; 501: three users on one
    // emoji, one on another; 502: deleted, reactions gone, its two texts kept; 503: its
    // author erased, nothing of its texts left; 585: an answer, deleted.
    let record = |text_of: &str| {
        dump[3]
            .1
            .iter()
            .find(|r| r[4] == text(text_of))
            .cloned()
            .unwrap_or_else(|| panic!("a record reads {text_of:?}"))
    };
    let twice = record(" edited  TWICE");
    assert_eq!(twice[8], text("edited twice"), "searched by its new text");
    assert_eq!(twice[13], Cell::Int(2), "two edits");
    let (room_of, seq_of) = (twice[0].clone(), twice[1].clone());
    let earlier: Vec<Cell> = dump[8]
        .1
        .iter()
        .filter(|v| v[0] == room_of && v[1] == seq_of)
        .map(|v| v[4].clone())
        .collect();
    assert_eq!(earlier.len(), 2, "the post and the first edit");
    assert!(matches!(&earlier[1], Cell::Text(t) if t == "Edited\tONCE"));
    let placeholders = dump[3].1.iter().filter(|r| r[9] == Cell::Int(1)).count();
    assert!(
        placeholders > 80,
        "deleted, and all of u7's: {placeholders}"
    );
    assert!(
        dump[3]
            .1
            .iter()
            .filter(|r| r[9] == Cell::Int(1))
            .all(|r| r[4] == text("") && r[8] == text("") && r[11] == Cell::Null),
        "placeholders have no text and answer nothing"
    );
    let replies = dump[3].1.iter().filter(|r| r[11] != Cell::Null).count();
    assert!(replies >= 5, "{replies} answers");
    let reactions: Vec<(Cell, Cell)> = dump[7]
        .1
        .iter()
        .map(|x| (x[2].clone(), x[3].clone()))
        .collect();
    assert_eq!(
        reactions,
        [
            (text("👍"), text("u3")),
            (text("👍"), text("u2")),
            (text("👍"), text("u1")),
            (text(":+1:"), text("u4")),
        ],
        "501's, as they stand; none on the deleted 502 nor on u7's 503"
    );
    let u7 = Cell::Text("u7".into());
    assert!(dump[8].1.iter().all(|v| v[3] != u7), "u7's texts are gone");
    assert!(
        dump[3]
            .1
            .iter()
            .filter(|r| r[3] == u7)
            .all(|r| r[9] == Cell::Int(1))
    );
    let deleted_texts: Vec<Cell> = dump[8]
        .1
        .iter()
        .filter(|v| matches!(&v[4], Cell::Text(t) if t == "changed"))
        .map(|v| v[2].clone())
        .collect();
    assert_eq!(
        deleted_texts,
        [Cell::Int(1)],
        "502's texts stay, the last one second"
    );
}

fn assert_same(actual: &Dump, expected: &Dump, what: &str) {
    for ((table, a), (_, e)) in actual.iter().zip(expected) {
        assert_eq!(a.len(), e.len(), "{what}: rows of {table}");
        for (a, e) in a.iter().zip(e) {
            assert_eq!(a, e, "{what}: a row of {table}");
        }
    }
}

async fn checkpoints(pool: &Pool) -> Vec<u64> {
    let c = pool.get().await.unwrap();
    let mut out = Vec::new();
    for p in ALL {
        out.push(postgres::checkpoint(&c, p).await.unwrap());
    }
    out
}

/// The position `chunk` (a slice of `log`) is read after: that of the event before it.
fn read_after(log: &[Recorded], chunk: &[Recorded]) -> u64 {
    let first = log
        .iter()
        .position(|r| r.position == chunk[0].position)
        .expect("the chunk is part of the log");
    first.checked_sub(1).map_or(0, |i| log[i].position)
}

/// Empties the read tables and their checkpoints: a fresh start, or what a database that lost
/// the projections' commits (restored from an older copy, or crashed before flushing them)
/// would hold.
async fn empty_read_tables(pool: &Pool) {
    let c = pool.get().await.unwrap();
    c.batch_execute(
        "truncate \"user\", room, room_member, room_record, room_ban, room_invite, room_code,
                  room_reaction, room_record_version, user_block, projection_checkpoint",
    )
    .await
    .unwrap();
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn batches_of_any_size_give_the_rows_of_change_by_change() {
    let pool = fresh_pool().await;
    let (_, log) = seeded_store().await;
    let head = log.last().unwrap().position;
    let expected = reference(&log);
    history_as_logged(&expected);

    for size in [1, 3, 64, 1000, log.len()] {
        empty_read_tables(&pool).await;
        for p in ALL {
            for chunk in log.chunks(size) {
                postgres::commit_batch(
                    &events::testing::keys(),
                    &pool,
                    &[p],
                    Target::Live,
                    read_after(&log, chunk),
                    chunk,
                )
                .await
                .unwrap();
            }
            // A batch read again (after a crash between read and commit) is skipped.
            postgres::commit_batch(
                &events::testing::keys(),
                &pool,
                &[p],
                Target::Live,
                0,
                &log[..size.min(50)],
            )
            .await
            .unwrap();
        }
        assert_same(
            &dump_pg(&pool).await,
            &expected,
            &format!("batches of {size}"),
        );
        assert_eq!(checkpoints(&pool).await, [head; ALL.len()]);
    }
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn projections_applied_together_give_the_rows_of_change_by_change() {
    let pool = fresh_pool().await;
    let (_, log) = seeded_store().await;
    let head = log.last().unwrap().position;
    let expected = reference(&log);
    for size in [1, 64, log.len()] {
        empty_read_tables(&pool).await;
        // The projections stand at different positions (one ahead, one behind by a batch
        // read again): each applies every event once.
        postgres::commit_batch(
            &events::testing::keys(),
            &pool,
            &[Projection::Room],
            Target::Live,
            0,
            &log[..log.len() / 3],
        )
        .await
        .unwrap();
        postgres::commit_batch(
            &events::testing::keys(),
            &pool,
            &[Projection::User],
            Target::Live,
            0,
            &log[..10],
        )
        .await
        .unwrap();
        for chunk in log.chunks(size) {
            let after = read_after(&log, chunk);
            let at = postgres::commit_batch(
                &events::testing::keys(),
                &pool,
                &ALL,
                Target::Live,
                after,
                chunk,
            )
            .await
            .unwrap();
            let last = chunk.last().unwrap().position;
            assert_eq!(at.len(), ALL.len());
            assert!(at.iter().all(|a| *a >= last), "{at:?} after {last}");
        }
        assert_same(
            &dump_pg(&pool).await,
            &expected,
            &format!("together, batches of {size}"),
        );
        assert_eq!(checkpoints(&pool).await, [head; ALL.len()]);
    }
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_of_one_process_read_each_batch_of_the_log_once() {
    let pool = fresh_pool().await;
    let (seeded, log) = seeded_store().await;
    let counting = Arc::new(Watched::new(seeded));
    let store: Arc<dyn Store> = counting.clone();
    // The whole log (fewer events than a batch) is there before the workers start: each
    // projection's worker reading it for itself read it four times.
    let workers = Workers::start(
        store,
        Reads::Postgres(pool.clone()),
        events::testing::keys(),
    )
    .await
    .unwrap();
    let head = log.last().unwrap().position;
    assert!(workers.wait_for(head, Duration::from_secs(30)).await);
    workers.shutdown().await;
    assert_eq!(
        counting.log_reads_with_events(),
        1,
        "reads of the log that returned events"
    );
    assert_same(&dump_pg(&pool).await, &reference(&log), "one reader");
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn a_batch_after_a_checkpoint_the_database_lost_is_refused() {
    let pool = fresh_pool().await;
    let (_, log) = seeded_store().await;
    let (first, rest) = log.split_at(log.len() / 2);
    postgres::commit_batch(
        &events::testing::keys(),
        &pool,
        &ALL,
        Target::Live,
        0,
        first,
    )
    .await
    .unwrap();
    // The database loses the projections' commits.
    empty_read_tables(&pool).await;
    // Applied over the gap, the first half would be missing for good.
    let after = first.last().unwrap().position;
    match postgres::commit_batch(
        &events::testing::keys(),
        &pool,
        &ALL,
        Target::Live,
        after,
        rest,
    )
    .await
    {
        Err(projections::sqlite::Error::Behind {
            stored, after: a, ..
        }) => assert_eq!((stored, a), (0, after)),
        other => panic!("expected Behind, got {other:?}"),
    }
    assert_eq!(checkpoints(&pool).await, [0; ALL.len()], "nothing applied");
    assert_eq!(dump_pg(&pool).await, reference(&[]), "nothing applied");
    // Read again from the stored checkpoint, the whole log applies.
    postgres::commit_batch(&events::testing::keys(), &pool, &ALL, Target::Live, 0, &log)
        .await
        .unwrap();
    assert_same(&dump_pg(&pool).await, &reference(&log), "applied again");
    // A rebuild's batch is held to the same check.
    assert!(matches!(
        postgres::commit_batch(
            &events::testing::keys(),
            &pool,
            &[Projection::User],
            Target::Shadow,
            after,
            rest
        )
        .await,
        Err(projections::sqlite::Error::Behind { .. })
    ));
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_read_the_log_again_when_the_database_lost_their_commits() {
    let pool = fresh_pool().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let workers = Workers::start(
        store.clone(),
        Reads::Postgres(pool.clone()),
        events::testing::keys(),
    )
    .await
    .unwrap();
    let events = history();
    let (first, rest) = events.split_at(events.len() / 2);
    append(&*store, first.to_vec()).await;
    assert!(
        workers
            .wait_for(first.len() as u64, Duration::from_secs(30))
            .await
    );
    // The database loses the projections' commits.
    empty_read_tables(&pool).await;
    append(&*store, rest.to_vec()).await;
    let head = events.len() as u64;
    assert!(workers.wait_for(head, Duration::from_secs(30)).await);
    // The workers' next batch found the stored checkpoints behind it and read the log again
    // from them, not only what came after the loss.
    let log = store.read_all(0, usize::MAX).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while checkpoints(&pool).await != [head; ALL.len()] && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers.shutdown().await;
    assert_eq!(checkpoints(&pool).await, [head; ALL.len()]);
    assert_same(&dump_pg(&pool).await, &reference(&log), "after the loss");
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_workers_and_a_rebuild_give_the_rows_of_change_by_change() {
    let pool = fresh_pool().await;
    let reads = Reads::Postgres(pool.clone());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // The workers follow the log as it grows, in batches of whatever has arrived.
    let workers = Workers::start(store.clone(), reads.clone(), events::testing::keys())
        .await
        .unwrap();
    let events = history();
    let head = events.len() as u64;
    let feeder = {
        let store = store.clone();
        tokio::spawn(async move {
            for (i, chunk) in events.chunks(37).enumerate() {
                append(&*store, chunk.to_vec()).await;
                if i % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    feeder.await.unwrap();
    assert!(workers.wait_for(head, Duration::from_secs(60)).await);
    let log = store.read_all(0, usize::MAX).await.unwrap();
    let expected = reference(&log);
    assert_same(&dump_pg(&pool).await, &expected, "live workers");

    // Rebuilt into the shadow tables while the workers run, then switched over.
    for p in ALL {
        assert_eq!(rebuild::prepare(&reads, p, false).await.unwrap(), 0);
        rebuild::fill(&reads, &store, &events::testing::keys(), p, |_| {})
            .await
            .unwrap();
        assert_eq!(
            rebuild::switch(&reads, &store, &events::testing::keys(), p)
                .await
                .unwrap(),
            head
        );
    }
    assert_same(&dump_pg(&pool).await, &expected, "rebuilt");
    assert_eq!(checkpoints(&pool).await, [head; ALL.len()]);

    // The workers carry on from the switched checkpoints.
    let more = vec![
        (message("b", 1_000, "u2", "after the switch"), 9_000),
        (join("c", "u7"), 9_001),
    ];
    append(&*store, more).await;
    assert!(workers.wait_for(head + 2, Duration::from_secs(30)).await);
    workers.shutdown().await;
    let log = store.read_all(0, usize::MAX).await.unwrap();
    assert_same(&dump_pg(&pool).await, &reference(&log), "after the switch");
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn a_batch_with_a_failing_row_applies_nothing() {
    let pool = fresh_pool().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    append(
        &*store,
        vec![
            (room("a", "u0"), 1),
            (join("a", "u0"), 2),
            (message("a", 1, "u0", "one"), 3),
            // The same seq twice, and the same room twice: the batch cannot apply.
            (message("a", 1, "u0", "again"), 4),
            (room("a", "u0"), 5),
        ],
    )
    .await;
    let log = store.read_all(0, usize::MAX).await.unwrap();
    for p in [Projection::Room, Projection::RoomRecord] {
        assert!(
            postgres::commit_batch(&events::testing::keys(), &pool, &[p], Target::Live, 0, &log)
                .await
                .is_err()
        );
    }
    let empty: Dump = TABLES
        .iter()
        .map(|(t, _, _)| ((*t).to_owned(), Vec::new()))
        .collect();
    assert_eq!(dump_pg(&pool).await, empty);
    let c = pool.get().await.unwrap();
    assert_eq!(postgres::checkpoint(&c, Projection::Room).await.unwrap(), 0);
    assert_eq!(
        postgres::checkpoint(&c, Projection::RoomRecord)
            .await
            .unwrap(),
        0
    );
}
