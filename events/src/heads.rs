//! The heads of every stream as of a checkpoint, in a second Merkle tree (RFC 9162's, as
//! [`crate::merkle`] builds it) whose root a version 2 checkpoint signs: a proof that a
//! stream's last event covered by the checkpoint is the one a bundle says, so that no event of
//! the stream can be cut off a bundle's end unseen.
//!
//! The tree has one leaf per stream that has an event among the checkpoint's, in the byte
//! order of the stream ids (UTF-8), and no other. A leaf's data, hashed as every leaf is
//! (`SHA-256(0x00 || data)`), is exactly these bytes:
//!
//! ```text
//! stream id's length in bytes   4 bytes, unsigned, big-endian
//! stream id                     its UTF-8 bytes
//! version                       8 bytes, unsigned, big-endian: of its last event covered
//! position                      8 bytes, unsigned, big-endian: that event's global position
//! chain hash                    32 bytes: that event's
//! ```
//!
//! The length first makes the encoding one-to-one, and every leaf at least 52 bytes long, so
//! none reads as a leaf of the log's tree (whose data is a 32-byte chain hash). [`Heads`]
//! keeps one entry per stream while the log is read in order; the last event of a stream in
//! log order is its head.

use crate::merkle::{self, Builder, Hash, RangeHasher};
use std::collections::BTreeMap;

/// A stream's last event covered by a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHead {
    /// Its version in the stream.
    pub version: u64,
    /// Its global position.
    pub position: u64,
    /// Its chain hash.
    pub hash: Hash,
}

/// A head's leaf data, as the module header lays it out.
pub fn leaf_data(stream: &str, head: &StreamHead) -> Vec<u8> {
    let id = stream.as_bytes();
    let len = u32::try_from(id.len()).expect("a stream id under 4 GiB");
    let mut data = Vec::with_capacity(4 + id.len() + 8 + 8 + 32);
    data.extend_from_slice(&len.to_be_bytes());
    data.extend_from_slice(id);
    data.extend_from_slice(&head.version.to_be_bytes());
    data.extend_from_slice(&head.position.to_be_bytes());
    data.extend_from_slice(&head.hash);
    data
}

/// A head's leaf hash.
pub fn leaf_hash(stream: &str, head: &StreamHead) -> Hash {
    merkle::leaf_hash(&leaf_data(stream, head))
}

/// The root of a heads tree and how many leaves (streams) it has, as a checkpoint signs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadsRoot {
    /// Streams: the tree's leaves.
    pub streams: u64,
    /// The tree's root.
    pub root: Hash,
}

/// A stream's head with its inclusion proof in a heads tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadProof {
    /// Its leaf: the stream's number in stream-id order, from 0.
    pub leaf: u64,
    /// The head.
    pub head: StreamHead,
    /// The RFC 9162 inclusion proof (audit path), nearest the leaf first.
    pub proof: Vec<Hash>,
}

impl HeadProof {
    /// Whether it proves `stream`'s head in the heads tree of `root`.
    pub fn verifies(&self, stream: &str, root: &HeadsRoot) -> bool {
        merkle::verify_inclusion(
            self.leaf,
            root.streams,
            &leaf_hash(stream, &self.head),
            &self.proof,
            &root.root,
        )
    }
}

/// Every stream's head so far, one entry per stream, gathered from the log in log order.
#[derive(Debug, Clone, Default)]
pub struct Heads(BTreeMap<String, StreamHead>);

impl Heads {
    /// Takes the log's next event: it is its stream's head now.
    pub fn push(&mut self, stream: &str, version: u64, position: u64, hash: &Hash) {
        let head = StreamHead {
            version,
            position,
            hash: *hash,
        };
        match self.0.get_mut(stream) {
            Some(h) => *h = head,
            None => {
                self.0.insert(stream.to_owned(), head);
            }
        }
    }

