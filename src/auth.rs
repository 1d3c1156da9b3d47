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
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sessions database's migrations.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "session",
    sql: include_str!("../migrations/sqlite/session/0001_session.sql"),
}];

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

/// The session store, with a short-lived cache in front of SQLite.
pub struct Sessions {
    conn: Mutex<Connection>,
    ttl: Duration,
    cache: DashMap<[u8; 32], Cached>,
}

/// How long a cached answer is trusted before the database is asked again (a logout served
/// by another process is seen within this time).
const RECHECK: Duration = Duration::from_secs(5);

impl Sessions {
    /// Opens (creating) `sessions.db` at `path`; tokens live for `ttl`.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated.
    pub fn open(path: &Path, ttl: Duration) -> anyhow::Result<Self> {
        let mut conn = Connection::open(path)?;
        conn.execute_batch(
            "pragma journal_mode = wal; pragma synchronous = full; pragma busy_timeout = 5000;",
        )?;
        migrate::apply(&mut conn, MIGRATIONS)?;
        Ok(Self {
            conn: Mutex::new(conn),
            ttl,
            cache: DashMap::new(),
        })
    }

    /// Issues a new token for `user_id`.
    ///
    /// # Errors
    /// When it cannot be stored.
    pub fn issue(&self, user_id: &str) -> anyhow::Result<(String, Session)> {
        let bytes: [u8; 32] = rand::random();
        let token = hex::encode(bytes);
        let hash = token_hash(&token);
        let now = events::now_ms();
        let expires_at = now + self.ttl.as_millis() as i64;
        self.conn.lock().expect("sessions").execute(
            "insert into session (token_hash, user_id, created_at, expires_at) values (?1, ?2, ?3, ?4)",
            params![hash.as_slice(), user_id, now, expires_at],
        )?;
        let session = Session {
            user_id: user_id.to_owned(),
            expires_at,
            token_hash: hash,
        };
        self.cache.insert(
            hash,
            Cached {
                session: Some(session.clone()),
                checked: Instant::now(),
            },
        );
        Ok((token, session))
    }

    /// The live session of `token`, if any.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn check(&self, token: &str) -> anyhow::Result<Option<Session>> {
        let hash = token_hash(token);
        let cached = self.cache.get(&hash).map(|c| c.clone());
        let session = match cached {
            Some(c) if c.checked.elapsed() < RECHECK => c.session,
            _ => {
                let s = self.load(&hash)?;
                if self.cache.len() > 100_000 {
                    self.cache.clear();
                }
                self.cache.insert(
                    hash,
                    Cached {
                        session: s.clone(),
                        checked: Instant::now(),
                    },
                );
                s
            }
        };
        Ok(session.filter(|s| s.expires_at > events::now_ms()))
    }

    fn load(&self, hash: &[u8; 32]) -> anyhow::Result<Option<Session>> {
        let conn = self.conn.lock().expect("sessions");
        Ok(conn
            .query_row(
                "select user_id, expires_at from session where token_hash = ?1 and revoked = 0",
                [hash.as_slice()],
                |r| {
                    Ok(Session {
                        user_id: r.get(0)?,
                        expires_at: r.get(1)?,
                        token_hash: *hash,
                    })
                },
            )
            .optional()?)
    }

    /// Revokes a token.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn revoke(&self, hash: &[u8; 32]) -> anyhow::Result<()> {
        self.conn.lock().expect("sessions").execute(
            "update session set revoked = 1 where token_hash = ?1",
            [hash.as_slice()],
        )?;
        self.cache.insert(
            *hash,
            Cached {
                session: None,
                checked: Instant::now(),
            },
        );
        Ok(())
    }

    /// Whether a session is still valid (not revoked, not expired), using the cache.
    pub fn still_valid(&self, session: &Session) -> bool {
        if session.expires_at <= events::now_ms() {
            return false;
        }
        match self.cache.get(&session.token_hash).map(|c| c.clone()) {
            Some(c) if c.checked.elapsed() < RECHECK => c.session.is_some(),
            _ => match self.load(&session.token_hash) {
                Ok(s) => {
                    let valid = s.is_some();
                    self.cache.insert(
                        session.token_hash,
                        Cached {
                            session: s,
                            checked: Instant::now(),
                        },
                    );
                    valid
                }
                // A database hiccup does not log everyone out.
                Err(_) => true,
            },
        }
    }
}

/// Failed logins per lower-cased name within a window.
pub struct LoginThrottle {
    failures: DashMap<String, (u32, Instant)>,
    max: u32,
    window: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            failures: DashMap::new(),
            max: 5,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl LoginThrottle {
    /// Whether `name` may try to log in now.
    pub fn allowed(&self, name: &str) -> bool {
        match self.failures.get(&name.to_lowercase()) {
            Some(e) => e.0 < self.max || e.1.elapsed() >= self.window,
            None => true,
        }
    }

    /// Records a failure.
    pub fn failed(&self, name: &str) {
        let mut e = self
            .failures
            .entry(name.to_lowercase())
            .or_insert((0, Instant::now()));
        if e.1.elapsed() >= self.window {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    /// Clears the failures of `name` after a success.
    pub fn succeeded(&self, name: &str) {
        self.failures.remove(&name.to_lowercase());
    }
}

/// Shared handle.
pub type SharedSessions = Arc<Sessions>;

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

    #[test]
    fn tokens_survive_reopening_and_revocation_sticks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let (token, _) = {
            let s = Sessions::open(&path, Duration::from_secs(60)).unwrap();
            s.issue("u1").unwrap()
        };
        let s = Sessions::open(&path, Duration::from_secs(60)).unwrap();
        let session = s.check(&token).unwrap().unwrap();
        assert_eq!(session.user_id, "u1");
        assert!(s.check("nope").unwrap().is_none());
        s.revoke(&session.token_hash).unwrap();
        assert!(s.check(&token).unwrap().is_none());
        assert!(!s.still_valid(&session));
        let stored: Vec<u8> = s
            .conn
            .lock()
            .unwrap()
            .query_row("select token_hash from session", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, token.as_bytes(), "only the hash is stored");
    }

    #[test]
    fn throttle_counts_per_name_ignoring_case() {
        let t = LoginThrottle::default();
        for _ in 0..5 {
            assert!(t.allowed("Ann"));
            t.failed("ANN");
        }
        assert!(!t.allowed("ann"));
        assert!(t.allowed("bob"));
        t.succeeded("Ann");
        assert!(t.allowed("ann"));
    }
}
