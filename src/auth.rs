//! Passwords, tokens and sessions.
//!
//! - Passwords are hashed with argon2id (a fresh random salt each) on the blocking pool.
//! - A token is 32 random bytes in hex; only its SHA-256 is stored (`sessions.db`), with its
//!   user, expiry and a revoked flag, so tokens survive restarts and a stolen database does
//!   not yield usable tokens.
//! - Failed logins are throttled per lower-cased user name, never per address.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use dashmap::DashMap;
use events::migrate::{self, Migration};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The sessions database's migrations.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "session",
        sql: include_str!("../migrations/sqlite/session/0001_session.sql"),
    },
    Migration {
        version: 2,
        name: "credential",
        sql: include_str!("../migrations/sqlite/session/0002_credential.sql"),
    },
];

/// Hashes a password with argon2id and a random salt (slow on purpose: call off the runtime).
pub fn hash_password(password: &str) -> String {
    let salt: [u8; 16] = rand::random();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .expect("argon2 with default parameters and a 16-byte salt")
}

/// Whether `password` matches the stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A hash to verify against when the user does not exist, so both cases cost the same.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password, never matches"))
}

/// SHA-256 of a token's text.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The PostgreSQL migration of the sessions table.
pub const PG_MIGRATION: Migration = Migration {
    version: 3,
    name: "session",
    sql: include_str!("../migrations/postgres/0003_session.sql"),
};

/// A valid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user it acts as.
    pub user_id: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
    /// Hash of its token.
    pub token_hash: [u8; 32],
}

#[derive(Clone)]
struct Cached {
    session: Option<Session>,
    checked: Instant,
}

pub(crate) enum Db {
    Sqlite(Mutex<Connection>),
    Postgres(deadpool_postgres::Pool),
}

/// The session store, with a short-lived cache in front of the database.
pub struct Sessions {
    pub(crate) db: Db,
    ttl: Duration,
    cache: DashMap<[u8; 32], Cached>,
}

/// How long a cached answer is trusted before the database is asked again (a logout served
/// by another process is seen within this time).
const RECHECK: Duration = Duration::from_secs(2);

impl Sessions {
    /// Opens (creating) `sessions.db` at `path`; tokens live for `ttl`.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated.
    pub fn open(path: &Path, ttl: Duration) -> anyhow::Result<Self> {
        let mut conn = Connection::open(path)?;
        events::stable_plans(&conn)?;
        conn.execute_batch(
            "pragma journal_mode = wal; pragma synchronous = full; pragma busy_timeout = 5000;",
        )?;
        migrate::apply(&mut conn, MIGRATIONS)?;
        Ok(Self::with(Db::Sqlite(Mutex::new(conn)), ttl))
    }

    /// Sessions in the PostgreSQL database (already migrated).
    pub fn postgres(pool: deadpool_postgres::Pool, ttl: Duration) -> Self {
        Self::with(Db::Postgres(pool), ttl)
    }

    fn with(db: Db, ttl: Duration) -> Self {
        Self {
            db,
            ttl,
            cache: DashMap::new(),
        }
    }

    /// Issues a new token for `user_id`.
    ///
    /// # Errors
    /// When it cannot be stored.
    pub async fn issue(&self, user_id: &str) -> anyhow::Result<(String, Session)> {
        let bytes: [u8; 32] = rand::random();
        let token = hex::encode(bytes);
        let hash = token_hash(&token);
        let now = events::now_ms();
        let expires_at = now + self.ttl.as_millis() as i64;
        match &self.db {
            Db::Sqlite(conn) => {
                conn.lock().expect("sessions").execute(
                    "insert into session (token_hash, user_id, created_at, expires_at) values (?1, ?2, ?3, ?4)",
                    params![hash.as_slice(), user_id, now, expires_at],
                )?;
            }
            Db::Postgres(pool) => {
                pool.get()
                    .await?
                    .execute(
                        "insert into session (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)",
                        &[&hash.as_slice(), &user_id, &now, &expires_at],
                    )
                    .await?;
            }
        }
        let session = Session {
            user_id: user_id.to_owned(),
            expires_at,
            token_hash: hash,
        };
        self.remember(hash, Some(session.clone()));
        Ok((token, session))
    }

    pub(crate) fn remember(&self, hash: [u8; 32], session: Option<Session>) {
        if self.cache.len() > 100_000 {
            self.cache.clear();
        }
        self.cache.insert(
            hash,
            Cached {
                session,
                checked: Instant::now(),
            },
        );
    }

    fn cached(&self, hash: &[u8; 32]) -> Option<Option<Session>> {
        self.cache
            .get(hash)
            .filter(|c| c.checked.elapsed() < RECHECK)
            .map(|c| c.session.clone())
    }

