//! The conformance suite every [`Store`] backend must pass.
//!
//! Each check is a public async function taking a fresh, empty store. A backend's tests run
//! them all with [`conformance_tests!`](crate::conformance_tests):
//! ```text
//! events::conformance_tests!(std::sync::Arc::new(events::MemoryStore::new()));
//! ```

use crate::envelope::{GENESIS, NewEvent};
use crate::event::{Event, MessagePosted};
use crate::store::{Error, Expected, Store};
use crate::subscription::Subscription;
use std::sync::Arc;
use std::time::Duration;

fn message(room: &str, seq: u64) -> NewEvent {
    NewEvent::new(&Event::MessagePosted(MessagePosted {
        room_id: room.into(),
        seq,
        message_id: format!("m{seq}"),
        user_id: "u".into(),
        text: crate::seal::Key([7; 32]).seal(
            &crate::seal::Subject::User("u".into()),
            &format!("hello {seq}"),
        ),
        kind: "input".into(),
        period: 0,
        reply_to: None,
    }))
}

fn batch(room: &str, from: u64, n: u64) -> Vec<NewEvent> {
    (from..from + n).map(|s| message(room, s)).collect()
}

/// Appends give versions 1.. within a stream and increasing positions across the log; an
/// append of many events is one block.
pub async fn append_assigns_versions_and_positions(store: Arc<dyn Store>) {
    let a = store
        .append("s-a", Expected::NoStream, batch("a", 1, 3))
        .await
        .unwrap();
    assert_eq!(a.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
    let b = store
        .append("s-b", Expected::Any, batch("b", 1, 1))
        .await
        .unwrap();
    let c = store
        .append("s-a", Expected::Exact(3), batch("a", 4, 2))
        .await
        .unwrap();
    assert_eq!(c.iter().map(|e| e.version).collect::<Vec<_>>(), [4, 5]);
    let positions: Vec<u64> = a.iter().chain(&b).chain(&c).map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(store.stream_version("s-a").await.unwrap(), Some(5));
    assert_eq!(store.stream_version("s-none").await.unwrap(), None);
}

/// A wrong expected version is a typed conflict carrying what was expected and found, and
/// writes nothing.
pub async fn conflicts_are_typed_and_write_nothing(store: Arc<dyn Store>) {
    store
        .append("s", Expected::NoStream, batch("s", 1, 2))
        .await
        .unwrap();
    for expected in [Expected::NoStream, Expected::Exact(1), Expected::Exact(3)] {
        match store.append("s", expected, batch("s", 3, 2)).await {
            Err(Error::Conflict {
                stream,
                expected: e,
                actual,
            }) => {
                assert_eq!(stream, "s");
                assert_eq!(e, expected);
                assert_eq!(actual, Some(2));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    match store
        .append("t", Expected::Exact(1), batch("t", 1, 1))
        .await
    {
        Err(Error::Conflict { actual: None, .. }) => {}
        other => panic!("expected a conflict on a missing stream, got {other:?}"),
    }
    assert_eq!(store.stream_version("s").await.unwrap(), Some(2));
    assert_eq!(store.read_all(0, 100).await.unwrap().len(), 2);
}

/// An event id is not a key of the log: an event whose id is already stored, in its own
/// stream or another, is appended like any other (the writer's new version and hash, a new
/// position), and both copies read back. Idempotency is the writer's (see [`Store`]). An
/// empty append is refused.
pub async fn event_ids_are_stored_as_given(store: Arc<dyn Store>) {
    let first = store
        .append("s", Expected::Any, batch("s", 1, 1))
        .await
        .unwrap();
    let again = NewEvent {
        event_id: first[0].event_id,
        ..message("s", 2)
    };
    let second = store
        .append("s", Expected::Exact(1), vec![again.clone()])
        .await
        .expect("an id already stored is appended");
    assert_eq!(
        (second[0].version, second[0].event_id),
        (2, first[0].event_id)
    );
    assert!(second[0].position > first[0].position);
    let elsewhere = store
        .append("t", Expected::NoStream, vec![again])
        .await
        .expect("and in another stream too");
    assert_eq!(elsewhere[0].version, 1);
    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r.event_id == first[0].event_id));
    assert_eq!(
        store.read_stream("s", 1, 10).await.unwrap(),
        [first[0].clone(), second[0].clone()]
    );
    assert!(matches!(
        store.append("s", Expected::Any, Vec::new()).await,
        Err(Error::Empty)
    ));
}

/// Stream reads start at a version and honour the limit; events come back exactly as
/// appended and decode to what was written.
pub async fn read_stream_from_version(store: Arc<dyn Store>) {
    let written = store
        .append("s", Expected::NoStream, batch("s", 1, 10))
        .await
        .unwrap();
    store
        .append("other", Expected::NoStream, batch("o", 1, 3))
        .await
        .unwrap();
    let read = store.read_stream("s", 4, 3).await.unwrap();
    assert_eq!(read, written[3..6].to_vec());
    assert_eq!(store.read_stream("s", 1, 1000).await.unwrap(), written);
    assert!(store.read_stream("s", 11, 10).await.unwrap().is_empty());
    assert!(
        store
            .read_stream("missing", 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    match read[0].decode().unwrap() {
        Event::MessagePosted(m) => {
            let key = crate::seal::Key([7; 32]);
            let text = key.open(&crate::seal::Subject::User("u".into()), &m.text);
            assert_eq!((m.seq, text.as_deref()), (4, Some("hello 4")));
        }
        other => panic!("decoded {other:?}"),
    }
}

/// Reading the whole log from a position returns every event after it, across streams, in
/// position order, in pages.
pub async fn read_all_in_order(store: Arc<dyn Store>) {
    let mut expected = Vec::new();
    for round in 0..5u64 {
        for s in ["x", "y", "z"] {
            expected.extend(
                store
                    .append(s, Expected::Any, batch(s, round * 2 + 1, 2))
                    .await
                    .unwrap(),
            );
        }
    }
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_all(after, 4).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        got.extend(page);
    }
    assert_eq!(got, expected);
    let from_middle = store.read_all(expected[9].position, 1000).await.unwrap();
    assert_eq!(from_middle, expected[10..].to_vec());
}

/// Every event's hash chains it to the previous event of its stream.
pub async fn hashes_chain_each_stream(store: Arc<dyn Store>) {
    store
        .append("s", Expected::Any, batch("s", 1, 3))
        .await
        .unwrap();
    store
        .append("t", Expected::Any, batch("t", 1, 2))
        .await
        .unwrap();
    store
        .append("s", Expected::Any, batch("s", 4, 2))
        .await
        .unwrap();
    for stream in ["s", "t"] {
        let mut previous = GENESIS;
        for e in store.read_stream(stream, 1, 100).await.unwrap() {
            assert_eq!(
                e.hash,
                e.expected_hash(&previous),
                "{stream} v{}",
                e.version
            );
            previous = e.hash;
        }
    }
    let s = store.read_stream("s", 1, 100).await.unwrap();
    let t = store.read_stream("t", 1, 100).await.unwrap();
    assert_ne!(s[0].hash, t[0].hash);
}

/// Writers racing on one stream with exact versions: each version is won by exactly one.
pub async fn concurrent_writers_never_share_a_version(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = 0;
            while won < 5 {
                let v = store.stream_version("race").await.unwrap();
                let expected = v.map_or(Expected::NoStream, Expected::Exact);
                match store
                    .append("race", expected, batch("race", w * 100 + won, 1))
                    .await
                {
                    Ok(_) => won += 1,
                    Err(Error::Conflict { .. }) => tokio::task::yield_now().await,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = store.read_stream("race", 1, 1000).await.unwrap();
    assert_eq!(events.len(), 40);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.version == i as u64 + 1)
    );
}

/// Many appends at once to different streams all succeed, and the log holds each once.
pub async fn concurrent_appends_all_land(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("w{w}");
            for i in 0..20 {
                let expected = if i == 0 {
                    Expected::NoStream
                } else {
                    Expected::Exact(i)
                };
                store
                    .append(&stream, expected, batch(&stream, i + 1, 1))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.read_all(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 320);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
}

/// A subscription delivers what is already there, then live appends, in order, without
/// repeats.
pub async fn subscription_continues_live(store: Arc<dyn Store>) {
    let written = store
        .append("s", Expected::Any, batch("s", 1, 3))
        .await
        .unwrap();
    // Positions need not be dense (EventStoreDB's are byte offsets): start after the first
    // event's own position.
    let mut sub = Subscription::new(store.clone(), written[0].position, 2);
    let first = sub.next().await.unwrap();
    assert_eq!(first.iter().map(|e| e.version).collect::<Vec<_>>(), [2, 3]);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 4..=10 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                store
                    .append("s", Expected::Any, batch("s", i, 1))
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 7 {
        let events = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("live events arrive")
            .unwrap();
        seen.extend(events.into_iter().map(|e| e.version));
    }
    writer.await.unwrap();
    assert_eq!(seen, (4..=10).collect::<Vec<_>>());
    assert_eq!(
        sub.position(),
        store
            .read_all(0, 100)
            .await
            .unwrap()
            .last()
            .unwrap()
            .position
    );
}

/// Runs every conformance check as its own `#[tokio::test]`, each on a fresh store made by
/// the given expression.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            append_assigns_versions_and_positions,
            conflicts_are_typed_and_write_nothing,
            event_ids_are_stored_as_given,
            read_stream_from_version,
            read_all_in_order,
            hashes_chain_each_stream,
            concurrent_writers_never_share_a_version,
            concurrent_appends_all_land,
            subscription_continues_live,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: std::sync::Arc<dyn $crate::Store> = $make;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}
