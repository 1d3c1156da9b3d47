//! The Merkle tree of RFC 9162 section 2.1 (Certificate Transparency's, unchanged from RFC
//! 6962) over a list of leaves: its root, inclusion and consistency proofs and their
//! verification, as that section specifies them.
//!
//! The log's leaves are its events in log order, each leaf's data the event's chain hash.
//! [`Builder`] takes leaves one at a time and keeps only the roots of its complete subtrees
//! (at most 64), so the root of a million events costs a million leaf hashes and no more
//! memory than a page of the log. A proof is a list of subtree roots over ranges of leaves:
//! [`inclusion_ranges`] and [`consistency_ranges`] name the ranges, and [`RangeHasher`] fills
//! them in from one pass over the leaves, read from the log in pages.

use sha2::{Digest, Sha256};
use std::ops::Range;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A leaf's hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// An interior node's hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (`n` > 1): where a tree of `n` leaves splits.
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// Builds a tree's root from its leaves, in order, keeping only complete subtrees' roots.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    /// Roots of the complete subtrees, largest (leftmost) first; their sizes are the set bits
    /// of `size`, highest first.
    stack: Vec<Hash>,
    size: u64,
}

impl Builder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a leaf of `data`.
    pub fn push(&mut self, data: &[u8]) {
        self.push_hash(leaf_hash(data));
    }

    /// Adds a leaf by its leaf hash.
    pub fn push_hash(&mut self, leaf: Hash) {
        let mut node = leaf;
        // Each trailing one bit of the size is a complete subtree the new leaf completes.
        let mut merges = self.size.trailing_ones();
        while merges > 0 {
            let left = self.stack.pop().expect("a subtree per set bit");
            node = node_hash(&left, &node);
            merges -= 1;
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// How many leaves it holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of its complete subtrees, leftmost (largest) first.
    pub fn frontier(&self) -> &[Hash] {
        &self.stack
    }

    /// The tree's root.
    pub fn root(&self) -> Hash {
        fold_frontier(&self.stack).unwrap_or_else(empty_root)
    }
}

/// The root of a tree from its frontier (the roots of its complete subtrees, largest first):
/// RFC 9162's split puts every smaller subtree to the right, so they fold from the right.
fn fold_frontier(frontier: &[Hash]) -> Option<Hash> {
    let mut iter = frontier.iter().rev();
    let mut acc = *iter.next()?;
    for left in iter {
        acc = node_hash(left, &acc);
    }
    Some(acc)
}

/// The root of a tree of `size` leaves given its frontier, or `None` when the frontier does
/// not have one hash per set bit of `size`.
pub fn root_from_frontier(size: u64, frontier: &[Hash]) -> Option<Hash> {
    if frontier.len() != size.count_ones() as usize {
        return None;
    }
    Some(fold_frontier(frontier).unwrap_or_else(empty_root))
}

/// The leaf ranges of the complete subtrees of a tree of `size` leaves, left to right: what
/// each hash of a frontier covers.
pub fn frontier_ranges(size: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut start = 0;
    for bit in (0..64).rev() {
        let width = 1u64 << bit;
        if size & width != 0 {
            out.push(start..start + width);
            start += width;
        }
    }
    out
}

/// The ranges whose subtree hashes make the inclusion proof of leaf `index` in a tree of
/// `size` leaves (RFC 9162 2.1.3.1 `PATH`), in the proof's order (nearest the leaf first).
/// Empty when `index >= size`.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    if index >= size {
        return out;
    }
    let (mut lo, mut hi, mut m) = (0, size, index);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m < k {
            out.push(lo + k..hi);
            hi = lo + k;
        } else {
            out.push(lo..lo + k);
            lo += k;
            m -= k;
        }
    }
    out.reverse();
    out
}

