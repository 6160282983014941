//! Simulator model of Agent Status Details: the status spans of every agent as a pure function
//! of (seed, agent index), and the response bodies the simulator serves for them. Tests use
//! [`agent_spans`] as the independent source of expected rows.
//!
//! Each agent has one timeline: change points at millisecond precision, a few per four-hour
//! block, and every interval between two change points is either a status span or a gap (the
//! agent logged out, nothing listed). About one 48 h group in six has a single change point,
//! which yields spans longer than 24 h. The interval containing "now" is open; nothing starts
//! after "now". About one agent in nine never has a span. A response lists, for each selected
//! agent, the spans overlapping the served UTC range, times rendered without a zone, local at
//! the request's `timeZoneOffSet` and truncated to the second, `duration` as `HH:MM:SS` of the
//! exact length (so, as in the documentation's own sample, it can be one second shorter than
//! `endTime − startTime`), and `"-"` for an open span. `aId` and `events` exist only in `/v3`.
//! Agents without spans have neither `customId` nor `status`. The HTTP side is in `handler.rs`:
//! `POST …/account/{accountId}/agentstatusdetails`, `…/v2/agentstatusdetails` and
//! `…/v3/agentstatusdetails`, one [`Generation`] each.

pub(crate) mod handler;
mod truth;

use std::fmt::Write as _;
use std::ops::Range;

use axum::http::Method;
use chrono::{DateTime, Utc};

use super::generator::{hash, quirk, GeneratedAgent};
use super::model::{ApiModel, Handler, Reply};
use super::render::push_json_str;
use super::truth::instant_key;
use super::unknown;

/// The `/_sim/stats` label of Agent Status Details requests (every generation).
pub const ENDPOINT: &str = "agentstatusdetails";

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
    let (account, generation) = match segments {
        ["agentassist", "api", "public", "analytics", "account", account, "agentstatusdetails"] => {
            (account, Generation::Unversioned)
        }
        ["agentassist", "api", "public", "analytics", "account", account, "v2", "agentstatusdetails"] => {
            (account, Generation::V2)
        }
        ["agentassist", "api", "public", "analytics", "account", account, "v3", "agentstatusdetails"] => {
            (account, Generation::V3)
        }
        _ => return None,
    };
    let account = account.to_string();
    Some(Handler::new(move |shared, req| {
        let (status, body) = handler::handle(
            shared,
            &account,
            generation,
            req.query(),
            &req.headers,
            &req.body,
        );
        Reply::json(status, body)
    }))
}

/// The documented maximum of `limit`.
pub const MAX_LIMIT: usize = 50;

const TAG_INACTIVE: u64 = 0x21;
const TAG_GROUP: u64 = 0x22;
const TAG_COUNT: u64 = 0x23;
const TAG_POINT: u64 = 0x24;
const TAG_SPAN: u64 = 0x25;
const TAG_MALFORMED: u64 = 0x26;
const TAG_AID: u64 = 0x27;
const TAG_EVENTS: u64 = 0x28;

const BLOCK_MS: i64 = 4 * 3_600_000;
/// Blocks per group; the first block of every group has at least one change point.
const GROUP_BLOCKS: i64 = 12;

/// The API generation, from the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// `…/{accountId}/agentstatusdetails`
    Unversioned,
    /// `…/{accountId}/v2/agentstatusdetails` (SmartAssist; `accountId` header, no `iId`).
    V2,
    /// `…/{accountId}/v3/agentstatusdetails` (adds `aId` and `events`).
    V3,
}

/// How the simulator breaks a span when `malformed_every` selects it. Every kind keeps a valid
/// `startTime`, so an exporter rejects each malformed span exactly once, in its own day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformation {
    /// `endTime` is not a date (`"2024-02-30T25:61:00"`).
    BadEndTime,
    /// `duration` is not `HH:MM:SS` (`"7:5"`).
    BadDuration,
    /// `duration` is a JSON number of seconds.
    DurationNumber,
    /// `primaryStatus` is a JSON number.
    PrimaryNotString,
}

