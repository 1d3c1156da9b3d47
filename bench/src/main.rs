//! `chatroom-bench`: a load generator that speaks the chatroom wire contract as clients do
//! (REST setup, then one authenticated Socket.IO socket per user over a raw WebSocket) and
//! reports throughput, lost deliveries, ack and delivery latency and the server's CPU and
//! memory.
//!
//! - [`proto`]: the Socket.IO / Engine.IO packets, parsed in place and pre-serialized.
//! - [`setup`]: users and rooms over REST.
//! - [`conn`]: one socket's handshake and its read/send loop.
//! - [`stats`]: counters and latency histograms.
//! - [`procstat`]: the server's CPU and RSS from `/proc`.
//! - [`runner`]: the phases of a run (connect, run, drain, stop) and the report.
//! - [`scenario`]: `rooms`, `fanout`, `idle`, `slow`.
//! - [`chatter`]: background sockets that type and reconnect beside a scenario.
//! - [`reactions`]: a `react` flood on one message of the scenario's first room.

mod chatter;
mod conn;
mod procstat;
mod proto;
mod reactions;
mod runner;
mod scenario;
mod setup;
mod stats;

use clap::{Parser, ValueEnum};

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Many small rooms, every member sending (default 50 users in rooms of 10).
    Rooms,
    /// One room with many members and one sender; delivery to all.
    Fanout,
    /// Many idle authenticated sockets: server memory per socket.
    Idle,
    /// Like `rooms`, with some members of each room that stop reading.
    Slow,
    /// Like `rooms`, measured again as the log grows: the same rooms are filled closed-loop
    /// until the server's log holds each of `--history` events, then, once its read tables
    /// have caught up and `--settle` seconds have passed, measured open-loop at `--rate`
    /// (default 2,000 msg/s; `--rate 0`: closed-loop with `--window`) for `--duration`.
    History,
}

/// Load generator for a chatroom server (run it with `--send-rate-limit 0`).
#[derive(Debug, Clone, Parser)]
#[command(name = "chatroom-bench", version)]
pub struct Args {
    /// The workload.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// The server's base URL.
    #[arg(
        long,
        env = "CHATROOM_BENCH_URL",
        default_value = "http://127.0.0.1:4999"
    )]
    pub url: String,
    /// The server's process id, for CPU and memory (default: the process listening on the
    /// URL's port).
    #[arg(long, env = "CHATROOM_BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Users (default: 50 for rooms and slow, 1,000 for fanout, min(sockets, 200) for idle).
    #[arg(long, env = "CHATROOM_BENCH_USERS")]
    pub users: Option<usize>,
    /// Members per room (rooms, slow, idle).
    #[arg(long, env = "CHATROOM_BENCH_ROOM_SIZE", default_value_t = 10)]
    pub room_size: usize,
    /// Rooms (default: one room for fanout, otherwise 2 x users / room size, so each user is
    /// in two rooms, as in the peers' workload of 50 users in 10 rooms of 10).
    #[arg(long, env = "CHATROOM_BENCH_ROOMS")]
    pub rooms: Option<usize>,
    /// Seconds of sending (of holding, for idle).
    #[arg(long, env = "CHATROOM_BENCH_DURATION", default_value_t = 10.0)]
    pub duration: f64,
    /// Total messages a second, open-loop, spread over the senders; 0 means closed-loop
    /// (default: closed-loop, except fanout: 10).
    #[arg(long, env = "CHATROOM_BENCH_RATE")]
    pub rate: Option<f64>,
    /// Unacknowledged messages each sender keeps in flight, closed-loop.
    #[arg(long, env = "CHATROOM_BENCH_WINDOW", default_value_t = 8)]
    pub window: usize,
    /// Idle sockets to open (idle).
    #[arg(long, env = "CHATROOM_BENCH_SOCKETS", default_value_t = 2000)]
    pub sockets: usize,
    /// Members of each room that stop reading (slow).
    #[arg(long, env = "CHATROOM_BENCH_SLOW", default_value_t = 1)]
    pub slow: usize,
    /// Extra characters of text in each message after its stamp.
    #[arg(long, env = "CHATROOM_BENCH_PAD", default_value_t = 0)]
    pub pad: usize,
    /// Seconds to wait after the run for acks and deliveries still on the way.
    #[arg(long, env = "CHATROOM_BENCH_DRAIN", default_value_t = 5.0)]
    pub drain: f64,
    /// Concurrent REST calls during setup.
    #[arg(long, env = "CHATROOM_BENCH_SETUP_CONCURRENCY", default_value_t = 16)]
    pub setup_concurrency: usize,
    /// Concurrent socket handshakes.
    #[arg(long, env = "CHATROOM_BENCH_CONNECT_CONCURRENCY", default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Runtime worker threads of the load generator.
    #[arg(long, env = "CHATROOM_BENCH_THREADS", default_value_t = 2)]
    pub threads: usize,
    /// Seconds to wait between connecting and sending (rooms, fanout, slow).
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
    /// Writes the send time and latency of every delivery to this file (rooms, slow, fanout),
    /// one line each, in nanoseconds, in the order sent: to see whether a tail is spread over
    /// the run or comes in stalls. Each connection keeps its own list (16 bytes a delivery).
    #[arg(long)]
    pub trace: Option<std::path::PathBuf>,
    /// Log sizes (events) at which `history` measures, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000,10000000")]
    pub history: Vec<u64>,
    /// Users of the background chatter (rooms, slow, fanout): one socket each, sending no
    /// message, typing and reconnecting now and then while the scenario is measured; 0: none.
    #[arg(long, default_value_t = 0)]
    pub chatter_users: usize,
    /// Rooms the chatter's users are spread over.
    #[arg(long, default_value_t = 500)]
    pub chatter_rooms: usize,
    /// Mean seconds between two `typing` of one chatter socket.
    #[arg(long, default_value_t = 10.0)]
    pub typing_every: f64,
    /// Mean seconds a chatter socket stays connected before it reconnects.
    #[arg(long, default_value_t = 30.0)]
    pub reconnect_every: f64,
    /// Switches the chatter's typing and reconnects off and on every this many seconds of
    /// the measured window, starting off, and prints the acked/s of each half (its sockets
    /// stay connected, unless `--chatter-off-closes`): an A/B within one run on one server, for a machine whose
    /// speed drifts between runs; 0: always on.
    #[arg(long, default_value_t = 0.0)]
    pub chatter_alternate: f64,
    /// With `--chatter-alternate`: off, the chatter's sockets are closed (opened again when
    /// on), so the other half runs as without the chatter at all.
    #[arg(long)]
    pub chatter_off_closes: bool,
    /// Reactions a second, open-loop, flooded on one message of the first room while the
    /// scenario is measured (rooms, slow, fanout); 0: no flood.
    #[arg(long, default_value_t = 0.0)]
    pub reaction_rate: f64,
    /// Members of the first room that flood reactions, one socket each, besides its senders.
    #[arg(long, default_value_t = 20)]
    pub reaction_users: usize,
    /// Emoji each flooding user toggles on and off in turn (1 to 8).
    #[arg(long, default_value_t = 4)]
    pub reaction_emoji: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(scenario::run(args))
}
