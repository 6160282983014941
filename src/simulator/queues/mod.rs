//! Simulator model of the WFM queue list (`GET …/analytics/account/{accountId}/queues`): a bare
//! JSON array of `{accountId, collectionPointId, Description}` (the sample's casing; the
//! documentation's table writes `description`, selectable with
//! [`QueuesSim::lower_case_description`]), [`QueuesSim::queues`] queues whose `qu-…` ids are a
//! pure function of (seed, index) ([`queue_id`]; the first few are the queues Contact Volume and
//! Agent Performance records name, so the WFM tables join the list). `offset`/`limit` are honoured unless
//! [`QueuesSim::ignores_paging`]. Under `malformed_every`, queue `i` with `i % n == n / 2` is
//! sent with an object as its description. A test can change the list while the simulator
//! runs ([`set_listed`]: queues added to or removed from the account).

mod truth;

use axum::http::{Method, StatusCode};

use std::sync::Mutex;

use super::generator::{hash, uuid_like};
use super::model::{check_header, ApiModel, Handler, ModelState, Reply};
use super::render::push_json_str;
use super::shared::limit_offset;
use super::shared::lock;
use super::RunningSimulator;
use super::{unknown, SimulatorConfig};

/// The `/_sim/stats` label of queue-list requests.
pub const ENDPOINT: &str = "queues";

const TAG_QUEUE: u64 = 0x62;

/// The first [`super::contact_volume::ACTIVE_QUEUES`] are the queues Contact Volume and Agent
/// Performance records name.
pub(crate) const NAMES: [&str; 8] = [
    "General Information",
    "Billing",
    "Technical Support",
    "Default Queue",
    "Sales",
    "Retention",
    "Claims",
    "VIP",
];

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::GET],
    gated: true,
    blocking: false,
    state: Some(new_listed),
    truth: Some(truth::TRUTH),
};

/// The indices of the queues the list holds now: `0..queues` at start; a test changes it
/// with [`set_listed`] (the truth describes the list as started).
struct Listed(Mutex<Vec<usize>>);

fn new_listed(cfg: &SimulatorConfig) -> ModelState {
    Box::new(Listed(Mutex::new(
        (0..cfg.models.get::<QueuesSim>().queues).collect(),
    )))
}

/// Makes the list hold queues `indices` (in that order) from the next request on: a queue
/// added to or removed from the account.
pub fn set_listed(sim: &RunningSimulator, indices: impl IntoIterator<Item = usize>) {
    if let Some(listed) = sim.shared.state::<Listed>() {
        *lock(&listed.0) = indices.into_iter().collect();
    }
}

/// The ids of the queues the list holds now, in list order.
pub fn listed_ids(sim: &RunningSimulator) -> Vec<String> {
    sim.shared
        .state::<Listed>()
        .map(|l| {
            lock(&l.0)
                .iter()
                .map(|&i| queue_id(sim.config().seed, i))
                .collect()
        })
        .unwrap_or_default()
}

/// How the simulated queue list behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuesSim {
    /// Queues in the list.
    pub queues: usize,
    /// Send `description` (the table's casing) instead of `Description` (the sample's).
    pub lower_case_description: bool,
    /// Answer the whole list whatever `offset`/`limit` say.
    pub ignores_paging: bool,
}

impl Default for QueuesSim {
    fn default() -> Self {
        QueuesSim {
            queues: 8,
            lower_case_description: false,
            ignores_paging: false,
        }
    }
}

/// The id (`qu-…`) of queue `idx`.
pub fn queue_id(seed: u64, idx: usize) -> String {
    let i = idx as u64;
    uuid_like(
        "qu-",
        hash(&[seed, TAG_QUEUE, i]),
        hash(&[seed, TAG_QUEUE, i, 1]),
    )
}

/// The description of queue `idx`.
pub fn queue_name(idx: usize) -> String {
    match idx {
        i if i < NAMES.len() => NAMES[i].to_string(),
        i => format!("Queue {i}"),
    }
}

/// Whether queue `idx` is served broken under `malformed_every`.
pub fn is_malformed(malformed_every: Option<u64>, idx: usize) -> bool {
    malformed_every.is_some_and(|n| n > 0 && idx as u64 % n == n / 2)
}

fn route(segments: &[&str]) -> Option<Handler> {
    let ["agentassist", "api", "public", "analytics", "account", account, "queues"] = segments
    else {
        return None;
    };
    let account = account.to_string();
    Some(Handler::new(move |shared, req| {
        let cfg = &shared.cfg;
        if let Err(reply) = check_header(&req.headers, "iId", &cfg.iid, false) {
            return reply;
        }
        if account != cfg.account_id {
            return Reply::error(
                StatusCode::FORBIDDEN,
                "accountId in the path does not match the credentials",
            );
        }
        let sim = cfg.models.get::<QueuesSim>();
        let listed: Vec<usize> = match shared.state::<Listed>() {
            Some(l) => lock(&l.0).clone(),
            None => (0..sim.queues).collect(),
        };
        let all = listed.len();
        let (limit, offset) = match limit_offset(req.query(), all.max(1)) {
            Ok(p) => p,
            Err(msg) => return Reply::bad_request(msg),
        };
        let range = if sim.ignores_paging {
            0..all
        } else {
            offset.min(all)..offset.saturating_add(limit).min(all)
        };
        Reply::json(StatusCode::OK, render(cfg, listed[range].iter().copied()))
    }))
}

/// The bare array of the queues `indices`.
pub(crate) fn render(cfg: &SimulatorConfig, indices: impl IntoIterator<Item = usize>) -> String {
    let sim = cfg.models.get::<QueuesSim>();
    let key = if sim.lower_case_description {
        "description"
    } else {
        "Description"
    };
    let mut out = String::from("[");
    for (n, idx) in indices.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let id = queue_id(cfg.seed, idx);
        out.push_str("{\"accountId\":");
        push_json_str(&mut out, &cfg.account_id);
        out.push_str(",\"collectionPointId\":");
        push_json_str(&mut out, &id);
        out.push(',');
        push_json_str(&mut out, key);
        out.push(':');
        if is_malformed(cfg.malformed_every, idx) {
            out.push_str("{\"text\":\"broken\"}");
        } else {
            push_json_str(&mut out, &queue_name(idx));
        }
        if cfg.unknown_fields {
            unknown::push_members(&mut out, &unknown::fields("queue", &id));
        }
        out.push('}');
    }
    out.push(']');
    out
}
