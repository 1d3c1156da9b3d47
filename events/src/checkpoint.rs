//! Signed checkpoints: the log's Merkle tree head ([`crate::merkle`]) over its first `size`
//! events, signed with the log's Ed25519 key (RFC 8032), as Certificate Transparency's signed
//! tree heads are.
//!
//! The signature covers exactly the bytes of [`Checkpoint::signed_bytes`], ASCII text:
//!
//! ```text
//! chatroom checkpoint v1\n
//! size <decimal>\n
//! position <decimal>\n
//! root <64 lower-case hex digits>\n
//! time <decimal milliseconds since the epoch>\n
//! ```
//!
//! `position` is the global position of the last event covered (0 for an empty log), so a
//! verifier can tell missing events from renumbered ones. The key id is the first 8 bytes of
//! SHA-256 of the 32-byte public key, in hex. The frontier (the roots of the tree's complete
//! subtrees) is carried unsigned: it is checked against the signed root, and lets a verifier
//! tell which part of the log no longer matches.

use crate::merkle::{self, Builder, Hash};
use crate::store::{Error, Store};
pub use ed25519_dalek::VerifyingKey;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a checkpoint file declares itself to be.
pub const FORMAT: &str = "chatroom-checkpoint/1";

/// The log's signing key.
pub struct LogKey(SigningKey);

impl LogKey {
    /// The key of a 32-byte seed (RFC 8032's private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self::from_seed(&rand::random())
    }

    /// Its seed, to keep.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The verification key.
    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// Signs a tree head taken at `time`.
    pub fn sign(&self, head: &Head, time: i64) -> Checkpoint {
        let mut cp = Checkpoint {
            format: FORMAT.to_owned(),
            size: head.size,
            position: head.position,
            root: hex::encode(head.root),
            time,
            key_id: key_id(&self.public()),
            signature: String::new(),
            frontier: head.frontier.iter().map(hex::encode).collect(),
        };
        let signature = self.0.sign(cp.signed_bytes().as_bytes());
        cp.signature = hex::encode(signature.to_bytes());
        cp
    }
}

/// A key's id: the first 8 bytes of SHA-256 of its 32 bytes, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// A verification key from its 64 hex digits.
///
/// # Errors
/// When it is not 32 bytes of hex or not a valid Ed25519 point.
pub fn parse_public(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("a public key is 64 hex digits (32 bytes)")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// The head of the tree over a log's first `size` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Events covered.
    pub size: u64,
    /// Global position of the last one (0: none).
    pub position: u64,
    /// The tree's root.
    pub root: Hash,
    /// The roots of its complete subtrees, largest first.
    pub frontier: Vec<Hash>,
}

/// The tree of a log, built as its events are read.
#[derive(Debug, Clone, Default)]
pub struct LogTree {
    tree: Builder,
    position: u64,
}

impl LogTree {
    /// Adds the log's next event by its chain hash and position.
    pub fn push(&mut self, chain_hash: &Hash, position: u64) {
        self.tree.push(chain_hash);
        self.position = position;
    }

    /// Reads the log after what it holds, in pages, to the end.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub async fn extend(&mut self, store: &dyn Store) -> Result<(), Error> {
        loop {
            let page = store.read_all(self.position, 5000).await?;
            if page.is_empty() {
                return Ok(());
            }
            for e in &page {
                self.push(&e.hash, e.position);
            }
        }
    }

    /// Its head now.
    pub fn head(&self) -> Head {
        Head {
            size: self.tree.size(),
            position: self.position,
            root: self.tree.root(),
            frontier: self.tree.frontier().to_vec(),
        }
    }
}

/// A signed checkpoint, as its JSON file holds it (hashes and signature in hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Always [`FORMAT`].
    pub format: String,
    /// Events covered: the first `size` of the log.
    pub size: u64,
    /// Global position of the last one.
    pub position: u64,
    /// The Merkle tree root, hex.
    pub root: String,
    /// When it was signed, milliseconds since the epoch.
    pub time: i64,
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// The Ed25519 signature of [`Checkpoint::signed_bytes`], hex.
    pub signature: String,
    /// The roots of the tree's complete subtrees, largest first, hex; not signed but checked
    /// against `root`.
    pub frontier: Vec<String>,
}

impl Checkpoint {
    /// Exactly what the signature covers.
    pub fn signed_bytes(&self) -> String {
        format!(
            "chatroom checkpoint v1\nsize {}\nposition {}\nroot {}\ntime {}\n",
            self.size, self.position, self.root, self.time
        )
    }

    /// Checks the format, the key id, the signature and the frontier, and returns the head.
    ///
    /// # Errors
    /// What does not hold, in words.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Head, String> {
        if self.format != FORMAT {
            return Err(format!("not a checkpoint (format {:?})", self.format));
        }
        if self.key_id != key_id(key) {
            return Err(format!(
                "signed by key {}, not by the key given ({})",
                self.key_id,
                key_id(key)
            ));
        }
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or("its signature is not 64 bytes of hex")?;
        key.verify(
            self.signed_bytes().as_bytes(),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| "its signature does not verify: the checkpoint was altered or forged")?;
        let root = parse_hash(&self.root).ok_or("its root is not 32 bytes of hex")?;
        let frontier = self
            .frontier
            .iter()
            .map(|h| parse_hash(h))
            .collect::<Option<Vec<_>>>()
            .ok_or("its frontier holds a hash that is not 32 bytes of hex")?;
        if merkle::root_from_frontier(self.size, &frontier) != Some(root) {
            return Err("its frontier does not make its root".to_owned());
        }
        Ok(Head {
            size: self.size,
            position: self.position,
            root,
            frontier,
        })
    }
}

/// A hash from 64 hex digits.
pub fn parse_hash(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed() -> (LogKey, Checkpoint) {
        let key = LogKey::from_seed(&[7; 32]);
        let mut tree = LogTree::default();
        for i in 1..=5u8 {
            tree.push(&[i; 32], u64::from(i) * 2);
        }
        let cp = key.sign(&tree.head(), 1_700_000_000_000);
        (key, cp)
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_and_states_what_it_signed() {
        let (key, cp) = signed();
        let head = cp.verify(&key.public()).unwrap();
        assert_eq!((head.size, head.position), (5, 10));
        assert_eq!(
            cp.signed_bytes(),
            format!(
                "chatroom checkpoint v1\nsize 5\nposition 10\nroot {}\ntime 1700000000000\n",
                cp.root
            )
        );
        let public = hex::encode(key.public().as_bytes());
        assert_eq!(parse_public(&public).unwrap(), key.public());
    }

    #[test]
    fn any_change_or_another_key_fails() {
        let (key, cp) = signed();
        let changes: [fn(&mut Checkpoint); 5] = [
            |c| c.size -= 1,
            |c| c.position += 1,
            |c| c.time += 1,
            |c| c.root = hex::encode([0u8; 32]),
            |c| c.frontier[0] = hex::encode([0u8; 32]),
        ];
        for change in changes {
            let mut bad = cp.clone();
            change(&mut bad);
            assert!(bad.verify(&key.public()).is_err(), "{bad:?}");
        }
        let other = LogKey::from_seed(&[8; 32]);
        assert!(cp.verify(&other.public()).is_err());
        let mut forged = other.sign(&cp.verify(&key.public()).unwrap(), cp.time);
        forged.key_id = cp.key_id.clone();
        assert!(forged.verify(&key.public()).is_err());
    }
}
