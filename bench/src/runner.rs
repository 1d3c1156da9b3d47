//! The phases of a run, common to every scenario: open every socket (bounded concurrency) and
//! wait until all have joined; sample the server; broadcast `Run`; print a progress line a
//! second; broadcast `Drain` and wait until every owed delivery arrived or the drain timed
//! out; sample again; broadcast `Stop`, collect the outcomes and print the report.

use crate::conn::{self, JOIN_RETRY_SECS, Outcome, Phase, Shared, Spec};
use crate::procstat::{self, Sample};
use crate::stats::{Counters, Kind, Latencies, summary};
use anyhow::bail;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

/// Sockets opened and joined, waiting for the start.
pub struct Connected {
    /// Shared state of the connections.
    pub sh: Arc<Shared>,
    phase: watch::Sender<Phase>,
    tasks: Vec<JoinHandle<Outcome>>,
    /// How long connecting took.
    pub took: Duration,
}

/// Opens every socket of `specs` and waits until each has joined its rooms.
///
/// # Errors
/// When any socket fails its handshake (the others are closed first).
pub async fn connect(url: &str, specs: Vec<Spec>, concurrency: usize) -> anyhow::Result<Connected> {
    let started = Instant::now();
    let sh = Arc::new(Shared {
        url: ws_url(url),
        epoch: Instant::now(),
        counters: Counters::default(),
        latencies: Latencies::default(),
        gate: Semaphore::new(concurrency.max(1)),
    });
    let (phase, phase_rx) = watch::channel(Phase::Setup);
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let n = specs.len();
    let tasks = specs
        .into_iter()
        .map(|s| tokio::spawn(conn::run(s, sh.clone(), phase_rx.clone(), ready_tx.clone())))
        .collect();
    drop(ready_tx);
    let (mut ok, mut failed) = (0usize, Vec::new());
    while ok + failed.len() < n {
        match ready.recv().await {
            Some(Ok(())) => ok += 1,
            Some(Err(e)) => failed.push(e),
            None => break,
        }
        if (ok + failed.len()) % 1000 == 0 {
            eprintln!("  connected {ok}/{n}");
        }
    }
    let retries = Counters::get(&sh.counters.join_retries);
    if retries > 0 {
        println!("join_all sent again after {JOIN_RETRY_SECS} s without an ack: {retries} times");
    }
    let c = Connected {
        sh,
        phase,
        tasks,
        took: started.elapsed(),
    };
    if !failed.is_empty() {
        let first: Vec<_> = failed.iter().take(3).collect();
        println!(
            "{} of {n} sockets failed to connect, e.g. {first:?}",
            failed.len()
        );
        // A few lost handshakes are reported and the run goes on without them.
        if failed.len() * 100 > n {
            c.stop().await;
            bail!("too many sockets failed to connect");
        }
    }
    Ok(c)
}

fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let rest = base
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .unwrap_or_else(|| base.to_owned());
    format!("{rest}/socket.io/?EIO=4&transport=websocket")
}

/// Process readings around the measured window.
pub struct Window {
    /// The server before and after.
    pub server: Option<(Sample, Sample)>,
    /// This process before and after.
    pub bench: Option<(Sample, Sample)>,
    /// Seconds of sending.
    pub secs: f64,
    /// When sending started (shared clock, nanoseconds).
    pub start_ns: u64,
}

impl Connected {
    /// Sends for `secs`, printing progress, then drains for at most `drain` seconds.
    pub async fn load(
        &self,
        secs: f64,
        drain: f64,
        slow_readers: bool,
        pid: Option<u32>,
    ) -> Window {
        let c = &self.sh.counters;
        let server0 = pid.and_then(|p| procstat::sample(Some(p)));
        let bench0 = procstat::sample(None);
        let start = self.sh.now_ns();
        let end_ns = start + (secs * 1e9) as u64;
        let _ = self.phase.send(Phase::Run { end_ns });
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (mut last_a, mut last_d) = (0, 0);
        // Each line also shows the delivery latency of the samples recorded during its second
        // (connections record in batches of 128, so a line may include a few from just before):
        // whether a tail is spread over the run or comes in stalls.
        let mut last_h = self.sh.latencies.merged(Kind::Delivery);
        while self.sh.now_ns() < end_ns {
            let left = Duration::from_nanos(end_ns.saturating_sub(self.sh.now_ns()));
            tokio::select! {
                _ = tick.tick() => {}
                () = tokio::time::sleep(left) => {}
            }
            let (a, d) = (Counters::get(&c.acked), Counters::get(&c.delivered));
            let h = self.sh.latencies.merged(Kind::Delivery);
            let mut second = h.clone();
            second.subtract(&last_h).expect("counts only grow");
            last_h = h;
            eprintln!(
                "  t={:>5.1}s acked/s {:>8} delivered/s {:>9} closed {}  delivery p50 {:.1} p99 {:.1} max {:.1} ms",
                (self.sh.now_ns() - start) as f64 / 1e9,
                a - last_a,
                d - last_d,
                Counters::get(&c.closed),
                second.value_at_quantile(0.5) as f64 / 1e6,
                second.value_at_quantile(0.99) as f64 / 1e6,
                second.max() as f64 / 1e6,
            );
            (last_a, last_d) = (a, d);
        }
        let server1 = pid.and_then(|p| procstat::sample(Some(p)));
        let bench1 = procstat::sample(None);
        let _ = self.phase.send(Phase::Drain);
        let until = Instant::now() + Duration::from_secs_f64(drain);
        // Slow sockets read again now: wait until they have been quiet for a second too.
        let (mut slow_seen, mut slow_quiet_since) = (u64::MAX, Instant::now());
        while Instant::now() < until {
            let sent = Counters::get(&c.sent);
            let answered = Counters::get(&c.acked) + Counters::get(&c.refused);
            let slow = Counters::get(&c.slow_delivered);
            if slow != slow_seen {
                (slow_seen, slow_quiet_since) = (slow, Instant::now());
            }
            if answered >= sent
                && Counters::get(&c.delivered) >= Counters::get(&c.expected)
                && (!slow_readers || slow_quiet_since.elapsed() > Duration::from_secs(1))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Window {
            server: server0.zip(server1),
            bench: bench0.zip(bench1),
            secs: (end_ns - start) as f64 / 1e9,
            start_ns: start,
        }
    }

    /// Waits `secs` while the sockets only answer pings.
    pub async fn hold(&self, secs: f64, pid: Option<u32>) -> Window {
        let server0 = pid.and_then(|p| procstat::sample(Some(p)));
        let bench0 = procstat::sample(None);
        let start_ns = self.sh.now_ns();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        Window {
            server: server0.zip(pid.and_then(|p| procstat::sample(Some(p)))),
            bench: bench0.zip(procstat::sample(None)),
            secs,
            start_ns,
        }
    }

    /// Tells every socket to stop and collects what each saw.
    pub async fn stop(self) -> Vec<Outcome> {
        let _ = self.phase.send(Phase::Stop);
        let mut out = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            if let Ok(o) = t.await {
                out.push(o);
            }
        }
        out
    }
}

