//! The load generator against the real server: a short run of the workloads the benchmarks
//! use, checking that the tool speaks the contract end to end (every acked message delivered,
//! idle sockets kept open), not how fast anything is.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> Server {
    // `cargo test --workspace` builds the server's binary next to the tool's.
    let bin: PathBuf =
        PathBuf::from(env!("CARGO_BIN_EXE_chatroom-bench")).with_file_name("chatroom");
    assert!(
        bin.exists(),
        "the chatroom binary is not at {} (cargo build first)",
        bin.display()
    );
    let data = tempfile::tempdir().unwrap();
    let (child, url) = events::testing::spawn_listening(
        Command::new(&bin)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--send-rate-limit",
                "0",
                "--data-dir",
            ])
            .arg(data.path())
            .stderr(Stdio::null()),
    );
    Server {
        child,
        url,
        _data: data,
    }
}

/// Runs `chatroom-bench` with `args` (a command line, split on whitespace) against `server`.
fn bench(server: &Server, args: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_chatroom-bench"))
        .args(args.split_whitespace())
        .args([
            "--url",
            &server.url,
            "--server-pid",
            &server.child.id().to_string(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chatroom-bench {args} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn number_after(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
    text[at + label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in:\n{text}"))
}

#[test]
fn rooms_closed_and_open_loop_deliver_every_acked_message() {
    let s = server();
    for pace in ["--window 4", "--rate 200"] {
        let out = bench(
            &s,
            &format!(
                "rooms --users 10 --room-size 5 --rooms 4 --duration 1 --settle 0 --drain 10 {pace}"
            ),
        );
        let acked = number_after(&out, "acked ");
        let expected = number_after(&out, "expected ");
        assert!(acked > 0, "nothing acked:\n{out}");
        // Every user is in two rooms of 5: each acked message owes 5 deliveries.
        assert_eq!(expected, acked * 5, "{out}");
        assert_eq!(number_after(&out, "lost "), 0, "{out}");
        assert!(out.contains("delivery latency: p50"), "{out}");
    }
}

#[test]
fn a_trace_lists_every_delivery_in_the_order_sent() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.txt");
    let out = bench(
        &s,
        &format!(
            "rooms --users 10 --room-size 5 --rooms 4 --duration 1 --settle 0 --drain 10 --rate 200 --trace {}",
            path.display()
        ),
    );
    let received = number_after(&out, "received ");
    assert!(received > 0, "nothing delivered:\n{out}");
    assert_eq!(number_after(&out, "trace: "), received, "{out}");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("# send_ns latency_ns"));
    let rows: Vec<(u64, u64)> = lines
        .map(|l| {
            let (sent, latency) = l.split_once(' ').expect("two fields");
            (sent.parse().unwrap(), latency.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len() as u64, received);
    assert!(
        rows.windows(2).all(|w| w[0].0 <= w[1].0),
        "in the order sent"
    );
    // Sent within the one second of sending, each taking some time and less than the drain.
    assert!(
        rows.iter().all(|(sent, _)| *sent < 1_100_000_000),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|(_, l)| *l > 0 && *l < 10_000_000_000),
        "{rows:?}"
    );
    // Every message sent goes to the 5 members of its room: each send time 5 times.
    let mut per_send = std::collections::HashMap::new();
    for (sent, _) in &rows {
        *per_send.entry(*sent).or_insert(0) += 1;
    }
    assert!(per_send.values().all(|n| n % 5 == 0), "{per_send:?}");
}

#[test]
fn idle_sockets_stay_open_and_are_measured() {
    let s = server();
    let out = bench(&s, "idle --sockets 40 --users 10 --duration 1");
    // Memory sampled with the warm-up tenth, half and all of the sockets, and either a
    // per-socket figure over the second half or the reason there is none.
    assert!(out.contains(" KiB with 4 sockets, "), "{out}");
    assert!(out.contains(" KiB with 20, "), "{out}");
    assert!(out.contains(" KiB with 40\n"), "{out}");
    assert!(
        out.contains("KiB per socket over the second half (20 to 40 sockets)")
            || out.contains("no per-socket figure"),
        "{out}"
    );
    assert_eq!(
        number_after(&out, "sockets closed by the server while idle: "),
        0,
        "{out}"
    );
}

#[test]
fn fanout_delivers_every_message_to_every_member() {
    let s = server();
    let out = bench(
        &s,
        "fanout --users 30 --rate 10 --duration 1 --settle 0 --drain 10",
    );
    let acked = number_after(&out, "acked ");
    assert!(acked > 0, "nothing acked:\n{out}");
    // One room of 30: each acked message owes 30 deliveries.
    assert_eq!(number_after(&out, "expected "), acked * 30, "{out}");
    assert_eq!(number_after(&out, "lost "), 0, "{out}");
}

#[test]
fn slow_readers_are_reported_and_the_others_keep_reading() {
    let s = server();
    let out = bench(
        &s,
        "slow --users 10 --room-size 5 --slow 1 --window 4 --duration 1 --settle 0 --drain 5",
    );
    assert!(number_after(&out, "acked ") > 0, "nothing acked:\n{out}");
    assert!(out.contains("slow readers: "), "{out}");
    assert!(out.contains(" sockets stopped reading for the "), "{out}");
    assert_eq!(
        number_after(&out, "reading sockets closed by the server: "),
        0,
        "{out}"
    );
}

#[test]
fn history_fills_the_log_and_measures_at_each_size_closed_or_open_loop() {
    let s = server();
    for (pace, label) in [
        ("--rate 0 --window 4", "closed-loop window 4 per sender"),
        ("--rate 100", "open-loop 100 msg/s"),
    ] {
        let out = bench(
            &s,
            &format!(
                "history --users 10 --room-size 5 --rooms 4 --history 300,600 --duration 1 \
                 --settle 0 --drain 10 {pace}"
            ),
        );
        assert_eq!(out.matches(label).count(), 2, "{out}");
        assert_eq!(out.matches("lost 0").count(), 2, "{out}");
        // One summary row a size: the log's position (at least the size asked for), acked/s,
        // CPU per message and delivery p99.
        let rows: Vec<Vec<f64>> = out
            .split("=== summary: log events, acked/s, server CPU µs per message, delivery p99 ms")
            .nth(1)
            .unwrap_or_else(|| panic!("no summary in:\n{out}"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), 2, "{out}");
        for (row, size) in rows.iter().zip([300.0, 600.0]) {
            assert_eq!(row.len(), 4, "{out}");
            assert!(row[0] >= size && row[1] > 0.0, "{out}");
        }
    }
}
