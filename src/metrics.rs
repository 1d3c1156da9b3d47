//! Counters and histograms for `/metrics`, in the Prometheus text format, by
//! `prometheus-client`.
//!
//! The handles live in one process-wide static, made once, so that counting on the hot paths
//! (an append, an ack, a delivery) is one relaxed add. Gauges that the server can compute when
//! asked (sockets, rooms, mailbox depth, projection lag) are read at scrape time.

use prometheus_client::encoding::{
    EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The `Content-Type` of what [`render`] writes.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// A latency histogram.
///
/// Not prometheus-client's: that one takes a lock per observation, this one two relaxed adds.
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
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
}

impl EncodeMetric for &'static Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.counts.each_ref().map(|c| c.load(Ordering::Relaxed));
        let buckets: Vec<(f64, u64)> = BUCKETS.into_iter().zip(counts).collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Why a request or an event was refused: a socket error code or an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reason {
    Code(&'static str),
    Status(u16),
}

impl EncodeLabelValue for Reason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        match self {
            Reason::Code(code) => code.encode(encoder),
            Reason::Status(status) => status.encode(encoder),
        }
    }
}

type Labelled<V, M> = Family<[(&'static str, V); 1], M>;

/// The process's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Appends to the log that succeeded.
    pub appends: Counter,
    /// Events those appends wrote.
    pub events_appended: Counter,
    /// Appends that failed.
    pub append_failures: Counter,
    /// Time an append took, queueing and fsync included.
    pub append_latency: Histogram,
    /// Messages acknowledged to senders.
    pub messages_acked: Counter,
    /// Time from a message's arrival to its ack.
    pub ack_latency: Histogram,
    /// Deliveries queued to sockets (messages and join notices).
    pub deliveries: Counter,
    /// Socket workers running (a socket has one while it has work, and a second after).
    pub socket_workers: Gauge,
    rejected: Labelled<Reason, Counter>,
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// Counts a refusal with this socket error code.
pub fn rejected(code: &'static str) {
    METRICS
        .rejected
        .get_or_create(&[("reason", Reason::Code(code))])
        .inc();
}

/// Counts a refusal with this HTTP status.
pub fn rejected_status(status: axum::http::StatusCode) {
    METRICS
        .rejected
        .get_or_create(&[("reason", Reason::Status(status.as_u16()))])
        .inc();
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
    /// Parked events (dead letters) by projection; `None` when they could not be counted.
    pub parked: Option<Vec<(String, u64)>>,
}

/// Renders everything in the Prometheus text format.
pub fn render(g: &Gauges) -> String {
    let m: &'static Metrics = &METRICS;
    let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    let mut r = Registry::default();
    let help = "Appends to the log that succeeded";
    r.register("chatroom_appends", help, m.appends.clone());
    let help = "Events written to the log";
    r.register("chatroom_events_appended", help, m.events_appended.clone());
    let help = "Appends to the log that failed";
    r.register("chatroom_append_failures", help, m.append_failures.clone());
    let help = "Time an append to the log took, fsync included";
    r.register("chatroom_append_seconds", help, &m.append_latency);
    let help = "Messages acknowledged to their senders";
    r.register("chatroom_messages_acked", help, m.messages_acked.clone());
    let help = "Time from a message's arrival to its ack";
    r.register("chatroom_ack_seconds", help, &m.ack_latency);
    let help = "Messages and join notices queued to sockets";
    r.register("chatroom_deliveries", help, m.deliveries.clone());
    let help = "Open Socket.IO connections";
    r.register("chatroom_sockets", help, gauge(g.sockets as u64));
    let help =
        "Socket workers running: sockets with events in hand, or handled within the last second";
    r.register("chatroom_socket_workers", help, m.socket_workers.clone());
    let help = "Room actors running";
    r.register("chatroom_active_rooms", help, gauge(g.active_rooms as u64));
    let starts = Labelled::<&'static str, Counter>::default();
    starts
        .get_or_create(&[("from", "snapshot")])
        .inc_by(g.room_starts.0);
    starts
        .get_or_create(&[("from", "log")])
        .inc_by(g.room_starts.1);
    let help = "Room actors started, from a snapshot or from the beginning of their stream";
    r.register("chatroom_room_starts", help, starts);
    let help = "Events read from the log by starting room actors (after their snapshot, if any)";
    let events = ConstCounter::new(g.room_start_events);
    r.register("chatroom_room_start_events", help, events);
    let help = "Commands waiting in room mailboxes";
    r.register(
        "chatroom_mailbox_depth",
        help,
        gauge(g.mailbox_depth as u64),
    );
    let help = "Position of the newest event in the log";
    r.register("chatroom_log_head", help, gauge(g.log_head));
    let lag = Labelled::<&'static str, Gauge>::default();
    for (name, at) in &g.projections {
        let behind = g.log_head.saturating_sub(*at);
        lag.get_or_create(&[("projection", *name)])
            .set(i64::try_from(behind).unwrap_or(i64::MAX));
    }
    let help = "Events the projection has yet to apply";
    r.register("chatroom_projection_lag", help, lag);
    if let Some(parked) = &g.parked {
        let gauges = Labelled::<String, Gauge>::default();
        // Every projection, so that a parked count falls back to 0 rather than vanishing.
        for (name, _) in &g.projections {
            gauges
                .get_or_create(&[("projection", (*name).to_owned())])
                .set(0);
        }
        for (name, n) in parked {
            gauges
                .get_or_create(&[("projection", name.clone())])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let help = "Events the projection could not apply, parked as dead letters";
        r.register("chatroom_projection_parked", help, gauges);
    }
    let help = "Requests and events refused, by reason";
    r.register("chatroom_rejected", help, m.rejected.clone());
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &r);
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
                METRICS.appends.inc();
                METRICS.events_appended.inc_by(written.len() as u64);
                METRICS.append_latency.observe(started.elapsed());
            }
            Err(events::Error::Unavailable(_)) => {
                METRICS.append_failures.inc();
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
        static H: Histogram = Histogram::new();
        H.observe(Duration::from_micros(300));
        H.observe(Duration::from_millis(3));
        H.observe(Duration::from_secs(30));
        let mut r = Registry::default();
        r.register("x_seconds", "help", &H);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &r).unwrap();
        assert!(out.contains("# TYPE x_seconds histogram\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 30.0033\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
        rejected("not_found");
        rejected_status(axum::http::StatusCode::UNAUTHORIZED);
        let text = render(&Gauges {
            sockets: 2,
            active_rooms: 1,
            mailbox_depth: 0,
            log_head: 10,
            projections: vec![("room", 7)],
            room_starts: (4, 1),
            room_start_events: 12,
            parked: Some(vec![("room_record".to_owned(), 2)]),
        });
        for line in [
            "# HELP chatroom_appends_total Appends to the log that succeeded.\n",
            "# TYPE chatroom_appends_total counter\n",
            "chatroom_room_starts_total{from=\"snapshot\"} 4\n",
            "chatroom_room_starts_total{from=\"log\"} 1\n",
            "chatroom_room_start_events_total 12\n",
            "chatroom_projection_lag{projection=\"room\"} 3\n",
            "chatroom_projection_parked{projection=\"room\"} 0\n",
            "chatroom_projection_parked{projection=\"room_record\"} 2\n",
            "# TYPE chatroom_sockets gauge\nchatroom_sockets 2\n",
            "chatroom_rejected_total{reason=\"not_found\"} 1\n",
            "chatroom_rejected_total{reason=\"401\"} 1\n",
            "chatroom_ack_seconds_bucket{le=\"+Inf\"} 0\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
    }
}