/// Prints the throughput, loss, latency and process part of the report.
pub fn report(sh: &Shared, w: &Window, outcomes: &[Outcome]) {
    let c = &sh.counters;
    let acked_in_run: u64 = outcomes.iter().map(|o| o.acked_in_run).sum();
    let delivered_in: u64 = outcomes.iter().map(|o| o.delivered_in_run).sum();
    let mut acked_in = std::collections::HashMap::new();
    for o in outcomes {
        for &(r, n) in &o.acked_rooms {
            *acked_in.entry(r).or_insert(0u64) += n;
        }
    }
    // Sockets that never joined are owed nothing.
    let not_owed: u64 = outcomes
        .iter()
        .filter(|o| o.failed)
        .flat_map(|o| o.room_indexes.iter())
        .map(|r| acked_in.get(r).copied().unwrap_or(0))
        .sum();
    let expected = Counters::get(&c.expected).saturating_sub(not_owed);
    let delivered = Counters::get(&c.delivered);
    let unacked: u64 = outcomes.iter().map(|o| o.unacked).sum();
    println!(
        "sent {}  acked {}  refused {}  unacked at stop {}",
        Counters::get(&c.sent),
        Counters::get(&c.acked),
        Counters::get(&c.refused),
        unacked
    );
    println!(
        "throughput over {:.1} s: acked/s {:.0}  delivered/s {:.0}",
        w.secs,
        acked_in_run as f64 / w.secs,
        delivered_in as f64 / w.secs
    );
    println!(
        "deliveries: expected {expected}  received {delivered}  lost {}",
        expected.saturating_sub(delivered)
    );
    println!(
        "ack latency:      {}",
        summary(&sh.latencies.merged(Kind::Ack))
    );
    println!(
        "delivery latency: {}",
        summary(&sh.latencies.merged(Kind::Delivery))
    );
    let lag = outcomes.iter().map(|o| o.max_lag_ns).max().unwrap_or(0);
    if lag > 0 {
        println!(
            "open-loop: worst send behind schedule {:.3} ms",
            lag as f64 / 1e6
        );
    }
    processes(w);
}

/// Writes every traced delivery to `path`, one line each: its send time (nanoseconds since
/// sending started) and its latency (nanoseconds), in the order sent; returns how many.
///
/// # Errors
/// When the file cannot be written.
pub fn write_trace(
    path: &std::path::Path,
    w: &Window,
    outcomes: &[Outcome],
) -> anyhow::Result<usize> {
    use std::io::Write;
    let mut all: Vec<(u64, u64)> = outcomes
        .iter()
        .flat_map(|o| o.trace.iter().copied())
        .collect();
    all.sort_unstable();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "# send_ns latency_ns")?;
    for (sent, latency) in &all {
        writeln!(f, "{} {latency}", sent.saturating_sub(w.start_ns))?;
    }
    f.flush()?;
    Ok(all.len())
}

/// Prints the server's and the generator's CPU and memory over the window.
pub fn processes(w: &Window) {
    match &w.server {
        Some((a, b)) => println!(
            "server: cpu {:.0}% of a core  rss {} -> {} KiB  threads {}",
            procstat::cpu_percent(a, b),
            a.rss_kib,
            b.rss_kib,
            b.threads
        ),
        None => println!("server: not sampled (no --server-pid and no listener found)"),
    }
    if let Some((a, b)) = &w.bench {
        println!(
            "bench:  cpu {:.0}% of a core  rss {} KiB",
            procstat::cpu_percent(a, b),
            b.rss_kib
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn socket_url_from_base() {
        assert_eq!(
            super::ws_url("http://127.0.0.1:5999/"),
            "ws://127.0.0.1:5999/socket.io/?EIO=4&transport=websocket"
        );
    }
}
