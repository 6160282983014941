//! Simulator model of the WFM queue list (`GET …/analytics/account/{accountId}/queues`): a bare
//! JSON array of `{accountId, collectionPointId, Description}` (the sample's casing; the
//! documentation's table writes `description`, selectable with
//! [`QueuesSim::lower_case_description`]), [`QueuesSim::queues`] queues whose `qu-…` ids are a
//! pure function of (seed, index) ([`queue_id`]; the first few are the queues Contact Volume and
//! Agent Performance records name, so the WFM tables join the list). `offset`/`limit` are honoured unless
//! [`QueuesSim::ignores_paging`]. Under `malformed_every`, queue `i` with `i % n == n / 2` is
//! sent with an object as its description.

mod truth;

use axum::http::{Method, StatusCode};

use super::generator::{hash, uuid_like};
use super::model::{check_header, ApiModel, Handler, Reply};
use super::render::push_json_str;
use super::shared::limit_offset;
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
    state: None,
    truth: Some(truth::TRUTH),
};

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
        let all = sim.queues;
        let (limit, offset) = match limit_offset(req.query(), all.max(1)) {
            Ok(p) => p,
            Err(msg) => return Reply::bad_request(msg),
        };
        let range = if sim.ignores_paging {
            0..all
        } else {
            offset.min(all)..offset.saturating_add(limit).min(all)
        };
        Reply::json(StatusCode::OK, render(cfg, range))
    }))
}

/// The bare array of queues `range`.
pub(crate) fn render(cfg: &SimulatorConfig, range: std::ops::Range<usize>) -> String {
    let sim = cfg.models.get::<QueuesSim>();
    let key = if sim.lower_case_description {
        "description"
    } else {
        "Description"
    };
    let mut out = String::from("[");
    for (n, idx) in range.enumerate() {
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
