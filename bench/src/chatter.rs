//! Background chatter beside a measured scenario: `--chatter-users` users in
//! `--chatter-rooms` rooms, one socket each, that send no message but type now and then
//! (`typing` every `--typing-every` seconds on average, in one of their rooms) and disconnect
//! and connect again now and then (every `--reconnect-every` seconds on average), so that the
//! server carries presence and typing traffic while the scenario's messages are measured.
//! Each socket reads and drops what it gets (typing, presence, join notices) and answers
//! pings; what it counts is printed after the run.

use crate::proto::{self, NS, Packet};
use crate::setup::{Rest, Room, User};
use crate::stats::Kind;
use anyhow::Context;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// What the chatter did.
#[derive(Default)]
pub struct Counts {
    typed: AtomicU64,
    typing_heard: AtomicU64,
    presence_heard: AtomicU64,
    connects: AtomicU64,
    failures: AtomicU64,
}

/// The running chatter.
pub struct Chatter {
    stop: watch::Sender<bool>,
    mode: watch::Sender<Mode>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    counts: Arc<Counts>,
    started: std::time::Instant,
}

/// A number in `[0, 1)` from a small per-socket generator (xorshift), without a dependency.
fn unit(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

/// An exponential wait of mean `mean` seconds (a Poisson process per socket).
fn wait(state: &mut u64, mean: f64) -> Duration {
    Duration::from_secs_f64(-mean * (1.0 - unit(state)).ln())
}

/// Registers the chatter's users, makes its rooms and connects every socket.
///
/// # Errors
/// When setup over REST fails.
pub async fn start(
    rest: &Rest,
    url: &str,
    prefix: &str,
    users: usize,
    rooms: usize,
    typing_every: f64,
    reconnect_every: f64,
) -> anyhow::Result<Chatter> {
    let t = std::time::Instant::now();
    let accounts = rest
        .users(&format!("{prefix}c"), users)
        .await
        .context("registering the chatter's users")?;
    let size = users.div_ceil(rooms.max(1)).max(1);
    let groups: Vec<Vec<usize>> = (0..users)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(<[usize]>::to_vec)
        .collect();
    let made = rest
        .rooms(&accounts, groups)
        .await
        .context("making the chatter's rooms")?;
    println!(
        "chatter: {users} users in {} rooms over REST in {:.1} s; typing every {typing_every} s, reconnecting every {reconnect_every} s (each, on average)",
        made.len(),
        t.elapsed().as_secs_f64()
    );
    let mut room_of = vec![String::new(); users];
    for Room { id, members } in &made {
        for &m in members {
            room_of[m] = id.clone();
        }
    }
    let ws = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        url.trim_end_matches('/')
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1)
    );
    let (stop, stop_rx) = watch::channel(false);
    let (mode, mode_rx) = watch::channel(Mode::On);
    let counts = Arc::new(Counts::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let tasks = accounts
        .into_iter()
        .zip(room_of)
        .enumerate()
        .map(|(i, (User { token }, room))| {
            let socket = Socket {
                url: ws.clone(),
                token,
                room,
                seed: 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
                typing_every,
                reconnect_every,
                counts: counts.clone(),
                gate: gate.clone(),
                mode: mode_rx.clone(),
            };
            tokio::spawn(socket.run(stop_rx.clone()))
        })
        .collect();
    // Measured in its steady state: every socket connected once before the scenario starts.
    let t = std::time::Instant::now();
    while counts.connects.load(Ordering::Relaxed) < users as u64
        && t.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "chatter: {} sockets connected in {:.1} s",
        counts.connects.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64()
    );
    Ok(Chatter {
        stop,
        mode,
        tasks,
        counts,
        started: std::time::Instant::now(),
    })
}