/// One status span, in UTC, with its exact bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedSpan {
    pub start: DateTime<Utc>,
    /// `None` while the span is open (it contains "now").
    pub end: Option<DateTime<Utc>>,
    pub primary: &'static str,
    pub secondary: &'static str,
    pub malformed: Option<Malformation>,
}

impl GeneratedSpan {
    /// Exact length in milliseconds; `None` while open.
    pub fn duration_ms(&self) -> Option<i64> {
        self.end.map(|e| (e - self.start).num_milliseconds())
    }
}

const STATUSES: [(&str, &str); 8] = [
    ("AVAILABLE", "AVAILABLE"),
    ("AVAILABLE", "AVAILABLE"),
    ("AVAILABLE", "AVAILABLE"),
    ("BUSY", "BUSY"),
    ("BUSY", "NBK"),
    ("BUSY", "Meeting"),
    ("AWAY", "AWAY"),
    ("AWAY", "Break"),
];

/// Whether agent `idx` never has any span (about one in nine).
pub fn is_inactive(seed: u64, idx: usize) -> bool {
    hash(&[seed, TAG_INACTIVE, idx as u64]) % 9 == 4
}

/// The `/v3` `aId` of agent `idx` (`a-` and a uuid-like id, as in the documentation).
pub fn agent_id(seed: u64, idx: usize) -> String {
    let h = hash(&[seed, TAG_AID, idx as u64]);
    let h2 = hash(&[seed, TAG_AID, idx as u64, 1]);
    format!(
        "a-{:07x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h >> 36,
        (h >> 16) & 0xFFFF,
        h & 0xFFF,
        0x8000 | (h2 >> 48 & 0x3FFF),
        h2 & 0xFFFF_FFFF_FFFF
    )
}

/// Change points of block `n` (absolute Unix milliseconds), sorted and distinct.
fn block_points(seed: u64, agent: u64, n: i64) -> Vec<i64> {
    let group = n.div_euclid(GROUP_BLOCKS);
    let first = n.rem_euclid(GROUP_BLOCKS) == 0;
    let quiet = hash(&[seed, TAG_GROUP, agent, group as u64]).is_multiple_of(6);
    let h = hash(&[seed, TAG_COUNT, agent, n as u64]);
    let count = match (quiet, first) {
        (true, true) => 1,
        (true, false) => 0,
        (false, true) => 1 + h % 4,
        (false, false) => h % 5,
    };
    let mut points: Vec<i64> = (0..count)
        .map(|i| {
            let within = hash(&[seed, TAG_POINT, agent, n as u64, i]) % BLOCK_MS as u64;
            n * BLOCK_MS + within as i64
        })
        .collect();
    points.sort_unstable();
    points.dedup();
    points
}

/// The last change point at or before `t`. Every group's first block has one, so the scan
/// ends within two groups.
fn point_at_or_before(seed: u64, agent: u64, t: i64) -> i64 {
    let n0 = t.div_euclid(BLOCK_MS);
    for n in (n0 - 2 * GROUP_BLOCKS..=n0).rev() {
        if let Some(&p) = block_points(seed, agent, n).iter().rev().find(|&&p| p <= t) {
            return p;
        }
    }
    // Unreachable by construction; a point far back keeps the function total.
    (n0 - 2 * GROUP_BLOCKS) * BLOCK_MS
}

/// The first change point strictly after `t`.
fn point_after(seed: u64, agent: u64, t: i64) -> i64 {
    let n0 = t.div_euclid(BLOCK_MS);
    for n in n0..=n0 + 2 * GROUP_BLOCKS {
        if let Some(&p) = block_points(seed, agent, n).iter().find(|&&p| p > t) {
            return p;
        }
    }
    (n0 + 2 * GROUP_BLOCKS + 1) * BLOCK_MS
}

