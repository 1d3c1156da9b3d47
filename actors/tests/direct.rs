//! Direct rooms driven through the registry on an in-memory log: opened once however many
//! ask at once, and a blocked author's posts refused while group rooms never ask who blocks.

use actors::room::Rejection;
use actors::{Blocks, Error, NewRoom, Opened, Rooms, Settings};
use events::{MemoryStore, Store};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Blocks kept in memory, counting how often a room asks.
#[derive(Default)]
struct Fake {
    blocks: Mutex<HashSet<(String, String)>>,
    asked: AtomicUsize,
}

impl Blocks for Fake {
    fn blocks<'a>(
        &'a self,
        by: &'a str,
        user: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let found = self
            .blocks
            .lock()
            .unwrap()
            .contains(&(by.to_owned(), user.to_owned()));
        Box::pin(async move { Ok(found) })
    }
}

async fn setup() -> (Rooms, Arc<Fake>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let fake = Arc::new(Fake::default());
    let settings =
        Settings::new(Duration::from_secs(60), events::testing::keys()).with_blocks(fake.clone());
    (Rooms::start(store, settings).await.unwrap(), fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_opening_at_once_make_one_room() {
    let (rooms, _) = setup().await;
    let id = "d".to_owned();
    let opens = (0..16).map(|i| {
        let (rooms, id) = (rooms.clone(), id.clone());
        let (me, other) = if i % 2 == 0 {
            ("ann", "bob")
        } else {
            ("bob", "ann")
        };
        tokio::spawn(async move { rooms.open_direct(&id, me, other).await.unwrap() })
    });
    let mut created = 0;
    for open in opens {
        match open.await.unwrap() {
            Opened::Created(c) => {
                assert_eq!(c.room_id, id);
                created += 1;
            }
            Opened::Existing { room_id, applied } => {
                assert_eq!(room_id, id);
                assert!(!applied.changed, "both were members already");
            }
        }
    }
    assert_eq!(created, 1);
    // Messages, then a version: the opening and both joins come first.
    let posted = rooms.post(&id, "ann", "m1", "hi").await.unwrap();
    assert_eq!(posted.seq, 1);
}

#[tokio::test]
async fn a_blocked_author_is_refused_and_group_rooms_never_ask() {
    let (rooms, fake) = setup().await;
    let group = rooms
        .create(NewRoom {
            name: "Lobby".into(),
            description: String::new(),
            owner: "ann".into(),
            avatar_image: String::new(),
            join_code: "0".repeat(32),
        })
        .await
        .unwrap();
    rooms.post(&group.room_id, "ann", "g1", "hi").await.unwrap();
    assert_eq!(fake.asked.load(Ordering::SeqCst), 0);

    rooms.open_direct("d", "bob", "ann").await.unwrap();
    rooms.post("d", "bob", "m1", "before").await.unwrap();
    fake.blocks
        .lock()
        .unwrap()
        .insert(("ann".into(), "bob".into()));
    assert!(matches!(
        rooms.post("d", "bob", "m2", "after").await,
        Err(Error::Rejected(Rejection::Forbidden(_)))
    ));
    // One-way: the blocker still writes; a retry of a stored post still answers its seq.
    assert_eq!(rooms.post("d", "ann", "m3", "mine").await.unwrap().seq, 2);
    let retry = rooms.post("d", "bob", "m1", "before").await.unwrap();
    assert!(retry.duplicate && retry.seq == 1);
    fake.blocks.lock().unwrap().clear();
    assert_eq!(rooms.post("d", "bob", "m4", "again").await.unwrap().seq, 3);
}
