//! The log in EventStoreDB/KurrentDB, through the `kurrentdb` gRPC client.
//!
//! docs/eventstoredb.md explains the mapping and its limits; in short:
//! - **Streams.** Our stream `room-x` is the ESDB stream `<prefix>room-x` (prefix `chatroom-` by
//!   default), so a `$all` filter on the prefix selects our events and nothing else.
//! - **Versions.** ESDB revisions start at 0, our versions at 1: version = revision + 1.
//! - **Positions.** An event appended over gRPC is its own implicit transaction, and ESDB gives
//!   it the `$all` position `C = P =` its log position; that number is our position. It is
//!   strictly increasing but not dense (it counts bytes of the server's log).
//! - **Appends.** The hash chain needs the stream's last hash, so the store keeps each
//!   stream's tail (version, last hash), reads what others appended since before every
//!   append, checks the caller's expectation, and appends with the version it knows as ESDB's
//!   expected revision: a writer that slipped in between makes ESDB refuse, and we report a
//!   conflict (or, for `Expected::Any`, try again). Our event id is the ESDB event id; like
//!   every backend, the store looks nothing up by it (see [`Store`]). ESDB's own idempotence
//!   answers a write whose ids are already stored at the revisions after the expected one,
//!   which an append at the stream's current revision never meets; the append reads its
//!   events back for their positions and fails as unavailable if they are not its own.
//! - **Metadata.** Type = our type name, data = our bincode payload (octet-stream), and JSON
//!   metadata `{"chatroom":1,"schema_version":..,"recorded_at":..,"hash":".."}`.
//! - **Files.** [`mapping`]: the pure mapping functions; `server`: the few server calls,
//!   over gRPC or, in tests, to an in-process model of ESDB's rules.
//! - **Live reads.** A catch-up subscription to `$all`, filtered to the prefix, moves the head
//!   watch; [`Subscription`](crate::Subscription) also polls, so a dropped subscription only
//!   delays delivery.

use crate::envelope::{GENESIS, NewEvent, Recorded};
use crate::memory::check_expected;
use crate::store::{Error, Expected, Store};
use async_trait::async_trait;
use kurrentdb::{
    Client, ClientSettings, StreamPosition, SubscribeToAllOptions, SubscriptionEvent,
    SubscriptionFilter,
};
use server::{From, Grpc, Raw, Server, Write};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub mod mapping;
mod server;

pub use mapping::{
    DEFAULT_PREFIX, Metadata, Stored, actual_of, position_of, read_from, recorded, revision_of,
    same_server, state_after, stream_id, stream_name, stream_state, version_of,
};

/// Streams whose tail (version, hash, event ids) a store keeps; past this, an arbitrary one is
/// forgotten and read again on its next append.
const CACHED_STREAMS: usize = 10_000;

/// Events read at a time when a stream's cached tail catches up.
const CATCH_UP_PAGE: usize = 4096;

/// Attempts of an `Expected::Any` append that keeps losing races before giving up.
const ANY_ATTEMPTS: usize = 64;

/// A [`Store`] in EventStoreDB/KurrentDB.
pub struct EsdbStore {
    server: Arc<dyn Server>,
    prefix: String,
    head: watch::Sender<u64>,
    closed: AtomicBool,
    follower: Option<tokio::task::JoinHandle<()>>,
    tails: Mutex<HashMap<String, Tail>>,
}

/// What an append needs to know of a stream: its version and last hash, for the expected
/// version and the hash chain. Filled from what was read from ESDB, in order, never guessed;
/// before each append it catches up with what others wrote since.
struct Tail {
    version: u64,
    hash: [u8; 32],
}

impl Tail {
    fn new() -> Self {
        Self {
            version: 0,
            hash: GENESIS,
        }
    }

