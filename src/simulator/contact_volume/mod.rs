//! Simulator model of Contact Volume: `POST …/analytics/account/{accountId}/callvolume`, as
//! the reference documents it. The body must carry `orgId` and `toTimeStamp` (ISO 8601 with an
//! offset); `fromTimeStamp` is optional (then the 31 days before `toTimeStamp`); `skip`/`limit`
//! page over the records (ordered by interval start, then queue; `limit` defaults to and is
//! clamped at `max_page_size`, or refused above it when `strict_page_size`);
//! `includeSkillBreakdown` (default false) adds each record's `skillBreakdown`. The answer is
//! the `{hasMore, totalCount, CallVolumeUpdate}` envelope with every documented key, `__v`, the
//! lower-case-q `maxqueueHoldTimeAbandoned` (about one record in four spells it
//! `maxQueueHoldTimeAbandoned`), and durations in the units of [`ContactVolumeSim`]. A record
//! is selected when its interval starts in `[fromTimeStamp, toTimeStamp]` (inclusive end, the
//! reading an exporter must survive; [`ContactVolumeSim::exclusive_end`] for the other).
//! `iId` is checked when sent (only the newest page lists it).

pub mod generator;
mod truth;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

pub use generator::{
    queues, volumes, GeneratedMeasures, GeneratedQueue, GeneratedSkill, GeneratedVolume, INTERVAL,
};

use crate::simulator::model::{check_header, ApiModel, ApiRequest, Handler, Reply};
use crate::simulator::render::push_json_str;
use crate::simulator::shared::Shared;
use crate::simulator::{unknown, SimulatorConfig};

/// The `/_sim/stats` label of Contact Volume requests.
pub const ENDPOINT: &str = "callvolume";

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::POST],
    gated: true,
    blocking: false,
    state: None,
    truth: Some(truth::TRUTH),
};

/// The unit the simulated tenant sends durations in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimUnit {
    Seconds,
    Milliseconds,
}

impl SimUnit {
    fn factor(self) -> i64 {
        match self {
            SimUnit::Seconds => 1,
            SimUnit::Milliseconds => 1000,
        }
    }
}

/// Contact Volume behaviour of the simulator (in [`SimulatorConfig::models`]): the units of
/// the durations (the documented ones by default: seconds for records, milliseconds for skills)
/// and how `toTimeStamp` is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactVolumeSim {
    pub record_unit: SimUnit,
    pub skill_unit: SimUnit,
    /// Select intervals starting before `toTimeStamp` only (default: at or before).
    pub exclusive_end: bool,
}

impl Default for ContactVolumeSim {
    fn default() -> Self {
        ContactVolumeSim {
            record_unit: SimUnit::Seconds,
            skill_unit: SimUnit::Milliseconds,
            exclusive_end: false,
        }
    }
}

fn route(segments: &[&str]) -> Option<Handler> {
    match segments {
        ["agentassist", "api", "public", "analytics", "account", account, "callvolume"] => {
            let account = account.to_string();
            Some(Handler::new(move |shared, req| {
                respond(shared, &account, req).unwrap_or_else(|e| e)
            }))
        }
        _ => None,
    }
}