    /// The live session of `token`, if any.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn check(&self, token: &str) -> anyhow::Result<Option<Session>> {
        let hash = token_hash(token);
        let session = match self.cached(&hash) {
            Some(s) => s,
            None => {
                let s = self.load(&hash).await?;
                self.remember(hash, s.clone());
                s
            }
        };
        Ok(session.filter(|s| s.expires_at > events::now_ms()))
    }

    async fn load(&self, hash: &[u8; 32]) -> anyhow::Result<Option<Session>> {
        Ok(self
            .load_many(std::slice::from_ref(hash))
            .await?
            .remove(hash))
    }

    /// The live (not revoked) sessions among `hashes`, in one query on PostgreSQL and one
    /// lock of the connection on SQLite.
    async fn load_many(&self, hashes: &[[u8; 32]]) -> anyhow::Result<HashMap<[u8; 32], Session>> {
        let mut found = HashMap::new();
        match &self.db {
            Db::Sqlite(conn) => {
                let conn = conn.lock().expect("sessions");
                let mut one = conn.prepare_cached(
                    "select user_id, expires_at from session where token_hash = ?1 and revoked = 0",
                )?;
                for hash in hashes {
                    let session = one
                        .query_row([hash.as_slice()], |r| {
                            Ok(Session {
                                user_id: r.get(0)?,
                                expires_at: r.get(1)?,
                                token_hash: *hash,
                            })
                        })
                        .optional()?;
                    if let Some(session) = session {
                        found.insert(*hash, session);
                    }
                }
            }
            Db::Postgres(pool) => {
                let client = pool.get().await?;
                let any = client
                    .prepare_cached(
                        "select token_hash, user_id, expires_at from session
                         where token_hash = any($1) and not revoked",
                    )
                    .await?;
                let list: Vec<&[u8]> = hashes.iter().map(|h| h.as_slice()).collect();
                for r in client.query(&any, &[&list]).await? {
                    let stored: Vec<u8> = r.get(0);
                    if let Ok(hash) = <[u8; 32]>::try_from(stored.as_slice()) {
                        found.insert(
                            hash,
                            Session {
                                user_id: r.get(1),
                                expires_at: r.get(2),
                                token_hash: hash,
                            },
                        );
                    }
                }
            }
        }
        Ok(found)
    }

    /// Revokes a token.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn revoke(&self, hash: &[u8; 32]) -> anyhow::Result<()> {
        match &self.db {
            Db::Sqlite(conn) => {
                conn.lock().expect("sessions").execute(
                    "update session set revoked = 1 where token_hash = ?1",
                    [hash.as_slice()],
                )?;
            }
            Db::Postgres(pool) => {
                pool.get()
                    .await?
                    .execute(
                        "update session set revoked = true where token_hash = $1",
                        &[&hash.as_slice()],
                    )
                    .await?;
            }
        }
        self.remember(*hash, None);
        Ok(())
    }

    /// Whether a session is still valid (not revoked, not expired). A database that cannot be
    /// reached does not log everyone out.
    pub async fn still_valid(&self, session: &Session) -> bool {
        self.still_valid_all(std::slice::from_ref(session)).await[0]
    }

    /// [`still_valid`](Self::still_valid) for many sessions at once (the sweep over every open
    /// socket): the sessions whose cached answer is older than the recheck interval are read
    /// in queries of up to 1,000, not one query per socket.
    pub async fn still_valid_all(&self, sessions: &[Session]) -> Vec<bool> {
        let now = events::now_ms();
        let mut stale: Vec<[u8; 32]> = sessions
            .iter()
            .filter(|s| s.expires_at > now && self.cached(&s.token_hash).is_none())
            .map(|s| s.token_hash)
            .collect();
        stale.sort_unstable();
        stale.dedup();
        for chunk in stale.chunks(1000) {
            if let Ok(mut found) = self.load_many(chunk).await {
                for hash in chunk {
                    self.remember(*hash, found.remove(hash));
                }
            }
        }
        sessions
            .iter()
            .map(|s| {
                s.expires_at > now
                    && self
                        .cached(&s.token_hash)
                        .is_none_or(|cached| cached.is_some())
            })
            .collect()
    }
}

/// Failed logins per lower-cased name within a window.
///
/// A check takes a slot before the (slow) password verification and gives it back after, so
/// many attempts sent at once cannot all be verified before the first failures are counted:
/// failures plus attempts under way never exceed the limit.
pub struct LoginThrottle {
    names: DashMap<String, Attempts>,
    max: u32,
    window: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Attempts {
    failures: u32,
    in_flight: u32,
    since: Instant,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            names: DashMap::new(),
            max: 5,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// A login attempt that holds a slot; say how it ended with [`Attempt::finish`]. Dropped
/// unfinished (the request was abandoned), it gives its slot back without counting.
#[must_use]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    key: String,
    done: bool,
}

impl Attempt<'_> {
    /// Ends the attempt: a success clears the name's failures, a failure counts.
    pub fn finish(mut self, success: bool) {
        self.done = true;
        self.throttle.end(&self.key, Some(success));
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.throttle.end(&self.key, None);
        }
    }
}

