//! Per user, the newest log position they wrote, so that their reads wait until the read
//! tables include it.

use dashmap::DashMap;

/// The newest log position each user wrote.
#[derive(Default)]
pub struct OwnWrites {
    newest: DashMap<String, u64>,
}

impl OwnWrites {
    /// Records that `user_id` wrote up to `position`.
    pub fn wrote(&self, user_id: &str, position: u64) {
        // A user who wrote before needs no new key (this runs for every message).
        match self.newest.get_mut(user_id) {
            Some(mut p) => *p = (*p).max(position),
            None => {
                self.newest
                    .entry(user_id.to_owned())
                    .and_modify(|p| *p = (*p).max(position))
                    .or_insert(position);
            }
        }
    }

    /// The newest position `user_id` wrote, 0 when none.
    pub fn newest(&self, user_id: &str) -> u64 {
        self.newest.get(user_id).map_or(0, |p| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::OwnWrites;

    #[test]
    fn the_newest_position_is_kept() {
        let w = OwnWrites::default();
        assert_eq!(w.newest("ann"), 0);
        w.wrote("ann", 7);
        w.wrote("ann", 3);
        w.wrote("bob", 5);
        assert_eq!((w.newest("ann"), w.newest("bob")), (7, 5));
    }
}
