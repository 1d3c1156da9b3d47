//! Per-key rate limits (a rate a second and a burst), by `governor`'s keyed GCRA limiter.
//!
//! Idle keys are swept now and then, so a server that has seen many users keeps only those
//! that sent recently.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::cell::RefCell;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the keys whose bucket is full again are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// governor keeps its state in nanoseconds of a `u64`: a burst times the period must fit.
const LONGEST_BURST: Duration = Duration::from_secs(100 * 365 * 86_400);

thread_local! {
    // governor looks keys up by `&String`; one buffer per thread spares an allocation a call.
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Rate limits keyed by a string (a user id).
pub struct Buckets {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    started: Instant,
    /// Milliseconds after `started` when the next sweep is due.
    next_sweep: AtomicU64,
}

impl Buckets {
    /// `rate` a second, at most `burst` at once (at least 1); a rate of 0 allows everything.
    pub fn new(rate: f64, burst: f64) -> Self {
        let limiter = (rate > 0.0).then(|| {
            let burst = NonZeroU32::new(burst.clamp(1.0, f64::from(u32::MAX)) as u32)
                .unwrap_or(NonZeroU32::MIN);
            let period = Duration::try_from_secs_f64(1.0 / rate)
                .unwrap_or(Duration::MAX)
                .clamp(Duration::from_nanos(1), LONGEST_BURST / burst.get());
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
                .allow_burst(burst);
            RateLimiter::keyed(quota)
        });
        Self {
            limiter,
            started: Instant::now(),
            next_sweep: AtomicU64::new(SWEEP_EVERY.as_millis() as u64),
        }
    }

    /// Takes one for `key`; `false` when its limit is reached.
    pub fn take(&self, key: &str) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        let allowed = KEY.with_borrow_mut(|k| {
            k.clear();
            k.push_str(key);
            limiter.check_key(k).is_ok()
        });
        self.sweep_when_due(limiter);
        allowed
    }

    /// Drops the keys that are indistinguishable from new ones, at most once per
    /// [`SWEEP_EVERY`]; the caller that wins the race does it.
    fn sweep_when_due(&self, limiter: &DefaultKeyedRateLimiter<String>) {
        let now = self.started.elapsed().as_millis() as u64;
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let next = now + SWEEP_EVERY.as_millis() as u64;
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys held, idle ones included until the next sweep.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_then_the_rate_and_zero_is_unlimited() {
        let b = Buckets::new(1.0, 3.0);
        assert!(b.take("a") && b.take("a") && b.take("a"));
        assert!(!b.take("a"));
        assert!(b.take("b"), "keys are independent");
        let off = Buckets::new(0.0, 0.0);
        assert!((0..10_000).all(|_| off.take("a")));
        let slow = Buckets::new(10.0, 1.0);
        assert!(slow.take("a") && !slow.take("a"));
        std::thread::sleep(Duration::from_millis(120));
        assert!(slow.take("a"), "one back after 100 ms");
        assert!(!slow.take("a"), "and no more than the burst");
    }

    #[test]
    fn odd_settings_neither_panic_nor_block() {
        for (rate, burst) in [
            (1e-300, 1e30),
            (1e300, 0.0),
            (f64::INFINITY, 5.0),
            (0.5, 0.2),
        ] {
            let b = Buckets::new(rate, burst);
            assert!(b.take("a"), "{rate} {burst}");
        }
    }

    #[test]
    fn idle_keys_are_swept() {
        let b = Buckets::new(1000.0, 2.0);
        for i in 0..100 {
            assert!(b.take(&format!("user-{i}")));
        }
        assert_eq!(b.len(), 100);
        std::thread::sleep(Duration::from_millis(5));
        b.next_sweep.store(0, Ordering::Relaxed);
        assert!(b.take("user-0"));
        assert_eq!(b.len(), 1, "only the key just used is kept");
    }
}
