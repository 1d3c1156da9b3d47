//! Per-key token buckets: a rate a second and a burst.

use dashmap::DashMap;
use std::time::Instant;

/// Token buckets keyed by a string (a user id).
pub struct Buckets {
    rate: f64,
    burst: f64,
    buckets: DashMap<String, (f64, Instant)>,
}

impl Buckets {
    /// `rate` tokens a second, at most `burst` saved; a rate of 0 allows everything.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            buckets: DashMap::new(),
        }
    }

    /// Takes one token for `key`; `false` when there is none.
    pub fn take(&self, key: &str) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let mut entry = self
            .buckets
            .entry(key.to_owned())
            .or_insert((self.burst, now));
        let (tokens, last) = &mut *entry;
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_and_zero_is_unlimited() {
        let b = Buckets::new(1.0, 3.0);
        assert!(b.take("a") && b.take("a") && b.take("a"));
        assert!(!b.take("a"));
        assert!(b.take("b"), "keys are independent");
        let off = Buckets::new(0.0, 0.0);
        assert!((0..10_000).all(|_| off.take("a")));
    }
}
