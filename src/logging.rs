//! Structured logs with tracing, to standard error. `RUST_LOG` filters them.

use tracing_subscriber::EnvFilter;

/// Starts logging as `text` (default) or `json`.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,socketioxide=warn,engineioxide=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
