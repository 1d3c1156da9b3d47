//! A reaction flood beside a measured scenario (`--reaction-rate`): `--reaction-users`
//! members of the scenario's first room, one socket each, that `react` open-loop on one
//! message of that room at `--reaction-rate` reactions a second in all, each user toggling
//! `--reaction-emoji` emoji on and off in turn, so that every reaction changes the message
//! (an event in the room's stream and a `message_updated` to every subscriber) while the
//! scenario's messages are measured. It counts acks, refusals by code and the acks' latency,
//! and prints them after the run.

use crate::proto::{self, NS, Packet};
use crate::setup::{Rest, User};
use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The emoji the flood toggles, in turn.
const EMOJI: [&str; 8] = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🔥", "👀"];

/// What the flood did.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    acked: AtomicU64,
    updates_heard: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
    /// Ack latencies in microseconds, from every socket.
    latencies_us: Mutex<Vec<u64>>,
}

/// The running flood.
pub struct Flood {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    counts: Arc<Counts>,
    started: Instant,
}

/// The flood's settings.
pub struct Plan<'a> {
    /// The server's base URL.
    pub url: &'a str,
    /// The run's name prefix.
    pub prefix: &'a str,
    /// The room to flood and its join code.
    pub room: (&'a str, &'a str),
    /// Flooding users (one socket each).
    pub users: usize,
    /// Reactions a second, over all users.
    pub rate: f64,
    /// Distinct emoji each user toggles (1 to 8).
    pub emoji: usize,
}

/// Registers the flood's users, joins them to the room, posts the message they react to and
/// starts every socket.
///
/// # Errors
/// When setup fails, or the message to react to is refused.
pub async fn start(rest: &Rest, plan: Plan<'_>) -> anyhow::Result<Flood> {
    let t = Instant::now();
    let users = plan.users.max(1);
    let (room, code) = plan.room;
    let accounts = rest
        .users(&format!("{}f", plan.prefix), users)
        .await
        .context("registering the flood's users")?;
    rest.join(
        &accounts,
        (0..users).map(|u| (u, code.to_owned())).collect(),
    )
    .await
    .context("joining the flood's users")?;
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        plan.url
            .trim_end_matches('/')
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1)
    );
    let mut sockets = Vec::with_capacity(users);
    for User { token } in &accounts {
        sockets.push(open(&ws_url, token, room).await?);
    }
    let seq = post_target(&mut sockets[0], room, plan.prefix).await?;
    let emoji = plan.emoji.clamp(1, EMOJI.len());
    println!(
        "reactions: {users} users flood message {seq} at {:.0}/s over {emoji} emoji (set up in {:.1} s)",
        plan.rate,
        t.elapsed().as_secs_f64()
    );
    let (stop, stop_rx) = watch::channel(false);
    let counts = Arc::new(Counts::default());
    let interval = Duration::from_secs_f64(users as f64 / plan.rate.max(0.001));
    let tasks = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let frames = (0..2 * emoji)
                .map(|k| react_frame(room, seq, EMOJI[k % emoji], k < emoji))
                .collect();
            let flooder = Flooder {
                ws,
                frames,
                counts: counts.clone(),
                // Spread the users' sends over the interval rather than all at once.
                first: interval.mul_f64(i as f64 / users as f64),
                interval,
            };
            tokio::spawn(flooder.run(stop_rx.clone()))
        })
        .collect();
    Ok(Flood {
        stop,
        tasks,
        counts,
        started: Instant::now(),
    })
}

impl Flood {
    /// Stops every socket and prints what the flood did.
    pub async fn stop(self) {
        let secs = self.started.elapsed().as_secs_f64();
        let _ = self.stop.send(true);
        let mut failed = 0;
        for t in self.tasks {
            if !matches!(t.await, Ok(Ok(()))) {
                failed += 1;
            }
        }
        let c = &self.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut lat = std::mem::take(&mut *c.latencies_us.lock().expect("not poisoned"));
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .map_or(0.0, |&us| us as f64 / 1000.0)
        };
        let refused = c.refused.lock().expect("not poisoned");
        let refused = if refused.is_empty() {
            "none".to_owned()
        } else {
            refused
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "reactions over {secs:.1} s: {} sent ({:.0}/s), {} acked ({:.0}/s), refused: {refused}; ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} message_updated received; {failed} sockets failed",
            get(&c.sent),
            get(&c.sent) as f64 / secs,
            get(&c.acked),
            get(&c.acked) as f64 / secs,
            pct(0.5),
            pct(0.99),
            lat.last().map_or(0.0, |&us| us as f64 / 1000.0),
            get(&c.updates_heard),
        );
    }
}

/// Connects one socket with `token` and joins it to `room`.
async fn open(url: &str, token: &str, room: &str) -> anyhow::Result<Ws> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(proto::ws_config()), false).await?;
    let mut sent_connect = false;
    loop {
        let Some(frame) = ws.next().await else {
            bail!("closed during the handshake");
        };
        let Message::Text(t) = frame? else { continue };
        match proto::parse(t.as_str()) {
            Packet::Open if !sent_connect => {
                ws.send(Message::text(proto::connect(token))).await?;
                sent_connect = true;
            }
            Packet::Connected => break,
            Packet::Refused(m) => bail!("refused: {m}"),
            Packet::Ping => ws.send(Message::text(proto::PONG)).await?,
            _ => {}
        }
    }
    ws.send(Message::text(proto::join_all(0, &[room.to_owned()])))
        .await?;
    wait_ack(&mut ws, 0).await.context("join_all")?;
    Ok(ws)
}

