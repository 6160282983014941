//! The wire format of Agent Status Details (`POST …/analytics/account/{accountId}[/v2|/v3]/agentstatusdetails`)
//! and the normalization of its status spans into rows of
//! [`agent_status_details_schema`]: the request body of one page, decoding of a response page,
//! and one row per span. It does no I/O; [`super`] owns the requests, paging and the write.
//!
//! The caller plans each local day with [`plan_day`](crate::sources::window::plan_day), sends
//! [`request_body`] (or [`request_body_with`]) for every [`DayWindow`] with `limit` ≤
//! [`MAX_PAGE_SIZE`] and `offset` in the query, decodes each page with [`decode_page`]
//! (retrying the request on [`DecodeError`]), advances `offset` by [`Page::record_count`] while
//! [`Page::has_more`], dedupes agents by [`AgentSpans::user_id`] within a window (as for
//! UserStatus), and feeds every agent to one [`Normalizer`] per local day together with the
//! window it came from. Page-level rejects go to [`Normalizer::push_reject`].
//!
//! **Times.** `startTime`/`endTime` come without a zone and are local at the request's
//! `timeZoneOffSet` (JavaScript convention: IST is −330), so UTC = local + offset. A time that
//! does carry `Z` or an offset is taken as absolute. A span belongs to the window whose `claim`
//! holds its UTC start; the API also returns a span for the other days it overlaps, and those
//! copies are skipped, so each span is written once, in the `dt` of its local start.
//! `endTime` and `duration` are `"-"` for a span still open: both columns are then null, and the
//! row is rewritten when its day is exported again.
//!
//! **Date filter sent.** The parameter tables document `startDate`/`endDate` (`yyyy-mm-dd`,
//! date-times for `/v2`) while every sample sends a single `date`. [`request_body`] sends all
//! three for the same local day: a server that reads either form gets the intended day, and a
//! server that knows only one form would otherwise fall back to some default range, which is a
//! silent wrong answer rather than an error. For `/v2` ([`DateStyle::DateTime`]) the range is
//! `day T00:00:00` to `day+1 T00:00:00`: if the server reads the end as inclusive it returns at
//! most one extra instant, which the claim filter drops.
//!
//! **Rejects.** Leaves are validated during normalization: a span with a bad time, a bad
//! duration or a wrong type is rejected alone, with its raw JSON, its user id and the offset
//! its times are local to. An agent that is not an object, has no `userId`, or whose `status`
//! is not an array is rejected whole. A span whose `startTime` is unusable cannot be assigned to
//! a day, so every window whose response holds it rejects it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::value::RawValue;

use super::schema::agent_status_details_schema;
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::durations::parse_hms;
use crate::sources::extra::{ExtraColumn, Unmapped, UnmappedCounts};
use crate::sources::tape::Tape;
use crate::sources::timestamp::{parse_local, scan, Zone};
use crate::sources::window::DayWindow;
use crate::sources::wire::{json_string, opt_text, parse_instant, InstantError};
use crate::sources::{DecodeError, Reject};
use wire::{page_of_tape, AgentWire, Envelope, SpanEntry, SpanWire};

/// The documented maximum (and default) of the `limit` query parameter.
pub const MAX_PAGE_SIZE: usize = 50;
/// Open-span marker of `endTime` and `duration`.
const OPEN: &str = "-";
const API: &str = "AgentStatusDetails";

/// How `startDate`/`endDate` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateStyle {
    /// `yyyy-mm-dd`, both the window's day (unversioned and `/v3` tables).
    Date,
    /// `yyyy-mm-ddTHH:MM:SS`, from the day's midnight to the next one (`/v2`).
    DateTime,
}

impl DateStyle {
    /// [`DateStyle::DateTime`] for a path whose last directory is `v2` (the SmartAssist `/v2`
    /// generation), [`DateStyle::Date`] otherwise.
    pub fn for_path(path: &str) -> DateStyle {
        let mut segments = path.rsplit('/').filter(|s| !s.is_empty());
        let _endpoint = segments.next();
        if segments
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("v2"))
        {
            DateStyle::DateTime
        } else {
            DateStyle::Date
        }
    }
}