    /// The streams seen.
    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }

    /// Whether none was seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stream's head, if it was seen.
    pub fn get(&self, stream: &str) -> Option<&StreamHead> {
        self.0.get(stream)
    }

    /// The root of the tree over them.
    pub fn root(&self) -> HeadsRoot {
        let mut tree = Builder::new();
        for (stream, head) in &self.0 {
            tree.push_hash(leaf_hash(stream, head));
        }
        HeadsRoot {
            streams: tree.size(),
            root: tree.root(),
        }
    }

    /// `stream`'s head and its inclusion proof against [`Heads::root`]; none when the stream
    /// was not seen.
    pub fn proof(&self, stream: &str) -> Option<HeadProof> {
        let head = *self.0.get(stream)?;
        let leaf = self.0.keys().take_while(|k| k.as_str() < stream).count() as u64;
        let mut hasher = RangeHasher::new(merkle::inclusion_ranges(leaf, self.len()));
        for (s, h) in &self.0 {
            hasher.push_hash(leaf_hash(s, h));
        }
        let proof = hasher.finish().expect("every leaf went by");
        Some(HeadProof { leaf, head, proof })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads() -> Heads {
        let mut heads = Heads::default();
        let streams = [
            "room-b", "user-a", "room-a", "room-b", "log", "room-a", "room-b",
        ];
        for (i, s) in streams.iter().enumerate() {
            let version = streams[..=i].iter().filter(|x| *x == s).count() as u64;
            heads.push(s, version, i as u64 + 1, &[i as u8; 32]);
        }
        heads
    }

    #[test]
    fn the_leaf_encoding_is_the_one_documented() {
        let head = StreamHead {
            version: 3,
            position: 258,
            hash: [0xab; 32],
        };
        let mut want = vec![0, 0, 0, 6];
        want.extend_from_slice(b"room-x");
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        want.extend_from_slice(&[0xab; 32]);
        assert_eq!(leaf_data("room-x", &head), want);
        assert_eq!(
            leaf_hash("room-x", &head),
            merkle::leaf_hash(&want),
            "hashed as RFC 9162 hashes a leaf"
        );
    }

    #[test]
    fn a_stream_s_head_is_its_last_event_and_the_leaves_go_in_id_order() {
        let heads = heads();
        assert_eq!(heads.len(), 4);
        let b = heads.get("room-b").unwrap();
        assert_eq!((b.version, b.position, b.hash), (3, 7, [6; 32]));
        let mut tree = Builder::new();
        for s in ["log", "room-a", "room-b", "user-a"] {
            tree.push_hash(leaf_hash(s, heads.get(s).unwrap()));
        }
        assert_eq!(
            heads.root(),
            HeadsRoot {
                streams: 4,
                root: tree.root()
            }
        );
        assert_eq!(Heads::default().root().root, merkle::empty_root());
    }

    #[test]
    fn each_head_proves_itself_and_nothing_else() {
        let heads = heads();
        let root = heads.root();
        for (i, s) in ["log", "room-a", "room-b", "user-a"].iter().enumerate() {
            let p = heads.proof(s).unwrap();
            assert_eq!(p.leaf, i as u64);
            assert!(p.verifies(s, &root), "{s}");
            let mut older = p.clone();
            older.head.version -= 1;
            assert!(!older.verifies(s, &root), "{s}: an older version");
            let mut moved = p.clone();
            moved.head.position += 1;
            assert!(!moved.verifies(s, &root), "{s}: another position");
            let mut rehashed = p.clone();
            rehashed.head.hash[0] ^= 1;
            assert!(!rehashed.verifies(s, &root), "{s}: another hash");
            assert!(!p.verifies("room-c", &root), "{s}: another stream");
        }
        let a = heads.proof("room-a").unwrap();
        let b = heads.proof("room-b").unwrap();
        let swapped = HeadProof {
            head: b.head,
            ..a.clone()
        };
        assert!(!swapped.verifies("room-a", &root), "another stream's head");
        assert!(!b.verifies("room-a", &root), "another stream's proof");
        assert!(heads.proof("room-c").is_none());
    }
}
