//! The `chatroom` binary: parse the command line, start logging, run.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = chatroom::config::Cli::parse();
    chatroom::logging::init(&cli.log_format);
    chatroom::run(cli).await
}
