//! One authenticated socket: the handshake (Engine.IO open, namespace connect with the token,
//! `join_all` and its ack), then one task that reads frames, answers pings, records ack and
//! delivery latencies, and sends its own messages closed-loop (a window of unacknowledged
//! messages) or open-loop (on a fixed schedule).
//!
//! Costs per message are kept low on purpose: frames are parsed in place ([`crate::proto`]),
//! outgoing frames come from a pre-serialized template, every frame that is already readable
//! is handled before the writes of the batch are flushed together, and latencies go to a local
//! buffer ([`crate::stats::Local`]). Ack ids are consecutive, so send times sit in a ring
//! indexed by ack id.

use crate::proto::{self, Packet, SendTemplate};
use crate::stats::{Counters, Kind, Latencies, Local};
use anyhow::{Context, bail};
use futures::{FutureExt, SinkExt, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a socket may take to connect, authenticate and join.
const HANDSHAKE: Duration = Duration::from_secs(60);
/// How long to wait for a `join_all` ack before sending it again, in seconds.
pub const JOIN_RETRY_SECS: u64 = 3;
const JOIN_RETRY: Duration = Duration::from_secs(JOIN_RETRY_SECS);

/// The phases of a run, broadcast to every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting and joining; nobody sends.
    Setup,
    /// Senders send until `end_ns` (on the shared clock).
    Run {
        /// When sending stops.
        end_ns: u64,
    },
    /// Nobody sends; everyone (slow sockets too) reads what is still coming.
    Drain,
    /// Return the outcome.
    Stop,
}

/// How a sender paces itself.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Keep this many messages unacknowledged.
    Window(usize),
    /// One message every `interval_ns`, the first at `offset_ns` after the start.
    Every {
        /// Between two sends.
        interval_ns: u64,
        /// Before the first.
        offset_ns: u64,
    },
}

/// A room a socket sends to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The message frame, serialized once.
    pub template: SendTemplate,
    /// Reading sockets subscribed to the room (the sender's included): deliveries per ack.
    pub receivers: u64,
    /// The room's index in the plan.
    pub room: usize,
}

/// What a sending socket sends: to each of its rooms in turn.
#[derive(Debug, Clone)]
pub struct Sending {
    /// Its rooms.
    pub targets: Vec<Target>,
    /// Its pace.
    pub pace: Pace,
}

/// One socket to open.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Its number (picks a histogram shard).
    pub index: usize,
    /// The user's token.
    pub token: String,
    /// Rooms to `join_all`.
    pub rooms: Vec<String>,
    /// Whether and how it sends.
    pub send: Option<Sending>,
    /// Stops reading when the run starts and reads again at the drain.
    pub slow: bool,
    /// Indexes of its rooms in the plan.
    pub room_indexes: Vec<usize>,
    /// Keeps the send time and latency of every delivery it receives ([`Outcome::trace`]).
    pub trace: bool,
}

/// What every connection shares.
pub struct Shared {
    /// `ws://host:port/socket.io/?EIO=4&transport=websocket`.
    pub url: String,
    /// The clock that stamps messages.
    pub epoch: Instant,
    /// Run-wide counters.
    pub counters: Counters,
    /// Latency histograms.
    pub latencies: Latencies,
    /// Bounds concurrent handshakes.
    pub gate: Semaphore,
}

impl Shared {
    /// Nanoseconds on the shared clock.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// What one connection saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whether its handshake failed (its deliveries are not expected).
    pub failed: bool,
    /// Whether this socket was slow on purpose.
    pub slow: bool,
    /// Indexes of its rooms in the plan.
    pub room_indexes: Vec<usize>,
    /// `ok` acks by room index.
    pub acked_rooms: Vec<(usize, u64)>,
    /// All `ok` acks it received.
    pub acked: u64,
    /// Acks received before the end of the run.
    pub acked_in_run: u64,
    /// Deliveries received before the end of the run.
    pub delivered_in_run: u64,
    /// Stamped deliveries of a slow socket (all of them, read after the run).
    pub slow_delivered: u64,
    /// Whether the server closed this socket.
    pub closed: bool,
    /// When (shared clock) it was closed.
    pub closed_at_ns: u64,
    /// Messages still unacknowledged at the stop.
    pub unacked: u64,
    /// Worst lateness of an open-loop send behind its schedule.
    pub max_lag_ns: u64,
    /// With [`Spec::trace`]: the send time (shared clock) and latency of each delivery
    /// received, in nanoseconds.
    pub trace: Vec<(u64, u64)>,
}

/// Connects, authenticates, joins, reports readiness, then follows the phases.
pub async fn run(
    spec: Spec,
    sh: Arc<Shared>,
    phase: watch::Receiver<Phase>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
) -> Outcome {
    let ws = {
        let _permit = sh.gate.acquire().await;
        let mut stage = "connecting";
        tokio::time::timeout(
            HANDSHAKE,
            handshake(&spec, &sh.url, &sh.counters, &mut stage),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("handshake timed out {stage}")))
    };
    match ws {
        Ok(ws) => {
            let _ = ready.send(Ok(()));
            Conn::new(spec, sh, ws).drive(phase).await
        }
        Err(e) => {
            let msg = format!("socket {}: {e:#}", spec.index);
            let _ = ready.send(Err(msg));
            Outcome {
                failed: true,
                room_indexes: spec.room_indexes,
                ..Outcome::default()
            }
        }
    }
}

