//! What the tests of every crate share: a scratch PostgreSQL database, a store that watches
//! (and can interrupt) the reads passing through it, builders of the events tests append, and
//! the start of a `chatroom` server process.
//!
//! Compiled for this crate's own tests and, through the `testing` feature, for the crates that
//! turn it on in their dev-dependencies; nothing here reads the environment: a test crate reads
//! `CHATROOM_TEST_DATABASE_URL` itself and passes the admin URL in.

use crate::envelope::{NewEvent, Recorded};
use crate::event::{Event, MemberJoined, MessagePosted, RoomCreated, UserRegistered};
use crate::migrate::Migration;
use crate::store::{Error, Expected, Store};
use async_trait::async_trait;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use tokio_postgres::NoTls;
use uuid::Uuid;

/// The PostgreSQL log's writer, for its own tests (`events/tests/postgres_writer.rs`).
pub mod postgres_writer {
    pub use crate::postgres_writer::{
        HEADS_OF, Known, NOTIFY, Statements, WriteRequest, write_known, write_read,
    };
}

/// A new database on the PostgreSQL server at `admin` (a URL whose user may create
/// databases), with `migrations` applied; the new database's URL.
///
/// # Panics
/// When the server cannot be reached, or the database cannot be created or migrated: a test
/// that asked for PostgreSQL and has none must fail, not pass.
pub async fn scratch_database(admin: &str, migrations: &[Migration]) -> String {
    let (client, conn) = tokio_postgres::connect(admin, NoTls)
        .await
        .unwrap_or_else(|e| panic!("the test PostgreSQL at {admin} is not reachable: {e}"));
    tokio::spawn(conn);
    let name = format!("chatroom_test_{}", Uuid::new_v4().simple());
    client
        .batch_execute(&format!("create database {name}"))
        .await
        .expect("a test database can be created");
    let mut config: tokio_postgres::Config = admin.parse().expect("a PostgreSQL URL");
    config.dbname(&name);
    let (mut c, conn) = config
        .connect(NoTls)
        .await
        .expect("the test database is reachable");
    tokio::spawn(conn);
    crate::migrate::apply_postgres(&mut c, migrations)
        .await
        .expect("the test database migrates");
    database_url(admin, &name)
}

/// The URL of database `name` on the server of the `admin` URL, in the form `admin` was
/// written in (a URL, or `key=value` pairs).
fn database_url(admin: &str, name: &str) -> String {
    let Some((scheme, rest)) = admin.split_once("://") else {
        return format!("{admin} dbname={name}");
    };
    let (before_query, query) = rest.split_once('?').map_or((rest, ""), |(b, q)| (b, q));
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(a, _)| a);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{scheme}://{authority}/{name}{query}")
}

/// A store that hands everything to another, counting what is read through it; with
/// [`Watched::interrupting_log_read`], one read of the whole log fails, as when the database
/// goes away in the middle of a long read. It can also fail an append the way a failover does
/// ([`Watched::losing_next_answer`], [`Watched::forgetting_next_append`]).
pub struct Watched {
    inner: Arc<dyn Store>,
    stream_events_read: AtomicU64,
    log_reads_with_events: AtomicU64,
    /// Log reads still to succeed before the one that fails; `u64::MAX` for none failing.
    log_reads_before_failure: AtomicU64,
    /// What happens to the next append.
    next_append: std::sync::Mutex<Option<AppendFault>>,
}

/// How an append goes wrong.
#[derive(Clone, Copy)]
enum AppendFault {
    /// Stored, but answered `Unavailable`: the commit went through and its answer was lost.
    LostAnswer,
    /// Answered as stored, and not stored: written to a primary whose standby never got it,
    /// and then promoted.
    Forgotten,
}

