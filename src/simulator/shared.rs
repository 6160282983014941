//! State shared by every request the simulator serves: its configuration, the table of API
//! models it serves, the generated agents, the fault plan, the request statistics, the JWT
//! verifier, the rate-limit window and each model's own state (a typed slot per model that
//! declares one, see [`super::model::ApiModel::state`]). The HTTP dispatcher
//! ([`super::server`]) and each model's handler use it; it knows no model by name.

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::cache::ResponseCache;
use super::faults::FaultState;
use super::generator::{self, GeneratedAgent};
use super::jwt::JwtVerifier;
use super::model::{ApiModel, ModelState};
use super::stats::StatsRecorder;
use super::SimulatorConfig;

/// Longest `dateFilter` span the simulator accepts, in days.
pub const MAX_RANGE_DAYS: i64 = 366;
/// Locks a mutex, recovering from poisoning: every guarded value here stays consistent
/// between statements, so a panic elsewhere cannot leave it half-updated.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared by every request.
pub(crate) struct Shared {
    pub cfg: SimulatorConfig,
    /// The API models served, in routing order.
    pub models: &'static [&'static ApiModel],
    pub agents: Vec<GeneratedAgent>,
    pub by_email: HashMap<String, usize>,
    pub faults: Mutex<FaultState>,
    pub stats: StatsRecorder,
    pub(crate) jwt: Mutex<JwtVerifier>,
    /// Arrival times of the report requests admitted in the last 60 s.
    pub(crate) rate: Mutex<VecDeque<Instant>>,
    /// Each model's state, by the type of the value its `state` built.
    states: HashMap<TypeId, ModelState>,
    /// Kept answers, when [`SimulatorConfig::cache_responses`] is set.
    pub(crate) cache: Option<ResponseCache>,
}

impl Shared {
    /// The state of `cfg` serving `models`; builds every model's own state.
    pub(crate) fn new(cfg: SimulatorConfig, models: &'static [&'static ApiModel]) -> Self {
        let agents: Vec<_> = (0..cfg.agents)
            .map(|i| generator::agent(cfg.seed, i))
            .collect();
        let by_email = agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.email.clone(), i))
            .collect();
        let jwt = JwtVerifier::new(&cfg.client_id, &cfg.client_secret, cfg.enforce_jti);
        let states = models
            .iter()
            .filter_map(|m| m.state)
            .map(|init| {
                let state = init(&cfg);
                ((*state).type_id(), state)
            })
            .collect();
        Shared {
            cache: cfg.cache_responses.then(ResponseCache::default),
            faults: Mutex::new(FaultState::new(cfg.faults.clone())),
            cfg,
            models,
            agents,
            by_email,
            stats: StatsRecorder::default(),
            jwt: Mutex::new(jwt),
            rate: Mutex::new(VecDeque::new()),
            states,
        }
    }

    /// The state a model's [`ApiModel::state`] built, by its type; `None` when no model in
    /// the table declares state of type `T`.
    pub(crate) fn state<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.states.get(&TypeId::of::<T>())?.downcast_ref::<T>()
    }

    /// Admits one report request under the sliding 60 s window, or refuses it.
    pub(crate) fn admit(&self) -> bool {
        let Some(limit) = self.cfg.rate_limit_per_minute else {
            return true;
        };
        let now = Instant::now();
        let mut q = lock(&self.rate);
        while q
            .front()
            .is_some_and(|&t| now.duration_since(t) >= Duration::from_secs(60))
        {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// `limit` and `offset` of a report request's query string: `limit` defaults to
/// `default_limit` and must be a positive integer, `offset` defaults to 0 and must be a
/// non-negative integer. `Err` is the message of the 400 to answer. Each API applies its own
/// caps to the result.
pub(crate) fn limit_offset(
    query: Option<&str>,
    default_limit: usize,
) -> Result<(usize, usize), &'static str> {
    let mut limit = default_limit;
    let mut offset = 0;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or("limit must be a positive integer")?;
            }
            "offset" => {
                offset = v
                    .parse::<usize>()
                    .map_err(|_| "offset must be a non-negative integer")?;
            }
            _ => {}
        }
    }
    Ok((limit, offset))
}

/// [`limit_offset`] with the API's cap on `limit`: clamped to `cap`, or refused above it when
/// `strict` (some report APIs document "Maximum is 50"). `Err` is the message of the 400.
pub(crate) fn capped_limit_offset(
    query: Option<&str>,
    default_limit: usize,
    cap: usize,
    strict: bool,
) -> Result<(usize, usize), String> {
    let (limit, offset) = limit_offset(query, default_limit).map_err(str::to_string)?;
    if strict && limit > cap {
        return Err(format!("limit must not be greater than {cap}"));
    }
    Ok((limit.min(cap), offset))
}

/// A `timeZoneOffSet`/`timeZoneOffset` value: whole minutes (an integral float is accepted)
/// within ±16 h. `Err` is the message of the 400.
pub(crate) fn offset_minutes(n: &serde_json::Number, key: &str) -> Result<i64, String> {
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .filter(|m| m.abs() <= 16 * 60)
        .ok_or_else(|| format!("{key} must be whole minutes within ±960"))
}