/// [`request_body_with`] in [`DateStyle::Date`].
pub fn request_body(agents: &[String], window: &DayWindow) -> serde_json::Value {
    request_body_with(agents, window, DateStyle::Date)
}

/// The JSON body of one request: `filter.dateFilter` names the window's local day as `date`
/// and as `startDate`/`endDate` (see the module docs for why both), with the window's
/// `timeZoneOffSet`. `filter.agents` (email ids) is omitted when `agents` is empty, which
/// selects every agent.
pub fn request_body_with(
    agents: &[String],
    window: &DayWindow,
    style: DateStyle,
) -> serde_json::Value {
    let day = window.day.format("%Y-%m-%d").to_string();
    let (start, end) = match style {
        DateStyle::Date => (day.clone(), day.clone()),
        DateStyle::DateTime => {
            let next = window.day.succ_opt().unwrap_or(window.day);
            (
                format!("{day}T00:00:00"),
                next.format("%Y-%m-%dT00:00:00").to_string(),
            )
        }
    };
    let mut filter = serde_json::Map::new();
    if !agents.is_empty() {
        filter.insert("agents".into(), serde_json::json!(agents));
    }
    filter.insert(
        "dateFilter".into(),
        serde_json::json!({
            "date": day,
            "startDate": start,
            "endDate": end,
            "timeZoneOffSet": window.offset_minutes,
        }),
    );
    serde_json::json!({ "filter": filter })
}

/// One agent of a page: identity fields decoded, spans kept as raw JSON for [`Normalizer`].
/// Borrows from the response body.
#[derive(Debug, Clone)]
pub struct AgentSpans<'a> {
    user_id: Cow<'a, str>,
    agent_id: Option<Cow<'a, str>>,
    email: Option<Cow<'a, str>>,
    first_name: Option<Cow<'a, str>>,
    last_name: Option<Cow<'a, str>>,
    custom_id: Option<Cow<'a, str>>,
    spans: Vec<SpanEntry<'a>>,
    /// The agent's fields no column maps.
    extra: Unmapped<'a>,
}

impl AgentSpans<'_> {
    /// `userId`; never empty.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    /// `aId` (`/v3` only); `None` when absent, null or empty.
    pub fn agent_id(&self) -> Option<&str> {
        self.agent_id.as_deref().filter(|s| !s.is_empty())
    }
    /// `email`; `None` when absent, null or empty.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref().filter(|s| !s.is_empty())
    }
    /// `firstName` as received (`""` stays `""`); `None` when absent or null.
    pub fn first_name(&self) -> Option<&str> {
        self.first_name.as_deref()
    }
    /// `lastName` as received; `None` when absent or null.
    pub fn last_name(&self) -> Option<&str> {
        self.last_name.as_deref()
    }
    /// `customId` (a number is kept as its text); `None` when absent, null or empty.
    pub fn custom_id(&self) -> Option<&str> {
        self.custom_id.as_deref().filter(|s| !s.is_empty())
    }
    /// Number of `status[]` entries, including those outside every claim: an upper bound on
    /// the rows this agent adds.
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }
}

/// A decoded page.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// `hasMore` of the envelope (`false` when absent or null).
    pub has_more: bool,
    /// Agent records on the page, rejected ones included: what `offset` advances by.
    pub record_count: usize,
    pub agents: Vec<Result<AgentSpans<'a>, Reject>>,
}

