//! The upgrade into another server's log, over in-memory stores standing for the two servers
//! (the old log is the format-1 fixture's): the copy, its resumption after an interruption,
//! and what is refused without changing anything. `tests/upgrade_eventstore.rs` runs it
//! against two real servers.

use super::run;
use crate::auth::Sessions;
use crate::ops::upgrade::embedded::OldLog;
use async_trait::async_trait;
use events::codec::legacy::{self, Legacy};
use events::{Error, Expected, MemoryStore, NewEvent, Recorded, Store};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

/// A copy of the data folder written by `a606a83`: a format-1 log and the read side of the
/// servers that ran on it.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-a606a83");
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn old_log(dir: &Path) -> OldLog {
    OldLog::open(&dir.join("events.db")).unwrap()
}

async fn all(store: &dyn Store) -> Vec<Recorded> {
    store.read_all(0, 100_000).await.unwrap()
}

/// A server that takes `left` more events, then fails every append.
struct Interrupted {
    inner: Arc<MemoryStore>,
    left: AtomicUsize,
}

#[async_trait]
impl Store for Interrupted {
    async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
        let n = events.len();
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(n))
            .is_err()
        {
            return Err(Error::Unavailable("the connection dropped".into()));
        }
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(&self, s: &str, from: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        self.inner.read_stream(s, from, limit).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        self.inner.read_all(after, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        self.inner.stream_version(stream).await
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.inner.head()
    }
}

/// Runs the upgrade into `new`, interrupted after `left` events.
async fn interrupted(old: &OldLog, new: &Arc<MemoryStore>, side: &Path, left: usize) {
    let failing = Interrupted {
        inner: new.clone(),
        left: AtomicUsize::new(left),
    };
    let err = run(old, &failing, side, None).await.unwrap_err();
    assert!(format!("{err:#}").contains("connection dropped"), "{err:#}");
}

#[tokio::test]
async fn the_copy_keeps_ids_versions_and_times_seals_what_was_clear_and_moves_the_read_side() {
    let side = fixture();
    let old = old_log(side.path());
    let new = MemoryStore::new();
    assert_eq!(run(&old, &new, side.path(), None).await.unwrap(), 0);

    let (count, finding) = crate::ops::verify::check(&new, |_| {}).await.unwrap();
    assert!(finding.is_none(), "{finding:?}");
    let before = all(&old).await;
    let after = all(&new).await;
    assert_eq!(count as usize, before.len() + 1);
    assert_eq!(
        crate::storage::format(&new).await.unwrap(),
        crate::storage::Format::Current
    );
    for (o, n) in before.iter().zip(&after[1..]) {
        assert_eq!(
            (o.event_id, o.version, o.recorded_at),
            (n.event_id, n.version, n.recorded_at)
        );
    }
    // What the old log held in clear is nowhere in the new one's bytes.
    let sessions =
        Sessions::open(&side.path().join("sessions.db"), std::time::Duration::ZERO).unwrap();
    let mut clear = Vec::new();
    for o in &before {
        match legacy::decode(&o.event_type, o.schema_version, &o.payload) {
            Ok(Legacy::UserRegistered(r)) => {
                let stored = sessions.password_of(&r.user_id).await.unwrap();
                assert_eq!(stored.as_deref(), Some(r.password_hash.as_str()));
                clear.extend([r.name, r.password_hash]);
            }
            Ok(Legacy::RoomCreated(r)) => clear.push(r.join_code),
            Ok(Legacy::MessagePosted(m)) => clear.push(m.text),
            _ => {}
        }
    }
    assert!(clear.len() >= 6, "{clear:?}");
    for text in &clear {
        let found = after.iter().any(|n| {
            n.payload.windows(text.len()).any(|w| w == text.as_bytes())
                || n.stream_id.contains(text.as_str())
        });
        assert!(!found, "{text:?} is in the new log");
    }
    let d = side.path();
    assert!(d.join("read-format-1.db").exists());
    assert!(!d.join("read.db").exists());
    assert!(!d.join("snapshots.db").exists());
    assert!(d.join("keys.db").exists());
    assert!(
        d.join("events.db").exists(),
        "the data folder's log is not touched"
    );
}

