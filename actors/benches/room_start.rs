//! How long a room with a long history takes to start (its first command after a restart or
//! an idle stop), from the beginning of its stream and from its snapshot, on the embedded log.
//!
//! `cargo bench -p actors --bench room_start` (sizes: `ROOM_START_SIZES=10000,100000`).

use actors::{Rooms, Settings};
use events::event::{MemberJoined, MessagePosted, RoomCreated, join_code_hash, room_stream};
use events::seal::{Subject, period_of};
use events::snapshot::SqliteSnapshots;
use events::{Event, Expected, NewEvent, Snapshots, SqliteStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMBERS: usize = 50;

async fn fill(store: &SqliteStore, room: &str, messages: u64) {
    let stream = room_stream(room);
    let mut first = vec![NewEvent::new(&Event::RoomCreated(RoomCreated {
        room_id: room.into(),
        name: "long".into(),
        description: String::new(),
        owner: "u0".into(),
        avatar_image: String::new(),
        join_code_hash: join_code_hash(&"3".repeat(32)),
        join_code: events::testing::seal(&Subject::Room(room.into()), &"3".repeat(32)),
    }))];
    for m in 1..MEMBERS {
        first.push(NewEvent::new(&Event::MemberJoined(MemberJoined {
            room_id: room.into(),
            user_id: format!("u{m}"),
            invite: None,
        })));
    }
    let mut version = store
        .append(&stream, Expected::NoStream, first)
        .await
        .unwrap()
        .len() as u64;
    let now = events::now_ms();
    let mut seq = 0;
    while seq < messages {
        let batch: Vec<NewEvent> = (0..1000.min(messages - seq))
            .map(|i| {
                let s = seq + i + 1;
                let id = format!("m{s}");
                let user_id = format!("u{}", s as usize % MEMBERS);
                let subject = Subject::Text {
                    user: user_id.clone(),
                    room: room.into(),
                    period: period_of(now),
                };
                NewEvent::with_id(
                    uuid::Uuid::new_v4(),
                    &Event::MessagePosted(MessagePosted {
                        room_id: room.into(),
                        seq: s,
                        message_id: id,
                        user_id,
                        text: events::testing::seal(
                            &subject,
                            "a message of an ordinary length, about sixty characters",
                        ),
                        kind: "input".into(),
                        period: period_of(now),
                    }),
                    now,
                )
            })
            .collect();
        let n = batch.len() as u64;
        store
            .append(&stream, Expected::Exact(version), batch)
            .await
            .unwrap();
        version += n;
        seq += n;
    }
}

async fn first_post(rooms: &Rooms, room: &str, id: &str) -> Duration {
    let started = Instant::now();
    rooms.post(room, "u1", id, "hello").await.unwrap();
    started.elapsed()
}

async fn stopped(rooms: &Rooms) {
    while rooms.active() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let sizes = std::env::var("ROOM_START_SIZES").unwrap_or_else(|_| "10000,100000,1000000".into());
    println!("room start, embedded log, {MEMBERS} members; time to the first ack");
    for size in sizes
        .split(',')
        .map(|s| s.trim().parse::<u64>().expect("a size"))
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("events.db")).unwrap());
        let snapshots = Arc::new(SqliteSnapshots::open(dir.path().join("snapshots.db")).unwrap());
        let room = uuid::Uuid::now_v7().to_string();
        fill(&store, &room, size).await;
        let rooms = Rooms::start(
            store.clone(),
            Settings::new(Duration::from_millis(200), events::testing::keys())
                .with_snapshots(snapshots.clone()),
        )
        .await
        .unwrap();
        let from_log = first_post(&rooms, &room, "probe-1").await;
        while snapshots.load(&room_stream(&room)).await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stopped(&rooms).await;
        let from_snapshot = first_post(&rooms, &room, "probe-2").await;
        stopped(&rooms).await;
        let again = first_post(&rooms, &room, "probe-3").await;
        let read = rooms
            .starts()
            .events_read
            .load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "{size:>9} messages: from the stream's beginning {:>7.1} ms; from its snapshot {:>5.1} ms, \
             and {:>5.1} ms the next time ({read} events read by the three starts)",
            from_log.as_secs_f64() * 1e3,
            from_snapshot.as_secs_f64() * 1e3,
            again.as_secs_f64() * 1e3,
        );
        store.close();
    }
}
