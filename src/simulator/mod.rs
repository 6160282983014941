//! Built-in fake of the SmartAssist report APIs (STUB: to be implemented).

pub mod generator;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What the simulator serves and how it misbehaves.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub seed: u64,
    pub account_id: String,
    pub iid: String,
    pub client_id: String,
    pub client_secret: String,
    pub agents: usize,
    pub bots: Vec<String>,
    pub enforce_jti: bool,
    pub latency: Duration,
    pub max_page_size: usize,
    pub legacy_shape: bool,
    pub rate_limit_per_minute: Option<u32>,
    /// One session completes per bot every `intent_interval`, starting at `intent_epoch`.
    pub intent_interval: Duration,
    pub intent_epoch: DateTime<Utc>,
    pub faults: FaultPlan,
}

/// Injected faults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {}

/// A simulator serving on loopback.
pub struct RunningSimulator {}

impl RunningSimulator {
    pub fn addr(&self) -> SocketAddr {
        todo!()
    }
    pub fn base_url(&self) -> String {
        todo!()
    }
    pub async fn shutdown(self) {
        todo!()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("cannot bind the simulator to {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub async fn start(_cfg: SimulatorConfig, _bind: SocketAddr) -> Result<RunningSimulator, SimulatorError> {
    todo!()
}
