//! Simulator model of Agent Performance: `POST …/analytics/account/{accountId}/agentperformance`,
//! as the reference documents it: the `accountId` header is required (`iId` checked when sent);
//! the body's `toTimeStamp` is required, `fromTimeStamp` optional (then the 31 days before);
//! `skip`/`limit` page over **agents** with activity in the range (`limit` defaults to and is
//! clamped at `max_page_size`), `totalCount` counting them. The answer is the
//! `{hasMore, totalCount, AgentPerformance: [{agentId, intervals: [{…, queues: [...]}]}]}`
//! envelope, durations in milliseconds. An interval is selected when it starts in
//! `[fromTimeStamp, toTimeStamp]` (the inclusive reading an exporter must survive;
//! [`AgentPerformanceSim::to_exclusive`] for the other).
//!
//! The data are a pure function of (seed, agent, interval): about two agents in three are
//! active in a 15-minute interval, each active interval serves one or two of the queues of
//! [`super::contact_volume::queues`] (the first of the queue list), and agent ids are the agent
//! list's ([`super::agents::wfm_agent_id`]), so the WFM tables join.

mod truth;

use std::ops::Range;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::agents::wfm_agent_id;
use super::contact_volume::{queues, GeneratedQueue, INTERVAL};
use super::generator::hash;
use super::model::{check_header, ApiModel, ApiRequest, Handler, Reply};
use super::render::push_json_str;
use super::shared::Shared;
use super::{unknown, SimulatorConfig};

/// The `/_sim/stats` label of Agent Performance requests.
pub const ENDPOINT: &str = "agentperformance";

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::POST],
    gated: true,
    blocking: false,
    state: None,
    truth: Some(truth::TRUTH),
};

const TAG_ACTIVE: u64 = 0x71;
const TAG_QUEUE: u64 = 0x72;
const TAG_VALUE: u64 = 0x73;
const TAG_MALFORMED: u64 = 0x74;
const TAG_IDLE: u64 = 0x75;

/// How the simulated Agent Performance API answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentPerformanceSim {
    /// `toTimeStamp` excludes its instant (by default it includes it).
    pub to_exclusive: bool,
}

/// One queue entry of an agent's interval.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedQueueStats {
    pub queue: GeneratedQueue,
    /// offered, answered, abandoned, completed, transferred.
    pub counts: [i64; 5],
    /// conversationHandleTime, conversationTalkTime, acwDuration, holdDuration; milliseconds.
    pub durations_ms: [i64; 4],
    pub csat_score: i64,
    /// Served with `offeredContacts` as a string (`malformed_every`).
    pub malformed: bool,
}

/// One interval of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedInterval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub queues: Vec<GeneratedQueueStats>,
}

/// An agent's intervals in a range.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedPerformance {
    pub agent_id: String,
    pub intervals: Vec<GeneratedInterval>,
}

/// Every agent (of `0..agents`) with an interval starting in `range` and ended by `now`, in
/// agent order, each with those intervals in time order.
pub fn performance(
    seed: u64,
    agents: usize,
    range: Range<DateTime<Utc>>,
    now: DateTime<Utc>,
    malformed_every: Option<u64>,
) -> Vec<GeneratedPerformance> {
    let step = INTERVAL.num_milliseconds();
    let ms = range.start.timestamp_millis();
    let first = ms.div_euclid(step) + i64::from(ms.rem_euclid(step) != 0);
    let all_queues = queues(seed);
    (0..agents)
        .filter(|&idx| !hash(&[seed, TAG_IDLE, idx as u64]).is_multiple_of(6))
        .filter_map(|idx| {
            let mut intervals = Vec::new();
            let mut n = first;
            while let Some(start) = DateTime::from_timestamp_millis(n * step) {
                if start >= range.end || start + INTERVAL > now {
                    break;
                }
                let t = start.timestamp_millis() as u64;
                let a = idx as u64;
                if !hash(&[seed, TAG_ACTIVE, a, t]).is_multiple_of(3) {
                    let h = hash(&[seed, TAG_QUEUE, a, t]);
                    let first_q = (h >> 4) as usize % all_queues.len();
                    let queues = (0..1 + h % 2)
                        .map(|k| {
                            let q = (first_q + k as usize) % all_queues.len();
                            stats(seed, &all_queues[q], &[a, t, q as u64], malformed_every)
                        })
                        .collect();
                    intervals.push(GeneratedInterval {
                        start,
                        end: start + INTERVAL,
                        queues,
                    });
                }
                n += 1;
            }
            (!intervals.is_empty()).then(|| GeneratedPerformance {
                agent_id: wfm_agent_id(seed, idx),
                intervals,
            })
        })
        .collect()
}

