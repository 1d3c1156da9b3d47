//! The command line, read once. Every setting of `serve` is also an environment variable.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// chatroom: an event-sourced real-time chat server.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log format: text or json.
    #[arg(
        long,
        env = "CHATROOM_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API, Socket.IO and the web page.
    Serve(Serve),
    /// Apply the database migrations and exit (start-up applies them too).
    Migrate(StoreArgs),
    /// Print a room's or a user's history straight from the log.
    Audit(Audit),
    /// Recompute every stream's hash chain and version sequence; non-zero exit on the first
    /// event that does not match. With --checkpoint, also prove the log still holds every
    /// event a signed checkpoint covered, unchanged and in order, and extends it. With
    /// --projections, rebuild every projection from the log into scratch tables and compare
    /// them with the live read tables instead.
    Verify(VerifyArgs),
    /// Sign a checkpoint of the log as it is now (its Merkle tree head and its streams' heads)
    /// into a file.
    Checkpoint {
        /// Where the data lives.
        #[command(flatten)]
        store: StoreArgs,
        /// The file to write (JSON; docs/operations.md gives its fields).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the log's checkpoint verification key (Ed25519, 64 hex digits).
    PublicKey(StoreArgs),
    /// Write a bundle of a room's events over a span, with the proofs and keys that let
    /// `verify-bundle` check it offline.
    Export(Export),
    /// Check a bundle offline, with no database: exit 1 when any event, link, proof, the
    /// room's head or a text does not hold.
    VerifyBundle {
        /// The bundle file.
        file: PathBuf,
        /// The log's public key (64 hex digits, or a file holding them).
        #[arg(long)]
        public_key: String,
    },
    /// Copy a log written by an earlier version (personal data in clear) into a new log under
    /// today's rules, keeping the old one aside until you remove it. Stop the server first. An
    /// EventStoreDB log is copied into another server: `--eventstore-url OLD
    /// --to-eventstore-url NEW`.
    Upgrade(Upgrade),
    /// Inspect or rebuild the read tables.
    Projections {
        /// What to do.
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Erase a user named by id or current name: everything `DELETE /api/user` does. With the
    /// embedded store, stop the server first; with PostgreSQL, servers may keep running.
    EraseUser(EraseUser),
    /// Legal holds: keep the keys that erasure and retention would destroy.
    Hold {
        /// What to do.
        #[command(subcommand)]
        command: HoldCommand,
    },
    /// Back up or restore the key store (without it, no sealed text of the log can be read).
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// `chatroom verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// A signed checkpoint (from `chatroom checkpoint` or `<data dir>/checkpoints/`) the log
    /// must still hold and extend.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// With --checkpoint: the key it must be signed with (64 hex digits, or a file holding
    /// them, as `chatroom public-key` prints them); default: this log's own key.
    #[arg(long, requires = "checkpoint")]
    pub public_key: Option<String>,
    /// Rebuild every projection from the log into scratch tables (a temporary database file
    /// beside the embedded one, or a scratch schema in PostgreSQL) and compare them with the
    /// live read tables row by row; exit status 1 listing the rows that differ. Read-only on
    /// the live tables: the server may keep running.
    #[arg(long, conflicts_with = "checkpoint")]
    pub projections: bool,
    /// With --projections, the retention limit the servers run with, which turns old
    /// messages into placeholders beside the log; each room's own limit applies too.
    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// `chatroom export`.
#[derive(Debug, Clone, Args)]
pub struct Export {
    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The room's id.
    #[arg(long)]
    pub room: String,
    /// Only events at or after this time (RFC 3339, or a date YYYY-MM-DD in UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Only events at or before this time.
    #[arg(long)]
    pub to: Option<String>,
    /// The bundle file to write (JSON).
    #[arg(long)]
    pub out: PathBuf,
}

/// `chatroom erase-user`.
#[derive(Debug, Clone, Args)]
pub struct EraseUser {
    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The user's id, or their current name (any case).
    pub user: String,
}

/// The retention limit the servers run with, for the commands that carry it out or report on
/// it.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// As `serve --retention-days`: messages older than this many days are past the limit;
    /// 0: no limit.
    #[arg(long, env = "CHATROOM_RETENTION_DAYS", default_value_t = 0)]
    pub retention_days: u32,
}

/// `chatroom hold ...`.
#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a hold on a room's or a user's keys and print its id.
    Add(HoldAdd),
    /// Lift a hold, then carry out at once the erasures and expiries it kept pending.
    Remove {
        /// Where the data lives.
        #[command(flatten)]
        store: StoreArgs,
        /// The retention limit to carry out.
        #[command(flatten)]
        retention: RetentionArgs,
        /// The hold's id, as `hold add` printed it.
        id: String,
    },
    /// Every hold: what it covers, why, since when, and what is pending under it.
    List {
        /// Where the data lives.
        #[command(flatten)]
        store: StoreArgs,
        /// The retention limit whose expiries count as pending.
        #[command(flatten)]
        retention: RetentionArgs,
    },
}

/// `chatroom hold add`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("covers").required(true).args(["room", "user"])))]
pub struct HoldAdd {
    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Hold every key of this room (the texts written in it), by id.
    #[arg(long)]
    pub room: Option<String>,
    /// Hold every key of this user (name, avatar, texts), by id or current name.
    #[arg(long)]
    pub user: Option<String>,
    /// Why (kept in the key store, never in the log).
    #[arg(long)]
    pub reason: String,
}