/// The ranges whose subtree hashes make the consistency proof from a tree of `old` leaves to
/// one of `new` (RFC 9162 2.1.4.1 `PROOF`), in the proof's order. Empty unless
/// `0 < old < new`.
pub fn consistency_ranges(old: u64, new: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    if old == 0 || old >= new {
        return out;
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled; each step adds one hash after the deeper ones.
    let (mut lo, mut hi, mut m, mut whole) = (0, new, old, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(lo..hi);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            out.push(lo + k..hi);
            hi = lo + k;
        } else {
            out.push(lo..lo + k);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    // Each step down added the outer hash of its level; the proof lists the deepest first.
    out.reverse();
    out
}

/// Verifies an inclusion proof (RFC 9162 2.1.3.2): that the leaf `leaf` (its leaf hash) is
/// number `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// Verifies a consistency proof (RFC 9162 2.1.4.2): that the tree of `old` leaves with root
/// `old_root` is a prefix of the tree of `new` leaves with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    f_r == *old_root && s_r == *new_root && s_n == 0
}

/// The ranges whose subtree hashes prove that the leaves `leaves` (sorted, distinct, each below
/// `size`) are those of the tree of `size` leaves: every largest subtree that holds none of
/// them, depth first, left to right. It is the union of their RFC 9162 inclusion proofs, each
/// hash once and none that the leaves themselves give.
pub fn batch_ranges(size: u64, leaves: &[u64]) -> Vec<Range<u64>> {
    fn walk(lo: u64, hi: u64, leaves: &[u64], out: &mut Vec<Range<u64>>) {
        if leaves.is_empty() {
            out.push(lo..hi);
        } else if hi - lo > 1 {
            let mid = lo + split(hi - lo);
            let cut = leaves.partition_point(|&l| l < mid);
            walk(lo, mid, &leaves[..cut], out);
            walk(mid, hi, &leaves[cut..], out);
        }
    }
    let mut out = Vec::new();
    if size > 0 {
        walk(0, size, leaves, &mut out);
    }
    out
}

/// The root of the tree of `size` leaves made from `leaves` (index and leaf hash, sorted by
/// index) and the hashes of their [`batch_ranges`], or `None` when they do not fit together
/// (a hash too few or too many, an index out of order or out of the tree).
pub fn batch_root(size: u64, leaves: &[(u64, Hash)], proof: &[Hash]) -> Option<Hash> {
    fn walk(
        lo: u64,
        hi: u64,
        leaves: &[(u64, Hash)],
        proof: &mut std::slice::Iter<'_, Hash>,
    ) -> Option<Hash> {
        if leaves.is_empty() {
            return proof.next().copied();
        }
        if hi - lo == 1 {
            return (leaves.len() == 1 && leaves[0].0 == lo).then_some(leaves[0].1);
        }
        let mid = lo + split(hi - lo);
        let cut = leaves.partition_point(|&(l, _)| l < mid);
        let left = walk(lo, mid, &leaves[..cut], proof)?;
        let right = walk(mid, hi, &leaves[cut..], proof)?;
        Some(node_hash(&left, &right))
    }
    if size == 0 || leaves.windows(2).any(|w| w[0].0 >= w[1].0) {
        return None;
    }
    if leaves.last().is_some_and(|&(l, _)| l >= size) {
        return None;
    }
    let mut iter = proof.iter();
    let root = walk(0, size, leaves, &mut iter)?;
    iter.next().is_none().then_some(root)
}

/// Computes the subtree hashes of given leaf ranges from one pass over the leaves, in order.
/// Ranges may nest or overlap; each keeps a [`Builder`] only while its leaves go by.
#[derive(Debug)]
pub struct RangeHasher {
    ranges: Vec<Range<u64>>,
    builders: Vec<Builder>,
    next: u64,
}

impl RangeHasher {
    /// Hashes for `ranges`.
    pub fn new(ranges: Vec<Range<u64>>) -> Self {
        let builders = vec![Builder::new(); ranges.len()];
        Self {
            ranges,
            builders,
            next: 0,
        }
    }

    /// The leaf after the last one it needs (0 when it needs none).
    pub fn end(&self) -> u64 {
        self.ranges.iter().map(|r| r.end).max().unwrap_or(0)
    }

    /// Takes the next leaf (by leaf hash); leaves come in order from leaf 0.
    pub fn push_hash(&mut self, leaf: Hash) {
        let i = self.next;
        for (range, builder) in self.ranges.iter().zip(&mut self.builders) {
            if range.contains(&i) {
                builder.push_hash(leaf);
            }
        }
        self.next += 1;
    }

    /// The hashes, in the order of the ranges, or `None` when a range's leaves did not all go
    /// by.
    pub fn finish(self) -> Option<Vec<Hash>> {
        self.ranges
            .iter()
            .zip(&self.builders)
            .map(|(r, b)| (b.size() == r.end - r.start).then(|| b.root()))
            .collect()
    }
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