async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws.next().await.context("closed during handshake")?? {
            Message::Text(t) => return Ok(t.as_str().to_owned()),
            Message::Close(c) => bail!("closed during handshake: {c:?}"),
            _ => {}
        }
    }
}

async fn handshake(
    spec: &Spec,
    url: &str,
    retries: &Counters,
    stage: &mut &'static str,
) -> anyhow::Result<Ws> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(proto::ws_config()), true)
            .await
            .context("WebSocket connect")?;
    *stage = "waiting for the Engine.IO open packet";
    loop {
        if proto::parse(&next_text(&mut ws).await?) == Packet::Open {
            break;
        }
    }
    ws.send(Message::text(proto::connect(&spec.token))).await?;
    *stage = "waiting for the namespace connect answer";
    loop {
        let t = next_text(&mut ws).await?;
        match proto::parse(&t) {
            Packet::Connected => break,
            Packet::Refused(m) => bail!("namespace refused: {m}"),
            Packet::Ping => ws.send(Message::text(proto::PONG)).await?,
            _ => {}
        }
    }
    // A join_all whose ack does not come in time is sent again, as a client would: a lost ack
    // must not stall a run of thousands of sockets.
    let mut attempt = 0u64;
    while !spec.rooms.is_empty() {
        *stage = "waiting for the join_all ack";
        ws.send(Message::text(proto::join_all(attempt, &spec.rooms)))
            .await?;
        let answered = tokio::time::timeout(JOIN_RETRY, async {
            loop {
                let t = next_text(&mut ws).await?;
                match proto::parse(&t) {
                    Packet::Ack { id, body } if id <= attempt && proto::ack_ok(body) => break,
                    Packet::Ack { id, body } if id <= attempt => bail!("join_all refused: {body}"),
                    Packet::Ping => ws.send(Message::text(proto::PONG)).await?,
                    _ => {}
                }
            }
            Ok::<_, anyhow::Error>(())
        })
        .await;
        match answered {
            Ok(r) => r?,
            Err(_) if attempt < 9 => {
                attempt += 1;
                Counters::add(&retries.join_retries, 1);
                continue;
            }
            Err(_) => bail!("no join_all ack after {} tries", attempt + 1),
        }
        break;
    }
    Ok(ws)
}

struct Conn {
    spec: Spec,
    sh: Arc<Shared>,
    ws: Ws,
    out: Outcome,
    acks: Local,
    deliveries: Local,
    /// Frames to write at the end of the batch.
    queue: Vec<Message>,
    /// Send time and target of each unacknowledged ack id, from `base` on; time 0 once acked.
    sent_at: VecDeque<(u64, u32)>,
    base: u64,
    next_ack: u64,
    n: u64,
    buf: String,
    end_ns: u64,
    sending: bool,
    reading: bool,
    due_ns: u64,
}

impl Conn {
    fn new(spec: Spec, sh: Arc<Shared>, ws: Ws) -> Self {
        let i = spec.index;
        Self {
            out: Outcome {
                slow: spec.slow,
                room_indexes: spec.room_indexes.clone(),
                acked_rooms: spec
                    .send
                    .as_ref()
                    .map(|s| s.targets.iter().map(|t| (t.room, 0)).collect())
                    .unwrap_or_default(),
                ..Outcome::default()
            },
            spec,
            sh,
            ws,
            acks: Local::new(Kind::Ack, i),
            deliveries: Local::new(Kind::Delivery, i),
            queue: Vec::new(),
            sent_at: VecDeque::new(),
            base: 1_000,
            next_ack: 1_000,
            n: 0,
            buf: String::with_capacity(256),
            end_ns: u64::MAX,
            sending: false,
            reading: true,
            due_ns: u64::MAX,
        }
    }