/// Decodes one response body. Record-level problems become `Err(Reject)` entries in `agents`;
/// a body that is not UTF-8 JSON, is truncated, is an `{"errors": …}` body, is not the
/// `{hasMore, limit, offset, data}` envelope or has a non-boolean `hasMore` is a
/// [`DecodeError`].
///
/// A valid page is indexed once, validated in the same pass ([`Tape::index_valid`]), and its
/// envelope, agents and their `status[]` entries are read from that index; any other body is
/// read the general way (serde_json), which names what is wrong, and so is an agent whose keys
/// the index cannot decode or whose `status` is neither an array nor null. Before, a span's bytes were walked twice by serde_json (the page
/// with the entries kept raw, then the entry), and four times before that: together a third
/// of the dataset's export CPU in a profile of `cargo bench --bench datasets`.
pub fn decode_page(body: &[u8]) -> Result<Page<'_>, DecodeError> {
    let err = |reason: String| DecodeError { api: API, reason };
    let body = std::str::from_utf8(body).map_err(|e| err(format!("body is not UTF-8: {e}")))?;
    if !body.trim_start().starts_with('{') {
        return Err(err("body is not a JSON object".into()));
    }
    if let Some(page) = Tape::index_valid(body).as_ref().and_then(page_of_tape) {
        let record_count = page.records.len();
        let agents = page
            .records
            .into_iter()
            .enumerate()
            .map(|(i, (raw, wire))| {
                let agent = match wire {
                    Some(wire) if raw.starts_with('{') => agent_from_tape(wire),
                    _ => decode_agent(raw),
                };
                agent.map_err(|reason| Reject {
                    reason: format!("data[{i}]: {reason}"),
                    raw_json: raw.to_owned(),
                })
            })
            .collect();
        return Ok(Page {
            has_more: page.has_more,
            record_count,
            agents,
        });
    }
    let top: Envelope<'_, &RawValue> =
        serde_json::from_str(body).map_err(|e| err(e.to_string()))?;
    if let Some(errors) = top.errors {
        return Err(err(format!("body is an error response: {}", errors.get())));
    }
    let data = match top.data {
        Some(data) => data.unwrap_or_default(),
        None => return Err(err("envelope has no \"data\" array".into())),
    };
    let agents = data
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            decode_agent(raw.get()).map_err(|reason| Reject {
                reason: format!("data[{i}]: {reason}"),
                raw_json: raw.get().to_owned(),
            })
        })
        .collect();
    Ok(Page {
        has_more: top.has_more.unwrap_or(false),
        record_count: data.len(),
        agents,
    })
}

/// The agent of a record read from the index, its `status` entries with it.
fn agent_from_tape<'a>(
    mut wire: AgentWire<'a, Vec<SpanEntry<'a>>>,
) -> Result<AgentSpans<'a>, String> {
    let spans = wire.status.take().unwrap_or_default();
    agent_from_wire(wire, spans)
}

/// The agent of a record's text, read by serde_json (the general way).
fn decode_agent(raw: &str) -> Result<AgentSpans<'_>, String> {
    if !raw.starts_with('{') {
        return Err("agent record is not an object".into());
    }
    let mut wire: AgentWire<'_, &RawValue> =
        serde_json::from_str(raw).map_err(|e| e.to_string())?;
    // `userId` is checked before `status`, as the reasons have always been given.
    opt_text("userId", wire.user_id)?
        .filter(|u| !u.is_empty())
        .ok_or("agent has no userId")?;
    let spans = match wire.status.take() {
        None => Vec::new(),
        Some(status) => serde_json::from_str::<Option<Vec<&RawValue>>>(status.get())
            .map_err(|_| format!("status is not an array: {}", status.get()))?
            .unwrap_or_default()
            .into_iter()
            .map(|raw| SpanEntry::raw(raw.get()))
            .collect(),
    };
    agent_from_wire(wire, spans)
}