/// Waits for the ack `id` and returns its body when it says ok.
async fn wait_ack(ws: &mut Ws, id: u64) -> anyhow::Result<String> {
    let limit = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(limit);
    loop {
        let frame = tokio::select! {
            () = &mut limit => bail!("no ack {id} within 10 s"),
            frame = ws.next() => frame,
        };
        let Some(frame) = frame else {
            bail!("closed before ack {id}");
        };
        let Message::Text(t) = frame? else { continue };
        match proto::parse(t.as_str()) {
            Packet::Ping => ws.send(Message::text(proto::PONG)).await?,
            Packet::Ack { id: got, body } if got == id => {
                if !proto::ack_ok(body) {
                    bail!("refused: {body}");
                }
                return Ok(body.to_owned());
            }
            _ => {}
        }
    }
}

/// Posts the message the flood reacts to and returns its `seq`. Its text has no stamp, so
/// the scenario's sockets do not count it as one of theirs.
async fn post_target(ws: &mut Ws, room: &str, prefix: &str) -> anyhow::Result<u64> {
    let payload = serde_json::json!(["user_send_message", {
        "roomId": room, "id": format!("{prefix}-react-target"),
        "message": "react to me", "type": "input"
    }]);
    ws.send(Message::text(format!("42{NS},1{payload}"))).await?;
    let body = wait_ack(ws, 1)
        .await
        .context("posting the message to react to")?;
    let acks: serde_json::Value = serde_json::from_str(&body)?;
    acks[0]["seq"].as_u64().context("a send ack without seq")
}

/// A `react` frame with everything but the ack id, which follows `42/chatroom,`.
fn react_frame(room: &str, seq: u64, emoji: &str, on: bool) -> String {
    serde_json::json!(["react", {"roomId": room, "seq": seq, "emoji": emoji, "on": on}]).to_string()
}

/// The error code of a refused ack, as `{"ok": false, "error": {"code"}}` names it.
fn error_code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v[0]["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unreadable".to_owned())
}

struct Flooder {
    ws: Ws,
    /// The user's reactions in turn: each emoji on, then each off.
    frames: Vec<String>,
    counts: Arc<Counts>,
    first: Duration,
    interval: Duration,
}

impl Flooder {
    /// Sends every reaction that falls due (open-loop: a late one is sent at once, not
    /// skipped) and reads acks and updates until stopped.
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let start = tokio::time::Instant::now() + self.first;
        let mut n: u64 = 0;
        let mut in_flight: HashMap<u64, Instant> = HashMap::new();
        let mut latencies = Vec::new();
        let mut out = String::new();
        let result = loop {
            let due = start + self.interval.mul_f64(n as f64);
            tokio::select! {
                _ = stop.changed() => break Ok(()),
                () = tokio::time::sleep_until(due) => {
                    let now = tokio::time::Instant::now();
                    let mut batch = Vec::new();
                    while start + self.interval.mul_f64(n as f64) <= now {
                        let ack = n + 2;
                        out.clear();
                        out.push_str("42");
                        out.push_str(NS);
                        out.push(',');
                        out.push_str(&ack.to_string());
                        out.push_str(&self.frames[(n as usize) % self.frames.len()]);
                        batch.push(Message::text(out.clone()));
                        in_flight.insert(ack, Instant::now());
                        n += 1;
                    }
                    self.counts.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let mut sends = futures::stream::iter(batch.into_iter().map(Ok));
                    if let Err(e) = self.ws.send_all(&mut sends).await {
                        break Err(e.into());
                    }
                }
                frame = self.ws.next() => {
                    let Some(frame) = frame else { break Err(anyhow::anyhow!("closed by the server")) };
                    let Message::Text(t) = (match frame { Ok(f) => f, Err(e) => break Err(e.into()) }) else { continue };
                    match proto::parse(t.as_str()) {
                        Packet::Ping => {
                            if let Err(e) = self.ws.send(Message::text(proto::PONG)).await {
                                break Err(e.into());
                            }
                        }
                        Packet::Ack { id, body } => {
                            if let Some(sent) = in_flight.remove(&id) {
                                if proto::ack_ok(body) {
                                    self.counts.acked.fetch_add(1, Ordering::Relaxed);
                                    latencies.push(sent.elapsed().as_micros() as u64);
                                } else {
                                    *self.counts.refused.lock().expect("not poisoned")
                                        .entry(error_code(body)).or_default() += 1;
                                }
                            }
                        }
                        Packet::Event { name: "message_updated", .. } => {
                            self.counts.updates_heard.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            }
        };
        self.counts
            .latencies_us
            .lock()
            .expect("not poisoned")
            .extend(latencies);
        let _ = self.ws.close(None).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_react_frame_names_the_message_and_the_emoji() {
        let frame = react_frame("r1", 7, "👍", false);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v[0], "react");
        assert_eq!(
            v[1],
            serde_json::json!({"roomId": "r1", "seq": 7, "emoji": "👍", "on": false})
        );
        let parsed = format!("42{NS},5{frame}");
        assert!(matches!(
            proto::parse(&parsed),
            Packet::Event { name: "react", .. }
        ));
    }

    #[test]
    fn a_refusal_is_counted_by_its_code() {
        assert_eq!(
            error_code(r#"[{"ok":false,"error":{"code":"rate_limited","message":"slow down"}}]"#),
            "rate_limited"
        );
        assert_eq!(error_code("[]"), "unreadable");
    }
}