fn stats(
    seed: u64,
    queue: &GeneratedQueue,
    key: &[u64],
    malformed_every: Option<u64>,
) -> GeneratedQueueStats {
    let draw = |i: u64, modulo: i64| -> i64 {
        let mut parts = vec![seed, TAG_VALUE, i];
        parts.extend_from_slice(key);
        (hash(&parts) % modulo as u64) as i64
    };
    let offered = draw(0, 5);
    let answered = offered - draw(1, offered.min(1) + 1);
    let completed = answered - draw(2, answered.min(1) + 1);
    let transferred = answered - completed;
    let talk = answered * 60_000 + draw(3, 400_000) * answered.min(1);
    let hold = draw(4, 30_000) * answered.min(1);
    let acw = answered * 5_000 + draw(5, 60_000) * answered.min(1);
    let mut malformed_key = vec![seed, TAG_MALFORMED];
    malformed_key.extend_from_slice(key);
    GeneratedQueueStats {
        queue: queue.clone(),
        counts: [
            offered,
            answered,
            offered - answered,
            completed,
            transferred,
        ],
        durations_ms: [talk + hold + acw, talk, acw, hold],
        csat_score: draw(6, 6),
        malformed: malformed_every.is_some_and(|k| k > 0 && hash(&malformed_key).is_multiple_of(k)),
    }
}

fn route(segments: &[&str]) -> Option<Handler> {
    match segments {
        ["agentassist", "api", "public", "analytics", "account", account, "agentperformance"] => {
            let account = account.to_string();
            Some(Handler::new(move |shared, req| {
                respond(shared, &account, req).unwrap_or_else(|e| e)
            }))
        }
        _ => None,
    }
}

fn instant(body: &Map<String, Value>, key: &str) -> Result<Option<DateTime<Utc>>, Reply> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| Reply::bad_request(&format!("{key} must be an ISO 8601 timestamp"))),
        Some(_) => Err(Reply::bad_request(&format!("{key} must be a string"))),
    }
}

fn count(body: &Map<String, Value>, key: &str) -> Result<Option<usize>, Reply> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| Reply::bad_request(&format!("{key} must be a non-negative integer"))),
    }
}

fn respond(shared: &Shared, path_account: &str, req: &ApiRequest) -> Result<Reply, Reply> {
    let cfg = &shared.cfg;
    check_header(&req.headers, "accountId", &cfg.account_id, true)?;
    check_header(&req.headers, "iId", &cfg.iid, false)?;
    if path_account != cfg.account_id {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            "accountId in the path does not match the credentials",
        ));
    }
    let body: Map<String, Value> = serde_json::from_slice(&req.body)
        .map_err(|e| Reply::bad_request(&format!("invalid request body: {e}")))?;
    let to = instant(&body, "toTimeStamp")?
        .ok_or_else(|| Reply::bad_request("toTimeStamp is required"))?;
    let from = instant(&body, "fromTimeStamp")?.unwrap_or(to - TimeDelta::days(31));
    let cap = cfg.max_page_size.max(1);
    let limit = match count(&body, "limit")? {
        Some(0) => return Err(Reply::bad_request("limit must be positive")),
        Some(l) if cfg.strict_page_size && l > cap => {
            return Err(Reply::bad_request(&format!(
                "limit must not be greater than {cap}"
            )))
        }
        Some(l) => l.min(cap),
        None => cap,
    };
    let skip = count(&body, "skip")?.unwrap_or(0);
    let now = cfg.frozen_now.unwrap_or_else(Utc::now);
    let end = if cfg.models.get::<AgentPerformanceSim>().to_exclusive {
        to
    } else {
        to + TimeDelta::milliseconds(1)
    };
    let all = performance(cfg.seed, cfg.agents, from..end, now, cfg.malformed_every);
    Ok(Reply::json(
        StatusCode::OK,
        render_page(cfg, &all, skip, limit),
    ))
}