impl Watched {
    /// Watches `inner`, failing nothing.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            stream_events_read: AtomicU64::new(0),
            log_reads_with_events: AtomicU64::new(0),
            log_reads_before_failure: AtomicU64::new(u64::MAX),
            next_append: std::sync::Mutex::new(None),
        }
    }

    /// Stores the next append but answers it `Unavailable`.
    pub fn losing_next_answer(&self) {
        *self.next_append.lock().expect("fault") = Some(AppendFault::LostAnswer);
    }

    /// Answers the next append as stored (at the stream's next versions, with made-up
    /// positions and hashes) without storing it.
    pub fn forgetting_next_append(&self) {
        *self.next_append.lock().expect("fault") = Some(AppendFault::Forgotten);
    }

    /// Makes the read of the log that follows `successful` ones fail with
    /// [`Error::Unavailable`]; the reads after it succeed again.
    pub fn interrupting_log_read(self, successful: u64) -> Self {
        self.log_reads_before_failure
            .store(successful, Ordering::SeqCst);
        self
    }

    /// Events handed out by [`Store::read_stream`] since the start or the last reset.
    pub fn stream_events_read(&self) -> u64 {
        self.stream_events_read.load(Ordering::SeqCst)
    }

    /// Reads of the whole log that returned at least one event.
    pub fn log_reads_with_events(&self) -> u64 {
        self.log_reads_with_events.load(Ordering::SeqCst)
    }

    /// Starts the counts again from zero.
    pub fn reset_counts(&self) {
        self.stream_events_read.store(0, Ordering::SeqCst);
        self.log_reads_with_events.store(0, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for Watched {
    async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
        let fault = self.next_append.lock().expect("fault").take();
        match fault {
            None => self.inner.append(stream, expected, events).await,
            Some(AppendFault::LostAnswer) => {
                self.inner.append(stream, expected, events).await?;
                Err(Error::Unavailable(
                    "connection closed during the commit".into(),
                ))
            }
            Some(AppendFault::Forgotten) => {
                let version = self.inner.stream_version(stream).await?.unwrap_or(0);
                let position = *self.inner.head().borrow();
                Ok(events
                    .into_iter()
                    .zip(1..)
                    .map(|(e, i)| Recorded {
                        position: position + i,
                        stream_id: stream.to_owned(),
                        version: version + i,
                        event_id: e.event_id,
                        event_type: e.event_type.to_owned(),
                        schema_version: e.schema_version,
                        recorded_at: e.recorded_at,
                        payload: e.payload,
                        hash: [0xee; 32],
                    })
                    .collect())
            }
        }
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Recorded>, Error> {
        let page = self.inner.read_stream(stream, from_version, limit).await?;
        self.stream_events_read
            .fetch_add(page.len() as u64, Ordering::SeqCst);
        Ok(page)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        let before = self.log_reads_before_failure.fetch_update(
            Ordering::SeqCst,
            Ordering::SeqCst,
            |left| match left {
                u64::MAX => None,
                0 => Some(u64::MAX),
                n => Some(n - 1),
            },
        );
        if before == Ok(0) {
            return Err(Error::Unavailable("interrupted".into()));
        }
        let got = self.inner.read_all(after, limit).await?;
        if !got.is_empty() {
            self.log_reads_with_events.fetch_add(1, Ordering::SeqCst);
        }
        Ok(got)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        self.inner.stream_version(stream).await
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.inner.head()
    }

    fn others_head(&self) -> watch::Receiver<u64> {
        self.inner.others_head()
    }
}

/// The key store the event builders below seal with: one in memory for the whole test
/// process, so that whatever a test folds or projects opens what they sealed.
pub fn keys() -> std::sync::Arc<crate::keys::Keys> {
    static KEYS: std::sync::OnceLock<std::sync::Arc<crate::keys::Keys>> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| std::sync::Arc::new(crate::keys::Keys::memory()))
        .clone()
}

/// Seals `clear` for `subject` with [`keys`] (an in-memory store never waits).
pub fn seal(subject: &crate::seal::Subject, clear: &str) -> crate::seal::Sealed {
    futures::executor::block_on(keys().seal(subject, clear)).expect("the test key store seals")
}

/// Opens with [`keys`] what [`seal`] (or anything sealing with [`keys`]) sealed for `subject`;
/// `None` when its key is gone.
///
/// # Panics
/// When the bytes do not open with the subject's key: they were changed or sealed for another.
pub fn open(subject: &crate::seal::Subject, sealed: &crate::seal::Sealed) -> Option<String> {
    futures::executor::block_on(keys().open(subject, sealed))
        .expect("the sealed bytes open with their subject's key")
}

/// `UserRegistered` for `user_id` named `name`.
pub fn registered(user_id: &str, name: &str) -> Event {
    Event::UserRegistered(UserRegistered {
        user_id: user_id.into(),
        name: seal(&crate::seal::Subject::User(user_id.into()), name),
    })
}

/// `RoomCreated` for room `room_id` owned by `owner`, named `Room {room_id}`, with a join code
/// made from the room's id.
pub fn created(room_id: &str, owner: &str) -> Event {
    Event::RoomCreated(RoomCreated {
        room_id: room_id.into(),
        name: format!("Room {room_id}"),
        description: format!("about {room_id}"),
        owner: owner.into(),
        avatar_image: String::new(),
        join_code_hash: crate::event::join_code_hash(&format!("{room_id:0>32}")),
        join_code: seal(
            &crate::seal::Subject::Room(room_id.into()),
            &format!("{room_id:0>32}"),
        ),
    })
}

/// `MemberJoined`: `user_id` joins room `room_id`.
pub fn joined(room_id: &str, user_id: &str) -> Event {
    Event::MemberJoined(MemberJoined {
        room_id: room_id.into(),
        user_id: user_id.into(),
        invite: None,
    })
}

/// `MessagePosted`: message `seq` of room `room_id`, by `user_id`, with client id
/// `{room_id}-m{seq}`.
pub fn posted(room_id: &str, seq: u64, user_id: &str, text: &str) -> Event {
    Event::MessagePosted(MessagePosted {
        room_id: room_id.into(),
        seq,
        message_id: format!("{room_id}-m{seq}"),
        user_id: user_id.into(),
        text: seal(
            &crate::seal::Subject::Text {
                user: user_id.into(),
                room: room_id.into(),
                period: 0,
            },
            text,
        ),
        kind: "input".into(),
        period: 0,
        reply_to: None,
    })
}

/// The events, each ready to append.
pub fn new_events(events: impl IntoIterator<Item = Event>) -> Vec<NewEvent> {
    events.into_iter().map(|e| NewEvent::new(&e)).collect()
}

/// Starts `server` (a `chatroom serve` command line) with its standard output piped, and
/// waits for the `chatroom listening on URL` line it prints once it accepts connections; the
/// process and the URL.
///
/// # Panics
/// When it cannot start, or its output ends without that line.
pub fn spawn_listening(server: &mut Command) -> (Child, String) {
    let mut child = server
        .stdout(Stdio::piped())
        .spawn()
        .expect("the chatroom binary starts");
    let stdout = child.stdout.take().expect("standard output is piped");
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("the server's output is text");
        if let Some(url) = line.strip_prefix("chatroom listening on ") {
            return (child, url.trim().to_owned());
        }
        seen.push(line);
    }
    let status = child.wait();
    panic!("the server ended ({status:?}) without saying where it listens: {seen:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[test]
    fn a_scratch_database_keeps_the_form_and_the_options_of_the_admin_url() {
        assert_eq!(
            database_url("postgres://u@h:5/postgres", "t"),
            "postgres://u@h:5/t"
        );
        assert_eq!(
            database_url("postgres://u@h/postgres?sslmode=disable", "t"),
            "postgres://u@h/t?sslmode=disable"
        );
        assert_eq!(
            database_url("postgresql://u@h?host=/run", "t"),
            "postgresql://u@h/t?host=/run"
        );
        assert_eq!(
            database_url("host=/run user=u", "t"),
            "host=/run user=u dbname=t"
        );
    }

    #[tokio::test]
    async fn an_interrupted_log_read_fails_once_after_the_reads_it_lets_through() {
        let inner = Arc::new(MemoryStore::new());
        inner
            .append("s", Expected::Any, new_events([joined("r", "u")]))
            .await
            .unwrap();
        let watched = Watched::new(inner).interrupting_log_read(2);
        let mut results = Vec::new();
        for _ in 0..4 {
            results.push(watched.read_all(0, 10).await.is_ok());
        }
        assert_eq!(results, [true, true, false, true]);
        assert_eq!(watched.log_reads_with_events(), 3);
        watched.read_stream("s", 1, 10).await.unwrap();
        assert_eq!(watched.stream_events_read(), 1);
        watched.reset_counts();
        assert_eq!(watched.stream_events_read(), 0);
    }
}
