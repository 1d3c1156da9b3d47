//! Sealed personal data: what the log holds of a name, an avatar or a message text.
//!
//! Personal data enters the log only sealed with AES-256-GCM under a key of its
//! [`Subject`], kept outside the log in the key store ([`crate::keys`]). Destroying a subject's
//! key turns every copy of what was sealed under it, in the log and in every backup of the log,
//! into noise, while the hash chain (which covers the sealed bytes) still verifies. This is
//! crypto-shredding.
//!
//! Subjects:
//! - a user ([`Subject::User`]): their name and their avatar's path;
//! - the texts one user wrote in one room in one period of [`PERIOD_MS`]
//!   ([`Subject::Text`]): destroyed when the user is erased or when the period passes a
//!   retention limit, whichever comes first;
//! - a room ([`Subject::Room`]): the sealed copy of its join code.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The length of the periods that message texts are sealed by: retention destroys a period's
/// keys once all of it is past the limit, so a text outlives the limit by at most this much.
pub const PERIOD_MS: i64 = 30 * 60 * 1000;

/// The period that a time (milliseconds since the epoch) falls in.
pub fn period_of(time_ms: i64) -> i64 {
    time_ms.div_euclid(PERIOD_MS)
}

/// What a key belongs to, and so what destroying it forgets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A user's name and avatar.
    User(String),
    /// The texts `user` wrote in `room` during `period` ([`period_of`]).
    Text {
        /// The author.
        user: String,
        /// The room.
        room: String,
        /// The period.
        period: i64,
    },
    /// A room's join code.
    Room(String),
}

impl Subject {
    /// The user whose erasure destroys this key, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Subject::User(u) | Subject::Text { user: u, .. } => Some(u),
            Subject::Room(_) => None,
        }
    }

    /// The room whose hold or retention covers this key, if any.
    pub fn room(&self) -> Option<&str> {
        match self {
            Subject::Text { room, .. } | Subject::Room(room) => Some(room),
            Subject::User(_) => None,
        }
    }

    /// The period of a text key.
    pub fn period(&self) -> Option<i64> {
        match self {
            Subject::Text { period, .. } => Some(*period),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    /// The key store's name of the subject, also bound into every seal as associated data,
    /// so that sealed bytes moved to another subject's event do not open.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(u) => write!(f, "user/{u}"),
            Subject::Text { user, room, period } => write!(f, "text/{user}/{room}/{period}"),
            Subject::Room(r) => write!(f, "room/{r}"),
        }
    }
}

/// A subject's key: 256 random bits.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A new random key.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// Seals `clear` for `subject`.
    pub fn seal(&self, subject: &Subject, clear: &str) -> Sealed {
        self.seal_named(&subject.to_string(), clear)
    }

    /// [`Key::seal`] given the subject's name (its `Display`), which is the associated data.
    pub(crate) fn seal_named(&self, subject: &str, clear: &str) -> Sealed {
        let nonce: [u8; 12] = rand::random();
        let bytes = Aes256Gcm::new(&self.0.into())
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: clear.as_bytes(),
                    aad: subject.as_bytes(),
                },
            )
            .expect("AES-256-GCM encrypts any text shorter than 64 GiB");
        Sealed { nonce, bytes }
    }

    /// Opens what [`Key::seal`] sealed for `subject`; `None` when the bytes were not sealed by
    /// this key for this subject, or were changed.
    pub fn open(&self, subject: &Subject, sealed: &Sealed) -> Option<String> {
        self.open_named(&subject.to_string(), sealed)
    }

    /// [`Key::open`] given the subject's name.
    pub(crate) fn open_named(&self, subject: &str, sealed: &Sealed) -> Option<String> {
        let clear = Aes256Gcm::new(&self.0.into())
            .decrypt(
                &Nonce::from(sealed.nonce),
                Payload {
                    msg: &sealed.bytes,
                    aad: subject.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(clear).ok()
    }
}

/// A sealed text as the log stores it: a random nonce and the ciphertext with its tag.
/// Random 96-bit nonces are safe for up to 2^32 seals under one key; a key seals one user's
/// texts in one room for one period, or one user's names and avatars, far fewer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The GCM nonce, random per seal.
    pub nonce: [u8; 12],
    /// Ciphertext followed by the Poly1305 tag.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_their_key_and_subject() {
        let key = Key::random();
        let ann = Subject::User("u1".into());
        let sealed = key.seal(&ann, "Ann Smith");
        assert_eq!(key.open(&ann, &sealed).as_deref(), Some("Ann Smith"));
        assert!(!sealed.bytes.windows(3).any(|w| w == b"Ann"));
        assert_eq!(Key::random().open(&ann, &sealed), None);
        assert_eq!(key.open(&Subject::User("u2".into()), &sealed), None);
        let mut changed = sealed.clone();
        changed.bytes[0] ^= 1;
        assert_eq!(key.open(&ann, &changed), None);
        // Each seal has its own nonce: equal texts do not look equal in the log.
        assert_ne!(key.seal(&ann, "Ann Smith"), sealed);
    }

    #[test]
    fn periods_and_names() {
        assert_eq!(period_of(0), 0);
        assert_eq!(period_of(PERIOD_MS - 1), 0);
        assert_eq!(period_of(PERIOD_MS), 1);
        assert_eq!(period_of(-1), -1);
        let t = Subject::Text {
            user: "u".into(),
            room: "r".into(),
            period: 7,
        };
        assert_eq!(t.to_string(), "text/u/r/7");
        assert_eq!(
            (t.user(), t.room(), t.period()),
            (Some("u"), Some("r"), Some(7))
        );
        assert_eq!(Subject::Room("r".into()).to_string(), "room/r");
    }
}