/// The agent of a decoded record whose `status[]` entries are `spans`.
fn agent_from_wire<'a, S>(
    wire: AgentWire<'a, S>,
    spans: Vec<SpanEntry<'a>>,
) -> Result<AgentSpans<'a>, String> {
    let user_id = opt_text("userId", wire.user_id)?
        .filter(|u| !u.is_empty())
        .ok_or("agent has no userId")?;
    Ok(AgentSpans {
        user_id,
        agent_id: opt_text("aId", wire.agent_id)?,
        email: opt_text("email", wire.email)?,
        first_name: opt_text("firstName", wire.first_name)?,
        last_name: opt_text("lastName", wire.last_name)?,
        custom_id: custom_id(wire.custom_id)?,
        spans,
        extra: wire.extra,
    })
}

/// `customId` is documented as a string (`"123456"`, `""`); an integer is kept as its text.
fn custom_id(v: Option<&str>) -> Result<Option<Cow<'_, str>>, String> {
    match v {
        Some(s) if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') => Ok(Some(Cow::Borrowed(s))),
        other => opt_text("customId", other),
    }
}

/// Parses a span time. Without a zone (`2023-03-09T13:20:38`, optionally with a fraction, a
/// space instead of `T`) it is local at the JavaScript-convention `offset_minutes`, so UTC is
/// local + offset; with `Z` or an offset it is absolute. Instants outside the plausible range
/// of [`parse_instant`] are refused.
pub fn parse_span_time(s: &str, offset_minutes: i32) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    // The usual zone-less form skips the zoned parsers, which cannot read it anyway.
    let local = scan(t.as_bytes()).filter(|t| t.zone == Zone::Local && t.seconds);
    if local.is_none() {
        match parse_instant(t) {
            Ok(at) => return Ok(at),
            Err(e @ InstantError::Implausible) => return Err(e.describe("time", s)),
            Err(InstantError::Unparsable) => {}
        }
    }
    let naive = match local {
        Some(l) => l.naive,
        None => parse_local(t, false)
            .ok_or_else(|| format!("{s:?} is not a yyyy-mm-ddTHH:MM:SS time"))?,
    };
    let at = naive.and_utc() + TimeDelta::minutes(i64::from(offset_minutes));
    if (2000..2100).contains(&at.year()) {
        Ok(at)
    } else {
        Err(InstantError::Implausible.describe("time", s))
    }
}

/// A validated span.
struct Span<'e> {
    primary: Cow<'e, str>,
    secondary: Option<Cow<'e, str>>,
    start_ms: i64,
    end_ms: Option<i64>,
    duration: Option<i64>,
    /// Borrowed from the entry read from the index; owned when serde_json read it.
    extra: Cow<'e, Unmapped<'e>>,
}

/// Accumulates the rows of one local day (one `dt` partition) and its rejects.
pub struct Normalizer {
    account_id: String,
    exported_at_ms: i64,
    user_id: StringBuilder,
    agent_id: StringBuilder,
    email: StringBuilder,
    first_name: StringBuilder,
    last_name: StringBuilder,
    custom_id: StringBuilder,
    primary: StringBuilder,
    secondary: StringBuilder,
    start: TimestampMillisecondBuilder,
    end: TimestampMillisecondBuilder,
    duration: Int64Builder,
    extra: ExtraColumn,
    unmapped: UnmappedCounts,
    offsets: Vec<i32>,
    rejects: Vec<Reject>,
    /// Spans appended without an end (still open when the day was fetched).
    open_spans: usize,
}

impl fmt::Debug for Normalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("agent_status_details::Normalizer")
            .field("account_id", &self.account_id)
            .field("rows", &self.rows())
            .field("rejects", &self.rejects.len())
            .finish()
    }
}

impl Normalizer {
    pub fn new(account_id: &str, exported_at: DateTime<Utc>) -> Self {
        Normalizer {
            account_id: account_id.to_owned(),
            exported_at_ms: exported_at.timestamp_millis(),
            user_id: StringBuilder::new(),
            agent_id: StringBuilder::new(),
            email: StringBuilder::new(),
            first_name: StringBuilder::new(),
            last_name: StringBuilder::new(),
            custom_id: StringBuilder::new(),
            primary: StringBuilder::new(),
            secondary: StringBuilder::new(),
            start: timestamp_builder(0),
            end: timestamp_builder(0),
            duration: Int64Builder::new(),
            extra: ExtraColumn::default(),
            unmapped: UnmappedCounts::default(),
            offsets: Vec::new(),
            rejects: Vec::new(),
            open_spans: 0,
        }
    }

