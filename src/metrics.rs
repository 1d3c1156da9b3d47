//! Counters and histograms for `/metrics`, in the Prometheus text format.
//!
//! Kept in process-wide atomics, cheap enough for the hot paths (one relaxed add per append,
//! ack or delivery). Gauges that the server can compute when asked (sockets, rooms, mailbox
//! depth, projection lag) are read at scrape time.

use dashmap::DashMap;
use std::fmt::Write;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// A latency histogram.
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// The process's metrics.
pub struct Metrics {
    /// Appends to the log that succeeded.
    pub appends: AtomicU64,
    /// Events those appends wrote.
    pub events_appended: AtomicU64,
    /// Appends that failed.
    pub append_failures: AtomicU64,
    /// Time an append took, queueing and fsync included.
    pub append_latency: Histogram,
    /// Messages acknowledged to senders.
    pub messages_acked: AtomicU64,
    /// Time from a message's arrival to its ack.
    pub ack_latency: Histogram,
    /// Deliveries queued to sockets (messages and join notices).
    pub deliveries: AtomicU64,
    /// Socket workers running (a socket has one while it has work, and a second after).
    pub socket_workers: AtomicU64,
    /// Requests and events refused, by reason.
    pub rejected: DashMap<String, u64>,
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    appends: AtomicU64::new(0),
    events_appended: AtomicU64::new(0),
    append_failures: AtomicU64::new(0),
    append_latency: Histogram::new(),
    messages_acked: AtomicU64::new(0),
    ack_latency: Histogram::new(),
    deliveries: AtomicU64::new(0),
    socket_workers: AtomicU64::new(0),
    rejected: DashMap::new(),
});

/// Counts a refusal for `reason` (an error code or an HTTP status).
pub fn rejected(reason: &str) {
    *METRICS.rejected.entry(reason.to_owned()).or_insert(0) += 1;
}