/// `chatroom keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write every key, hold and the name secret to a new file (a SQLite key store).
    Backup {
        /// Where the data lives.
        #[command(flatten)]
        store: StoreArgs,
        /// The file to write; it must not exist.
        file: PathBuf,
    },
    /// Add back what a backup holds and the key store lacks, then destroy again at once the
    /// keys of users erased since the backup (and of texts past the retention limit).
    Restore {
        /// Where the data lives.
        #[command(flatten)]
        store: StoreArgs,
        /// The retention limit to carry out.
        #[command(flatten)]
        retention: RetentionArgs,
        /// The backup file.
        file: PathBuf,
    },
}

/// `chatroom projections ...`.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's checkpoint and lag behind the log, and the events parked because a
    /// projection could not apply them (dead letters).
    Status(StoreArgs),
    /// Apply the parked events again, in log order; those that apply leave the list. Exit
    /// status 0 when none stays parked, 1 otherwise. The server may keep running.
    Retry(StoreArgs),
    /// Build a projection's tables afresh from the log beside the live ones, catch up, and
    /// switch over in one step while the server keeps serving.
    Rebuild {
        /// Where the data lives.
        #[command(flatten)]
        store: StoreArgs,
        /// The projection (user, room, room_member, room_record, room_ban, room_invite,
        /// room_code); all when omitted.
        name: Option<String>,
        /// Drop an interrupted rebuild's tables and start over instead of resuming.
        #[arg(long)]
        restart: bool,
    },
}

/// Output formats of `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per event, for people.
    Text,
    /// One JSON object per line (JSON Lines).
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

/// `chatroom audit`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["room", "user"])))]
pub struct Audit {
    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// A room id or join code.
    #[arg(long)]
    pub room: Option<String>,
    /// A user name (any case).
    #[arg(long)]
    pub user: Option<String>,
    /// Only events at or after this time (RFC 3339, or a date YYYY-MM-DD in UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events at or before this time; alone, it also shows the room as it stood then.
    #[arg(long)]
    pub until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Where the data lives: the embedded store in a folder, or PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Folder of the embedded store: the log, the read tables, sessions and media (media stay
    /// here with PostgreSQL too).
    #[arg(long, env = "CHATROOM_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user:pass@host:port/db); when set, the log, the read tables
    /// and sessions live there and several processes may share it.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// EventStoreDB/KurrentDB connection string (esdb://host:2113?tls=false, kurrentdb://...);
    /// when set, the log lives there (streams `chatroom-*`) while the read tables and sessions
    /// stay in --data-dir, or in PostgreSQL with --database-url.
    #[cfg(feature = "eventstoredb")]
    #[arg(long, env = "EVENTSTORE_URL")]
    pub eventstore_url: Option<String>,
}

/// `chatroom upgrade`.
#[derive(Debug, Clone, Args)]
pub struct Upgrade {
    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// With --eventstore-url: the EventStoreDB/KurrentDB server to write the upgraded log to,
    /// not the old log's (a server holds one log and streams cannot be renamed, so the old log
    /// stays where it is). The key store and the credentials go where --data-dir or
    /// --database-url keep them; serve with --eventstore-url set to this one afterwards.
    #[cfg(feature = "eventstoredb")]
    #[arg(long)]
    pub to_eventstore_url: Option<String>,
}

/// Settings of `chatroom serve`.
#[derive(Debug, Clone, Args)]
pub struct Serve {
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, env = "CHATROOM_LISTEN", default_value = "0.0.0.0:4999")]
    pub listen: SocketAddr,
    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Messages a second each user may send (bursts of max(100, this)); 0 turns the limit off.
    #[arg(long, env = "CHATROOM_SEND_RATE_LIMIT", default_value_t = 20.0)]
    pub send_rate_limit: f64,
    /// Room creations and joins a second each user may make over REST and Socket.IO (bursts of
    /// 10 times as many); 0 turns the limit off.
    #[arg(long, env = "CHATROOM_JOIN_RATE_LIMIT", default_value_t = 20.0)]
    pub join_rate_limit: f64,
    /// Sockets one user may have open on this process (more are refused with
    /// `too_many_connections`); 0 turns the limit off.
    #[arg(long, env = "CHATROOM_MAX_SOCKETS_PER_USER", default_value_t = 32)]
    pub max_sockets_per_user: usize,
    /// Lifetime of a login token, in seconds.
    #[arg(long, env = "CHATROOM_TOKEN_TTL_SECS", default_value_t = 86_400)]
    pub token_ttl_secs: u64,
    /// Folder of the built web client, served at `/`.
    #[arg(long, env = "CHATROOM_WEB_DIR", default_value = "./web/dist")]
    pub web_dir: PathBuf,
    /// Stop a room's actor after this many seconds without use.
    #[arg(long, env = "CHATROOM_ROOM_IDLE_SECS", default_value_t = 300)]
    pub room_idle_secs: u64,
    /// Make messages older than this many days unreadable (history, search, replay, and the
    /// log itself, by destroying their keys), checked every 10 minutes; 0: keep them.
    #[arg(long, env = "CHATROOM_RETENTION_DAYS", default_value_t = 0)]
    pub retention_days: u32,
    /// Sign a checkpoint of the log into `<data dir>/checkpoints/` every this many seconds
    /// (and at start); 0 turns it off.
    #[arg(long, env = "CHATROOM_CHECKPOINT_EVERY_SECS", default_value_t = 300)]
    pub checkpoint_every_secs: u64,
}
