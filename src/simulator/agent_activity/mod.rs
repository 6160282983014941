//! Simulator model of Agent Activity (`GET …/analytics/account/{accountId}/agentactivity
//! ?fromTimeStamp&toTimeStamp`): the events of every agent as a pure function of (seed, agent
//! index, hour) ([`agent_events`]), at whole seconds, about one hour in three with an event at
//! exactly the hour (a request window's edge). The envelope is `{accountId, AgentUpdates:
//! [{AgentId, EventTime, Activity, ReasonCode}]}` (the sample's PascalCase) or the v2 table's
//! camelCase ([`AgentActivitySim::camel_case`]); `EventTime` is `MM/DD/YYYY H:MM:SS` (one-digit
//! hours unpadded) with no zone, local in [`AgentActivitySim::event_zone`] (New York unless set,
//! the demo's zone). Events fall in both occurrences of a repeated fall-back hour, so the same
//! text names two instants and only the request's range tells them apart; in the second
//! occurrence an agent has no event at a local second where it had one in the first (the two
//! updates could be byte-identical, and a reject is known by its raw JSON). `toTimeStamp` is
//! inclusive unless [`AgentActivitySim::to_exclusive`]; no paging. The agent ids are the WFM
//! list's ([`super::agents::wfm_agent_id`]). Under `malformed_every`, about one event in that
//! many is sent with a numeric `Activity` (its time stays valid, so it is rejected in its own
//! day only). Under `unknown_fields` the envelope (level `response`, the same fields in every
//! response) and every update carry fields the exporter does not know.

mod truth;

use std::ops::Range;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Datelike, DurationRound, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::agents::wfm_agent_id;
use super::generator::hash;
use super::model::{check_header, ApiModel, Handler, Reply};
use super::render::push_json_str;
use super::truth::sim_now;
use super::{unknown, SimulatorConfig};

/// The `/_sim/stats` label of Agent Activity requests.
pub const ENDPOINT: &str = "agentactivity";

const TAG_EVENTS: u64 = 0x63;
const TAG_MALFORMED: u64 = 0x64;
const ACTIVITIES: [&str; 5] = ["ready", "notready", "busy", "wrapup", "logout"];

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::GET],
    gated: true,
    blocking: false,
    state: None,
    truth: Some(truth::TRUTH),
};

/// How the simulated Agent Activity API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentActivitySim {
    /// The v2 table's camelCase keys instead of the sample's PascalCase.
    pub camel_case: bool,
    /// `toTimeStamp` excludes its instant (by default it includes it).
    pub to_exclusive: bool,
    /// The zone `EventTime` is written in.
    pub event_zone: Tz,
}

impl Default for AgentActivitySim {
    fn default() -> Self {
        AgentActivitySim {
            camel_case: false,
            to_exclusive: false,
            event_zone: chrono_tz::America::New_York,
        }
    }
}

/// One generated event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedEvent {
    pub at: DateTime<Utc>,
    pub activity: &'static str,
    pub reason_code: Option<String>,
    pub malformed: bool,
}

/// The first instant with `t`'s local time in `zone` when `t` is the second (a time of a
/// repeated fall-back hour's second occurrence); `None` otherwise.
fn first_occurrence(zone: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = t.with_timezone(&zone).naive_local();
    let first = zone
        .from_local_datetime(&local)
        .earliest()?
        .with_timezone(&Utc);
    (first != t).then_some(first)
}

/// The seconds into `hour` (a whole UTC hour) at which agent `idx` has an event, ascending.
fn hour_seconds(seed: u64, idx: usize, hour: DateTime<Utc>) -> Vec<i64> {
    let h = hash(&[seed, TAG_EVENTS, idx as u64, hour.timestamp() as u64]);
    let mut seconds: Vec<i64> = (0..h % 3)
        .map(|k| ((h >> (8 + 12 * k)) % 3600) as i64)
        .collect();
    if (h >> 40).is_multiple_of(3) {
        seconds.push(0);
    }
    seconds.sort_unstable();
    seconds.dedup();
    seconds
}

/// Whether agent `idx` has an event at `t` (before the rule of the second occurrence).
fn has_event_at(seed: u64, idx: usize, t: DateTime<Utc>) -> bool {
    let Ok(hour) = t.duration_trunc(TimeDelta::hours(1)) else {
        return false;
    };
    hour_seconds(seed, idx, hour).contains(&(t - hour).num_seconds())
}

/// Agent `idx`'s events in `range` (in time order), none after `now`; none in the second
/// occurrence of a repeated local second of `zone` where the first has one (module docs).
pub fn agent_events(
    seed: u64,
    idx: usize,
    range: Range<DateTime<Utc>>,
    now: DateTime<Utc>,
    zone: Tz,
    malformed_every: Option<u64>,
) -> Vec<GeneratedEvent> {
    let mut out = Vec::new();
    let Ok(mut hour) = range.start.duration_trunc(TimeDelta::hours(1)) else {
        return out;
    };
    while hour < range.end.min(now + TimeDelta::seconds(1)) {
        for s in hour_seconds(seed, idx, hour) {
            let at = hour + TimeDelta::seconds(s);
            if !range.contains(&at) || at > now {
                continue;
            }
            if first_occurrence(zone, at).is_some_and(|first| has_event_at(seed, idx, first)) {
                continue;
            }
            let e = hash(&[seed, TAG_EVENTS, idx as u64, at.timestamp() as u64, 1]);
            let activity = ACTIVITIES[(e % ACTIVITIES.len() as u64) as usize];
            let reason_code = (activity == "notready").then(|| (1 + (e >> 8) % 4).to_string());
            let malformed = malformed_every.is_some_and(|n| {
                n > 0
                    && hash(&[seed, TAG_MALFORMED, idx as u64, at.timestamp() as u64])
                        .is_multiple_of(n)
            });
            out.push(GeneratedEvent {
                at,
                activity,
                reason_code,
                malformed,
            });
        }
        hour += TimeDelta::hours(1);
    }
    out
}