/// Gauges read at scrape time.
pub struct Gauges {
    /// Open sockets.
    pub sockets: usize,
    /// Room actors running.
    pub active_rooms: usize,
    /// Commands waiting in room mailboxes.
    pub mailbox_depth: usize,
    /// The log's head position.
    pub log_head: u64,
    /// Each projection's checkpoint.
    pub projections: Vec<(&'static str, u64)>,
    /// Room actor starts from a snapshot, and from the stream's beginning.
    pub room_starts: (u64, u64),
    /// Events read from the log by starting rooms.
    pub room_start_events: u64,
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// Renders everything in the Prometheus text format.
pub fn render(g: &Gauges) -> String {
    let m = &*METRICS;
    let mut out = String::with_capacity(4096);
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        &mut out,
        "chatroom_appends_total",
        "Appends to the log that succeeded.",
        load(&m.appends),
    );
    counter(
        &mut out,
        "chatroom_events_appended_total",
        "Events written to the log.",
        load(&m.events_appended),
    );
    counter(
        &mut out,
        "chatroom_append_failures_total",
        "Appends to the log that failed.",
        load(&m.append_failures),
    );
    m.append_latency.render(
        "chatroom_append_seconds",
        "Time an append to the log took, fsync included.",
        &mut out,
    );
    counter(
        &mut out,
        "chatroom_messages_acked_total",
        "Messages acknowledged to their senders.",
        load(&m.messages_acked),
    );
    m.ack_latency.render(
        "chatroom_ack_seconds",
        "Time from a message's arrival to its ack.",
        &mut out,
    );
    counter(
        &mut out,
        "chatroom_deliveries_total",
        "Messages and join notices queued to sockets.",
        load(&m.deliveries),
    );
    gauge(
        &mut out,
        "chatroom_sockets",
        "Open Socket.IO connections.",
        g.sockets as u64,
    );
    gauge(
        &mut out,
        "chatroom_socket_workers",
        "Socket workers running: sockets with events in hand, or handled within the last second.",
        load(&m.socket_workers),
    );
    gauge(
        &mut out,
        "chatroom_active_rooms",
        "Room actors running.",
        g.active_rooms as u64,
    );
    let _ = writeln!(
        out,
        "# HELP chatroom_room_starts_total Room actors started, from a snapshot or from the beginning of their stream.\n# TYPE chatroom_room_starts_total counter\nchatroom_room_starts_total{{from=\"snapshot\"}} {}\nchatroom_room_starts_total{{from=\"log\"}} {}",
        g.room_starts.0, g.room_starts.1
    );
    counter(
        &mut out,
        "chatroom_room_start_events_total",
        "Events read from the log by starting room actors (after their snapshot, if any).",
        g.room_start_events,
    );
    gauge(
        &mut out,
        "chatroom_mailbox_depth",
        "Commands waiting in room mailboxes.",
        g.mailbox_depth as u64,
    );
    gauge(
        &mut out,
        "chatroom_log_head",
        "Position of the newest event in the log.",
        g.log_head,
    );
    let _ = writeln!(
        out,
        "# HELP chatroom_projection_lag Events the projection has yet to apply.\n# TYPE chatroom_projection_lag gauge"
    );
    for (name, at) in &g.projections {
        let _ = writeln!(
            out,
            "chatroom_projection_lag{{projection=\"{name}\"}} {}",
            g.log_head.saturating_sub(*at)
        );
    }
    let _ = writeln!(
        out,
        "# HELP chatroom_rejected_total Requests and events refused, by reason.\n# TYPE chatroom_rejected_total counter"
    );
    let mut reasons: Vec<(String, u64)> = m
        .rejected
        .iter()
        .map(|e| (e.key().clone(), *e.value()))
        .collect();
    reasons.sort();
    for (reason, n) in reasons {
        let _ = writeln!(out, "chatroom_rejected_total{{reason=\"{reason}\"}} {n}");
    }
    out
}

/// A [`events::Store`] that counts and times appends.
pub struct Metered(pub std::sync::Arc<dyn events::Store>);

#[async_trait::async_trait]
impl events::Store for Metered {
    async fn append(
        &self,
        stream: &str,
        expected: events::Expected,
        events: Vec<events::NewEvent>,
    ) -> Result<Vec<events::Recorded>, events::Error> {
        let started = std::time::Instant::now();
        let result = self.0.append(stream, expected, events).await;
        match &result {
            Ok(written) => {
                METRICS.appends.fetch_add(1, Ordering::Relaxed);
                METRICS
                    .events_appended
                    .fetch_add(written.len() as u64, Ordering::Relaxed);
                METRICS.append_latency.observe(started.elapsed());
            }
            Err(events::Error::Unavailable(_)) => {
                METRICS.append_failures.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        result
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<events::Recorded>, events::Error> {
        self.0.read_stream(stream, from_version, limit).await
    }

    async fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<events::Recorded>, events::Error> {
        self.0.read_all(after, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, events::Error> {
        self.0.stream_version(stream).await
    }

    fn head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.head()
    }

    fn others_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.others_head()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_text_is_prometheus() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(30));
        let mut out = String::new();
        h.render("x_seconds", "help", &mut out);
        assert!(out.contains("x_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 2"));
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(out.contains("x_seconds_count 3"));
        let text = render(&Gauges {
            sockets: 2,
            active_rooms: 1,
            mailbox_depth: 0,
            log_head: 10,
            projections: vec![("room", 7)],
            room_starts: (4, 1),
            room_start_events: 12,
        });
        assert!(text.contains("chatroom_room_starts_total{from=\"snapshot\"} 4\n"));
        assert!(text.contains("chatroom_room_starts_total{from=\"log\"} 1\n"));
        assert!(text.contains("chatroom_room_start_events_total 12\n"));
        assert!(text.contains("chatroom_projection_lag{projection=\"room\"} 3"));
        assert!(text.contains("# TYPE chatroom_sockets gauge\nchatroom_sockets 2"));
    }
}
