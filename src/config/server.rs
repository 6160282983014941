//! The `[server]` section of `run`: the health/metrics listen address, the shutdown drain
//! timeout and the health threshold. Pure validation.

use std::time::Duration;

use serde::Deserialize;

use super::defaults;
use super::parse::Problems;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub shutdown_timeout_seconds: Option<u64>,
    pub unhealthy_after_intervals: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: std::net::SocketAddr,
    /// How long `run` waits for in-flight work after SIGTERM/SIGINT before abandoning it.
    pub shutdown_timeout: Duration,
    /// `/healthz` fails when a job has not succeeded for this many schedule intervals.
    pub unhealthy_after_intervals: u32,
}

/// Validates `[server]`.
pub fn validate(raw: &RawServer, p: &mut Problems) -> ServerConfig {
    let listen_raw = raw
        .listen
        .clone()
        .unwrap_or_else(|| defaults::LISTEN.into());
    let listen = match listen_raw.parse() {
        Ok(addr) => addr,
        Err(_) => {
            p.push(
                "server.listen",
                format!("{listen_raw:?} is not a socket address like 0.0.0.0:9464"),
            );
            std::net::SocketAddr::from(([127, 0, 0, 1], 9464))
        }
    };

    let shutdown_timeout_seconds = raw
        .shutdown_timeout_seconds
        .unwrap_or(defaults::SHUTDOWN_TIMEOUT_SECONDS);
    if !(1..=3600).contains(&shutdown_timeout_seconds) {
        p.push(
            "server.shutdown_timeout_seconds",
            "must be between 1 and 3600",
        );
    }
    let unhealthy_after_intervals = raw
        .unhealthy_after_intervals
        .unwrap_or(defaults::UNHEALTHY_AFTER_INTERVALS);
    if unhealthy_after_intervals == 0 {
        p.push("server.unhealthy_after_intervals", "must be at least 1");
    }
    ServerConfig {
        listen,
        shutdown_timeout: Duration::from_secs(shutdown_timeout_seconds),
        unhealthy_after_intervals,
    }
}
