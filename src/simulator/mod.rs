//! Built-in fake of the SmartAssist report APIs, served over HTTP on loopback for the `demo`
//! command, the integration tests and the benchmarks. It follows the documented wire behaviour
//! (URL spellings, `auth` JWT with Enforce JTI, the per-minute rate limit, response quirks) and
//! can inject faults.
//!
//! Layout: one table, `MODELS`, lists the report APIs served; each is an API model in its own
//! folder (named after its dataset, e.g. [`user_status`], [`call_details`], [`queue_stats`]):
//! its route, handler, renderer, its own settings type (read from
//! [`SimulatorConfig::models`]) and the pure generator of its data, which tests use as the
//! independent source of expected values; through [`truth`], the model also says which rows
//! the dataset exporting it must hold (the compliance suite's expected rows). The core knows
//! no model by name: `model` is the contract, `server` the generic dispatcher (auth, rate
//! limit, faults, latency, stats), and [`generator`] the hash and the agents the models share.
//!
//! Callers [`start`] it with a [`SimulatorConfig`], point a client at
//! [`RunningSimulator::base_url`], and call [`RunningSimulator::shutdown`] when done (dropping
//! the handle also stops the server, without waiting).
//!
//! Adding a report API: a folder `src/simulator/<name>/` whose `mod.rs` declares `pub const
//! ENDPOINT` (its `/_sim/stats` label) and `pub(crate) static MODEL: ApiModel` (its `route`,
//! methods, `gated`, `blocking`, optional `state`, and `truth` for the dataset it serves),
//! plus, when it has settings, a type with a `Default` read through `cfg.models.get::<T>()`;
//! then one `pub mod` line here and one entry in `MODELS`.

pub mod agent_activity;
pub mod agent_performance;
pub mod agent_status_details;
pub mod agents;
pub mod bot_sessions;
mod cache;
pub mod call_details;
pub mod contact_volume;
pub mod faults;
pub mod generator;
pub mod intent_realtime;
pub mod jwe;
mod jwt;
mod model;
pub mod queue_stats;
pub mod queues;
mod render;
mod server;
mod shared;
pub mod stats;
pub mod truth;
pub mod unknown;
pub mod user_status;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{EveryNth, FaultKind, FaultPlan};
pub use model::{ModelSetting, ModelSettings};
pub use server::RATE_LIMIT_MSG;
pub use shared::MAX_RANGE_DAYS;
pub use stats::{SimStats, STATUS_DROPPED, UNKNOWN_ENDPOINT};

use model::ApiModel;
use shared::{lock, Shared};

/// The report APIs the simulator serves, one entry per API model (its folder declares it).
/// Paths of two models never overlap; endpoint labels are unique.
pub(crate) static MODELS: &[&ApiModel] = &[
    &user_status::MODEL,
    &intent_realtime::MODEL,
    &agent_status_details::MODEL,
    &call_details::MODEL,
    &contact_volume::MODEL,
    &agent_performance::MODEL,
    &agents::MODEL,
    &queues::MODEL,
    &agent_activity::MODEL,
    &bot_sessions::MODEL,
    &queue_stats::MODEL,
];

/// The HS256 key the simulator expects when none is configured (the exporter uses it too
/// when `base_url = "simulator"` and no secret is set).
pub const DEFAULT_SECRET: &str = "demo-simulator-secret";

/// What the simulator serves and how it misbehaves.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// Seed of every generated value (see [`generator`] and each model's generator).
    pub seed: u64,
    pub account_id: String,
    /// Expected `IId` header of UserStatus requests.
    pub iid: String,
    /// Expected `appId` claim.
    pub client_id: String,
    /// HS256 key of the JWT. Never printed by `Debug`.
    pub client_secret: String,
    /// Number of agents, generated as indexes `0..agents`.
    pub agents: usize,
    /// Bot ids IntentRealtimeData knows; any other id is a 404.
    pub bots: Vec<String>,
    /// Require a `jti` with `exp` at most one hour out, and refuse replays.
    pub enforce_jti: bool,
    /// Added before every response (not to `/_sim/` admin calls).
    pub latency: Duration,
    /// Upper clamp of the `limit` query parameter.
    pub max_page_size: usize,
    /// Refuse a `limit` above `max_page_size` with a 400 instead of clamping it (some report
    /// APIs document "Maximum is 50").
    pub strict_page_size: bool,
    /// Report requests admitted per sliding 60 s window (all endpoints); `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// One session completes per bot every `intent_interval`, starting at `intent_epoch`
    /// (by default [`DEFAULT_INTENT_EPOCH`]); see [`intent_realtime`].
    pub intent_interval: Duration,
    pub intent_epoch: DateTime<Utc>,
    /// About one record in this many is malformed, in every model that generates hostile
    /// records (see each model's generator).
    pub malformed_every: Option<u64>,
    /// Every model adds fields the exporter does not know to every level of its records
    /// ([`unknown`]); its truth says which each row's `extra` holds.
    pub unknown_fields: bool,
    /// When set, IntentRealtimeData, Agent Status Details and Queue Size treat this instant as
    /// "now" (JWT expiry still uses the real clock).
    pub frozen_now: Option<DateTime<Utc>>,
    pub faults: FaultPlan,
    /// "Enforce JWE Encryption": the `auth` header must be a JWE for this key (see [`jwe`]).
    pub jwe: Option<jwe::SimJwe>,
    /// The settings of individual API models, by type, each defined in its model's folder
    /// (e.g. `user_status::UserStatusSim`, `call_details::CallDetailsSim`); a model reads its
    /// type's `Default` when unset.
    pub models: ModelSettings,
    /// Keep every `200` answer and serve its bytes again to the same request (see [`cache`]):
    /// for benchmarks of a client, so that generating responses is not what is measured.
    /// Answers that depend on the clock are frozen too.
    pub cache_responses: bool,
}

