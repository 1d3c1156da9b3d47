//! The conformance suite on EventStoreDB/KurrentDB, plus what only it can get wrong.
//!
//! Needs the `eventstoredb` feature. Runs when `EVENTSTORE_URL` points at a server
//! (`esdb://localhost:2113?tls=false` for a local insecure node); each test gets a stream
//! prefix of its own, so the tests share the server without seeing each other's events.
//! Built without it, every test here is ignored, and cargo says why (`build.rs`).
#![cfg(feature = "eventstoredb")]

mod support;

use events::esdb::EsdbStore;
use events::{Expected, Store, Subscription};
use std::sync::Arc;
use std::time::Duration;
use support::joined;

/// # Panics
/// Without `EVENTSTORE_URL`: only a test the build left ignored gets here, when run with
/// `--ignored`.
fn url() -> String {
    std::env::var("EVENTSTORE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect("needs EventStoreDB: set EVENTSTORE_URL")
}

fn fresh_prefix() -> String {
    format!("chatroomtest{}-", uuid::Uuid::new_v4().simple())
}

async fn fresh() -> Arc<dyn Store> {
    Arc::new(
        EsdbStore::connect_with_prefix(&url(), &fresh_prefix())
            .await
            .expect("the test EventStoreDB is reachable"),
    )
}

#[cfg(not(no_test_eventstore))]
events::conformance_tests!(fresh().await);

/// Stands for the conformance suite, which is not built without a server:
/// `conformance_tests!` cannot mark its tests ignored.
#[cfg(no_test_eventstore)]
#[test]
#[ignore = "needs EventStoreDB: set EVENTSTORE_URL"]
fn conformance_suite() {
    panic!("built without EVENTSTORE_URL: set it and build again");
}

#[cfg_attr(no_test_eventstore, ignore = "needs EventStoreDB: set EVENTSTORE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_prefix_see_each_others_events() {
    let url = url();
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

#[cfg_attr(no_test_eventstore, ignore = "needs EventStoreDB: set EVENTSTORE_URL")]
#[tokio::test]
async fn an_append_again_is_a_conflict_or_a_second_copy() {
    let store = fresh().await;
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

#[cfg_attr(no_test_eventstore, ignore = "needs EventStoreDB: set EVENTSTORE_URL")]
#[tokio::test]
async fn positions_match_the_all_stream_and_are_not_dense() {
    let store = fresh().await;
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
