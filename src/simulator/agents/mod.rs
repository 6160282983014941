//! Simulator model of the WFM agent list (`GET …/analytics/account/{accountId}/agents`): a
//! bare JSON array of `{accountId, agentId, firstName, lastName}`, one per agent `0..agents`,
//! the WFM `a-…` id a pure function of (seed, index) ([`wfm_agent_id`]: Agent Status Details'
//! `/v3` `aId`, which `agent_activity` events and `agent_performance` records name too, so the
//! WFM tables join the list) and the names those of the shared agents ([`generator::agent`]). Paging is
//! undocumented; `offset`/`limit` (as in the docs' only sample) are honoured unless
//! [`AgentsSim::ignores_paging`], which answers the whole list to every request. Under
//! `malformed_every`, agent `i` with `i % n == n / 2` is sent with a numeric `agentId`.

mod truth;

use axum::http::{Method, StatusCode};

use super::agent_status_details::agent_id;
use super::generator;
use super::model::{check_header, ApiModel, Handler, Reply};
use super::render::push_json_str;
use super::shared::limit_offset;
use super::{unknown, SimulatorConfig};

/// The `/_sim/stats` label of agent-list requests.
pub const ENDPOINT: &str = "agents";

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::GET],
    gated: true,
    blocking: false,
    state: None,
    truth: Some(truth::TRUTH),
};

/// How the simulated agent list behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentsSim {
    /// Answer the whole list whatever `offset`/`limit` say.
    pub ignores_paging: bool,
}

/// The WFM id (`a-…`) of agent `idx`: the one id every WFM model and Agent Status Details'
/// `/v3` answer name the agent by.
pub fn wfm_agent_id(seed: u64, idx: usize) -> String {
    agent_id(seed, idx)
}

/// Whether agent `idx` is served broken under `malformed_every`.
pub fn is_malformed(malformed_every: Option<u64>, idx: usize) -> bool {
    malformed_every.is_some_and(|n| n > 0 && idx as u64 % n == n / 2)
}

fn route(segments: &[&str]) -> Option<Handler> {
    let ["agentassist", "api", "public", "analytics", "account", account, "agents"] = segments
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
        let all = cfg.agents;
        let (limit, offset) = match limit_offset(req.query(), all.max(1)) {
            Ok(p) => p,
            Err(msg) => return Reply::bad_request(msg),
        };
        let range = if cfg.models.get::<AgentsSim>().ignores_paging {
            0..all
        } else {
            offset.min(all)..offset.saturating_add(limit).min(all)
        };
        Reply::json(StatusCode::OK, render(cfg, range))
    }))
}

/// The bare array of agents `range`.
pub(crate) fn render(cfg: &SimulatorConfig, range: std::ops::Range<usize>) -> String {
    let mut out = String::from("[");
    for (n, idx) in range.enumerate() {
        if n > 0 {
            out.push(',');
        }
        let person = generator::agent(cfg.seed, idx);
        let id = wfm_agent_id(cfg.seed, idx);
        out.push_str("{\"accountId\":");
        push_json_str(&mut out, &cfg.account_id);
        out.push_str(",\"agentId\":");
        if is_malformed(cfg.malformed_every, idx) {
            out.push_str(&(1000 + idx).to_string());
        } else {
            push_json_str(&mut out, &id);
        }
        out.push_str(",\"firstName\":");
        push_json_str(&mut out, &person.first_name);
        out.push_str(",\"lastName\":");
        push_json_str(&mut out, &person.last_name);
        if cfg.unknown_fields {
            unknown::push_members(&mut out, &unknown::fields("agent", &id));
        }
        out.push('}');
    }
    out.push(']');
    out
}