/// The validated body of a request.
struct VolumeQuery {
    org_id: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    skip: usize,
    limit: Option<usize>,
    skills: bool,
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

fn parse_body(bytes: &[u8]) -> Result<VolumeQuery, Reply> {
    let body: Map<String, Value> = serde_json::from_slice(bytes)
        .map_err(|e| Reply::bad_request(&format!("invalid request body: {e}")))?;
    let org_id = match body.get("orgId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(Reply::bad_request("orgId is required")),
    };
    let to = instant(&body, "toTimeStamp")?
        .ok_or_else(|| Reply::bad_request("toTimeStamp is required"))?;
    let from = instant(&body, "fromTimeStamp")?.unwrap_or(to - TimeDelta::days(31));
    let limit = count(&body, "limit")?;
    if limit == Some(0) {
        return Err(Reply::bad_request("limit must be positive"));
    }
    Ok(VolumeQuery {
        org_id,
        from,
        to,
        skip: count(&body, "skip")?.unwrap_or(0),
        limit,
        skills: body
            .get("includeSkillBreakdown")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn respond(shared: &Shared, path_account: &str, req: &ApiRequest) -> Result<Reply, Reply> {
    let cfg = &shared.cfg;
    check_header(&req.headers, "iId", &cfg.iid, false)?;
    if path_account != cfg.account_id {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            "accountId in the path does not match the credentials",
        ));
    }
    let q = parse_body(&req.body)?;
    let cap = cfg.max_page_size.max(1);
    let limit = match q.limit {
        Some(l) if cfg.strict_page_size && l > cap => {
            return Err(Reply::bad_request(&format!(
                "limit must not be greater than {cap}"
            )))
        }
        Some(l) => l.min(cap),
        None => cap,
    };
    let sim = cfg.models.get::<ContactVolumeSim>();
    let now = cfg.frozen_now.unwrap_or_else(Utc::now);
    let end = if sim.exclusive_end {
        q.to
    } else {
        q.to + TimeDelta::milliseconds(1)
    };
    let all = volumes(cfg.seed, q.from..end, now, cfg.malformed_every);
    Ok(Reply::json(
        StatusCode::OK,
        render_page(cfg, &sim, &all, &q.org_id, q.skip, limit, q.skills),
    ))
}

/// One page of `all` (the envelope and its records), as the API sends it.
pub(crate) fn render_page(
    cfg: &SimulatorConfig,
    sim: &ContactVolumeSim,
    all: &[GeneratedVolume],
    org_id: &str,
    skip: usize,
    limit: usize,
    skills: bool,
) -> String {
    let from = skip.min(all.len());
    let to = skip.saturating_add(limit).min(all.len());
    let mut out = format!(
        "{{\"hasMore\":{},\"totalCount\":{},\"CallVolumeUpdate\":[",
        to < all.len(),
        all.len()
    );
    for (i, v) in all[from..to].iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        render_record(&mut out, cfg, sim, v, org_id, skills);
    }
    out.push(']');
    if cfg.unknown_fields {
        unknown::push_members(&mut out, &unknown::envelope_fields(ENVELOPE_REF));
    }
    out.push('}');
    out
}

/// The id the unknown fields of the response envelope carry.
pub(crate) const ENVELOPE_REF: &str = "callvolume";

/// The API's timestamp form: `2023-06-01T09:45:00.000Z`.
fn push_time(out: &mut String, key: &str, t: DateTime<Utc>) {
    out.push_str(&format!(
        ",\"{key}\":\"{}\"",
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    ));
}

fn render_record(
    out: &mut String,
    cfg: &SimulatorConfig,
    sim: &ContactVolumeSim,
    v: &GeneratedVolume,
    org_id: &str,
    skills: bool,
) {
    out.push_str("{\"_id\":");
    push_json_str(out, &v.record_id);
    push_time(out, "intervalStartTimeStamp", v.start);
    push_time(out, "intervalEndTimeStamp", v.end);
    out.push_str(",\"orgId\":");
    push_json_str(out, org_id);
    out.push_str(",\"queueId\":");
    push_json_str(out, &v.queue.id);
    out.push_str(",\"queueName\":");
    push_json_str(out, v.queue.name);
    out.push_str(",\"source\":\"rtm\",\"iId\":");
    push_json_str(out, &cfg.iid);
    out.push_str(",\"__v\":0");
    push_measures(
        out,
        &v.measures,
        sim.record_unit,
        v.upper_q,
        v.malformed,
        false,
    );
    if cfg.unknown_fields {
        unknown::push_members(out, &unknown::fields("record", &v.record_id));
    }
    if skills {
        out.push_str(",\"skillBreakdown\":[");
        for (i, s) in v.skills.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"skillId\":");
            push_json_str(out, &s.id);
            out.push_str(",\"skillName\":");
            push_json_str(out, s.name);
            out.push_str(",\"skillGroupId\":");
            push_json_str(out, &s.group_id);
            out.push_str(",\"skillGroupName\":");
            push_json_str(out, s.group_name);
            push_measures(out, &s.measures, sim.skill_unit, v.upper_q, false, true);
            if cfg.unknown_fields {
                unknown::push_members(out, &unknown::fields("skill", &skill_ref(v, s)));
            }
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
}

/// The id the unknown fields of a skill entry carry.
pub(crate) fn skill_ref(v: &GeneratedVolume, s: &GeneratedSkill) -> String {
    format!("{}/{}", v.record_id, s.id)
}

/// The documented keys of the measures, in the sample's order of the durations.
const DURATION_KEYS: [&str; 8] = [
    "queueHoldTimeAnswered",
    "maxQueueHoldTimeAnswered",
    "queueHoldTimeAbandoned",
    "maxqueueHoldTimeAbandoned",
    "acwDuration",
    "conversationHandleTime",
    "conversationTalkTime",
    "holdDuration",
];

fn push_measures(
    out: &mut String,
    m: &GeneratedMeasures,
    unit: SimUnit,
    upper_q: bool,
    malformed: bool,
    skill: bool,
) {
    let counts = [
        "offeredContacts",
        "answeredContacts",
        "abandonedContacts",
        "completedContacts",
    ];
    for (i, (key, n)) in counts.iter().zip(m.counts).enumerate() {
        if i == 0 && malformed {
            out.push_str(&format!(",\"{key}\":\"{n} contacts\""));
        } else {
            out.push_str(&format!(",\"{key}\":{n}"));
        }
    }
    for (key, d) in DURATION_KEYS.iter().zip(m.durations_s) {
        let key = if upper_q && *key == "maxqueueHoldTimeAbandoned" {
            "maxQueueHoldTimeAbandoned"
        } else {
            key
        };
        out.push_str(&format!(",\"{key}\":{}", d * unit.factor()));
    }
    // The skill sample has only csatResponses of the message counts.
    let messages: &[(&str, i64)] = if skill {
        &[("csatResponses", m.messages[2])]
    } else {
        &[
            ("messageCount", m.messages[0]),
            ("savedMessageCount", m.messages[1]),
            ("csatResponses", m.messages[2]),
        ]
    };
    for (key, n) in messages {
        out.push_str(&format!(",\"{key}\":{n}"));
    }
    if skill {
        out.push_str(&format!(",\"csatScore\":{:?}", m.csat_score));
    } else {
        out.push_str(&format!(",\"csatScore\":{}", m.csat_score as i64));
    }
}

#[cfg(test)]
mod tests;
