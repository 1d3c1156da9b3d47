//! What the run measured: counters shared by all connections (relaxed atomics, read by the
//! progress line and the drain), and latency histograms kept in a few locked shards that each
//! connection fills from a small local buffer, so recording costs a push per message and a
//! lock per hundred.

use hdrhistogram::Histogram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latencies are recorded in nanoseconds, up to a minute, to three significant digits.
const MAX_NS: u64 = 60_000_000_000;
/// Histogram shards (connections pick one by index).
const SHARDS: usize = 8;
/// Samples a connection buffers before it takes a shard's lock.
pub const LOCAL: usize = 128;

/// Which latency.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Send to acknowledgement, at the sender.
    Ack,
    /// Send to `received`, at each receiver.
    Delivery,
}

/// Counters for the whole run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages written to a socket.
    pub sent: AtomicU64,
    /// Acks with `ok: true`.
    pub acked: AtomicU64,
    /// Acks with `ok: false`.
    pub refused: AtomicU64,
    /// Deliveries the acked messages owe to subscribed, reading sockets.
    pub expected: AtomicU64,
    /// Stamped `received` events at reading sockets.
    pub delivered: AtomicU64,
    /// Stamped `received` events at slow sockets (after they read again).
    pub slow_delivered: AtomicU64,
    /// Sockets the server closed during the run.
    pub closed: AtomicU64,
    /// `join_all` events sent again because their ack did not come.
    pub join_retries: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

struct Pair {
    ack: Histogram<u64>,
    delivery: Histogram<u64>,
}

/// Sharded latency histograms.
pub struct Latencies {
    shards: Vec<Mutex<Pair>>,
}

impl Default for Latencies {
    fn default() -> Self {
        let h = || Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid bounds");
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Pair {
                        ack: h(),
                        delivery: h(),
                    })
                })
                .collect(),
        }
    }
}

impl Latencies {
    /// Records `samples` (nanoseconds) into shard `shard`.
    pub fn record(&self, shard: usize, kind: Kind, samples: &[u64]) {
        let mut pair = self.shards[shard % SHARDS].lock().expect("histogram");
        let h = match kind {
            Kind::Ack => &mut pair.ack,
            Kind::Delivery => &mut pair.delivery,
        };
        for &s in samples {
            h.saturating_record(s.max(1));
        }
    }

    /// All shards of one kind merged.
    pub fn merged(&self, kind: Kind) -> Histogram<u64> {
        let mut all = Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid bounds");
        for s in &self.shards {
            let pair = s.lock().expect("histogram");
            let h = match kind {
                Kind::Ack => &pair.ack,
                Kind::Delivery => &pair.delivery,
            };
            all.add(h).expect("same bounds");
        }
        all
    }
}

/// A connection's buffer of samples of one kind.
pub struct Local {
    kind: Kind,
    shard: usize,
    buf: Vec<u64>,
}

impl Local {
    /// An empty buffer for connection `shard`.
    pub fn new(kind: Kind, shard: usize) -> Self {
        Self {
            kind,
            shard,
            buf: Vec::with_capacity(LOCAL),
        }
    }

    /// Adds one sample, flushing when the buffer is full.
    pub fn push(&mut self, ns: u64, into: &Latencies) {
        self.buf.push(ns);
        if self.buf.len() == LOCAL {
            self.flush(into);
        }
    }

    /// Moves the buffered samples into the shared histograms.
    pub fn flush(&mut self, into: &Latencies) {
        if !self.buf.is_empty() {
            into.record(self.shard, self.kind, &self.buf);
            self.buf.clear();
        }
    }
}

/// `p50 / p99 / p999 / max` in milliseconds, with the count.
pub fn summary(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".to_owned();
    }
    let ms = |v: u64| v as f64 / 1e6;
    format!(
        "p50 {:.3} ms  p99 {:.3} ms  p999 {:.3} ms  max {:.3} ms  (n={})",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_buffers_reach_the_merged_histogram() {
        let lat = Latencies::default();
        let mut a = Local::new(Kind::Delivery, 3);
        for i in 0..(LOCAL as u64 + 5) {
            a.push(1_000 * (i + 1), &lat);
        }
        assert_eq!(lat.merged(Kind::Delivery).len(), LOCAL as u64);
        a.flush(&lat);
        assert_eq!(lat.merged(Kind::Delivery).len(), LOCAL as u64 + 5);
        assert!(lat.merged(Kind::Ack).is_empty());
    }
}