fn malformation(seed: u64, agent: u64, start: i64, every: Option<u64>) -> Option<Malformation> {
    let n = every.filter(|&n| n > 0)?;
    let h = hash(&[seed, TAG_MALFORMED, agent, start as u64]);
    if !h.is_multiple_of(n) {
        return None;
    }
    Some(match (h / n) % 4 {
        0 => Malformation::BadEndTime,
        1 => Malformation::BadDuration,
        2 => Malformation::DurationNumber,
        _ => Malformation::PrimaryNotString,
    })
}

fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The spans of agent `idx` that overlap `range` (start before its end, and end after its
/// start or still open), in start order, as they are at `now`: the span containing `now` is
/// open and nothing starts after `now`. Open spans count as overlapping only a range that
/// begins at or before `now`. With `malformed_every = Some(n)`, about one span in `n` carries
/// the [`Malformation`] the simulator renders for it.
pub fn agent_spans(
    seed: u64,
    idx: usize,
    range: Range<DateTime<Utc>>,
    now: DateTime<Utc>,
    malformed_every: Option<u64>,
) -> Vec<GeneratedSpan> {
    if is_inactive(seed, idx) || range.start >= range.end {
        return Vec::new();
    }
    let a = idx as u64;
    let (from, to, now_ms) = (
        range.start.timestamp_millis(),
        range.end.timestamp_millis(),
        now.timestamp_millis(),
    );
    let mut out = Vec::new();
    let mut p = point_at_or_before(seed, a, from);
    while p < to && p <= now_ms {
        let q = point_after(seed, a, p);
        let open = q > now_ms;
        let overlaps = if open { now_ms >= from } else { q > from };
        let h = hash(&[seed, TAG_SPAN, a, p as u64]);
        if overlaps && h % 100 >= 15 {
            let (primary, secondary) = STATUSES[(h >> 8) as usize % STATUSES.len()];
            out.push(GeneratedSpan {
                start: at_ms(p),
                end: (!open).then(|| at_ms(q)),
                primary,
                secondary,
                malformed: malformation(seed, a, p, malformed_every),
            });
        }
        p = q;
    }
    out
}

/// Local wall time of `t` at the JavaScript-convention offset (local = UTC − offset),
/// truncated to the second, without a zone.
pub fn local_text(t: DateTime<Utc>, offset_minutes: i64) -> String {
    let secs = t.timestamp() - offset_minutes * 60;
    DateTime::from_timestamp(secs, 0)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// `HH:MM:SS` (hours unbounded) of whole seconds.
pub fn hms_text(seconds: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// What varies per request besides the agents on the page.
#[derive(Debug, Clone)]
pub struct AsdRender {
    pub seed: u64,
    pub generation: Generation,
    /// The request's `timeZoneOffSet`.
    pub offset_minutes: i64,
    /// The UTC range the request's date filter covers.
    pub served: Range<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    pub malformed_every: Option<u64>,
    /// Add [`unknown::fields`] to every agent and span.
    pub unknown_fields: bool,
}

/// Whether agent `idx` carries `"isSupervisor":false` when it has spans (a field no column
/// maps).
pub(crate) fn is_supervisor_listed(seed: u64, idx: usize) -> bool {
    quirk(seed, &[0x20, idx as u64], 5)
}

/// The `/v3` `events` of agent `idx` (a documented field no column maps): the agent's login
/// entry, the same in every response.
pub(crate) fn events_json(seed: u64, idx: usize) -> String {
    let login = hash(&[seed, TAG_EVENTS, idx as u64]) % 86_400_000;
    let at = DateTime::from_timestamp_millis(1_704_067_200_000 + login as i64)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    format!(
        "[{{\"type\":\"entry\",\"at\":\"{}\",\"ip\":\"10.32.130.{}\"}}]",
        at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        idx % 250
    )
}

/// The identity [`unknown::fields`] of a span carry: its user and its start as rendered.
pub(crate) fn span_ref(user_id: &str, start: DateTime<Utc>) -> String {
    let rendered = DateTime::from_timestamp(start.timestamp(), 0).unwrap_or(start);
    format!("{user_id}|{}", instant_key(rendered))
}

impl AsdRender {
    /// The `{hasMore, limit, offset, data}` envelope for the agents at `page` (indexes into
    /// `agents`, which are the generated agents in index order).
    pub fn page(
        &self,
        agents: &[GeneratedAgent],
        page: &[usize],
        has_more: bool,
        limit: usize,
        offset: usize,
    ) -> String {
        let mut out = String::with_capacity(64 + page.len() * 2048);
        let _ = write!(
            out,
            "{{\"hasMore\":{has_more},\"limit\":{limit},\"offset\":{offset},\"data\":["
        );
        for (n, &idx) in page.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            self.push_agent(&mut out, &agents[idx], idx);
        }
        out.push_str("]}");
        out
    }

    fn push_agent(&self, out: &mut String, a: &GeneratedAgent, idx: usize) {
        out.push_str("{\"userId\":");
        push_json_str(out, &a.user_id);
        if self.generation == Generation::V3 {
            out.push_str(",\"aId\":");
            push_json_str(out, &agent_id(self.seed, idx));
        }
        for (key, value) in [
            ("firstName", &a.first_name),
            ("lastName", &a.last_name),
            ("email", &a.email),
        ] {
            let _ = write!(out, ",\"{key}\":");
            push_json_str(out, value);
        }
        if self.unknown_fields {
            unknown::push_members(out, &unknown::fields("agent", &a.user_id));
        }
        let spans = agent_spans(
            self.seed,
            idx,
            self.served.clone(),
            self.now,
            self.malformed_every,
        );
        if spans.is_empty() {
            out.push('}');
            return;
        }
        out.push_str(",\"customId\":");
        push_json_str(out, &a.custom_id);
        if is_supervisor_listed(self.seed, idx) {
            out.push_str(",\"isSupervisor\":false");
        }
        out.push_str(",\"status\":[");
        for (n, span) in spans.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            self.push_span(out, span, &a.user_id);
        }
        out.push(']');
        if self.generation == Generation::V3 {
            out.push_str(",\"events\":");
            out.push_str(&events_json(self.seed, idx));
        }
        out.push('}');
    }

    fn push_span(&self, out: &mut String, span: &GeneratedSpan, user_id: &str) {
        let primary = if span.malformed == Some(Malformation::PrimaryNotString) {
            "7".to_owned()
        } else {
            format!("\"{}\"", span.primary)
        };
        let end = match (span.malformed, span.end) {
            (Some(Malformation::BadEndTime), _) => "\"2024-02-30T25:61:00\"".to_owned(),
            (_, Some(end)) => format!("\"{}\"", local_text(end, self.offset_minutes)),
            (_, None) => "\"-\"".to_owned(),
        };
        let seconds = span.duration_ms().map(|ms| ms.div_euclid(1000));
        let duration = match (span.malformed, seconds) {
            (Some(Malformation::BadDuration), _) => "\"7:5\"".to_owned(),
            (Some(Malformation::DurationNumber), s) => s.unwrap_or(0).to_string(),
            (_, Some(s)) => format!("\"{}\"", hms_text(s)),
            (_, None) => "\"-\"".to_owned(),
        };
        let _ = write!(
            out,
            "{{\"primaryStatus\":{primary},\"secondaryStatus\":\"{}\",\"startTime\":\"{}\",\"endTime\":{end},\"duration\":{duration}",
            span.secondary,
            local_text(span.start, self.offset_minutes),
        );
        if self.unknown_fields {
            let fields = unknown::fields("span", &span_ref(user_id, span.start));
            unknown::push_members(out, &fields);
        }
        out.push('}');
    }
}

#[cfg(test)]
mod tests;
