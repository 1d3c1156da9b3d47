//! The conformance suite on EventStoreDB/KurrentDB, plus what only it can get wrong.
//!
//! Needs the `eventstoredb` feature. Runs when `EVENTSTORE_URL` points at a server
//! (`esdb://localhost:2113?tls=false` for a local insecure node); each test gets a stream
//! prefix of its own, so the tests share the server without seeing each other's events.
//! Without it every test here prints that it was skipped and passes.
#![cfg(feature = "eventstoredb")]

mod support;

use events::esdb::EsdbStore;
use events::{Expected, Store, Subscription};
use std::sync::Arc;
use std::time::Duration;
use support::joined;

fn url() -> Option<String> {
    match std::env::var("EVENTSTORE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped: EVENTSTORE_URL is not set (no EventStoreDB to test on)");
            None
        }
    }
}

fn fresh_prefix() -> String {
    format!("chatroomtest{}-", uuid::Uuid::new_v4().simple())
}

async fn fresh() -> Option<Arc<dyn Store>> {
    let url = url()?;
    Some(Arc::new(
        EsdbStore::connect_with_prefix(&url, &fresh_prefix())
            .await
            .expect("the test EventStoreDB is reachable"),
    ))
}

events::conformance_tests!(match fresh().await {
    Some(s) => s,
    None => return,
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_prefix_see_each_others_events() {
    let Some(url) = url() else { return };
    let prefix = fresh_prefix();
    let a: Arc<dyn Store> = Arc::new(EsdbStore::connect_with_prefix(&url, &prefix).await.unwrap());
    let b = EsdbStore::connect_with_prefix(&url, &prefix).await.unwrap();
    let mut sub = Subscription::new(a.clone(), 0, 100);
    let written = b
        .append("room-x", Expected::NoStream, vec![joined(1), joined(2)])
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("delivered by the $all subscription or the poll")
        .unwrap();
    assert_eq!(got, written);
    // The other store's head follows through the catch-up subscription to $all.
    let mut head = a.head();
    tokio::time::timeout(Duration::from_secs(10), async {
        while *head.borrow_and_update() < written[1].position {
            head.changed().await.unwrap();
        }
    })
    .await
    .expect("the head moved");
}

#[tokio::test]
async fn an_append_again_is_a_conflict_or_a_second_copy() {
    let Some(store) = fresh().await else { return };
    let event = joined(1);
    let first = store
        .append("room-r", Expected::NoStream, vec![event.clone()])
        .await
        .unwrap();
    // The same append again, as a client retries after a lost answer.
    match store
        .append("room-r", Expected::NoStream, vec![event.clone()])
        .await
    {
        Err(events::Error::Conflict { .. }) => {}
        other => panic!("expected a conflict (the stream exists), got {other:?}"),
    }
    // Without an expectation it is appended again: the log keeps no index of ids, and the
    // room's window (not the log) makes a client's retry idempotent.
    let second = store
        .append("room-r", Expected::Any, vec![event])
        .await
        .unwrap();
    assert_eq!(
        (second[0].version, second[0].event_id),
        (2, first[0].event_id)
    );
    assert_eq!(store.read_stream("room-r", 1, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn positions_match_the_all_stream_and_are_not_dense() {
    let Some(store) = fresh().await else { return };
    let a = store
        .append(
            "s",
            Expected::NoStream,
            vec![joined(1), joined(2), joined(3)],
        )
        .await
        .unwrap();
    assert!(a.windows(2).all(|w| w[0].position < w[1].position));
    assert!(
        a.windows(2).all(|w| w[1].position > w[0].position + 1),
        "positions are byte offsets of the server's log: {a:?}"
    );
    assert_eq!(*store.head().borrow(), a[2].position);
}
