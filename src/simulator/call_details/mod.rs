//! The simulator's Call Details model: configuration ([`CallDetailsSim`], in
//! `SimulatorConfig::models`: session density, bursts, the `numResults` behaviour, the caps),
//! the pure deterministic generator of sessions (the ground truth tests compare exported rows
//! with), the page renderer (`render`) and the HTTP handler (`http`) that serves
//! `POST …/account/{accountId}/calldetails`, `…/v2/calldetails` and `…/v2/interactionDetails`.
//!
//! Sessions are a pure function of the seed and a [`SessionKey`]: every UTC hour holds
//! `sessions_per_hour` ± 20 % sessions at hashed seconds, and each [`CallBurst`] adds its
//! sessions inside its own span. Callers get the truth with [`calls_in`] (every session
//! starting in a UTC range, in the order the server pages them) and [`segments`] (the legs, in
//! the documented walk order). Times are UTC and whole seconds, except the ISO-with-milliseconds
//! fields (`CallbackOptedTime`, `userCallbackAcceptTime`, `campaignRunDate`).

mod build;
pub(crate) mod http;
pub(crate) mod render;
mod truth;

use std::ops::Range;

use axum::http::Method;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::generator::{hash, mix};
use super::model::{ApiModel, Handler, Reply};
use super::SimulatorConfig;
use http::CallApi;

pub use build::call;

/// The `/_sim/stats` label of Call Details requests (every path).
pub const ENDPOINT: &str = "calldetails";

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::POST],
    gated: true,
    blocking: false,
    state: None,
    truth: Some(truth::TRUTH),
};

fn route(segments: &[&str]) -> Option<Handler> {
    let ["agentassist", "api", "public", "analytics", "account", account, tail @ ..] = segments
    else {
        return None;
    };
    let api = CallApi::from_path(tail)?;
    let account = account.to_string();
    Some(Handler::new(move |shared, req| {
        let (status, body) = http::respond(
            &shared.cfg,
            api,
            &account,
            req.query(),
            &req.headers,
            &req.body,
        );
        Reply::json(status, body)
    }))
}

const TAG_COUNT: u64 = 0x41;
const TAG_START: u64 = 0x42;
const TAG_ID: u64 = 0x43;

/// What `numResults` holds in the simulator's responses (the docs never define it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NumResults {
    /// Every session the request's range and filters match (what the samples suggest).
    #[default]
    WindowTotal,
    /// The number of records on this page.
    PageCount,
    /// Not sent.
    Absent,
}

/// Extra sessions starting uniformly inside `[start, start + seconds)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallBurst {
    pub start: DateTime<Utc>,
    pub seconds: u32,
    pub sessions: u32,
}

/// Call Details behaviour of the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDetailsSim {
    /// Base density: sessions starting in each UTC hour (each hour varies by ±20 %).
    pub sessions_per_hour: u32,
    pub bursts: Vec<CallBurst>,
    pub num_results: NumResults,
    /// Refuse, with a 400 and a Kore-style error body, a range over 7 days, `limit` over 100
    /// and `offset` over 10 (the documented caps). When false, `limit` is clamped to 100 and
    /// larger ranges and offsets are served.
    pub enforce_caps: bool,
}

impl Default for CallDetailsSim {
    fn default() -> Self {
        CallDetailsSim {
            sessions_per_hour: 12,
            bursts: Vec::new(),
            num_results: NumResults::WindowTotal,
            enforce_caps: true,
        }
    }
}

/// Identifies one generated session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionKey {
    /// The `i`-th base session of UTC hour `hour` (hours since the Unix epoch).
    Hourly { hour: i64, i: u32 },
    /// The `i`-th session of burst number `burst` in [`CallDetailsSim::bursts`].
    Burst { burst: u32, i: u32 },
}

impl SessionKey {
    fn words(self) -> [u64; 3] {
        match self {
            SessionKey::Hourly { hour, i } => [1, hour as u64, u64::from(i)],
            SessionKey::Burst { burst, i } => [2, u64::from(burst), u64::from(i)],
        }
    }
}

/// How a hostile record is broken (only when `malformed_every` is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformation {
    /// `sessionStartTime` is not a date.
    BadStartTime,
    /// The id is sent as `session_id`, so `sessionId` is missing.
    NoSessionId,
    /// `csatScore` is `"five"`.
    BadCsatScore,
    /// `destinations` is a string.
    DestinationsNotArray,
    /// `isVoicemail` is `"MAYBE"`.
    BadVoicemail,
    /// The record is a JSON array holding the session id.
    NotAnObject,
}

