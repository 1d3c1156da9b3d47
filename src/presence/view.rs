//! The nodes where each user has a socket, and the global transitions that changes to them
//! make: pure bookkeeping, told in order by the presence task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A user's global transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The user.
    pub user: String,
    /// Online on some node now (`true`), or on none any more.
    pub online: bool,
}

/// Another node's users as the tables hold them, at the node's change count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeUsers {
    /// The node's change count when its users were written.
    pub version: u64,
    /// Its users.
    pub users: HashSet<String>,
}

/// Every other live node and its users.
pub type Snapshot = HashMap<String, NodeUsers>;

/// What one node knows of where each user is.
pub struct View {
    me: Arc<str>,
    version: u64,
    local: HashSet<String>,
    remote: HashMap<String, NodeUsers>,
    /// Per user, on how many nodes (this one included) they have a socket.
    nodes_of: HashMap<String, u32>,
}

impl View {
    /// Nobody online, as node `me` sees it.
    pub fn new(me: Arc<str>) -> Self {
        Self {
            me,
            version: 0,
            local: HashSet::new(),
            remote: HashMap::new(),
            nodes_of: HashMap::new(),
        }
    }

    /// This node's id.
    pub fn node(&self) -> &Arc<str> {
        &self.me
    }

    fn add(&mut self, user: &str, changes: &mut Vec<Change>) {
        let n = self.nodes_of.entry(user.to_owned()).or_insert(0);
        *n += 1;
        if *n == 1 {
            changes.push(Change {
                user: user.to_owned(),
                online: true,
            });
        }
    }

    fn sub(&mut self, user: &str, changes: &mut Vec<Change>) {
        if let Some(n) = self.nodes_of.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.nodes_of.remove(user);
                changes.push(Change {
                    user: user.to_owned(),
                    online: false,
                });
            }
        }
    }

    /// This node now has (or no longer has) sockets of `user`: its change count after it, and
    /// the global transitions.
    pub fn local(&mut self, user: &str, online: bool) -> (u64, Vec<Change>) {
        let mut changes = Vec::new();
        let changed = if online {
            self.local.insert(user.to_owned())
        } else {
            self.local.remove(user)
        };
        if changed {
            self.version += 1;
            if online {
                self.add(user, &mut changes);
            } else {
                self.sub(user, &mut changes);
            }
        }
        (self.version, changes)
    }

    /// Node `node` says, at its change count `version`, that it has (or no longer has)
    /// sockets of `user`; a signal no newer than what is known of the node is ignored.
    pub fn remote(&mut self, node: &str, user: &str, online: bool, version: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        let known = self.remote.entry(node.to_owned()).or_default();
        if version <= known.version {
            return changes;
        }
        known.version = version;
        let changed = if online {
            known.users.insert(user.to_owned())
        } else {
            known.users.remove(user)
        };
        if changed {
            if online {
                self.add(user, &mut changes);
            } else {
                self.sub(user, &mut changes);
            }
        }
        changes
    }

    /// Node `node` is gone: its users are no longer online through it.
    pub fn drop_node(&mut self, node: &str) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(gone) = self.remote.remove(node) {
            for user in &gone.users {
                self.sub(user, &mut changes);
            }
        }
        changes
    }

    /// The other nodes as the tables hold them: a node missing is gone; a node's users are
    /// taken from the tables unless its signals already told of a newer change.
    pub fn snapshot(&mut self, mut snapshot: Snapshot) -> Vec<Change> {
        snapshot.remove(&*self.me);
        let mut changes = Vec::new();
        let gone: Vec<String> = self
            .remote
            .keys()
            .filter(|n| !snapshot.contains_key(*n))
            .cloned()
            .collect();
        for node in gone {
            changes.extend(self.drop_node(&node));
        }
        for (node, stored) in snapshot {
            let known = self.remote.entry(node.clone()).or_default();
            if stored.version < known.version {
                continue;
            }
            let before = std::mem::replace(known, stored.clone());
            for user in before.users.difference(&stored.users) {
                self.sub(user, &mut changes);
            }
            for user in stored.users.difference(&before.users) {
                self.add(user, &mut changes);
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(user: &str, online: bool) -> Change {
        Change {
            user: user.into(),
            online,
        }
    }

    fn users(version: u64, list: &[&str]) -> NodeUsers {
        NodeUsers {
            version,
            users: list.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    #[test]
    fn a_user_goes_offline_when_their_last_node_does() {
        let mut v = View::new("a".into());
        assert_eq!(v.local("u", true), (1, vec![change("u", true)]));
        assert_eq!(v.remote("b", "u", true, 1), vec![]);
        assert_eq!(v.local("u", false), (2, vec![]));
        assert_eq!(v.remote("b", "u", false, 2), vec![change("u", false)]);
    }

    #[test]
    fn stale_and_repeated_signals_change_nothing() {
        let mut v = View::new("a".into());
        assert_eq!(v.remote("b", "u", true, 3), vec![change("u", true)]);
        assert_eq!(v.remote("b", "u", true, 3), vec![]);
        assert_eq!(v.remote("b", "u", false, 2), vec![]);
        assert_eq!(v.remote("b", "u", false, 4), vec![change("u", false)]);
    }

    #[test]
    fn a_dead_node_takes_only_its_own_users_offline() {
        let mut v = View::new("a".into());
        v.local("both", true);
        v.remote("b", "both", true, 1);
        v.remote("b", "only_b", true, 2);
        let mut gone = v.drop_node("b");
        gone.sort_by(|x, y| x.user.cmp(&y.user));
        assert_eq!(gone, vec![change("only_b", false)]);
        // A node that is missing from the tables is gone too.
        v.remote("c", "on_c", true, 1);
        let snap = Snapshot::from([("a".to_owned(), users(9, &["ignored"]))]);
        assert_eq!(v.snapshot(snap), vec![change("on_c", false)]);
    }

    #[test]
    fn the_tables_mend_missed_signals_but_never_undo_newer_ones() {
        let mut v = View::new("a".into());
        // A node that started before us: learnt from the tables.
        let snap = Snapshot::from([("b".to_owned(), users(5, &["x", "y"]))]);
        let mut on = v.snapshot(snap);
        on.sort_by(|x, y| x.user.cmp(&y.user));
        assert_eq!(on, vec![change("x", true), change("y", true)]);
        // A signal newer than the tables' next read wins over it.
        assert_eq!(v.remote("b", "z", true, 6), vec![change("z", true)]);
        let stale = Snapshot::from([("b".to_owned(), users(5, &["x", "y"]))]);
        assert_eq!(v.snapshot(stale), vec![]);
        // A missed signal (y left at 7) is mended by a newer read.
        let newer = Snapshot::from([("b".to_owned(), users(7, &["x", "z"]))]);
        assert_eq!(v.snapshot(newer), vec![change("y", false)]);
    }
}
