//! Signed checkpoints: the log's Merkle tree head ([`crate::merkle`]) over its first `size`
//! events, signed with the log's Ed25519 key (RFC 8032), as Certificate Transparency's signed
//! tree heads are, and, from version 2, the root of the tree of every stream's head as of
//! those events ([`crate::heads`]).
//!
//! The signature covers exactly the bytes of [`Checkpoint::signed_bytes`], ASCII text. Version
//! 2, which every checkpoint is signed in now:
//!
//! ```text
//! chatroom checkpoint v2\n
//! size <decimal>\n
//! position <decimal>\n
//! root <64 lower-case hex digits>\n
//! streams <decimal>\n
//! heads <64 lower-case hex digits>\n
//! time <decimal milliseconds since the epoch>\n
//! ```
//!
//! Version 1, still verified (it has no heads, and consistency needs none), is the same text
//! without the `streams` and `heads` lines and with `v1` in the first.
//!
//! `position` is the global position of the last event covered (0 for an empty log), so a
//! verifier can tell missing events from renumbered ones. `streams` is how many streams have an
//! event among the `size` (the heads tree's leaves), `heads` that tree's root. The key id is the
//! first 8 bytes of SHA-256 of the 32-byte public key, in hex. The frontier (the roots of the
//! tree's complete subtrees) is carried unsigned: it is checked against the signed root, and
//! lets a verifier tell which part of the log no longer matches.

use crate::heads::{HeadProof, Heads, HeadsRoot};
use crate::merkle::{self, Builder, Hash};
use crate::store::{Error, Store};
pub use ed25519_dalek::VerifyingKey;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a checkpoint file declares itself to be: version 2, with the heads' root.
pub const FORMAT: &str = "chatroom-checkpoint/2";

/// What a version 1 checkpoint file declares itself to be: no heads.
pub const FORMAT_V1: &str = "chatroom-checkpoint/1";

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

    /// Signs a tree head taken at `time`: in version 2 when it has the heads' root, else in
    /// version 1.
    pub fn sign(&self, head: &Head, time: i64) -> Checkpoint {
        let mut cp = Checkpoint {
            format: if head.heads.is_some() {
                FORMAT
            } else {
                FORMAT_V1
            }
            .to_owned(),
            size: head.size,
            position: head.position,
            root: hex::encode(head.root),
            streams: head.heads.map(|h| h.streams),
            heads: head.heads.map(|h| hex::encode(h.root)),
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
    /// The root of the tree of every stream's head (none: a version 1 checkpoint's).
    pub heads: Option<HeadsRoot>,
}

/// The tree of a log, and its streams' heads, built as its events are read.
#[derive(Debug, Clone, Default)]
pub struct LogTree {
    tree: Builder,
    position: u64,
    heads: Heads,
}

impl LogTree {
    /// Adds the log's next event.
    pub fn push(&mut self, stream: &str, version: u64, chain_hash: &Hash, position: u64) {
        self.tree.push(chain_hash);
        self.position = position;
        self.heads.push(stream, version, position, chain_hash);
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
                self.push(&e.stream_id, e.version, &e.hash, e.position);
            }
        }
    }

    /// Its head now, with the heads' root.
    pub fn head(&self) -> Head {
        Head {
            size: self.tree.size(),
            position: self.position,
            root: self.tree.root(),
            frontier: self.tree.frontier().to_vec(),
            heads: Some(self.heads.root()),
        }
    }

    /// `stream`'s head and its proof against the heads' root of [`LogTree::head`]; none when
    /// the stream has no event in it.
    pub fn head_proof(&self, stream: &str) -> Option<HeadProof> {
        self.heads.proof(stream)
    }
}

/// A signed checkpoint, as its JSON file holds it (hashes and signature in hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`FORMAT`], or [`FORMAT_V1`] for a checkpoint signed before heads were.
    pub format: String,
    /// Events covered: the first `size` of the log.
    pub size: u64,
    /// Global position of the last one.
    pub position: u64,
    /// The Merkle tree root, hex.
    pub root: String,
    /// Streams with an event among them: the heads tree's leaves (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<u64>,
    /// The heads tree's root, hex (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<String>,
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
    /// Its version by its format: 2, 1, or none when it is not a checkpoint's.
    pub fn version(&self) -> Option<u8> {
        match self.format.as_str() {
            FORMAT => Some(2),
            FORMAT_V1 => Some(1),
            _ => None,
        }
    }

    /// Exactly what the signature covers.
    pub fn signed_bytes(&self) -> String {
        match (self.version(), self.streams, &self.heads) {
            (Some(2), Some(streams), Some(heads)) => format!(
                "chatroom checkpoint v2\nsize {}\nposition {}\nroot {}\nstreams {streams}\n\
                 heads {heads}\ntime {}\n",
                self.size, self.position, self.root, self.time
            ),
            _ => format!(
                "chatroom checkpoint v1\nsize {}\nposition {}\nroot {}\ntime {}\n",
                self.size, self.position, self.root, self.time
            ),
        }
    }

    /// Checks the format, the key id, the signature and the frontier, and returns the head.
    ///
    /// # Errors
    /// What does not hold, in words.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Head, String> {
        match (self.version(), self.streams.is_some(), self.heads.is_some()) {
            (None, ..) => return Err(format!("not a checkpoint (format {:?})", self.format)),
            (Some(2), true, true) | (Some(1), false, false) => {}
            (Some(2), ..) => return Err("a version 2 checkpoint without its heads".to_owned()),
            (Some(_), ..) => return Err("a version 1 checkpoint with heads".to_owned()),
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
        let frontier = parse_hashes(&self.frontier)
            .ok_or("its frontier holds a hash that is not 32 bytes of hex")?;
        if merkle::root_from_frontier(self.size, &frontier) != Some(root) {
            return Err("its frontier does not make its root".to_owned());
        }
        let heads = match (self.streams, &self.heads) {
            (Some(streams), Some(heads)) => Some(HeadsRoot {
                streams,
                root: parse_hash(heads).ok_or("its heads root is not 32 bytes of hex")?,
            }),
            _ => None,
        };
        Ok(Head {
            size: self.size,
            position: self.position,
            root,
            frontier,
            heads,
        })
    }
}