/// One page of agents (the envelope and its records), as the API sends it.
pub(crate) fn render_page(
    cfg: &SimulatorConfig,
    all: &[GeneratedPerformance],
    skip: usize,
    limit: usize,
) -> String {
    let from = skip.min(all.len());
    let to = skip.saturating_add(limit).min(all.len());
    let mut out = format!(
        "{{\"hasMore\":{},\"totalCount\":{},\"AgentPerformance\":[",
        to < all.len(),
        all.len()
    );
    for (i, p) in all[from..to].iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"agentId\":");
        push_json_str(&mut out, &p.agent_id);
        if cfg.unknown_fields {
            unknown::push_members(&mut out, &unknown::fields("agent", &p.agent_id));
        }
        out.push_str(",\"intervals\":[");
        for (j, interval) in p.intervals.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            render_interval(&mut out, cfg, &p.agent_id, interval);
        }
        out.push_str("]}");
    }
    out.push(']');
    if cfg.unknown_fields {
        unknown::push_members(&mut out, &unknown::envelope_fields(ENVELOPE_REF));
    }
    out.push('}');
    out
}

/// The id the unknown fields of the response envelope carry.
pub(crate) const ENVELOPE_REF: &str = "agentperformance";

/// The ids the unknown fields of an interval and a queue entry carry.
pub(crate) fn interval_ref(agent: &str, start: DateTime<Utc>) -> String {
    format!("{agent}/{}", start.timestamp_millis())
}

fn render_interval(out: &mut String, cfg: &SimulatorConfig, agent: &str, i: &GeneratedInterval) {
    let time = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    out.push_str(&format!(
        "{{\"intervalStartTimeStamp\":\"{}\",\"intervalEndTimeStamp\":\"{}\"",
        time(i.start),
        time(i.end)
    ));
    let id = interval_ref(agent, i.start);
    if cfg.unknown_fields {
        unknown::push_members(out, &unknown::fields("interval", &id));
    }
    out.push_str(",\"queues\":[");
    for (k, q) in i.queues.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push_str("{\"queueId\":");
        push_json_str(out, &q.queue.id);
        out.push_str(",\"queueName\":");
        push_json_str(out, q.queue.name);
        let [offered, answered, abandoned, completed, transferred] = q.counts;
        if q.malformed {
            out.push_str(&format!(",\"offeredContacts\":\"{offered}\""));
        } else {
            out.push_str(&format!(",\"offeredContacts\":{offered}"));
        }
        let [handle, talk, acw, hold] = q.durations_ms;
        out.push_str(&format!(
            ",\"answeredContacts\":{answered},\"abandonedContacts\":{abandoned},\"completedContacts\":{completed},\"transferredContacts\":{transferred},\"conversationHandleTime\":{handle},\"conversationTalkTime\":{talk},\"acwDuration\":{acw},\"holdDuration\":{hold},\"csatScore\":{}",
            q.csat_score
        ));
        if cfg.unknown_fields {
            unknown::push_members(
                out,
                &unknown::fields("queue", &format!("{id}/{}", q.queue.id)),
            );
        }
        out.push('}');
    }
    out.push_str("]}");
}
