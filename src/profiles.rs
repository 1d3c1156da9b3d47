//! A cache of user profiles (display names and avatars) in front of the `user` table, for
//! deliveries rendered inside room actors.

use crate::wire::Author;
use dashmap::DashMap;
use projections::Reads;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cached profile is used before it is read again when other processes may write
/// the same log: everyone sees a change within this time, on every process.
const FRESH_SHARED: Duration = Duration::from_secs(1);

/// The same when only this process writes the log: it forgets an entry once the read tables
/// hold its change, so this only bounds how long a missed change could last. Reading each typist's profile again every second was a tenth of
/// what 500 `typing` a second cost the server.
const FRESH_LOCAL: Duration = Duration::from_secs(60);

/// A cache of user profiles in front of the `user` table.
///
/// Deliveries are rendered inside room actors, which cannot wait: a miss is looked up on the
/// spot (a point query; with PostgreSQL the thread steps out of the async runtime while it
/// waits). A profile changes (a rename, a new avatar, an erasure, perhaps on another
/// process), so an entry is trusted for [`FRESH_SHARED`] only: then it is read again in the
/// background while the old one still serves, so that no delivery waits for it (looking it
/// up on the spot every second per author cost the PostgreSQL closed-loop benchmark a fifth
/// of its throughput).
pub struct Profiles {
    cache: Arc<DashMap<String, (Arc<Author>, Instant)>>,
    reads: Reads,
    sqlite: Option<Mutex<rusqlite::Connection>>,
    fresh: Duration,
}

impl Profiles {
    fn fresh(&self, user_id: &str) -> Option<Arc<Author>> {
        self.cache
            .get(user_id)
            .filter(|e| e.1.elapsed() < self.fresh)
            .map(|e| e.0.clone())
    }

    /// A cached profile, fresh or not; a stale one is read again in the background (once:
    /// its time is moved on while the read runs).
    fn cached(&self, user_id: &str) -> Option<Arc<Author>> {
        let mut entry = self.cache.get_mut(user_id)?;
        if entry.1.elapsed() >= self.fresh
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            entry.1 = Instant::now();
            let (cache, reads, id) = (self.cache.clone(), self.reads.clone(), user_id.to_owned());
            runtime.spawn(async move {
                if let Ok(Some(u)) = reads.user_by_id(&id).await {
                    cache.insert(id, (author(u), Instant::now()));
                }
            });
        }
        Some(entry.0.clone())
    }

    /// Forgets what is cached of `user_id`: this process changed it, and the read tables hold
    /// the change.
    pub fn forget(&self, user_id: &str) {
        self.cache.remove(user_id);
    }

    /// A cache over `reads`, for a log other processes may write too (`shared`) or not; with
    /// SQLite, misses use a connection of their own.
    ///
    /// # Errors
    /// When that connection cannot be opened.
    pub fn new(reads: Reads, shared: bool) -> anyhow::Result<Self> {
        let sqlite = match &reads {
            Reads::Sqlite(db) => Some(Mutex::new(db.writer()?)),
            Reads::Postgres(_) => None,
        };
        let fresh = if shared { FRESH_SHARED } else { FRESH_LOCAL };
        Ok(Self {
            cache: Arc::new(DashMap::new()),
            reads,
            sqlite,
            fresh,
        })
    }

    fn found(&self, user_id: &str, row: Option<projections::UserRow>) -> Arc<Author> {
        match row {
            Some(u) => {
                let a = author(u);
                self.cache
                    .insert(user_id.to_owned(), (a.clone(), Instant::now()));
                a
            }
            None => Arc::new(Author {
                id: user_id.to_owned(),
                name: String::new(),
                avatar_image: String::new(),
            }),
        }
    }

    /// The profile of `user_id`, waiting for the database on a miss (async callers).
    pub async fn fetch(&self, user_id: &str) -> Arc<Author> {
        if let Some(a) = self.fresh(user_id) {
            return a;
        }
        let row = self.reads.user_by_id(user_id).await.ok().flatten();
        self.found(user_id, row)
    }

    /// The profile of `user_id` from a context that cannot await (an empty name when the user
    /// is unknown to the read tables).
    pub fn get(&self, user_id: &str) -> Arc<Author> {
        if let Some(a) = self.cached(user_id) {
            return a;
        }
        let row = match (&self.sqlite, &self.reads) {
            (Some(conn), _) => {
                let conn = conn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                projections::sqlite::user_by_id(&conn, user_id)
                    .ok()
                    .flatten()
            }
            (None, reads) => tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(reads.user_by_id(user_id))
            })
            .ok()
            .flatten(),
        };
        self.found(user_id, row)
    }
}

fn author(u: projections::UserRow) -> Arc<Author> {
    Arc::new(Author {
        id: u.id,
        name: u.name,
        avatar_image: u.avatar_image,
    })
}