/// One generated session: the values an exporter must reproduce, in UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedCall {
    pub key: SessionKey,
    /// 24 hex characters.
    pub session_id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `Some` exactly for agent-routed sessions.
    pub conversation_id: Option<String>,
    pub channel: String,
    pub bot_id: String,
    pub user_id: String,
    pub channel_specific_user_id: String,
    pub org_id: String,
    pub final_status: String,
    /// Not sent by v1.
    pub smart_status: String,
    /// Not sent by v1. Sent as `Reason` on agent-routed sessions starting before 2025.
    pub reason: String,
    pub disconnecting_event: String,
    /// Not sent by v1.
    pub error_details: String,
    /// Top-level `Direction` or `direction` in v2, `customerinfo.Direction` in v1.
    pub direction: Option<String>,
    /// Voice sessions only; sent as `"YES"`/`"NO"` or a boolean. Not sent by v1.
    pub is_voicemail: Option<bool>,
    pub skills: Option<Value>,
    pub dispositions: Option<Vec<String>>,
    pub disposition_remarks: Option<Vec<String>>,
    pub survey: Option<GeneratedSurvey>,
    pub customer: Option<GeneratedCustomer>,
    pub user_level_tags: Option<Value>,
    pub session_level_tags: Option<Value>,
    /// Outbound sessions carry a full campaign; inbound routed ones only `attempt: ""` and a
    /// contact status. Sent when `campaigninfo` is selected.
    pub campaign: Option<GeneratedCampaign>,
    /// Not sent by v1.
    pub automation_bot_ids: Vec<String>,
    pub meta_info: Option<Value>,
    pub destinations: Vec<GeneratedDestination>,
    pub malformed: Option<Malformation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedSurvey {
    /// `csat`, `nps` or `likeDislike`.
    pub survey_type: String,
    pub csat_score: Option<i64>,
    pub csat_feedback: Option<String>,
    pub nps_score: Option<i64>,
    pub like_dislike_score: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedCustomer {
    pub phone: String,
    pub center_phone: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedCampaign {
    pub name: Option<String>,
    pub id: Option<String>,
    pub instance_id: Option<String>,
    pub dialing_list_id: Option<String>,
    /// `None` is sent as `""`.
    pub attempt: Option<i64>,
    pub contact_status: String,
    pub run_date: Option<DateTime<Utc>>,
    pub contact_list_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GeneratedDestination {
    Queue(GeneratedQueue),
    /// A bare `AgentSegment` (after a transfer).
    Agent(GeneratedLeg),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedQueue {
    pub queue_id: String,
    pub queue_name: Option<String>,
    pub enter_time: Option<DateTime<Utc>>,
    pub callback_opted: Option<bool>,
    pub callback_opted_time: Option<DateTime<Utc>>,
    pub user_callback_accept_time: Option<DateTime<Utc>>,
    pub responding: Option<GeneratedLeg>,
    pub non_responding: Vec<GeneratedLeg>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedLeg {
    pub agent_id: String,
    pub email: String,
    pub name: String,
    pub status: Option<String>,
    pub non_response_event: Option<String>,
    pub assigned_at: DateTime<Utc>,
    pub accepted_time: Option<DateTime<Utc>>,
    pub first_response_time: Option<DateTime<Utc>>,
    pub first_response_seconds: Option<i64>,
    pub interaction_end_time: Option<DateTime<Utc>>,
    pub interaction_seconds: Option<i64>,
    pub after_call_work_end_time: Option<DateTime<Utc>>,
    pub after_call_work_seconds: Option<i64>,
    pub notes: Vec<String>,
    pub consulting: Vec<GeneratedConsult>,
}

/// One `ConsultingAgents[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedConsult {
    pub name: String,
    pub assigned_at: DateTime<Utc>,
    pub accepted_time: DateTime<Utc>,
    pub consulting_end_time: DateTime<Utc>,
}

/// One expected `call_segments` row, by the documented walk of `destinations`.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSegment {
    pub index: usize,
    /// Its element's position in `destinations`.
    pub destination: usize,
    /// `QueueEntry` or `AgentSegment`.
    pub destination_type: &'static str,
    pub queue: Option<GeneratedQueue>,
    pub responding: Option<bool>,
    pub leg: Option<GeneratedLeg>,
}

/// The legs of a session: a queue entry's responding agent, then its non-responding agents,
/// or one agentless row when it has neither; a bare agent segment is one responding row.
pub fn segments(call: &GeneratedCall) -> Vec<GeneratedSegment> {
    let mut out = Vec::new();
    for (destination, d) in call.destinations.iter().enumerate() {
        match d {
            GeneratedDestination::Agent(leg) => out.push(GeneratedSegment {
                index: out.len(),
                destination,
                destination_type: "AgentSegment",
                queue: None,
                responding: Some(true),
                leg: Some(leg.clone()),
            }),
            GeneratedDestination::Queue(q) => {
                let legs: Vec<(bool, &GeneratedLeg)> = q
                    .responding
                    .iter()
                    .map(|l| (true, l))
                    .chain(q.non_responding.iter().map(|l| (false, l)))
                    .collect();
                if legs.is_empty() {
                    out.push(GeneratedSegment {
                        index: out.len(),
                        destination,
                        destination_type: "QueueEntry",
                        queue: Some(q.clone()),
                        responding: None,
                        leg: None,
                    });
                }
                for (responding, leg) in legs {
                    out.push(GeneratedSegment {
                        index: out.len(),
                        destination,
                        destination_type: "QueueEntry",
                        queue: Some(q.clone()),
                        responding: Some(responding),
                        leg: Some(leg.clone()),
                    });
                }
            }
        }
    }
    out
}

/// Number of base sessions in UTC hour `hour`.
fn hourly_count(seed: u64, sim: &CallDetailsSim, hour: i64) -> u32 {
    let pct = 80 + hash(&[seed, TAG_COUNT, hour as u64]) % 41;
    (u64::from(sim.sessions_per_hour) * pct / 100) as u32
}

/// `sessionId` of a key: 24 lowercase hex characters.
pub fn session_id(seed: u64, key: SessionKey) -> String {
    let [a, b, c] = key.words();
    let h = hash(&[seed, TAG_ID, a, b, c]);
    format!("{h:016x}{:08x}", mix(h) as u32)
}

/// Start of the session `key` (whole seconds), `None` for a key that does not exist.
pub fn session_start(seed: u64, sim: &CallDetailsSim, key: SessionKey) -> Option<DateTime<Utc>> {
    let [a, b, c] = key.words();
    let jitter = hash(&[seed, TAG_START, a, b, c]);
    match key {
        SessionKey::Hourly { hour, i } => (i < hourly_count(seed, sim, hour))
            .then(|| DateTime::from_timestamp(hour * 3600 + (jitter % 3600) as i64, 0))
            .flatten(),
        SessionKey::Burst { burst, i } => {
            let b = sim.bursts.get(burst as usize)?;
            (i < b.sessions && b.seconds > 0)
                .then(|| b.start + TimeDelta::seconds((jitter % u64::from(b.seconds)) as i64))
        }
    }
}

/// Every session starting in `[range.start, range.end]` (both inclusive, as the server
/// filters), as `(start, session id, key)` sorted by start then id: the server's page order.
pub fn session_index(
    seed: u64,
    sim: &CallDetailsSim,
    range: &Range<DateTime<Utc>>,
) -> Vec<(DateTime<Utc>, String, SessionKey)> {
    let mut out = Vec::new();
    let within = |t: DateTime<Utc>| range.start <= t && t <= range.end;
    let first = range.start.timestamp().div_euclid(3600);
    let last = range.end.timestamp().div_euclid(3600);
    for hour in first..=last {
        for i in 0..hourly_count(seed, sim, hour) {
            let key = SessionKey::Hourly { hour, i };
            if let Some(t) = session_start(seed, sim, key).filter(|&t| within(t)) {
                out.push((t, session_id(seed, key), key));
            }
        }
    }
    for (n, b) in sim.bursts.iter().enumerate() {
        let b_end = b.start + TimeDelta::seconds(i64::from(b.seconds));
        if b_end < range.start || b.start > range.end {
            continue;
        }
        for i in 0..b.sessions {
            let key = SessionKey::Burst { burst: n as u32, i };
            if let Some(t) = session_start(seed, sim, key).filter(|&t| within(t)) {
                out.push((t, session_id(seed, key), key));
            }
        }
    }
    out.sort_unstable_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
    out
}

/// The ground truth: every session the simulator started with `cfg` serves whose start lies in
/// the half-open UTC `range`, in page order.
pub fn calls_in(cfg: &SimulatorConfig, range: Range<DateTime<Utc>>) -> Vec<GeneratedCall> {
    session_index(cfg.seed, &cfg.models.get::<CallDetailsSim>(), &range)
        .into_iter()
        .filter(|(t, _, _)| *t < range.end)
        .map(|(t, _, key)| build::call_at(cfg.seed, key, t, cfg.malformed_every))
        .collect()
}

#[cfg(test)]
mod export_tests;
#[cfg(test)]
mod tests;
