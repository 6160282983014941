//! Logging setup: `tracing` to stderr, human-readable on a terminal or JSON lines with
//! `--log-format json`. The level comes from `--log-level` (or `RUST_LOG` when set). Nothing
//! here ever formats a secret: the types that hold one redact themselves. Lines go through
//! [`crate::progress::LogWriter`] so they do not tear a backfill progress bar.

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Install the global subscriber. Safe to call once per process; later calls are ignored.
pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::progress::LogWriter)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