    /// Appends one row per span of `agent` whose UTC start lies in `window.claim`, reading
    /// zone-less times at `window.offset_minutes` (the offset the request was sent with).
    /// Spans starting outside the claim are skipped unvalidated (another day owns them),
    /// except that a span with an unusable `startTime` is rejected since its owner is unknown.
    pub fn push_agent(&mut self, agent: &AgentSpans<'_>, window: &DayWindow) {
        let offset = window.offset_minutes;
        let rows_before = self.rows();
        for (i, entry) in agent.spans.iter().enumerate() {
            let outcome = normalize_span(entry, offset, |start| window.claim.contains(start));
            match outcome {
                Ok(Some(span)) => self.append(agent, &span, offset),
                Ok(None) => {}
                Err(why) => self.rejects.push(Reject {
                    reason: format!(
                        "user {} status[{i}] (timeZoneOffSet {offset}): {why}",
                        agent.user_id()
                    ),
                    raw_json: format!(
                        "{{\"userId\":{},\"timeZoneOffSet\":{offset},\"status\":[{}]}}",
                        json_string(agent.user_id()),
                        entry.raw
                    ),
                }),
            }
        }
        // The agent's own columns, once for all its rows (they are contiguous): one copy loop
        // per column instead of six appends per row.
        let rows = self.rows() - rows_before;
        if rows > 0 {
            self.user_id.append_value_n(agent.user_id(), rows);
            append_n(&mut self.agent_id, agent.agent_id(), rows);
            append_n(&mut self.email, agent.email(), rows);
            append_n(&mut self.first_name, agent.first_name(), rows);
            append_n(&mut self.last_name, agent.last_name(), rows);
            append_n(&mut self.custom_id, agent.custom_id(), rows);
            self.unmapped.add(&agent.extra);
        }
    }

    /// Appends the columns of `span` but the agent's (see [`Normalizer::push_agent`]).
    fn append(&mut self, agent: &AgentSpans<'_>, span: &Span<'_>, offset: i32) {
        self.primary.append_value(&span.primary);
        self.secondary.append_option(span.secondary.as_deref());
        self.start.append_value(span.start_ms);
        self.end.append_option(span.end_ms);
        self.open_spans += usize::from(span.end_ms.is_none());
        self.duration.append_option(span.duration);
        self.extra
            .append(&[("agent", &agent.extra), ("span", &*span.extra)]);
        self.unmapped.add(&span.extra);
        self.offsets.push(offset);
    }

    /// Records a reject found before normalization (a page-level agent reject).
    pub fn push_reject(&mut self, reject: Reject) {
        self.rejects.push(reject);
    }

    /// Rows appended since the last [`Normalizer::take_batch`].
    pub fn rows(&self) -> usize {
        self.offsets.len()
    }

    /// Spans appended so far that have no end yet (still open when fetched).
    pub fn open_spans(&self) -> usize {
        self.open_spans
    }

