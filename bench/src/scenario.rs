//! The four workloads as plans of sockets:
//! - `rooms`: `--rooms` rooms of `--room-size` over `--users` users (by default each user is in
//!   two rooms: 50 users, 10 rooms of 10), one socket per user joined to all its rooms and
//!   sending to them in turn;
//! - `slow`: the same, but the last `--slow` members of each room send nothing and stop
//!   reading when the run starts; the report says whether the others were affected and what
//!   happened to the slow ones (closed by the server, or still behind);
//! - `fanout`: one room of all users, user 0 the only sender (open-loop, 10/s by default);
//! - `idle`: `--sockets` sockets over `--users` users, joined to their rooms, sending nothing;
//!   the server's RSS growth per socket.

use crate::conn::{Pace, Sending, Spec, Target};
use crate::proto::SendTemplate;
use crate::setup::{Rest, Room, User};
use crate::{Args, Scenario, procstat, runner};
use anyhow::Context;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Runs the scenario `args` names and prints its report.
///
/// # Errors
/// When setup or a handshake fails.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let port: u16 = args
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(80);
    let pid = args.server_pid.or_else(|| procstat::listener_pid(port));
    let users = args.users.unwrap_or(match args.scenario {
        Scenario::Rooms | Scenario::Slow | Scenario::History => 50,
        Scenario::Fanout => 1000,
        Scenario::Idle => args.sockets.min(200),
    });
    let room_size = match args.scenario {
        Scenario::Fanout => users,
        _ => args.room_size.clamp(1, users.max(1)),
    };
    let n_rooms = match args.scenario {
        Scenario::Fanout => 1,
        _ => args.rooms.unwrap_or((users * 2 / room_size).max(1)),
    };
    println!(
        "chatroom-bench {:?}: {} users, {} rooms of {}, server {} (pid {})",
        args.scenario,
        users,
        n_rooms,
        room_size,
        args.url,
        pid.map_or("unknown".to_owned(), |p| p.to_string())
    );

    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        % 1_000_000_000;
    let prefix = format!("bench{run_id}");
    let rest = Rest::new(&args.url, args.setup_concurrency)?;
    let t = Instant::now();
    let accounts = rest.users(&prefix, users).await.context("registering")?;
    let groups = groups(users, n_rooms, room_size);
    let rooms = rest
        .rooms_with_codes(&accounts, groups)
        .await
        .context("making rooms")?;
    let first_room = rooms.first().cloned();
    let rooms: Vec<Room> = rooms.into_iter().map(|(room, _)| room).collect();
    println!(
        "setup: {} users, {} rooms over REST in {:.1} s",
        users,
        rooms.len(),
        t.elapsed().as_secs_f64()
    );

    if args.scenario == Scenario::Idle {
        return idle(&args, &accounts, &rooms, pid).await;
    }
    if args.scenario == Scenario::History {
        return history(&args, &prefix, &accounts, &rooms, pid).await;
    }
    let mut specs = plan(&args, &prefix, &accounts, &rooms);
    for s in &mut specs {
        s.trace = args.trace.is_some();
    }
    let senders = specs.iter().filter(|s| s.send.is_some()).count();
    println!(
        "load: {} sockets, {senders} senders, {}, {:.0} s",
        specs.len(),
        pace(&args),
        args.duration
    );
    let chatter = match args.chatter_users {
        0 => None,
        n => Some(
            crate::chatter::start(
                &rest,
                &args.url,
                &prefix,
                n,
                args.chatter_rooms,
                args.typing_every,
                args.reconnect_every,
            )
            .await?,
        ),
    };
    let flood = match (&first_room, args.reaction_rate > 0.0) {
        (Some((room, code)), true) => Some(
            crate::reactions::start(
                &rest,
                crate::reactions::Plan {
                    url: &args.url,
                    prefix: &prefix,
                    room: (&room.id, code),
                    users: args.reaction_users,
                    rate: args.reaction_rate,
                    emoji: args.reaction_emoji,
                },
            )
            .await?,
        ),
        _ => None,
    };
    let c = runner::connect(&args.url, specs, args.connect_concurrency).await?;
    println!("connected and joined in {:.1} s", c.took.as_secs_f64());
    // Setup hashed a password per user (argon2id, 19 MiB each): give the server a moment to
    // hand that memory back before the measured window.
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let alternate = chatter
        .as_ref()
        .filter(|_| args.chatter_alternate > 0.0)
        .map(|ch| {
            let off = if args.chatter_off_closes {
                crate::chatter::Mode::Gone
            } else {
                crate::chatter::Mode::Quiet
            };
            crate::chatter::Alternate::start(ch, c.sh.clone(), args.chatter_alternate, off)
        });
    let w = c
        .load(
            args.duration,
            args.drain,
            args.scenario == Scenario::Slow,
            pid,
        )
        .await;
    if let Some(a) = alternate {
        a.report();
    }
    let sh = c.sh.clone();
    let outcomes = c.stop().await;
    if let Some(chatter) = chatter {
        chatter.stop().await;
    }
    if let Some(flood) = flood {
        flood.stop().await;
    }
    runner::report(&sh, &w, &outcomes);
    if let Some(path) = &args.trace {
        let n = runner::write_trace(path, &w, &outcomes)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("trace: {n} deliveries in {}", path.display());
    }
    if args.scenario == Scenario::Slow {
        slow_report(&outcomes, w.secs);
    } else {
        let closed = outcomes.iter().filter(|o| o.closed).count();
        if closed > 0 {
            println!("sockets closed by the server: {closed}");
        }
    }
    Ok(())
}