    async fn drive(mut self, mut phase: watch::Receiver<Phase>) -> Outcome {
        loop {
            let due = (self.sending && self.due_ns != u64::MAX).then(|| {
                tokio::time::Instant::from_std(self.sh.epoch + Duration::from_nanos(self.due_ns))
            });
            tokio::select! {
                biased;
                changed = phase.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let p = *phase.borrow_and_update();
                    match p {
                        Phase::Setup => {}
                        Phase::Run { end_ns } => self.start(end_ns),
                        Phase::Drain => {
                            self.sending = false;
                            self.reading = !self.out.closed;
                        }
                        Phase::Stop => break,
                    }
                }
                frame = self.ws.next(), if self.reading => {
                    self.on_frame(frame);
                    // Everything already readable joins this batch.
                    while self.reading {
                        match self.ws.next().now_or_never() {
                            Some(frame) => self.on_frame(frame),
                            None => break,
                        }
                    }
                }
                () = sleep_until(due) => self.on_schedule(),
            }
            if !self.queue.is_empty() {
                self.write().await;
            }
        }
        self.acks.flush(&self.sh.latencies);
        self.deliveries.flush(&self.sh.latencies);
        self.out.unacked = self.sent_at.iter().filter(|s| s.0 != 0).count() as u64;
        self.out
    }

    fn start(&mut self, end_ns: u64) {
        self.end_ns = end_ns;
        if self.spec.slow {
            self.reading = false;
        }
        let Some(pace) = self.spec.send.as_ref().map(|s| s.pace) else {
            return;
        };
        self.sending = true;
        match pace {
            Pace::Window(w) => {
                let now = self.sh.now_ns();
                for _ in 0..w {
                    self.send_one(now);
                }
            }
            Pace::Every { offset_ns, .. } => self.due_ns = self.sh.now_ns() + offset_ns,
        }
    }

    fn on_schedule(&mut self) {
        let Some(Pace::Every { interval_ns, .. }) = self.spec.send.as_ref().map(|s| s.pace) else {
            return;
        };
        let now = self.sh.now_ns();
        // Catch up on every send that fell due, stamping each with the real send time.
        while self.sending && self.due_ns <= now {
            if now >= self.end_ns {
                self.sending = false;
                break;
            }
            self.out.max_lag_ns = self.out.max_lag_ns.max(now - self.due_ns);
            self.send_one(now);
            self.due_ns += interval_ns;
        }
    }

    fn send_one(&mut self, now: u64) {
        let Some(s) = &self.spec.send else { return };
        let ack = self.next_ack;
        self.next_ack += 1;
        self.n += 1;
        let target = (self.n % s.targets.len() as u64) as usize;
        s.targets[target]
            .template
            .write(&mut self.buf, ack, self.n, now);
        self.sent_at.push_back((now, target as u32));
        self.queue.push(Message::text(self.buf.as_str()));
        Counters::add(&self.sh.counters.sent, 1);
    }

    fn on_frame(&mut self, frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) {
        let text = match frame {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return self.on_closed(),
            Some(Ok(_)) => return,
        };
        let now = self.sh.now_ns();
        match proto::parse(text.as_str()) {
            Packet::Ping => self.queue.push(Message::text(proto::PONG)),
            Packet::Event {
                name: "received",
                body,
            } => {
                if let Some(stamp) = proto::stamp(body) {
                    let c = &self.sh.counters;
                    if self.spec.slow {
                        self.out.slow_delivered += 1;
                        Counters::add(&c.slow_delivered, 1);
                    } else {
                        Counters::add(&c.delivered, 1);
                        let latency = now.saturating_sub(stamp);
                        self.deliveries.push(latency, &self.sh.latencies);
                        if self.spec.trace {
                            self.out.trace.push((stamp, latency));
                        }
                        if now <= self.end_ns {
                            self.out.delivered_in_run += 1;
                        }
                    }
                }
            }
            Packet::Ack { id, body } => self.on_ack(id, proto::ack_ok(body), now),
            Packet::Closed | Packet::Refused(_) => self.on_closed(),
            _ => {}
        }
    }

    fn on_ack(&mut self, id: u64, ok: bool, now: u64) {
        let Some(slot) = id
            .checked_sub(self.base)
            .and_then(|i| self.sent_at.get_mut(i as usize))
        else {
            return;
        };
        let (sent, target) = std::mem::take(slot);
        while self.sent_at.front().is_some_and(|s| s.0 == 0) {
            self.sent_at.pop_front();
            self.base += 1;
        }
        if sent == 0 {
            return;
        }
        let c = &self.sh.counters;
        if ok {
            Counters::add(&c.acked, 1);
            self.out.acked += 1;
            if let Some(r) = self.out.acked_rooms.get_mut(target as usize) {
                r.1 += 1;
            }
            let receivers = self
                .spec
                .send
                .as_ref()
                .map_or(0, |s| s.targets[target as usize].receivers);
            Counters::add(&c.expected, receivers);
            self.acks.push(now.saturating_sub(sent), &self.sh.latencies);
            if now <= self.end_ns {
                self.out.acked_in_run += 1;
            }
        } else {
            Counters::add(&c.refused, 1);
        }
        if self.sending
            && matches!(
                self.spec.send.as_ref().map(|s| s.pace),
                Some(Pace::Window(_))
            )
        {
            if now < self.end_ns {
                self.send_one(now);
            } else {
                self.sending = false;
            }
        }
    }

    fn on_closed(&mut self) {
        if !self.out.closed {
            self.out.closed = true;
            self.out.closed_at_ns = self.sh.now_ns();
            Counters::add(&self.sh.counters.closed, 1);
        }
        self.reading = false;
        self.sending = false;
    }

    async fn write(&mut self) {
        let mut failed = false;
        for m in self.queue.drain(..) {
            if self.ws.feed(m).await.is_err() {
                failed = true;
                break;
            }
        }
        self.queue.clear();
        if failed || self.ws.flush().await.is_err() {
            self.on_closed();
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
