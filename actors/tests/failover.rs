//! A room across a database failover: an append whose answer was lost (it was committed all
//! the same) and an append the log then lost (the standby was promoted without it).

use actors::room::Command;
use actors::{Error, NewRoom, Rooms, Settings};
use events::testing::Watched;
use events::{Event, MemoryStore, Store};
use std::sync::Arc;
use std::time::Duration;

async fn setup() -> (Arc<Watched>, Rooms, String) {
    let store = Arc::new(Watched::new(Arc::new(MemoryStore::new())));
    let rooms = Rooms::start(
        store.clone(),
        Settings::new(Duration::from_secs(60), events::testing::keys()),
    )
    .await
    .unwrap();
    let room = rooms
        .create(NewRoom {
            name: "failover".into(),
            description: String::new(),
            owner: "owner".into(),
            avatar_image: String::new(),
            join_code: "2".repeat(32),
        })
        .await
        .unwrap()
        .room_id;
    (store, rooms, room)
}

/// The client ids of the room's stored messages, in seq order, with their seqs.
async fn stored(store: &Watched, room: &str) -> Vec<(String, u64)> {
    let page = store
        .read_stream(&events::event::room_stream(room), 1, 10_000)
        .await
        .unwrap();
    page.iter()
        .filter_map(|r| match r.decode().unwrap() {
            Event::MessagePosted(m) => Some((m.message_id, m.seq)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_append_whose_answer_was_lost_is_read_back_before_the_next_command() {
    let (store, rooms, room) = setup().await;
    rooms.post(&room, "owner", "m1", "one").await.unwrap();
    store.losing_next_answer();
    let lost = rooms.post(&room, "owner", "m2", "two").await;
    assert!(matches!(lost, Err(Error::Unavailable(_))), "{lost:?}");
    // Decided against the room as the log holds it: m2 is there, so it can be edited, though
    // its author never heard that it was stored.
    let edit = Command::Edit {
        user_id: "owner".into(),
        seq: 2,
        text: "two, edited".into(),
    };
    rooms.change(&room, edit).await.unwrap();
    // The retry is answered with the first seq, and nothing is stored twice.
    let retry = rooms.post(&room, "owner", "m2", "two").await.unwrap();
    assert_eq!((retry.seq, retry.duplicate), (2, true));
    assert_eq!(
        rooms.post(&room, "owner", "m3", "three").await.unwrap().seq,
        3
    );
    assert_eq!(
        stored(&store, &room).await,
        [("m1".into(), 1), ("m2".into(), 2), ("m3".into(), 3)]
    );
}

#[tokio::test]
async fn a_room_ahead_of_the_log_starts_again_from_the_log() {
    let (store, rooms, room) = setup().await;
    rooms.post(&room, "owner", "m1", "one").await.unwrap();
    // The room now holds a message the log does not (what a room reading a primary that
    // died before its standby got the commit would hold).
    store.forgetting_next_append();
    rooms.post(&room, "owner", "ghost", "lost").await.unwrap();
    // Refused while the room finds out, never written at a version the log does not have...
    let mut refused = 0;
    let posted = loop {
        match rooms.post(&room, "owner", "m2", "two").await {
            Ok(p) => break p,
            Err(Error::Unavailable(_)) if refused < 3 => refused += 1,
            Err(e) => panic!("the room did not recover: {e:?}"),
        }
    };
    // ...and then written after what the log holds.
    assert_eq!(posted.seq, 2);
    assert!(!posted.duplicate);
    assert_eq!(
        rooms.post(&room, "owner", "m3", "three").await.unwrap().seq,
        3
    );
    assert_eq!(
        stored(&store, &room).await,
        [("m1".into(), 1), ("m2".into(), 2), ("m3".into(), 3)]
    );
}