/// Default first session of every bot: a fixed instant, so that every simulator process (each
/// `demo` or `run --once` against `base_url = "simulator"`, a restarted daemon) serves session
/// `k` with the same id at the same end time, and an exporter's exactly-once by session id
/// holds across them.
pub const DEFAULT_INTENT_EPOCH: DateTime<Utc> = match DateTime::from_timestamp(1_704_067_200, 0) {
    // 2024-01-01T00:00:00Z
    Some(t) => t,
    None => panic!("2024-01-01T00:00:00Z is a valid instant"),
};

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            seed: 42,
            account_id: "demo-account".into(),
            iid: "st-demo-stream".into(),
            client_id: "cs-demo-client".into(),
            client_secret: DEFAULT_SECRET.into(),
            agents: 20,
            bots: vec!["st-demo-bot".into()],
            enforce_jti: false,
            latency: Duration::ZERO,
            max_page_size: 100,
            strict_page_size: false,
            rate_limit_per_minute: None,
            intent_interval: Duration::from_secs(60),
            intent_epoch: DEFAULT_INTENT_EPOCH,
            malformed_every: None,
            unknown_fields: false,
            frozen_now: None,
            faults: FaultPlan::default(),
            jwe: None,
            models: ModelSettings::default(),
            cache_responses: false,
        }
    }
}

impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("seed", &self.seed)
            .field("account_id", &self.account_id)
            .field("iid", &self.iid)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("agents", &self.agents)
            .field("bots", &self.bots)
            .field("enforce_jti", &self.enforce_jti)
            .field("latency", &self.latency)
            .field("max_page_size", &self.max_page_size)
            .field("strict_page_size", &self.strict_page_size)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("intent_interval", &self.intent_interval)
            .field("intent_epoch", &self.intent_epoch)
            .field("malformed_every", &self.malformed_every)
            .field("unknown_fields", &self.unknown_fields)
            .field("frozen_now", &self.frozen_now)
            .field("faults", &self.faults)
            .field("jwe", &self.jwe)
            .field("models", &self.models)
            .field("cache_responses", &self.cache_responses)
            .finish()
    }
}

/// A simulator serving on loopback.
pub struct RunningSimulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// How long `shutdown` waits for in-flight requests before aborting the server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl RunningSimulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (the bound address).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the fault plan (and restarts its `every_nth` count).
    pub fn set_faults(&self, plan: FaultPlan) {
        lock(&self.shared.faults).set(plan);
    }

    pub fn stats(&self) -> SimStats {
        self.shared.stats.snapshot()
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.shared.cfg
    }

    /// The state across requests of the model whose state has type `T` (e.g.
    /// [`bot_sessions::BotSessionsClock`]); `None` when no model keeps one of that type.
    pub fn model_state<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.shared.state::<T>()
    }

    /// Stops accepting, lets in-flight requests finish (up to a few seconds), then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "Simulator server failed."),
                Ok(Err(e)) => tracing::warn!(error = %e, "Simulator task panicked."),
                Err(_) => {
                    tracing::warn!("Simulator did not stop in time; aborting it.");
                    task.abort();
                }
            }
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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
    #[error("invalid simulator config: {reason}")]
    InvalidConfig { reason: &'static str },
}

/// Binds `bind` (port 0 picks a free port) and serves `MODELS` in a spawned task.
pub async fn start(
    cfg: SimulatorConfig,
    bind: SocketAddr,
) -> Result<RunningSimulator, SimulatorError> {
    start_serving(cfg, bind, MODELS).await
}

/// [`start`] with another table of models (tests of the table itself).
pub(crate) async fn start_serving(
    cfg: SimulatorConfig,
    bind: SocketAddr,
    models: &'static [&'static ApiModel],
) -> Result<RunningSimulator, SimulatorError> {
    if cfg.intent_interval.is_zero() {
        return Err(SimulatorError::InvalidConfig {
            reason: "intent_interval must be positive",
        });
    }
    if cfg.max_page_size == 0 {
        return Err(SimulatorError::InvalidConfig {
            reason: "max_page_size must be positive",
        });
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| SimulatorError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimulatorError::Bind { addr: bind, source })?;
    let shared = Arc::new(Shared::new(cfg, models));
    let app = axum::Router::new()
        .fallback(server::dispatch)
        .with_state(Arc::clone(&shared));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // A dropped sender also means stop.
                let _ = stopped.await;
            })
            .await
    });
    tracing::debug!(%addr, "Simulator listening.");
    Ok(RunningSimulator {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

#[cfg(test)]
mod tests;