    /// Adds the next event; `false` when it is not the next one (a gap).
    fn apply(&mut self, r: &Recorded) -> bool {
        if r.version <= self.version {
            return true;
        }
        if r.version != self.version + 1 {
            return false;
        }
        self.version = r.version;
        self.hash = r.hash;
        true
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

fn server_error(e: kurrentdb::Error) -> Error {
    match e {
        kurrentdb::Error::ResourceDeleted => {
            Error::Corrupt("a stream of the log was deleted in EventStoreDB".into())
        }
        e => unavailable(e),
    }
}

impl EsdbStore {
    /// Connects to the server at `url` (`esdb://`, `esdb+discover://`, `kurrentdb://`...), with
    /// streams named `chatroom-<stream>`, and starts following `$all`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the URL does not parse or the server cannot be read.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with_prefix(url, DEFAULT_PREFIX).await
    }

    /// As [`connect`](Self::connect), with another stream name prefix: the log is then made of
    /// the streams whose names start with `prefix` (tests give each store its own).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the URL does not parse or the server cannot be read.
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, Error> {
        let settings: ClientSettings = url.parse().map_err(unavailable)?;
        let client = Client::new(settings).map_err(unavailable)?;
        let mut store = Self::over(Arc::new(Grpc(client.clone())), prefix).await?;
        store.follower = Some(tokio::spawn(follow(
            client,
            prefix.to_owned(),
            store.head.clone(),
        )));
        Ok(store)
    }

    async fn over(server: Arc<dyn Server>, prefix: &str) -> Result<Self, Error> {
        if prefix.is_empty() || prefix.starts_with('$') {
            return Err(Error::Unavailable(format!(
                "the stream prefix {prefix:?} would select system streams"
            )));
        }
        let last = server
            .read_all(prefix, From::Last, 1)
            .await
            .map_err(server_error)?;
        let head_now = match last.first() {
            Some(e) => position_of(e.position)?,
            None => 0,
        };
        Ok(Self {
            server,
            prefix: prefix.to_owned(),
            head: watch::channel(head_now).0,
            closed: AtomicBool::new(false),
            follower: None,
            tails: Mutex::new(HashMap::new()),
        })
    }

    /// Stops taking appends. Appends already sent finish on their own.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn tails(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tail>> {
        self.tails.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ours(&self, raw: &[Raw]) -> Result<Vec<Recorded>, Error> {
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            let stored = Stored {
                stream_name: &r.stream,
                revision: r.revision,
                position: r.position,
                id: r.id,
                event_type: &r.event_type,
                data: &r.data,
                metadata: &r.metadata,
            };
            if let Some(rec) = recorded(&self.prefix, &stored)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    async fn read(
        &self,
        stream: &str,
        from: From<u64>,
        count: usize,
    ) -> Result<Vec<Recorded>, Error> {
        let name = stream_name(&self.prefix, stream);
        let raw = self
            .server
            .read_stream(&name, from, count)
            .await
            .map_err(server_error)?;
        self.ours(&raw)
    }

    /// Brings the cached tail of `stream` up to date with the server.
    async fn catch_up(&self, stream: &str) -> Result<(), Error> {
        loop {
            let from = self.tails().get(stream).map_or(0, |t| t.version);
            let page = self
                .read(
                    stream,
                    From::Forwards(StreamPosition::Position(from)),
                    CATCH_UP_PAGE,
                )
                .await?;
            let full = page.len() == CATCH_UP_PAGE;
            let mut tails = self.tails();
            if !tails.contains_key(stream)
                && tails.len() >= CACHED_STREAMS
                && let Some(old) = tails.keys().next().cloned()
            {
                tails.remove(&old);
            }
            let tail = tails.entry(stream.to_owned()).or_insert_with(Tail::new);
            let before = tail.version;
            if !page.iter().all(|r| tail.apply(r)) {
                if before == from {
                    return Err(Error::Corrupt(format!(
                        "stream {stream} skips from version {from} to {} \
                         (events removed in EventStoreDB?)",
                        page[0].version
                    )));
                }
                // Forgotten and refilled meanwhile: read again from where it now stands.
                continue;
            }
            if !full {
                return Ok(());
            }
        }
    }
}

impl Drop for EsdbStore {
    fn drop(&mut self) {
        if let Some(f) = &self.follower {
            f.abort();
        }
    }
}

fn bump(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|h| {
        let moved = position > *h;
        *h = (*h).max(position);
        moved
    });
}

/// Follows `$all` from its end, filtered to our streams, moving the head; resubscribes after
/// an error. What lands while it is away is found by the subscriptions' poll.
async fn follow(client: Client, prefix: String, head: watch::Sender<u64>) {
    loop {
        let options = SubscribeToAllOptions::default()
            .position(StreamPosition::End)
            .filter(SubscriptionFilter::on_stream_name().add_prefix(&prefix));
        let mut sub = client.subscribe_to_all(&options).await;
        loop {
            match sub.next_subscription_event().await {
                Ok(SubscriptionEvent::EventAppeared(event)) => {
                    if let Some(Ok(p)) = event.event.as_ref().map(|e| position_of(e.position)) {
                        bump(&head, p);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "EventStoreDB subscription dropped; retrying");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[async_trait]
impl Store for EsdbStore {
    async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
        if events.is_empty() {
            return Err(Error::Empty);
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("the log is closed".into()));
        }
        let name = stream_name(&self.prefix, stream);
        for _ in 0..ANY_ATTEMPTS {
            self.catch_up(stream).await?;
            let Some((actual, previous)) = self
                .tails()
                .get(stream)
                .map(|t| ((t.version > 0).then_some(t.version), t.hash))
            else {
                continue;
            };
            check_expected(stream, expected, actual)?;
            let mut chained =
                crate::envelope::seal(stream, Some((actual.unwrap_or(0), previous)), &events);
            let writes: Vec<Write> = events
                .iter()
                .zip(&chained)
                .map(|(e, r)| Write {
                    id: e.event_id,
                    event_type: e.event_type.to_owned(),
                    data: e.payload.clone(),
                    metadata: Metadata::of(e, &r.hash).to_bytes(),
                })
                .collect();
            match self.server.append(&name, state_after(actual), writes).await {
                Ok(()) => {}
                Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                    if expected == Expected::Any {
                        continue;
                    }
                    return Err(Error::Conflict {
                        stream: stream.to_owned(),
                        expected,
                        actual: actual_of(current),
                    });
                }
                Err(e) => return Err(server_error(e)),
            }
            // Read the events back: ESDB's answer has one position for the whole write, and
            // an idempotent answer (ids already written there) looks like success. What is
            // stored is the truth.
            let from = actual.unwrap_or(0);
            let stored = self
                .read(
                    stream,
                    From::Forwards(StreamPosition::Position(from)),
                    events.len(),
                )
                .await?;
            if stored.len() != chained.len() {
                return Err(Error::Unavailable(format!(
                    "the append to {stream} was sent but could not be read back; \
                     a retry answers with what was stored"
                )));
            }
            for (mine, theirs) in chained.iter_mut().zip(&stored) {
                mine.position = theirs.position;
            }
            if stored != chained {
                return Err(Error::Unavailable(
                    "the events read back are not the ones appended".into(),
                ));
            }
            if let Some(last) = stored.last() {
                bump(&self.head, last.position);
            }
            if let Some(tail) = self.tails().get_mut(stream) {
                for r in &stored {
                    tail.apply(r);
                }
            }
            return Ok(stored);
        }
        Err(Error::Unavailable(format!(
            "gave up appending to {stream} after {ANY_ATTEMPTS} races with other writers"
        )))
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Recorded>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = StreamPosition::Position(revision_of(from_version).unwrap_or(0));
        self.read(stream, From::Forwards(from), limit).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The read starts at `after` itself (inclusive), hence one more.
        let raw = self
            .server
            .read_all(
                &self.prefix,
                From::Forwards(read_from(after)),
                limit.saturating_add(1),
            )
            .await
            .map_err(server_error)?;
        let mut out: Vec<Recorded> = Vec::with_capacity(limit);
        for rec in self.ours(&raw)? {
            if after > 0 && rec.position <= after {
                continue;
            }
            if let Some(last) = out.last()
                && last.position >= rec.position
            {
                return Err(Error::Corrupt(format!(
                    "$all went back from position {} to {}",
                    last.position, rec.position
                )));
            }
            if out.len() == limit {
                break;
            }
            out.push(rec);
        }
        Ok(out)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        Ok(self
            .read(stream, From::Last, 1)
            .await?
            .first()
            .map(|e| e.version))
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}

#[cfg(test)]
mod tests {
    //! The store's own logic over [`server::Model`]: the conformance suite, plus a log shared
    //! with other applications' streams.
    use super::*;
    use crate::event::{Event, MemberJoined};

    async fn over(model: Arc<server::Model>, prefix: &str) -> Arc<dyn Store> {
        Arc::new(EsdbStore::over(model, prefix).await.unwrap())
    }

    crate::conformance_tests!(over(Arc::new(server::Model::default()), DEFAULT_PREFIX).await);

    fn joined(n: u64) -> NewEvent {
        NewEvent::new(&Event::MemberJoined(MemberJoined {
            room_id: "r".into(),
            user_id: format!("u{n}"),
            invite: None,
        }))
    }

    #[tokio::test]
    async fn other_prefixes_are_other_logs() {
        let model = Arc::new(server::Model::default());
        let a = over(model.clone(), "chatroom-").await;
        let b = over(model.clone(), "orders-").await;
        let written = a
            .append("room-1", Expected::NoStream, vec![joined(1)])
            .await
            .unwrap();
        b.append("room-1", Expected::NoStream, vec![joined(2), joined(3)])
            .await
            .unwrap();
        let more = a
            .append("room-2", Expected::NoStream, vec![joined(4)])
            .await
            .unwrap();
        let all = a.read_all(0, 100).await.unwrap();
        assert_eq!(all, [written, more].concat());
        assert_eq!(b.read_all(0, 100).await.unwrap().len(), 2);
        assert_eq!(a.stream_version("room-1").await.unwrap(), Some(1));
        // A store opened later starts with the head at our newest event.
        let again = over(model, "chatroom-").await;
        assert_eq!(*again.head().borrow(), all[1].position);
    }

    #[tokio::test]
    async fn another_writer_is_caught_up_with_before_appending() {
        let model = Arc::new(server::Model::default());
        let a = over(model.clone(), "chatroom-").await;
        let b = over(model, "chatroom-").await;
        let first = a
            .append("room-1", Expected::NoStream, vec![joined(1)])
            .await
            .unwrap();
        // b has never seen the stream: its expectation is checked against the server.
        let second = b
            .append("room-1", Expected::Exact(1), vec![joined(2)])
            .await
            .unwrap();
        assert_eq!(second[0].expected_hash(&first[0].hash), second[0].hash);
        // a's cached tail is behind: it catches up first, so an event carrying b's id is
        // appended after b's (ids are not keys, and ESDB's idempotence does not apply at the
        // stream's current revision), and an exact expectation is checked against the stream.
        let same_id = NewEvent {
            event_id: second[0].event_id,
            ..joined(9)
        };
        let third = a
            .append("room-1", Expected::Any, vec![same_id])
            .await
            .unwrap();
        assert_eq!(
            (third[0].version, third[0].event_id),
            (3, second[0].event_id)
        );
        match a
            .append("room-1", Expected::Exact(1), vec![joined(3)])
            .await
        {
            Err(Error::Conflict { actual, .. }) => assert_eq!(actual, Some(3)),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn positions_are_the_servers_and_not_dense() {
        let a = over(Arc::new(server::Model::default()), "chatroom-").await;
        let written = a
            .append("s", Expected::NoStream, vec![joined(1), joined(2)])
            .await
            .unwrap();
        assert!(written[0].position >= 1_024);
        assert!(written[1].position > written[0].position + 1);
        assert_eq!(*a.head().borrow(), written[1].position);
        assert_eq!(
            a.read_all(written[0].position, 10).await.unwrap(),
            written[1..]
        );
    }
}
