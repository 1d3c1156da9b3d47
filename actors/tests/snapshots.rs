//! Room snapshots: a room that starts again reads only the events after its newest snapshot,
//! and a snapshot the log does not vouch for is ignored.

use actors::{NewRoom, Rooms, SNAPSHOT_EVERY, Settings};
use events::snapshot::MemorySnapshots;
use events::testing::Watched;
use events::{Expected, MemoryStore, NewEvent, Snapshot, Snapshots, Store};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::wait_until;

/// The hash of the join code the tests' rooms are made with.
fn code_hash() -> [u8; 32] {
    events::event::join_code_hash(&"2".repeat(32))
}

fn counting() -> Arc<Watched> {
    Arc::new(Watched::new(Arc::new(MemoryStore::new())))
}

async fn room_with(rooms: &Rooms, messages: u64) -> String {
    let room = rooms
        .create(NewRoom {
            name: "long".into(),
            description: String::new(),
            owner: "owner".into(),
            avatar_image: String::new(),
            join_code: "2".repeat(32),
        })
        .await
        .unwrap()
        .room_id;
    rooms.join(&room, "guest", code_hash()).await.unwrap();
    for i in 1..=messages {
        let posted = rooms
            .post(&room, "owner", &format!("m{i}"), "hello")
            .await
            .unwrap();
        assert_eq!(posted.seq, i);
    }
    room
}

/// A room written and then stopped by rooms that snapshot.
struct Stopped {
    rooms: Rooms,
    room: String,
    stream: String,
    snapshots: Arc<MemorySnapshots>,
    snap: Snapshot,
}

/// A room of `messages` messages on `store`, written by rooms that snapshot and stop when
/// idle, once it has stopped, with its newest snapshot.
async fn stopped_room(store: &Arc<Watched>, messages: u64) -> Stopped {
    let snapshots = Arc::new(MemorySnapshots::new());
    let rooms = Rooms::start(
        store.clone(),
        Settings::new(Duration::from_millis(100), events::testing::keys())
            .with_snapshots(snapshots.clone()),
    )
    .await
    .unwrap();
    let room = room_with(&rooms, messages).await;
    let stream = events::event::room_stream(&room);
    wait_until(|| rooms.active() == 0).await;
    let snap = snapshots.load(&stream).await.unwrap().expect("a snapshot");
    Stopped {
        rooms,
        room,
        stream,
        snapshots,
        snap,
    }
}

#[tokio::test]
async fn a_room_starts_from_its_snapshot_and_reads_only_the_events_after_it() {
    let store = counting();
    let messages = 3 * SNAPSHOT_EVERY + 10;
    let Stopped {
        rooms,
        room,
        stream,
        snap,
        ..
    } = stopped_room(&store, messages).await;
    let version = store.stream_version(&stream).await.unwrap().unwrap();
    // A snapshot carries the window of recent messages (all of them here), so they come
    // further apart as it fills: at most a window's worth of events behind the head.
    assert!(
        snap.version + SNAPSHOT_EVERY.max(messages) > version
            && snap.version >= SNAPSHOT_EVERY
            && snap.version <= version,
        "snapshot at {} of {version}",
        snap.version
    );

    store.reset_counts();
    // The room comes back: members, the last seq and the recent client ids are all there.
    assert_eq!(
        rooms.post(&room, "guest", "new", "hi").await.unwrap().seq,
        messages + 1
    );
    let retry = rooms
        .post(&room, "owner", &format!("m{messages}"), "hello")
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.seq, messages);
    assert!(rooms.post(&room, "stranger", "x", "hi").await.is_err());
    let read = store.stream_events_read();
    assert!(
        read <= version - snap.version + 1,
        "starting the room read {read} events; the snapshot left {} to read",
        version - snap.version
    );
}

#[tokio::test]
async fn a_snapshot_the_log_does_not_vouch_for_is_ignored() {
    // A snapshot taken on one log (3,000 messages in) ...
    let long = counting();
    let messages = 3 * SNAPSHOT_EVERY;
    let Stopped {
        room,
        stream,
        snapshots,
        snap,
        ..
    } = stopped_room(&long, messages).await;

    // ... beside a log holding the same room's first 500 events (an older backup restored
    // while the snapshots were kept).
    let short = counting();
    let kept = long.read_stream(&stream, 1, 502).await.unwrap();
    let kept_messages = kept
        .iter()
        .filter(|r| matches!(r.decode(), Ok(events::Event::MessagePosted(_))))
        .count() as u64;
    assert!(kept_messages > 400);
    let head = long
        .read_stream(&stream, 1, 502)
        .await
        .unwrap()
        .into_iter()
        .map(|r| NewEvent {
            event_id: r.event_id,
            event_type: r.decode().unwrap().type_name(),
            schema_version: r.schema_version,
            recorded_at: r.recorded_at,
            payload: r.payload,
        })
        .collect::<Vec<_>>();
    short
        .append(&stream, Expected::NoStream, head)
        .await
        .unwrap();
    let rooms = Rooms::start(
        short.clone(),
        Settings::new(Duration::from_secs(60), events::testing::keys())
            .with_snapshots(snapshots.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        rooms.post(&room, "owner", "after", "hi").await.unwrap().seq,
        kept_messages + 1,
        "the room must continue the log it is on, not the snapshot"
    );

    // A snapshot with the right version but another hash is ignored just the same.
    let forged = Arc::new(MemorySnapshots::new());
    forged
        .save(events::Snapshot {
            hash: [7; 32],
            ..snap
        })
        .await
        .unwrap();
    long.reset_counts();
    let rooms = Rooms::start(
        long.clone(),
        Settings::new(Duration::from_secs(60), events::testing::keys()).with_snapshots(forged),
    )
    .await
    .unwrap();
    assert_eq!(
        rooms.post(&room, "owner", "again", "hi").await.unwrap().seq,
        messages + 1
    );
    assert!(long.stream_events_read() > messages);
}
