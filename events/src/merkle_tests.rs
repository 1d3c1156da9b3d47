//! The RFC 6962 / Certificate Transparency test vectors (the leaves and hashes of CT's
//! `merkle_tree_test.cc`), and every proof of small trees checked against the definitions.

use super::*;

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn leaves() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0x00],
        vec![0x10],
        vec![0x20, 0x21],
        vec![0x30, 0x31],
        vec![0x40, 0x41, 0x42, 0x43],
        (0x50..0x58).collect(),
        (0x60..0x70).collect(),
    ]
}

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// MTH by the definition, recursively.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn hashes(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
        .collect()
}

fn fill(ranges: &[Range<u64>], leaves: &[Hash]) -> Vec<Hash> {
    ranges
        .iter()
        .map(|r| mth(&leaves[r.start as usize..r.end as usize]))
        .collect()
}

#[test]
fn the_empty_tree_is_the_hash_of_nothing() {
    assert_eq!(
        Builder::new().root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
}

#[test]
fn roots_match_the_ct_vectors() {
    let mut b = Builder::new();
    for (leaf, root) in leaves().iter().zip(ROOTS) {
        b.push(leaf);
        assert_eq!(b.root(), h(root), "tree of {}", b.size());
        assert_eq!(root_from_frontier(b.size(), b.frontier()), Some(h(root)));
    }
}

#[test]
fn proofs_match_the_ct_vectors() {
    let l: Vec<Hash> = leaves().iter().map(|d| leaf_hash(d)).collect();
    let incl = |m, n| fill(&inclusion_ranges(m, n), &l[..n as usize]);
    let cons = |m, n| fill(&consistency_ranges(m, n), &l[..n as usize]);
    let v = |xs: &[&str]| xs.iter().map(|s| h(s)).collect::<Vec<_>>();
    let a = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7";
    let b = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e";
    let c = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4";
    let d = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b";
    let e = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0";
    let f = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a";
    assert_eq!(incl(0, 8), v(&[a, b, c]));
    assert_eq!(incl(5, 8), v(&[d, e, ROOTS[3]]));
    assert_eq!(incl(2, 3), v(&[ROOTS[1]]));
    assert_eq!(incl(1, 5), v(&[ROOTS[0], b, d]));
    assert_eq!(cons(1, 8), v(&[a, b, c]));
    assert_eq!(cons(6, 8), v(&[f, e, ROOTS[3]]));
    assert_eq!(cons(2, 5), v(&[b, d]));
    assert!(verify_inclusion(5, 8, &l[5], &incl(5, 8), &h(ROOTS[7])));
    assert!(verify_consistency(
        6,
        8,
        &h(ROOTS[5]),
        &h(ROOTS[7]),
        &cons(6, 8)
    ));
}

#[test]
fn every_proof_of_small_trees_verifies_and_a_changed_one_does_not() {
    let l = hashes(40);
    for n in 1..=40u64 {
        let root = mth(&l[..n as usize]);
        let mut b = Builder::new();
        l[..n as usize].iter().for_each(|x| b.push_hash(*x));
        assert_eq!(b.root(), root);
        for m in 0..n {
            let proof = fill(&inclusion_ranges(m, n), &l);
            assert!(verify_inclusion(m, n, &l[m as usize], &proof, &root));
            assert!(!verify_inclusion(
                m,
                n,
                &l[(m as usize + 1) % 40],
                &proof,
                &root
            ));
            if n > 1 {
                assert!(!verify_inclusion(m, n, &l[m as usize], &proof[1..], &root));
                assert!(!verify_inclusion(
                    (m + 1) % n,
                    n,
                    &l[m as usize],
                    &proof,
                    &root
                ));
            }
        }
        for m in 1..n {
            let old = mth(&l[..m as usize]);
            let proof = fill(&consistency_ranges(m, n), &l);
            assert!(verify_consistency(m, n, &old, &root, &proof), "{m} -> {n}");
            assert!(
                !verify_consistency(m, n, &node_hash(&old, &old), &root, &proof),
                "{m} -> {n}"
            );
            let mut bad = proof.clone();
            bad[0][0] ^= 1;
            assert!(!verify_consistency(m, n, &old, &root, &bad), "{m} -> {n}");
        }
    }
}

#[test]
fn one_pass_fills_the_ranges_of_several_proofs() {
    let l = hashes(1000);
    let mut ranges = consistency_ranges(300, 1000);
    ranges.extend(inclusion_ranges(77, 300));
    ranges.extend(frontier_ranges(300));
    let mut hasher = RangeHasher::new(ranges.clone());
    assert_eq!(hasher.end(), 1000);
    l.iter().for_each(|x| hasher.push_hash(*x));
    assert_eq!(hasher.finish().unwrap(), fill(&ranges, &l));
    let mut short = RangeHasher::new(ranges);
    l[..999].iter().for_each(|x| short.push_hash(*x));
    assert_eq!(short.finish(), None);
}

#[test]
fn a_batch_proof_makes_the_root_and_nothing_else_does() {
    let l = hashes(100);
    let root = mth(&l);
    for picked in [
        vec![0u64],
        vec![99],
        vec![3, 4, 5, 60],
        (0..100).collect(),
        vec![],
    ] {
        let proof = fill(&batch_ranges(100, &picked), &l);
        let leaves: Vec<(u64, Hash)> = picked.iter().map(|&i| (i, l[i as usize])).collect();
        assert_eq!(batch_root(100, &leaves, &proof), Some(root), "{picked:?}");
        if let Some(&i) = picked.first() {
            let mut wrong = leaves.clone();
            wrong[0].1 = l[(i as usize + 1) % 100];
            assert_ne!(batch_root(100, &wrong, &proof), Some(root));
            let mut moved = leaves.clone();
            moved[0].0 = if i == 0 { 1 } else { i - 1 };
            if moved.windows(2).all(|w| w[0].0 < w[1].0) {
                assert_ne!(batch_root(100, &moved, &proof), Some(root));
            }
        }
        if picked.len() > 1 {
            let dropped = &leaves[1..];
            assert_ne!(batch_root(100, dropped, &proof), Some(root));
        }
        if !proof.is_empty() {
            assert_eq!(batch_root(100, &leaves, &proof[1..]), None);
        }
    }
    // One leaf's batch proof is its RFC 9162 inclusion proof, in another order.
    let mut one = fill(&batch_ranges(100, &[37]), &l);
    let mut path = fill(&inclusion_ranges(37, 100), &l);
    one.sort();
    path.sort();
    assert_eq!(one, path);
}