impl Chatter {
    /// Stops every socket and prints what the chatter did.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let c = &self.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        println!(
            "chatter over {secs:.0} s: {} typing sent ({:.0}/s), {} typing and {} presence received, {} connects, {} failed",
            get(&c.typed),
            get(&c.typed) as f64 / secs,
            get(&c.typing_heard),
            get(&c.presence_heard),
            get(&c.connects),
            get(&c.failures)
        );
    }
}

/// What the chatter's sockets do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Type and reconnect now and then.
    On,
    /// Stay connected, answering pings only.
    Quiet,
    /// Disconnected, until switched on again.
    Gone,
}

/// The chatter switched off and on every `every` seconds while the scenario sends, with the
/// scenario's acks counted per state, but for the first moments after each switch: a second
/// when off is [`Mode::Quiet`], 40 % of the half when it is [`Mode::Gone`] (5,000 sockets
/// closing or opening at once, and the presence that follows).
pub struct Alternate {
    task: tokio::task::JoinHandle<()>,
    /// What was counted with the chatter off, then on.
    tally: Arc<std::sync::Mutex<[Half; 2]>>,
    every: f64,
    off: Mode,
}

/// What one state of the chatter counted: acks, seconds and delivery latencies.
struct Half {
    acked: u64,
    secs: f64,
    delivery: hdrhistogram::Histogram<u64>,
}

impl Alternate {
    /// Switches `chatter` to `off` now, then on and off again every `every` seconds.
    pub fn start(chatter: &Chatter, sh: Arc<crate::conn::Shared>, every: f64, off: Mode) -> Self {
        let half = || {
            let mut delivery = sh.latencies.merged(Kind::Delivery);
            delivery.reset();
            Half {
                acked: 0,
                secs: 0.0,
                delivery,
            }
        };
        let tally = Arc::new(std::sync::Mutex::new([half(), half()]));
        let (mode, counted) = (chatter.mode.clone(), tally.clone());
        let skip = if off == Mode::Gone { every * 0.4 } else { 1.0 };
        mode.send_replace(off);
        let task = tokio::spawn(async move {
            let acked = || sh.counters.acked.load(Ordering::Relaxed);
            let mut on = false;
            loop {
                tokio::time::sleep(Duration::from_secs_f64(skip)).await;
                let (a0, t0) = (acked(), std::time::Instant::now());
                let h0 = sh.latencies.merged(Kind::Delivery);
                tokio::time::sleep(Duration::from_secs_f64((every - skip).max(1.0))).await;
                let mut h = sh.latencies.merged(Kind::Delivery);
                h.subtract(&h0).expect("counts only grow");
                let mut t = counted.lock().expect("tally");
                let half = &mut t[usize::from(on)];
                half.acked += acked() - a0;
                half.secs += t0.elapsed().as_secs_f64();
                half.delivery.add(&h).expect("same bounds");
                drop(t);
                on = !on;
                mode.send_replace(if on { Mode::On } else { off });
            }
        });
        Self {
            task,
            tally,
            every,
            off,
        }
    }

    /// Stops switching and prints the acked/s and delivery p99 of each state.
    pub fn report(self) {
        self.task.abort();
        let t = self.tally.lock().expect("tally");
        let rate = |h: &Half| {
            if h.secs > 0.0 {
                h.acked as f64 / h.secs
            } else {
                0.0
            }
        };
        let p99 = |h: &Half| h.delivery.value_at_quantile(0.99) as f64 / 1e6;
        let (off, on) = (rate(&t[0]), rate(&t[1]));
        println!(
            "chatter switched every {} s: off ({:?}, {:.0} s counted) acked/s {off:.0}, delivery p99 {:.2} ms; on ({:.0} s counted) acked/s {on:.0}, delivery p99 {:.2} ms; acked on/off {:.3}",
            self.every,
            self.off,
            t[0].secs,
            p99(&t[0]),
            t[1].secs,
            p99(&t[1]),
            if off > 0.0 { on / off } else { 0.0 }
        );
    }
}

