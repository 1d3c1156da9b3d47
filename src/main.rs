//! The `chatroom` binary: parse the command line, start logging, run.

use clap::Parser;

/// mimalloc instead of glibc's allocator: the delivery path allocates a packet per socket
/// per message, and glibc kept the arenas of argon2's 19 MiB hashes long after use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads and the first large allocations.
    let huge_pages = huge_pages_off();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let cli = chatroom::config::Cli::parse();
            chatroom::logging::init(&cli.log_format);
            if let Err(e) = huge_pages {
                tracing::warn!(error = %e, "transparent huge pages could not be turned off");
            }
            chatroom::run(cli).await
        })
}

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for them on its
/// arenas (`madvise(MADV_HUGEPAGE)`), and a huge page is resident in full, 2 MiB, as soon as
/// any byte of it is touched. A server of many idle sockets touches a little of many pages, so
/// huge pages make it larger for no gain in throughput (the idle scenario of
/// `docs/benchmarks.md` measures the memory per socket).
#[cfg(target_os = "linux")]
fn huge_pages_off() -> std::io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(true).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn huge_pages_off() -> std::io::Result<()> {
    Ok(())
}
