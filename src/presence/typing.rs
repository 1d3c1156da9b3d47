//! The typing limit: one `typing` a second per user and room; the rest are dropped silently.

use dashmap::DashMap;
use std::time::{Duration, Instant};

/// The least time between two `typing` of one user in one room that are passed on.
pub const EVERY: Duration = Duration::from_secs(1);

/// When each user last typed in each room (passed on), forgotten after [`EVERY`].
#[derive(Default)]
pub struct TypingLimit {
    last: DashMap<(String, String), Instant>,
}

impl TypingLimit {
    /// Whether `user`'s typing in `room` at `now` is passed on (it is then counted).
    pub fn allow(&self, user: &str, room: &str, now: Instant) -> bool {
        use dashmap::mapref::entry::Entry;
        match self.last.entry((user.to_owned(), room.to_owned())) {
            Entry::Occupied(e) if now.saturating_duration_since(*e.get()) < EVERY => false,
            Entry::Occupied(mut e) => {
                e.insert(now);
                true
            }
            Entry::Vacant(e) => {
                e.insert(now);
                true
            }
        }
    }

    /// Forgets what no longer limits anything.
    pub fn sweep(&self, now: Instant) {
        self.last
            .retain(|_, at| now.saturating_duration_since(*at) < EVERY);
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_a_second_per_user_and_room() {
        let limit = TypingLimit::default();
        let t = Instant::now();
        assert!(limit.allow("u", "r", t));
        assert!(!limit.allow("u", "r", t + Duration::from_millis(999)));
        assert!(limit.allow("u", "other", t));
        assert!(limit.allow("v", "r", t));
        assert!(limit.allow("u", "r", t + EVERY));
        limit.sweep(t + Duration::from_millis(1500));
        assert_eq!(limit.len(), 1, "only the latest is still limiting");
        limit.sweep(t + Duration::from_secs(3));
        assert!(limit.is_empty());
    }
}