struct Socket {
    url: String,
    token: String,
    room: String,
    seed: u64,
    typing_every: f64,
    reconnect_every: f64,
    counts: Arc<Counts>,
    gate: Arc<tokio::sync::Semaphore>,
    mode: watch::Receiver<Mode>,
}

enum Ended {
    Stopped,
    Reconnect,
    Gone,
}

impl Socket {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.session(&mut stop).await {
                Ok(Ended::Stopped) => return,
                Ok(Ended::Reconnect) => {}
                Ok(Ended::Gone) => {
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = self.mode.wait_for(|m| *m != Mode::Gone) => {}
                    }
                }
                Err(_) => {
                    self.counts.failures.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One connection: connect and join, then type now and then until it is time to
    /// reconnect or to stop.
    async fn session(&mut self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<Ended> {
        let mut ws = {
            let _permit = self.gate.acquire().await;
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
                &self.url,
                Some(proto::ws_config()),
                false,
            )
            .await?;
            let mut sent_connect = false;
            loop {
                let Some(frame) = ws.next().await else {
                    anyhow::bail!("closed during the handshake");
                };
                let Message::Text(t) = frame? else { continue };
                match proto::parse(t.as_str()) {
                    Packet::Open if !sent_connect => {
                        ws.send(Message::text(proto::connect(&self.token))).await?;
                        sent_connect = true;
                    }
                    Packet::Connected => break,
                    Packet::Refused(m) => anyhow::bail!("refused: {m}"),
                    Packet::Ping => ws.send(Message::text(proto::PONG)).await?,
                    _ => {}
                }
            }
            ws.send(Message::text(proto::join_all(
                0,
                std::slice::from_ref(&self.room),
            )))
            .await?;
            ws
        };
        self.counts.connects.fetch_add(1, Ordering::Relaxed);
        if *self.mode.borrow_and_update() == Mode::Gone {
            let _ = ws.close(None).await;
            return Ok(Ended::Gone);
        }
        let typing = format!(
            "42{NS},{}",
            serde_json::json!(["typing", {"roomId": self.room}])
        );
        // Both timers live across the loop, instead of a timer entry registered and cancelled
        // anew for every frame received.
        let reconnect = tokio::time::sleep(wait(&mut self.seed, self.reconnect_every));
        let typing_due = tokio::time::sleep(wait(&mut self.seed, self.typing_every));
        tokio::pin!(reconnect, typing_due);
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return Ok(Ended::Stopped);
                }
                Ok(()) = self.mode.changed() => {
                    if *self.mode.borrow_and_update() == Mode::Gone {
                        let _ = ws.close(None).await;
                        return Ok(Ended::Gone);
                    }
                }
                () = &mut reconnect => {
                    if *self.mode.borrow() == Mode::On {
                        let _ = ws.close(None).await;
                        return Ok(Ended::Reconnect);
                    }
                    let next = tokio::time::Instant::now() + wait(&mut self.seed, self.reconnect_every);
                    reconnect.as_mut().reset(next);
                }
                () = &mut typing_due => {
                    if *self.mode.borrow() == Mode::On {
                        ws.send(Message::text(typing.clone())).await?;
                        self.counts.typed.fetch_add(1, Ordering::Relaxed);
                    }
                    let next = tokio::time::Instant::now() + wait(&mut self.seed, self.typing_every);
                    typing_due.as_mut().reset(next);
                }
                frame = ws.next() => {
                    let Some(frame) = frame else { anyhow::bail!("closed by the server") };
                    let Message::Text(t) = frame? else { continue };
                    let t = t.as_str();
                    if proto::parse(t) == Packet::Ping {
                        ws.send(Message::text(proto::PONG)).await?;
                    } else if t.contains("[\"typing\"") {
                        self.counts.typing_heard.fetch_add(1, Ordering::Relaxed);
                    } else if t.contains("[\"presence\"") {
                        self.counts.presence_heard.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}