/// The server's `/healthz`.
async fn health(http: &reqwest::Client, url: &str) -> anyhow::Result<serde_json::Value> {
    Ok(http
        .get(format!("{}/healthz", url.trim_end_matches('/')))
        .send()
        .await?
        .json()
        .await?)
}

/// The log's head position, from the server's `/healthz`.
async fn log_head(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    health(http, url).await?["log_position"]
        .as_u64()
        .context("no log_position in /healthz")
}

/// Waits (at most `limit`) until the server's read tables have caught up with its log.
async fn caught_up(http: &reqwest::Client, url: &str, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let health = health(http, url).await?;
        let log = health["log_position"].as_u64().unwrap_or(0);
        let read = health["projections_position"].as_u64().unwrap_or(0);
        if read >= log || start.elapsed() > limit {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `history`: for each size in `--history`, fill the log closed-loop (in 10 s rounds over the
/// same rooms, so every room's own history grows too) until it holds that many events, then
/// measure open-loop and print the server's CPU per acknowledged message.
async fn history(
    args: &Args,
    prefix: &str,
    users: &[User],
    rooms: &[Room],
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut fill = args.clone();
    fill.rate = Some(0.0);
    let mut measure = args.clone();
    measure.rate = Some(rate(args));
    let mut summary = Vec::new();
    // Every round needs message ids of its own: the server answers a repeated id as a retry.
    let mut round = 0;
    let mut tags = move || {
        round += 1;
        format!("{prefix}r{round}")
    };
    for &target in &args.history {
        let filled = Instant::now();
        let mut head = log_head(&http, &args.url).await?;
        while head < target {
            let c = runner::connect(
                &args.url,
                plan(&fill, &tags(), users, rooms),
                args.connect_concurrency,
            )
            .await?;
            let left = (target - head) as f64;
            // Ten-second rounds; the last one shorter, guessed from the rate so far.
            let _ = c
                .load(10f64.min(left / 20_000.0).max(1.0), 5.0, false, None)
                .await;
            c.stop().await;
            head = log_head(&http, &args.url).await?;
            eprintln!("  log at {head} of {target} events");
        }
        let fill_time = filled.elapsed().as_secs_f64();
        // The server finishes the fill's work (the read tables catching up with the log) before
        // the measured window, so that the window measures its own messages only.
        let waited = Instant::now();
        caught_up(&http, &args.url, Duration::from_secs(120)).await?;
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
        println!(
            "=== log at {head} events (filled for {fill_time:.0} s, read tables caught up and \
             settled in {:.1} s); {} for {:.0} s",
            waited.elapsed().as_secs_f64(),
            pace(&measure),
            args.duration
        );
        let c = runner::connect(
            &args.url,
            plan(&measure, &tags(), users, rooms),
            args.connect_concurrency,
        )
        .await?;
        let threads0 = pid.map(procstat::threads).unwrap_or_default();
        let w = c.load(args.duration, args.drain, false, pid).await;
        let threads1 = pid.map(procstat::threads).unwrap_or_default();
        let sh = c.sh.clone();
        let outcomes = c.stop().await;
        runner::report(&sh, &w, &outcomes);
        let acked: u64 = outcomes.iter().map(|o| o.acked_in_run).sum();
        if let Some((a, b)) = w.server {
            let per = (b.cpu_secs - a.cpu_secs) * 1e6 / acked.max(1) as f64;
            println!("server CPU per acknowledged message: {per:.1} µs");
            let by_thread: Vec<String> = threads1
                .iter()
                .map(|(name, t1)| {
                    let t0 = threads0.get(name).copied().unwrap_or(0.0);
                    format!("{name} {:.1}", (t1 - t0) * 1e6 / acked.max(1) as f64)
                })
                .collect();
            println!("  by thread (µs per message): {}", by_thread.join(", "));
            let p99 = sh
                .latencies
                .merged(crate::stats::Kind::Delivery)
                .value_at_quantile(0.99) as f64
                / 1e6;
            summary.push((head, acked as f64 / w.secs, per, p99));
        }
    }
    println!("=== summary: log events, acked/s, server CPU µs per message, delivery p99 ms");
    for (head, acked, per, p99) in summary {
        println!("{head:>12} {acked:>9.0} {per:>8.1} {p99:>8.2}");
    }
    Ok(())
}

/// How [`plan`] paces the senders, as the reports print it.
fn pace(args: &Args) -> String {
    match rate(args) {
        r if r > 0.0 => format!("open-loop {r} msg/s in total"),
        _ => format!("closed-loop window {} per sender", args.window.max(1)),
    }
}

fn rate(args: &Args) -> f64 {
    args.rate.unwrap_or(match args.scenario {
        Scenario::Fanout => 10.0,
        Scenario::History => 2000.0,
        _ => 0.0,
    })
}

/// Room `r` holds the users of slots `r * size .. (r + 1) * size`, slot `s` being user
/// `s % users`: with 50 users in 10 rooms of 10, each user is in two rooms.
fn groups(users: usize, rooms: usize, size: usize) -> Vec<Vec<usize>> {
    (0..rooms)
        .map(|r| {
            let mut m: Vec<usize> = (0..size).map(|k| (r * size + k) % users).collect();
            let mut seen = std::collections::HashSet::new();
            m.retain(|u| seen.insert(*u));
            m
        })
        .collect()
}

/// One socket per user, joined to all its rooms; who sends, at which pace, who is slow.
fn plan(args: &Args, prefix: &str, users: &[User], rooms: &[Room]) -> Vec<Spec> {
    let mut slow = vec![false; users.len()];
    if args.scenario == Scenario::Slow {
        for room in rooms {
            let n = room.members.len();
            for &u in &room.members[n - args.slow.min(n.saturating_sub(1))..] {
                slow[u] = true;
            }
        }
    }
    let receivers: Vec<u64> = rooms
        .iter()
        .map(|r| r.members.iter().filter(|&&u| !slow[u]).count() as u64)
        .collect();
    let mut mine: Vec<Vec<usize>> = vec![Vec::new(); users.len()];
    for (i, room) in rooms.iter().enumerate() {
        for &u in &room.members {
            mine[u].push(i);
        }
    }
    let mut specs = Vec::with_capacity(users.len());
    for (u, user) in users.iter().enumerate() {
        let sends = !slow[u] && (args.scenario != Scenario::Fanout || u == 0);
        let tag = format!("{prefix}-{u}");
        specs.push(Spec {
            index: u,
            token: user.token.clone(),
            rooms: mine[u].iter().map(|&r| rooms[r].id.clone()).collect(),
            send: (sends && !mine[u].is_empty()).then(|| Sending {
                targets: mine[u]
                    .iter()
                    .map(|&r| Target {
                        template: SendTemplate::new(&rooms[r].id, &tag, args.pad),
                        receivers: receivers[r],
                        room: r,
                    })
                    .collect(),
                pace: Pace::Window(args.window.max(1)),
            }),
            slow: slow[u],
            room_indexes: mine[u].clone(),
            trace: false,
        });
    }
    // Open-loop: the total rate is spread evenly over the senders, their first sends staggered.
    let r = rate(args);
    if r > 0.0 {
        let senders: Vec<usize> = (0..specs.len())
            .filter(|&i| specs[i].send.is_some())
            .collect();
        let interval_ns = (senders.len() as f64 * 1e9 / r) as u64;
        for (j, &i) in senders.iter().enumerate() {
            if let Some(s) = specs[i].send.as_mut() {
                s.pace = Pace::Every {
                    interval_ns,
                    offset_ns: (j as f64 * 1e9 / r) as u64,
                };
            }
        }
    }
    specs
}

fn slow_report(outcomes: &[crate::conn::Outcome], secs: f64) {
    let slow: Vec<_> = outcomes.iter().filter(|o| o.slow).collect();
    let normal_closed = outcomes.iter().filter(|o| !o.slow && o.closed).count();
    let closed: Vec<_> = slow.iter().filter(|o| o.closed).collect();
    let mut acked_in = std::collections::HashMap::new();
    for o in outcomes {
        for &(r, n) in &o.acked_rooms {
            *acked_in.entry(r).or_insert(0u64) += n;
        }
    }
    let owed: u64 = slow
        .iter()
        .flat_map(|o| o.room_indexes.iter())
        .map(|r| acked_in.get(r).copied().unwrap_or(0))
        .sum();
    let got: u64 = slow.iter().map(|o| o.slow_delivered).sum();
    println!(
        "slow readers: {} sockets stopped reading for the {secs:.0} s run; {} closed by the server, {} still open",
        slow.len(),
        closed.len(),
        slow.len() - closed.len()
    );
    println!(
        "slow readers: {got} of the {owed} messages acked in their rooms reached them \
         (read after the run, before any close); the rest resume with `since`"
    );
    if let Some(first) = closed.iter().map(|o| o.closed_at_ns).min() {
        let last = closed.iter().map(|o| o.closed_at_ns).max().unwrap_or(first);
        println!(
            "slow readers: closed between {:.1} s and {:.1} s on the bench clock",
            first as f64 / 1e9,
            last as f64 / 1e9
        );
    }
    println!("reading sockets closed by the server: {normal_closed}");
}

async fn idle(args: &Args, users: &[User], rooms: &[Room], pid: Option<u32>) -> anyhow::Result<()> {
    let mut mine: Vec<Vec<String>> = vec![Vec::new(); users.len()];
    for r in rooms {
        for &u in &r.members {
            mine[u].push(r.id.clone());
        }
    }
    let specs: Vec<Spec> = (0..args.sockets)
        .map(|i| {
            let u = i % users.len();
            Spec {
                index: i,
                token: users[u].token.clone(),
                rooms: mine[u].clone(),
                send: None,
                slow: false,
                room_indexes: Vec::new(),
                trace: false,
            }
        })
        .collect();
    // A first tenth of the sockets warms the server up (allocator pages, caches, tasks, and the
    // memory registration left behind). Memory is then sampled at half and at all of the
    // sockets: the growth over the second half is the figure, since memory freed after setup
    // (argon2 registrations) can still be in the process at the first samples and be reused
    // by the sockets that come after them.
    let (warm, half) = (args.sockets / 10, args.sockets / 2);
    let mut specs = specs;
    let mut rest = specs.split_off(warm);
    let after_half = rest.split_off(half - warm);
    // The warm-up tenth and the rest of the first half, each held and then sampled.
    let mut held = Vec::new();
    let mut samples = Vec::new();
    for part in [specs, rest] {
        held.push(runner::connect(&args.url, part, args.connect_concurrency).await?);
        tokio::time::sleep(Duration::from_secs(2)).await;
        samples.push(pid.and_then(|p| procstat::sample(Some(p))));
    }
    let c = runner::connect(&args.url, after_half, args.connect_concurrency).await?;
    println!(
        "idle: {} sockets over {} users connected and joined in {:.1} s (after {warm} to warm up in {:.1} s)",
        args.sockets - warm,
        users.len(),
        held[1].took.as_secs_f64() + c.took.as_secs_f64(),
        held[0].took.as_secs_f64()
    );
    // Let the server settle (allocator, lazy buffers) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let w = c.hold(args.duration, pid).await;
    let after = w.server.map(|(_, b)| b);
    let closed = crate::stats::Counters::get(&c.sh.counters.closed)
        + held
            .iter()
            .map(|h| crate::stats::Counters::get(&h.sh.counters.closed))
            .sum::<u64>();
    let _ = c.stop().await;
    for h in held {
        let _ = h.stop().await;
    }
    runner::processes(&w);
    match (samples[0], samples[1], after) {
        (Some(w), Some(h), Some(a)) => {
            println!(
                "idle: server rss {} KiB with {warm} sockets, {} KiB with {half}, {} KiB with {}",
                w.rss_kib, h.rss_kib, a.rss_kib, args.sockets
            );
            let per = |from: u64, to: u64, n: usize| {
                (to > from).then(|| (to - from) as f64 / n.max(1) as f64)
            };
            match per(h.rss_kib, a.rss_kib, args.sockets - half) {
                Some(kib) => println!(
                    "idle: {kib:.1} KiB per socket over the second half ({} to {} sockets)",
                    half, args.sockets
                ),
                None => println!(
                    "idle: no per-socket figure: the server's memory did not grow over the \
                     second half (memory freed earlier was reused)"
                ),
            }
            if let Some(kib) = per(w.rss_kib, a.rss_kib, args.sockets - warm) {
                println!(
                    "idle: {kib:.1} KiB per socket after the warm-up ({warm} to {} sockets)",
                    args.sockets
                );
            }
        }
        _ => println!("idle: server memory not sampled (give --server-pid)"),
    }
    println!("idle: sockets closed by the server while idle: {closed}");
    Ok(())
}
