//! Governance through the real room actors: removals take effect before the next delivery,
//! on this registry and on another one over the same log (another process), versions are
//! carried and replayed, and an invite's uses are counted exactly under racing joins.

mod common;

use actors::delivery::Change;
use actors::room::{Act, Command, Rejection};
use actors::{Delivery, Error, NewRoom, Resume, Rooms, Settings, Sink, Subscriber};
use common::wait_until;
use events::event::join_code_hash;
use events::seal::Subject;
use events::{MemoryStore, Store};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Collect {
    got: Mutex<Vec<Delivery>>,
}

impl Sink for Collect {
    fn deliver(&self, d: &Delivery) -> bool {
        self.got.lock().unwrap().push(d.clone());
        true
    }
    fn closed(&self) {}
}

impl Collect {
    /// What arrived, as (version, what): `m<seq>` for a message, the change's name otherwise.
    fn seen(&self) -> Vec<(u64, String)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|d| match d {
                Delivery::Message(m) => Some((m.version, format!("m{}", m.seq))),
                Delivery::Updated(m) => Some((m.version, format!("u{}", m.seq))),
                Delivery::Event(e) => Some((e.version, e.change.as_str().to_owned())),
                Delivery::Joined(_) => None,
            })
            .collect()
    }
}

const CODE: &str = "44444444444444444444444444444444";

fn settings() -> Settings {
    Settings::new(Duration::from_secs(60), events::testing::keys())
}

async fn setup() -> (Arc<dyn Store>, Rooms, String) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let rooms = Rooms::start(store.clone(), settings()).await.unwrap();
    let created = rooms
        .create(NewRoom {
            name: "Lobby".into(),
            description: String::new(),
            owner: "owner".into(),
            avatar_image: String::new(),
            join_code: CODE.into(),
        })
        .await
        .unwrap();
    rooms
        .join(&created.room_id, "bob", join_code_hash(CODE))
        .await
        .unwrap();
    (store, rooms, created.room_id)
}

async fn subscribe(rooms: &Rooms, room: &str, id: u64, user: &str, resume: Resume) -> Arc<Collect> {
    let sink = Arc::new(Collect::default());
    let sub = Subscriber {
        id,
        user_id: user.into(),
        sink: sink.clone(),
    };
    rooms.subscribe(room, sub, resume).await.unwrap();
    sink
}

fn ban(user: &str) -> Command {
    Command::Moderate {
        by: "owner".into(),
        user_id: user.into(),
        act: Act::Ban {
            reason: None,
            until: None,
        },
    }
}