#[tokio::test]
async fn an_interrupted_copy_resumes_keeping_what_was_written() {
    let side = fixture();
    let old = old_log(side.path());
    let new = Arc::new(MemoryStore::new());
    interrupted(&old, &new, side.path(), 4).await;
    let new = &*new;
    let first = all(new).await;
    assert_eq!(first.len(), 4, "LogStarted and the first three events");
    assert!(
        side.path().join("read.db").exists(),
        "moved only once complete"
    );

    assert_eq!(run(&old, new, side.path(), None).await.unwrap(), 0);
    let after = all(new).await;
    assert_eq!(after.len(), all(&old).await.len() + 1);
    assert_eq!(after[..4], first[..], "kept, not written again");
    let mut ids: Vec<_> = after.iter().map(|e| e.event_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), after.len(), "no event twice");
    let (_, finding) = crate::ops::verify::check(new, |_| {}).await.unwrap();
    assert!(finding.is_none(), "{finding:?}");

    // A run after a complete one checks every event and changes nothing.
    assert_eq!(run(&old, new, side.path(), None).await.unwrap(), 0);
    assert_eq!(all(new).await, after);
    assert!(side.path().join("read-format-1.db").exists());
}

#[tokio::test]
async fn events_sealed_under_another_key_store_are_not_taken_for_the_copy() {
    let side = fixture();
    let old = old_log(side.path());
    let new = Arc::new(MemoryStore::new());
    // Past the first registration, whose name is sealed under this folder's keys.
    interrupted(&old, &new, side.path(), 5).await;
    let new = &*new;
    let written = all(new).await;

    let other = fixture();
    let err = run(&old, new, other.path(), None).await.unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("is not this upgrade's copy"), "{err}");
    assert_eq!(all(new).await, written, "nothing more was written");
    assert!(other.path().join("read.db").exists());
    assert!(!other.path().join("read-format-1.db").exists());
}

#[tokio::test]
async fn another_log_on_the_new_server_is_refused_and_left_as_it_is() {
    let side = fixture();
    let old = old_log(side.path());

    // A log of today's format that is not this copy.
    let new = MemoryStore::new();
    crate::storage::ensure_format(&new).await.unwrap();
    new.append(
        "room-x",
        Expected::NoStream,
        vec![NewEvent::new(&events::testing::created("room-x", "u1"))],
    )
    .await
    .unwrap();
    let before = all(&new).await;
    let err = run(&old, &new, side.path(), None).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("is not this upgrade's copy"),
        "{err:#}"
    );
    assert_eq!(all(&new).await, before);

    // The old log itself, as when both flags name one server under two names.
    let same = MemoryStore::new();
    for e in all(&old).await {
        let expected = match e.version - 1 {
            0 => Expected::NoStream,
            v => Expected::Exact(v),
        };
        let event = NewEvent {
            event_id: e.event_id,
            event_type: Box::leak(e.event_type.clone().into_boxed_str()),
            schema_version: e.schema_version,
            recorded_at: e.recorded_at,
            payload: e.payload.clone(),
        };
        same.append(&e.stream_id, expected, vec![event])
            .await
            .unwrap();
    }
    let err = run(&old, &same, side.path(), None).await.unwrap_err();
    assert!(format!("{err:#}").contains("earlier format too"), "{err:#}");

    // A complete copy that a server has written to since.
    let copied = MemoryStore::new();
    assert_eq!(run(&old, &copied, side.path(), None).await.unwrap(), 0);
    copied
        .append(
            "room-y",
            Expected::NoStream,
            vec![NewEvent::new(&events::testing::created("room-y", "u1"))],
        )
        .await
        .unwrap();
    let err = run(&old, &copied, side.path(), None).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("a server has run on it"),
        "{err:#}"
    );
}

#[tokio::test]
async fn an_altered_old_log_is_refused_before_anything_is_written() {
    let side = fixture();
    let conn = rusqlite::Connection::open(side.path().join("events.db")).unwrap();
    conn.execute_batch(
        "drop trigger event_no_update; drop trigger event_no_delete;
         update event set recorded_at = recorded_at + 1 where position = 9",
    )
    .unwrap();
    drop(conn);
    let new = MemoryStore::new();
    let code = run(&old_log(side.path()), &new, side.path(), None)
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(all(&new).await.is_empty());
    assert!(side.path().join("read.db").exists());
    assert!(!side.path().join("keys.db").exists());
}