/// `MM/DD/YYYY H:MM:SS` of `t` in `zone`.
pub fn event_time_text(t: DateTime<Utc>, zone: Tz) -> String {
    let l = t.with_timezone(&zone);
    format!(
        "{:02}/{:02}/{} {}:{:02}:{:02}",
        l.month(),
        l.day(),
        l.year(),
        l.hour(),
        l.minute(),
        l.second()
    )
}

fn route(segments: &[&str]) -> Option<Handler> {
    let ["agentassist", "api", "public", "analytics", "account", account, "agentactivity"] =
        segments
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
        let (mut from, mut to) = (None, None);
        for (k, v) in url::form_urlencoded::parse(req.query().unwrap_or("").as_bytes()) {
            let t = v.parse::<DateTime<Utc>>().ok();
            match k.as_ref() {
                "fromTimeStamp" => from = t,
                "toTimeStamp" => to = t,
                _ => {}
            }
        }
        let (Some(from), Some(to)) = (from, to) else {
            return Reply::bad_request("fromTimeStamp and toTimeStamp must be ISO 8601 instants");
        };
        let sim = cfg.models.get::<AgentActivitySim>();
        let end = if sim.to_exclusive {
            to
        } else {
            to + TimeDelta::milliseconds(1)
        };
        Reply::json(StatusCode::OK, render(cfg, from..end))
    }))
}

/// The response for the events in `range`.
pub(crate) fn render(cfg: &SimulatorConfig, range: Range<DateTime<Utc>>) -> String {
    let sim = cfg.models.get::<AgentActivitySim>();
    let k = |pascal: &'static str, camel: &'static str| if sim.camel_case { camel } else { pascal };
    let mut out = String::from("{\"accountId\":");
    push_json_str(&mut out, &cfg.account_id);
    if cfg.unknown_fields {
        unknown::push_members(&mut out, &response_fields(cfg));
    }
    out.push_str(&format!(",\"{}\":[", k("AgentUpdates", "agentUpdates")));
    let now = sim_now(cfg);
    let mut first = true;
    for idx in 0..cfg.agents {
        let agent = wfm_agent_id(cfg.seed, idx);
        for e in agent_events(
            cfg.seed,
            idx,
            range.clone(),
            now,
            sim.event_zone,
            cfg.malformed_every,
        ) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&format!("{{\"{}\":", k("AgentId", "agentId")));
            push_json_str(&mut out, &agent);
            out.push_str(&format!(",\"{}\":", k("EventTime", "eventTime")));
            push_json_str(&mut out, &event_time_text(e.at, sim.event_zone));
            out.push_str(&format!(",\"{}\":", k("Activity", "activity")));
            if e.malformed {
                out.push('7');
            } else {
                push_json_str(&mut out, e.activity);
            }
            if let Some(code) = &e.reason_code {
                out.push_str(&format!(",\"{}\":", k("ReasonCode", "reasonCode")));
                push_json_str(&mut out, code);
            }
            if cfg.unknown_fields {
                let id = event_ref(&agent, e.at);
                unknown::push_members(&mut out, &unknown::fields("update", &id));
            }
            out.push('}');
        }
    }
    out.push_str("]}");
    out
}

/// The unknown fields of every response envelope (level `response`).
pub(crate) fn response_fields(cfg: &SimulatorConfig) -> Vec<(String, String)> {
    unknown::fields("response", &cfg.account_id)
}

/// How the truth and the unknown fields name an event.
pub(crate) fn event_ref(agent: &str, at: DateTime<Utc>) -> String {
    format!("{agent}@{}", at.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("instant")
    }

    #[test]
    fn the_repeated_fall_back_hour_holds_events_in_both_occurrences_each_text_once() {
        let ny = chrono_tz::America::New_York;
        // New York's 2024-11-03: 01:00-02:00 local is 05:00-06:00Z, then 06:00-07:00Z.
        let day = at("2024-11-03T04:00:00Z")..at("2024-11-04T05:00:00Z");
        let now = at("2024-11-05T00:00:00Z");
        let first_hour = at("2024-11-03T05:00:00Z")..at("2024-11-03T06:00:00Z");
        let second_hour = at("2024-11-03T06:00:00Z")..at("2024-11-03T07:00:00Z");
        let (mut first, mut second) = (0, 0);
        for idx in 0..20 {
            let events = agent_events(18, idx, day.clone(), now, ny, None);
            let mut texts = std::collections::BTreeSet::new();
            for e in &events {
                first += usize::from(first_hour.contains(&e.at));
                second += usize::from(second_hour.contains(&e.at));
                let text = event_time_text(e.at, ny);
                assert!(texts.insert(text.clone()), "agent {idx}: {text} twice");
            }
        }
        assert!(first > 5 && second > 5, "{first} and {second}");
        assert_eq!(
            event_time_text(at("2024-11-03T06:00:00Z"), ny),
            "11/03/2024 1:00:00"
        );
    }
}