#[tokio::test]
async fn a_kicked_member_gets_the_kick_last_and_nothing_after() {
    let (_, rooms, room) = setup().await;
    let bob = subscribe(&rooms, &room, 1, "bob", Resume::No).await;
    let owner = subscribe(&rooms, &room, 2, "owner", Resume::No).await;
    rooms.post(&room, "owner", "a", "before").await.unwrap();
    let kick = Command::Moderate {
        by: "owner".into(),
        user_id: "bob".into(),
        act: Act::Kick { reason: None },
    };
    rooms.command(&room, kick).await.unwrap();
    rooms.post(&room, "owner", "b", "after").await.unwrap();
    wait_until(|| owner.seen().len() == 3).await;
    let names = |c: &Collect| c.seen().into_iter().map(|(_, w)| w).collect::<Vec<_>>();
    assert_eq!(names(&owner), ["m1", "kicked", "m2"]);
    assert_eq!(names(&bob), ["m1", "kicked"]);
    assert_eq!(
        rooms.post(&room, "bob", "c", "x").await.unwrap_err(),
        Error::Rejected(Rejection::NotMember)
    );
    let sub = Subscriber {
        id: 3,
        user_id: "bob".into(),
        sink: Arc::new(Collect::default()),
    };
    assert_eq!(
        rooms.subscribe(&room, sub, Resume::No).await.unwrap_err(),
        Error::Rejected(Rejection::NotMember)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_on_one_registry_silences_the_banned_on_another() {
    // Two registries over one store stand for two server processes on one database.
    let (store, a, room) = setup().await;
    let b = Rooms::start(store.clone(), settings()).await.unwrap();
    let bob = subscribe(&a, &room, 1, "bob", Resume::No).await;
    let owner = subscribe(&a, &room, 2, "owner", Resume::No).await;
    let banned = b.command(&room, ban("bob")).await.unwrap();
    let posted = b.post(&room, "owner", "m", "after the ban").await.unwrap();
    // What the server's log watcher does for events another process wrote.
    a.observe(&room, banned.version + 1);
    wait_until(|| owner.seen().len() == 2).await;
    assert_eq!(owner.seen()[0], (banned.version, "banned".into()));
    assert_eq!(owner.seen()[1].1, "m1");
    assert_eq!(bob.seen(), [(banned.version, "banned".into())]);
    assert!(posted.seq == 1);
    assert_eq!(
        a.join(&room, "bob", join_code_hash(CODE))
            .await
            .unwrap_err(),
        Error::Rejected(Rejection::Banned)
    );
}

#[tokio::test]
async fn since_version_replays_every_change_in_order_with_its_version() {
    let (_, rooms, room) = setup().await;
    let first = subscribe(&rooms, &room, 1, "owner", Resume::No).await;
    rooms.post(&room, "owner", "a", "one").await.unwrap();
    let mute = Command::Moderate {
        by: "owner".into(),
        user_id: "bob".into(),
        act: Act::Mute {
            until: events::now_ms() + 60_000,
        },
    };
    rooms.command(&room, mute).await.unwrap();
    rooms.post(&room, "owner", "b", "two").await.unwrap();
    wait_until(|| first.seen().len() == 3).await;
    let live = first.seen();
    let versions: Vec<u64> = live.iter().map(|(v, _)| *v).collect();
    assert!(versions.windows(2).all(|w| w[0] + 1 == w[1]), "{live:?}");

    // From creation: the creation is version 1, the owner's and bob's joins follow.
    let all = subscribe(&rooms, &room, 2, "owner", Resume::Version(0)).await;
    let seen = all.seen();
    assert_eq!(
        seen.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>(),
        ["joined", "joined", "m1", "muted", "m2"]
    );
    assert_eq!(seen[2..], live[..]);
    // From the middle.
    let rest = subscribe(&rooms, &room, 3, "owner", Resume::Version(live[0].0)).await;
    assert_eq!(rest.seen(), live[1..]);
    // Past the newest version: nothing, and not recovered.
    let sub = Subscriber {
        id: 4,
        user_id: "owner".into(),
        sink: Arc::new(Collect::default()),
    };
    let s = rooms
        .subscribe(&room, sub, Resume::Version(live[2].0 + 5))
        .await
        .unwrap();
    assert!(!s.recovered);
    assert_eq!(s.last_version, live[2].0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_joins_through_one_invite_on_two_registries_count_exactly() {
    let (store, a, room) = setup().await;
    let b = Rooms::start(store.clone(), settings()).await.unwrap();
    let code = "55555555555555555555555555555555";
    let invite = Command::CreateInvite {
        by: "owner".into(),
        invite_id: "i".into(),
        code_hash: join_code_hash(code),
        code: events::testing::seal(&Subject::Room(room.clone()), code),
        max_uses: Some(3),
        expires_at: None,
    };
    a.command(&room, invite).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..12 {
        let rooms = if n % 2 == 0 { a.clone() } else { b.clone() };
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            rooms
                .join(&room, &format!("u{n}"), join_code_hash(code))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e, Error::Rejected(Rejection::Gone)),
        }
    }
    assert_eq!(ok, 3);
    let joins = store
        .read_stream(&events::event::room_stream(&room), 1, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.event_type == "MemberJoined")
        .count();
    // The owner's and bob's joins, then the invite's three.
    assert_eq!(joins, 5);
}

#[tokio::test]
async fn an_erased_owner_hands_the_room_on_and_subscribers_see_both_changes() {
    let (_, rooms, room) = setup().await;
    let bob = subscribe(&rooms, &room, 1, "bob", Resume::No).await;
    rooms
        .command(
            &room,
            Command::Erase {
                user_id: "owner".into(),
            },
        )
        .await
        .unwrap();
    wait_until(|| bob.seen().len() == 2).await;
    let names: Vec<_> = bob.seen().into_iter().map(|(_, w)| w).collect();
    assert_eq!(names, ["left", "role_changed"]);
    let got = bob.got.lock().unwrap();
    let Some(Delivery::Event(e)) = got.last() else {
        panic!("a room event")
    };
    assert_eq!(e.change, Change::RoleChanged);
    assert_eq!(e.user.as_deref(), Some("bob"));
    assert_eq!(e.role, Some(events::event::Role::Owner));
    assert_eq!(e.by, None);
}