#[tokio::test]
async fn a_folder_without_the_old_read_side_is_refused() {
    let side = fixture();
    let old = old_log(side.path());
    let empty = tempfile::tempdir().unwrap();
    let new = MemoryStore::new();
    let err = run(&old, &new, empty.path(), None).await.unwrap_err();
    assert!(format!("{err:#}").contains("holds no read side"), "{err:#}");
    assert!(all(&new).await.is_empty());
    assert!(!empty.path().join("keys.db").exists());
}

#[cfg(feature = "eventstoredb")]
mod arguments {
    use crate::config::{StoreArgs, Upgrade};
    use crate::ops::upgrade::{Target, target};

    fn args(old: Option<&str>, new: Option<&str>) -> Upgrade {
        Upgrade {
            store: StoreArgs {
                data_dir: "./data".into(),
                database_url: None,
                eventstore_url: old.map(str::to_owned),
            },
            to_eventstore_url: new.map(str::to_owned),
        }
    }

    fn refused(old: Option<&str>, new: Option<&str>) -> String {
        format!("{:#}", target(&args(old, new)).unwrap_err())
    }

    #[test]
    fn an_eventstore_log_goes_to_another_server_named_with_its_own_flag() {
        let a = "esdb://old:2113?tls=false";
        let b = "esdb://new:2113?tls=false";
        assert_eq!(
            target(&args(Some(a), Some(b))).unwrap(),
            Target::EventStore { old: a, new: b }
        );
        assert!(refused(Some(a), None).contains("--to-eventstore-url"));
        assert!(refused(None, Some(b)).contains("--eventstore-url too"));
        assert!(refused(Some(a), Some(a)).contains("the same server"));
        assert!(refused(Some(a), Some("esdb://OLD:2113/?tls=false")).contains("the same server"));
        assert!(refused(Some(a), Some("ftp://new")).contains("connection strings"));
        assert_eq!(
            target(&args(None, None)).unwrap(),
            Target::Folder("./data".as_ref())
        );
    }
}

#[cfg_attr(
    no_test_postgres,
    ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
)]
#[tokio::test]
async fn with_the_read_side_in_postgres_keys_and_credentials_go_there_and_resume() {
    let admin = std::env::var("CHATROOM_TEST_DATABASE_URL")
        .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL");
    let url = events::testing::scratch_database(&admin, &crate::storage::POSTGRES_MIGRATIONS).await;
    let ttl = std::time::Duration::from_secs(3600);
    let (token, _) = Sessions::postgres(events::postgres::pool(&url, 2).unwrap(), ttl)
        .issue("some-user")
        .await
        .unwrap();
    let side = fixture();
    let old = old_log(side.path());
    let new = Arc::new(MemoryStore::new());
    let failing = Interrupted {
        inner: new.clone(),
        left: AtomicUsize::new(5),
    };
    assert!(run(&old, &failing, side.path(), Some(&url)).await.is_err());
    assert_eq!(run(&old, &*new, side.path(), Some(&url)).await.unwrap(), 0);
    let (count, finding) = crate::ops::verify::check(&*new, |_| {}).await.unwrap();
    assert!(finding.is_none(), "{finding:?}");
    assert_eq!(count as usize, all(&old).await.len() + 1);

    let pool = events::postgres::pool(&url, 2).unwrap();
    let client = pool.get().await.unwrap();
    let count_of = async |sql: &str| -> i64 { client.query_one(sql, &[]).await.unwrap().get(0) };
    assert!(count_of("select count(*) from public.subject_key").await > 0);
    assert_eq!(count_of("select count(*) from public.credential").await, 2);
    assert_eq!(
        count_of("select count(*) from chatroom_format_1.subject_key").await,
        0
    );
    assert_eq!(
        count_of("select count(*) from pg_namespace where nspname = 'chatroom_upgrade'").await,
        0
    );
    drop(client);
    let sessions = Sessions::postgres(pool, ttl);
    assert!(
        sessions.check(&token).await.unwrap().is_some(),
        "tokens stay valid"
    );
}