    /// Rejects recorded so far.
    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }

    /// The rows pushed since the last call as one batch with exactly [`agent_status_details_schema`]; the builders
    /// start empty again, so a caller can stream each page to the writer.
    pub fn take_batch(&mut self) -> RecordBatch {
        let offsets = std::mem::take(&mut self.offsets);
        let n = offsets.len();
        let columns: Vec<ArrayRef> = vec![
            constant_utf8(&self.account_id, n),
            Arc::new(self.user_id.finish()),
            Arc::new(self.agent_id.finish()),
            Arc::new(self.email.finish()),
            Arc::new(self.first_name.finish()),
            Arc::new(self.last_name.finish()),
            Arc::new(self.custom_id.finish()),
            Arc::new(self.primary.finish()),
            Arc::new(self.secondary.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(Int32Array::from(offsets)),
            constant_timestamp(self.exported_at_ms, n),
            self.extra.finish(),
        ];
        // Cannot fail: every column has `n` values, the types are the schema's (timestamps are
        // built with the "UTC" zone) and the non-nullable columns never receive a null.
        RecordBatch::try_new(agent_status_details_schema(), columns)
            .expect("columns match the schema by construction")
    }

    /// Occurrences of unmapped fields in the records whose rows were pushed since the last
    /// call (each record counted once).
    pub fn take_unmapped(&mut self) -> UnmappedCounts {
        std::mem::take(&mut self.unmapped)
    }

    /// The rejects collected since the last call.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    /// The remaining rows as one batch with exactly [`agent_status_details_schema`], and the rejects.
    pub fn finish(mut self) -> (RecordBatch, Vec<Reject>) {
        let batch = self.take_batch();
        (batch, self.rejects)
    }
}

/// Appends `value` (null when `None`) `n` times.
fn append_n(builder: &mut StringBuilder, value: Option<&str>, n: usize) {
    match value {
        Some(v) => builder.append_value_n(v, n),
        None => builder.append_nulls(n),
    }
}

/// A string leaf that must be present.
fn required<'a>(field: &str, v: Option<&'a str>) -> Result<Cow<'a, str>, String> {
    opt_text(field, v)?.ok_or_else(|| format!("span has no {field}"))
}

/// `Ok(None)` when the span starts outside the claim; `Err(reason)` when it cannot be kept.
fn normalize_span<'e>(
    entry: &'e SpanEntry<'e>,
    offset: i32,
    claimed: impl Fn(&DateTime<Utc>) -> bool,
) -> Result<Option<Span<'e>>, String> {
    if !entry.raw.starts_with('{') {
        return Err("status entry is not an object".into());
    }
    let parsed: SpanWire<'e>;
    let wire = match &entry.fields {
        Some(fields) => fields,
        None => {
            parsed = serde_json::from_str(entry.raw).map_err(|e| e.to_string())?;
            &parsed
        }
    };
    let start_text = required("startTime", wire.start)?;
    let start = parse_span_time(&start_text, offset).map_err(|e| format!("startTime {e}"))?;
    if !claimed(&start) {
        return Ok(None);
    }
    let primary = required("primaryStatus", wire.primary)?;
    if primary.is_empty() {
        return Err("primaryStatus is empty".into());
    }
    let secondary = opt_text("secondaryStatus", wire.secondary)?;
    let end_text = required("endTime", wire.end)?;
    let duration_text = required("duration", wire.duration)?;
    let (end_ms, duration) = match (end_text.trim() == OPEN, duration_text.trim() == OPEN) {
        (true, true) => (None, None),
        (false, false) => {
            let end = parse_span_time(&end_text, offset).map_err(|e| format!("endTime {e}"))?;
            if end < start {
                return Err(format!("endTime {end_text:?} is before startTime"));
            }
            let secs = parse_hms(&duration_text)
                .ok_or_else(|| format!("duration {duration_text:?} is not HH:MM:SS"))?;
            (Some(end.timestamp_millis()), Some(secs))
        }
        _ => {
            return Err(format!(
                "endTime {end_text:?} and duration {duration_text:?} disagree on whether the span is open"
            ))
        }
    };
    Ok(Some(Span {
        primary,
        secondary,
        start_ms: start.timestamp_millis(),
        end_ms,
        duration,
        extra: match &entry.fields {
            Some(fields) => Cow::Borrowed(&fields.extra),
            None => Cow::Owned(wire.extra.clone()),
        },
    }))
}

#[cfg(test)]
mod dst_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tape_tests;
#[cfg(test)]
mod tests;
mod wire;
