//! The `chatroom` binary: parse the command line, start logging, run.

use clap::Parser;

/// mimalloc instead of glibc's allocator: the delivery path allocates a packet per socket
/// per message, and glibc kept the arenas of argon2's 19 MiB hashes long after use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = chatroom::config::Cli::parse();
    chatroom::logging::init(&cli.log_format);
    chatroom::run(cli).await
}