/// A hash from 64 hex digits.
pub fn parse_hash(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok()
}

/// Hashes as 64 hex digits each; `None` when any is not.
pub fn parse_hashes(texts: &[String]) -> Option<Vec<Hash>> {
    texts.iter().map(|h| parse_hash(h)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five events of two streams, at even positions.
    fn tree() -> LogTree {
        let mut tree = LogTree::default();
        for i in 1..=5u8 {
            let (stream, version) = if i % 2 == 1 {
                ("room-a", u64::from(i).div_ceil(2))
            } else {
                ("user-b", u64::from(i) / 2)
            };
            tree.push(stream, version, &[i; 32], u64::from(i) * 2);
        }
        tree
    }

    fn signed() -> (LogKey, Checkpoint) {
        let key = LogKey::from_seed(&[7; 32]);
        let cp = key.sign(&tree().head(), 1_700_000_000_000);
        (key, cp)
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_and_states_what_it_signed() {
        let (key, cp) = signed();
        let head = cp.verify(&key.public()).unwrap();
        assert_eq!((head.size, head.position), (5, 10));
        assert_eq!(cp.format, FORMAT);
        assert_eq!(cp.version(), Some(2));
        let heads = head.heads.unwrap();
        assert_eq!(heads.streams, 2);
        assert_eq!(
            cp.signed_bytes(),
            format!(
                "chatroom checkpoint v2\nsize 5\nposition 10\nroot {}\nstreams 2\nheads {}\n\
                 time 1700000000000\n",
                cp.root,
                hex::encode(heads.root)
            )
        );
        let public = hex::encode(key.public().as_bytes());
        assert_eq!(parse_public(&public).unwrap(), key.public());
    }

    #[test]
    fn its_heads_are_each_stream_s_last_event_with_a_proof() {
        let tree = tree();
        let root = tree.head().heads.unwrap();
        let a = tree.head_proof("room-a").unwrap();
        assert_eq!((a.leaf, a.head.version, a.head.position), (0, 3, 10));
        assert_eq!(a.head.hash, [5; 32]);
        assert!(a.verifies("room-a", &root));
        let b = tree.head_proof("user-b").unwrap();
        assert_eq!((b.leaf, b.head.version, b.head.position), (1, 2, 8));
        assert!(b.verifies("user-b", &root));
        assert!(!b.verifies("room-a", &root));
        assert!(tree.head_proof("room-c").is_none());
    }

    #[test]
    fn a_version_1_checkpoint_still_verifies_without_heads() {
        let key = LogKey::from_seed(&[7; 32]);
        let mut head = tree().head();
        head.heads = None;
        let cp = key.sign(&head, 1_700_000_000_000);
        let text = serde_json::to_string(&cp).unwrap();
        assert!(
            !text.contains("heads") && !text.contains("streams"),
            "{text}"
        );
        // A file as version 1 wrote it: these fields, in this order, and nothing more.
        let v1 = format!(
            "{{\"format\":\"chatroom-checkpoint/1\",\"size\":5,\"position\":10,\"root\":\"{}\",\
             \"time\":1700000000000,\"key_id\":\"{}\",\"signature\":\"{}\",\"frontier\":{}}}",
            cp.root,
            cp.key_id,
            cp.signature,
            serde_json::to_string(&cp.frontier).unwrap()
        );
        assert_eq!(text, v1);
        let read: Checkpoint = serde_json::from_str(&v1).unwrap();
        assert_eq!(read.version(), Some(1));
        let verified = read.verify(&key.public()).unwrap();
        assert_eq!((verified.size, verified.heads), (5, None));
        assert_eq!(
            read.signed_bytes(),
            format!(
                "chatroom checkpoint v1\nsize 5\nposition 10\nroot {}\ntime 1700000000000\n",
                cp.root
            )
        );
        let mut with_heads = read.clone();
        with_heads.format = FORMAT.to_owned();
        with_heads.streams = Some(2);
        with_heads.heads = Some(hex::encode([0u8; 32]));
        assert!(
            with_heads.verify(&key.public()).is_err(),
            "heads added to it"
        );
    }

    #[test]
    fn any_change_or_another_key_fails() {
        let (key, cp) = signed();
        let changes: [fn(&mut Checkpoint); 9] = [
            |c| c.size -= 1,
            |c| c.position += 1,
            |c| c.time += 1,
            |c| c.root = hex::encode([0u8; 32]),
            |c| c.frontier[0] = hex::encode([0u8; 32]),
            |c| c.heads = Some(hex::encode([0u8; 32])),
            |c| c.streams = Some(3),
            |c| c.heads = None,
            |c| {
                // Made to look like version 1: the signature covers the version too.
                c.format = FORMAT_V1.to_owned();
                c.heads = None;
                c.streams = None;
            },
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