impl LoginThrottle {
    /// Takes a slot for an attempt on `name`, or `None` when the name is locked.
    pub fn begin(&self, name: &str) -> Option<Attempt<'_>> {
        let key = name.to_lowercase();
        let mut a = self.names.entry(key.clone()).or_insert(Attempts {
            failures: 0,
            in_flight: 0,
            since: Instant::now(),
        });
        if a.since.elapsed() >= self.window {
            a.failures = 0;
            a.since = Instant::now();
        }
        if a.failures + a.in_flight >= self.max {
            return None;
        }
        a.in_flight += 1;
        Some(Attempt {
            throttle: self,
            key,
            done: false,
        })
    }

    fn end(&self, key: &str, success: Option<bool>) {
        if let Some(mut a) = self.names.get_mut(key) {
            a.in_flight = a.in_flight.saturating_sub(1);
            match success {
                Some(true) => a.failures = 0,
                Some(false) => {
                    if a.failures == 0 {
                        a.since = Instant::now();
                    }
                    a.failures += 1;
                }
                None => {}
            }
        }
        self.names
            .remove_if(key, |_, a| a.in_flight == 0 && a.failures == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_hashes_are_salted() {
        let a = hash_password("correct horse");
        let b = hash_password("correct horse");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong horse", &a));
    }

    #[tokio::test]
    async fn tokens_survive_reopening_and_revocation_sticks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let (token, _) = {
            let s = Sessions::open(&path, Duration::from_secs(60)).unwrap();
            s.issue("u1").await.unwrap()
        };
        let s = Sessions::open(&path, Duration::from_secs(60)).unwrap();
        let session = s.check(&token).await.unwrap().unwrap();
        assert_eq!(session.user_id, "u1");
        assert!(s.check("nope").await.unwrap().is_none());
        s.revoke(&session.token_hash).await.unwrap();
        assert!(s.check(&token).await.unwrap().is_none());
        assert!(!s.still_valid(&session).await);
        let stored: Vec<u8> = Connection::open(&path)
            .unwrap()
            .query_row("select token_hash from session", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, token.as_bytes(), "only the hash is stored");
    }

    /// Two processes on one session database: B logs out one of A's tokens. A's sweep of its
    /// open sockets sees it once A's cached answer is older than RECHECK.
    async fn sweep_sees_revoke_and_expiry(a: Sessions, b: Sessions) {
        let mut open = Vec::new();
        for user in ["u1", "u2", "u3"] {
            open.push(a.issue(user).await.unwrap().1);
        }
        let mut expired = open[0].clone();
        expired.expires_at = events::now_ms() - 1;
        open.push(expired);
        open.push(open[1].clone()); // a second socket on u2's token
        b.revoke(&open[1].token_hash).await.unwrap();
        assert_eq!(
            a.still_valid_all(&open).await,
            [true, true, true, false, true],
            "within RECHECK the cached answers stand"
        );
        tokio::time::sleep(RECHECK + Duration::from_millis(100)).await;
        assert_eq!(
            a.still_valid_all(&open).await,
            [true, false, true, false, false]
        );
        assert!(a.still_valid(&open[0]).await);
        assert!(!a.still_valid(&open[1]).await);
    }

    #[tokio::test]
    async fn the_sweep_sees_another_process_revoke_and_expiry_in_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let ttl = Duration::from_secs(60);
        sweep_sees_revoke_and_expiry(
            Sessions::open(&path, ttl).unwrap(),
            Sessions::open(&path, ttl).unwrap(),
        )
        .await;
    }

    #[cfg_attr(
        no_test_postgres,
        ignore = "needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL"
    )]
    #[tokio::test]
    async fn the_sweep_sees_another_process_revoke_on_postgres() {
        let admin = std::env::var("CHATROOM_TEST_DATABASE_URL")
            .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL");
        let url = events::testing::scratch_database(&admin, &[PG_MIGRATION]).await;
        let ttl = Duration::from_secs(60);
        let open = || Sessions::postgres(events::postgres::pool(&url, 2).unwrap(), ttl);
        sweep_sees_revoke_and_expiry(open(), open()).await;
    }

    #[test]
    fn throttle_counts_per_name_ignoring_case_and_attempts_under_way() {
        let t = LoginThrottle::default();
        for _ in 0..5 {
            t.begin("Ann").expect("allowed").finish(false);
        }
        assert!(t.begin("ann").is_none());
        t.begin("bob")
            .expect("other names are not affected")
            .finish(true);
        // Five attempts at once fill the slots before any has failed.
        let t = LoginThrottle::default();
        let slots: Vec<_> = (0..5).map(|_| t.begin("eve").expect("slot")).collect();
        assert!(t.begin("EVE").is_none());
        let mut slots = slots.into_iter();
        slots.next().unwrap().finish(true);
        assert!(t.begin("eve").is_some(), "a success frees the name");
        drop(slots);
        let t2 = LoginThrottle::default();
        for _ in 0..10 {
            drop(
                t2.begin("abandoned")
                    .expect("abandoned attempts give their slot back"),
            );
        }
    }
}
