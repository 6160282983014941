//! The wire format of Agent Activity (`GET …/analytics/account/{accountId}/agentactivity`) and
//! its normalization into rows of [`agent_activity_schema`]. No I/O.
//!
//! **Envelope.** `{"accountId": "…", "AgentUpdates": [ … ]}` (the sample and the v1 table);
//! the v2 table writes `agentUpdates`, `agentId`, `eventTime`, `activity`, `reasonCode`: keys are
//! matched case-insensitively, so both are read. A body that is not this object, or whose
//! updates are not an array, is a [`DecodeError`] (the request is retried).
//!
//! **EventTime** is documented as `MM/DD/YYYY HH:MM:SS`, but the sample writes a one-digit
//! hour (`10/20/2020 2:13:12`): any number of digits is read in each part. It carries no zone;
//! it is read in `[agent_activity] event_time_zone` ([`read_event_time`]). A local time of a
//! fall-back hour names two instants: the one inside the window's asked range
//! ([`RequestWindow::asked`]) is kept, the earlier if both are (the exporter's windows are cut so
//! that never happens, see [`super::windows`]). A time in a spring-forward gap names no instant
//! and is rejected: shifting it would invent an instant the API never meant. A time with `T` and
//! a zone or `Z` is taken as absolute.
//!
//! **Claim.** An update is kept only when its time is in the window's claim `[start, end)`:
//! an event exactly at a window's end, or at the second asked before its start, belongs to the
//! neighbouring window, which is asked for it too ([`Placed::Edge`], skipped silently). An
//! update read outside the asked range was not asked for: it is counted in
//! [`Normalizer::outside`] (the caller warns and counts it in a metric); if its time is in
//! another window of the day that window writes it, otherwise (outside the whole day) it is
//! rejected with its raw JSON, so no event vanishes silently. An update whose time cannot be
//! read is rejected (it cannot be placed); one placed in the claim with another bad field is
//! rejected too. `ReasonCode` is a string; a number is kept as its JSON text.
//!
//! **Unmapped keys** of the envelope and of each update are kept in `extra` and counted once per
//! record: an update when it becomes a row, the envelope once per page, rows or not (as the
//! other datasets with an envelope count it).

use std::borrow::Cow;
use std::ops::{Range, RangeInclusive};
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::record_batch::RecordBatch;
use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeDelta, TimeZone,
    Utc,
};
use chrono_tz::Tz;
use serde_json::value::RawValue;

use super::schema::agent_activity_schema;
use super::seen::Seen;
use crate::error::Error;
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::extra::{ExtraColumn, PairsOf, Unmapped, UnmappedCounts};
use crate::sources::tape::{Kind, ObjectMembers, Tape};
use crate::sources::wire::{json_str_leaf, parse_instant};
use crate::sources::{DecodeError, Reject};

const API: &str = "AgentActivity";

/// A decoded page: the envelope's unmapped keys and the updates' JSON texts.
pub struct Page<'a> {
    pub extra: Unmapped<'a>,
    pub updates: Vec<&'a str>,
}

/// Decodes the envelope of one response body.
pub fn decode_page(body: &[u8]) -> Result<Page<'_>, DecodeError> {
    let err = |reason: String| DecodeError { api: API, reason };
    let text = std::str::from_utf8(body).map_err(|e| err(format!("not UTF-8: {e}")))?;
    if !text.trim_start().starts_with('{') {
        return Err(err("the body is not a JSON object".into()));
    }
    // The usual body: validated and indexed down to its updates in one pass, the envelope
    // read from the index; anything else (an error body, updates that are not an array, no
    // updates, a key that is not a valid string) is read again below, which says what is
    // wrong. Each update is read later from its text by the normalizer, once per window the
    // page is pushed to.
    if let Some(page) = Tape::index_valid_levels(text, 2)
        .as_ref()
        .and_then(page_of_tape)
    {
        return Ok(page);
    }
    let pairs: PairsOf<'_> = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    let mut page = Page {
        extra: Unmapped::default(),
        updates: Vec::new(),
    };
    let mut found = false;
    for (key, value) in pairs.0 {
        if key.eq_ignore_ascii_case("agentUpdates") {
            page.updates = serde_json::from_str::<Vec<&RawValue>>(value.get())
                .map_err(|_| err(format!("{key} is not an array")))?
                .into_iter()
                .map(RawValue::get)
                .collect();
            found = true;
        } else if key.eq_ignore_ascii_case("errors") {
            return Err(err(format!(
                "the body is an error response: {}",
                value.get()
            )));
        } else if !key.eq_ignore_ascii_case("accountId") {
            page.extra.push(key, value);
        }
    }
    if !found {
        return Err(err("the body has no AgentUpdates".into()));
    }
    Ok(page)
}

/// The usual envelope read from its index: `Some` when every `AgentUpdates` (any casing; the
/// last one counts, as the general way reads them) is an array, there is at least one, there
/// is no `errors` and every key is a valid string.
fn page_of_tape<'a>(tape: &Tape<'a>) -> Option<Page<'a>> {
    let root = tape.root();
    if tape.kind(root) != Kind::Object {
        return None;
    }
    let mut page = Page {
        extra: Unmapped::default(),
        updates: Vec::new(),
    };
    let mut found = false;
    for child in tape.children(root) {
        let key = tape.key(child)?;
        if key.eq_ignore_ascii_case("agentUpdates") {
            if tape.kind(child) != Kind::Array {
                return None;
            }
            page.updates = tape.children(child).map(|n| tape.text(n)).collect();
            found = true;
        } else if key.eq_ignore_ascii_case("errors") {
            return None;
        } else if !key.eq_ignore_ascii_case("accountId") {
            page.extra.push_json(key, tape.text(child));
        }
    }
    found.then_some(page)
}

/// The instants an `EventTime` names: one, or two in a fall-back hour (`earlier` first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readings {
    pub earlier: DateTime<Utc>,
    pub later: DateTime<Utc>,
}

impl Readings {
    fn one(at: DateTime<Utc>) -> Readings {
        Readings {
            earlier: at,
            later: at,
        }
    }

    /// The reading inside `range`: the earlier when both are, `None` when neither is.
    pub fn inside(&self, range: &RangeInclusive<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        [self.earlier, self.later]
            .into_iter()
            .find(|t| range.contains(t))
    }
}

/// Reads `EventTime` (see the module docs) in `zone`: every instant it can name.
pub fn read_event_time(text: &str, zone: Tz) -> Result<Readings, String> {
    if text.contains('T') {
        return parse_instant(text)
            .map(Readings::one)
            .map_err(|e| e.describe("EventTime", text));
    }
    let bad = || format!("EventTime {text:?} is not MM/DD/YYYY H:MM:SS");
    let naive = match strict_event_time(text.as_bytes()) {
        Some(fields) => local_time(fields).ok_or_else(bad)?,
        None => general_event_time(text).ok_or_else(bad)?,
    };
    in_zone(text, &naive, zone)
}

/// `[month, day, year, hour, minute, second]` of the usual shape, `M/D/YYYY H:MM:SS` with 1 to 9
/// digits in each part, read without allocating; `None` for anything else (which
/// [`general_event_time`] reads as it always has).
fn strict_event_time(b: &[u8]) -> Option<[u32; 6]> {
    let mut fields = [0u32; 6];
    let mut field = 0;
    let mut digits = 0;
    for &c in b {
        match c {
            b'0'..=b'9' if digits < 9 => {
                fields[field] = fields[field] * 10 + u32::from(c - b'0');
                digits += 1;
            }
            b'/' if digits > 0 && field < 2 => (field, digits) = (field + 1, 0),
            b' ' if digits > 0 && field == 2 => (field, digits) = (field + 1, 0),
            b':' if digits > 0 && (field == 3 || field == 4) => (field, digits) = (field + 1, 0),
            _ => return None,
        }
    }
    (field == 5 && digits > 0).then_some(fields)
}

/// The local date-time of `[month, day, year, hour, minute, second]`; `None` when it is not a
/// valid one.
fn local_time([month, day, year, h, m, s]: [u32; 6]) -> Option<NaiveDateTime> {
    Some(NaiveDateTime::new(
        NaiveDate::from_ymd_opt(year as i32, month, day)?,
        NaiveTime::from_hms_opt(h, m, s)?,
    ))
}

/// `EventTime` split at a space, `/` and `:`, each part trimmed and read as a number (the
/// shapes [`strict_event_time`] leaves, such as padded parts).
fn general_event_time(text: &str) -> Option<NaiveDateTime> {
    let (date, time) = text.trim().split_once(' ')?;
    let nums = |s: &str, sep: char| -> Option<Vec<u32>> {
        s.trim().split(sep).map(|p| p.parse::<u32>().ok()).collect()
    };
    let (d, t) = (nums(date, '/')?, nums(time, ':')?);
    let (&[month, day, year], &[h, m, s]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    local_time([month, day, year, h, m, s])
}

/// The instants the local time `naive` (read from `text`) names in `zone`.
fn in_zone(text: &str, naive: &NaiveDateTime, zone: Tz) -> Result<Readings, String> {
    match zone.from_local_datetime(naive) {
        LocalResult::Single(t) => Ok(Readings::one(t.with_timezone(&Utc))),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            Ok(Readings {
                earlier: a.min(b),
                later: a.max(b),
            })
        }
        LocalResult::None => Err(format!(
            "EventTime {text:?} does not exist in {zone} (it is in the spring-forward gap); \
             check agent_activity.event_time_zone"
        )),
    }
}

/// A request window as the decoder places updates in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestWindow {
    /// The instants this window writes: `[start, end)`.
    pub claim: Range<DateTime<Utc>>,
    /// The instants the request asked for, `fromTimeStamp..=toTimeStamp`: one second before
    /// the claim to its end (see [`super::window_query`]).
    pub asked: RangeInclusive<DateTime<Utc>>,
}

impl RequestWindow {
    /// The window of `claim`, asked for as the exporter asks.
    pub fn of(claim: Range<DateTime<Utc>>) -> RequestWindow {
        RequestWindow {
            asked: claim.start - TimeDelta::seconds(1)..=claim.end,
            claim,
        }
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One update's fields.
struct Update<'a> {
    agent_id: Cow<'a, str>,
    at: DateTime<Utc>,
    activity: Cow<'a, str>,
    reason_code: Option<Cow<'a, str>>,
    extra: Unmapped<'a>,
}

/// What became of an update.
enum Placed<'a> {
    Row(Update<'a>),
    /// At the second asked before the claim or at its end: the neighbouring window's.
    Edge,
    /// Read outside the asked range but inside the day: the window whose claim holds it
    /// writes it.
    OtherWindow,
    /// Read outside the asked range and the day: rejected, with this reason.
    OutsideDay(String),
    Reject(String),
}

fn text<'a>(key: &str, value: &'a str) -> Result<Option<Cow<'a, str>>, String> {
    json_str_leaf(value).map_err(|kind| format!("{key} is {kind}, expected a string"))
}

/// Where an update read at `readings` goes, for `window` of the day `day`.
fn locate<'a>(
    readings: Readings,
    text: &str,
    zone: Tz,
    window: &RequestWindow,
    day: &Range<DateTime<Utc>>,
) -> Result<DateTime<Utc>, Placed<'a>> {
    let Some(at) = readings.inside(&window.asked) else {
        let in_day = |t: &DateTime<Utc>| day.contains(t);
        if in_day(&readings.earlier) || in_day(&readings.later) {
            return Err(Placed::OtherWindow);
        }
        return Err(Placed::OutsideDay(format!(
            "EventTime {text:?} read in {zone} is {}, outside the window asked for ({} to {}) \
             and the day ({} to {}); check agent_activity.event_time_zone",
            iso(readings.earlier),
            iso(*window.asked.start()),
            iso(*window.asked.end()),
            iso(day.start),
            iso(day.end),
        )));
    };
    if window.claim.contains(&at) {
        Ok(at)
    } else {
        Err(Placed::Edge)
    }
}

fn place<'a>(
    raw: &'a str,
    zone: Tz,
    window: &RequestWindow,
    day: &Range<DateTime<Utc>>,
) -> Placed<'a> {
    let Some(w) = UpdateWire::of(raw) else {
        return Placed::Reject("the update is not a JSON object".into());
    };
    let read = |member: Option<(Cow<'a, str>, &'a str)>| member.map(|(k, v)| text(&k, v));
    let (agent, time, activity) = (read(w.agent), read(w.time), read(w.activity));
    let reason = w.reason.map(|(key, value)| {
        // Documented as a string; a number keeps its JSON text.
        match value.as_bytes().first() {
            Some(b'-' | b'0'..=b'9') => Ok(Some(Cow::Borrowed(value))),
            _ => text(&key, value),
        }
    });
    let extra = w.extra;
    let at = match time {
        Some(Ok(Some(t))) => match read_event_time(&t, zone) {
            Ok(readings) => match locate(readings, &t, zone, window, day) {
                Ok(at) => at,
                Err(placed) => return placed,
            },
            Err(e) => return Placed::Reject(e),
        },
        Some(Err(e)) => return Placed::Reject(e),
        _ => return Placed::Reject("EventTime is missing".into()),
    };
    let required = |v: Option<Result<Option<Cow<'a, str>>, String>>, name: &str| match v {
        Some(Ok(Some(s))) if !s.is_empty() => Ok(s),
        Some(Err(e)) => Err(e),
        _ => Err(format!("{name} is missing or empty")),
    };
    let update = required(agent, "AgentId").and_then(|agent_id| {
        Ok(Update {
            agent_id,
            at,
            activity: required(activity, "Activity")?,
            reason_code: reason.transpose()?.flatten(),
            extra,
        })
    });
    match update {
        Ok(u) => Placed::Row(u),
        Err(e) => Placed::Reject(e),
    }
}

/// One update's members, read in one pass from its text without collecting them first: each
/// mapped key (any casing; the last one sent counts) with its value's JSON text, every other
/// key unmapped.
#[derive(Default)]
struct UpdateWire<'a> {
    agent: Option<(Cow<'a, str>, &'a str)>,
    time: Option<(Cow<'a, str>, &'a str)>,
    activity: Option<(Cow<'a, str>, &'a str)>,
    reason: Option<(Cow<'a, str>, &'a str)>,
    extra: Unmapped<'a>,
}

impl<'a> UpdateWire<'a> {
    /// The members of update text `raw` (part of a validated body); `None` when it is not an
    /// object or a key is not a valid string (serde_json, which read updates before, refused
    /// those too).
    fn of(raw: &'a str) -> Option<UpdateWire<'a>> {
        let mut w = UpdateWire::default();
        for (key, value) in ObjectMembers::of(raw)? {
            let key = key?;
            let slot = match () {
                _ if key.eq_ignore_ascii_case("agentId") => &mut w.agent,
                _ if key.eq_ignore_ascii_case("eventTime") => &mut w.time,
                _ if key.eq_ignore_ascii_case("activity") => &mut w.activity,
                _ if key.eq_ignore_ascii_case("reasonCode") => &mut w.reason,
                _ => {
                    w.extra.push_json(key, value);
                    continue;
                }
            };
            *slot = Some((key, value));
        }
        Some(w)
    }
}

/// The rows of one local day: every window's updates in its claim, each whole tuple once.
pub struct Normalizer<'a> {
    account_id: &'a str,
    exported_at: DateTime<Utc>,
    zone: Tz,
    /// The day's exact UTC range: an update read outside it is rejected, not skipped.
    day: Range<DateTime<Utc>>,
    seen: Seen,
    agent_id: StringBuilder,
    event_time: arrow::array::TimestampMillisecondBuilder,
    activity: StringBuilder,
    reason_code: StringBuilder,
    extra: ExtraColumn,
    rows: usize,
    outside: u64,
    rejects: Vec<Reject>,
    unmapped: UnmappedCounts,
}

/// What one page held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCounts {
    /// Updates in the page.
    pub updates: usize,
    /// Rows the page added (updates in the claim, not seen before that day).
    pub rows: usize,
    /// Updates read outside the window's asked range (see the module docs).
    pub outside: u64,
}

impl<'a> Normalizer<'a> {
    pub fn new(
        account_id: &'a str,
        exported_at: DateTime<Utc>,
        zone: Tz,
        day: Range<DateTime<Utc>>,
    ) -> Normalizer<'a> {
        Normalizer {
            account_id,
            exported_at,
            zone,
            day,
            seen: Seen::default(),
            agent_id: StringBuilder::new(),
            event_time: timestamp_builder(0),
            activity: StringBuilder::new(),
            reason_code: StringBuilder::new(),
            extra: ExtraColumn::default(),
            rows: 0,
            outside: 0,
            rejects: Vec::new(),
            unmapped: UnmappedCounts::default(),
        }
    }

    /// Adds a page answered for `window`: rows for the updates in its claim, rejects, and the
    /// count of updates read outside it.
    pub fn push_page(&mut self, page: &Page<'_>, window: &RequestWindow) -> PageCounts {
        let (mut outside, mut rows) = (0, 0);
        // The envelope is one record of its page: counted once, whether or not a row of the
        // page carries it (the caller logs it when none does).
        self.unmapped.add(&page.extra);
        // Room for every update of the page up front, so the table does not grow while the
        // page is read.
        self.seen.reserve(page.updates.len());
        for raw in &page.updates {
            match place(raw, self.zone, window, &self.day) {
                Placed::Edge => {}
                Placed::OtherWindow => outside += 1,
                Placed::OutsideDay(reason) => {
                    outside += 1;
                    self.reject(raw, reason);
                }
                Placed::Reject(reason) => self.reject(raw, reason),
                Placed::Row(u) => {
                    let at_ms = u.at.timestamp_millis();
                    let reason = u.reason_code.as_deref();
                    if !self
                        .seen
                        .insert_row(&u.agent_id, at_ms, &u.activity, reason)
                    {
                        continue;
                    }
                    self.agent_id.append_value(&u.agent_id);
                    self.event_time.append_value(at_ms);
                    self.activity.append_value(&u.activity);
                    self.reason_code.append_option(u.reason_code.as_deref());
                    self.extra
                        .append(&[("response", &page.extra), ("update", &u.extra)]);
                    self.unmapped.add(&u.extra);
                    self.rows += 1;
                    rows += 1;
                }
            }
        }
        self.outside += outside;
        PageCounts {
            updates: page.updates.len(),
            rows,
            outside,
        }
    }

    /// Keeps a rejected update once per day (by its raw JSON).
    fn reject(&mut self, raw: &str, reason: String) {
        if self.seen.insert_reject(raw) {
            self.rejects.push(Reject {
                reason,
                raw_json: raw.to_string(),
            });
        }
    }

    /// Updates read outside their window's asked range, over every page pushed.
    pub fn outside(&self) -> u64 {
        self.outside
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows pushed since the last call.
    pub fn take_batch(&mut self) -> Result<RecordBatch, Error> {
        let n = std::mem::take(&mut self.rows);
        let columns: Vec<ArrayRef> = vec![
            constant_utf8(self.account_id, n),
            Arc::new(self.agent_id.finish()),
            Arc::new(self.event_time.finish()),
            Arc::new(self.activity.finish()),
            Arc::new(self.reason_code.finish()),
            constant_timestamp(self.exported_at.timestamp_millis(), n),
            self.extra.finish(),
        ];
        RecordBatch::try_new(agent_activity_schema(), columns).map_err(|source| Error::Arrow {
            context: "agent_activity: rows do not match the schema".into(),
            source,
        })
    }

    /// The rejects and the unmapped-field counts.
    pub fn finish(self) -> (Vec<Reject>, UnmappedCounts) {
        (self.rejects, self.unmapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("instant")
    }

    fn one(s: &str) -> Readings {
        Readings {
            earlier: at(s),
            later: at(s),
        }
    }

    #[test]
    fn event_times_take_one_or_two_digit_parts_in_the_configured_zone() {
        let utc = chrono_tz::UTC;
        assert_eq!(
            read_event_time("10/20/2020 2:13:12", utc),
            Ok(one("2020-10-20T02:13:12Z"))
        );
        assert_eq!(
            read_event_time("03/10/2024 14:05:09", utc),
            Ok(one("2024-03-10T14:05:09Z"))
        );
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            read_event_time("3/10/2024 1:59:59", ny),
            Ok(one("2024-03-10T06:59:59Z"))
        );
        assert_eq!(
            read_event_time("2024-03-10T02:30:00Z", ny),
            Ok(one("2024-03-10T02:30:00Z"))
        );
        for bad in [
            "2020-10-20 02:13:12",
            "13/01/2020 1:00:00",
            "10/20/2020",
            "",
        ] {
            assert!(read_event_time(bad, utc).is_err(), "{bad}");
        }
    }

    fn rows_of(body: &str, claims: &[Range<DateTime<Utc>>]) -> (usize, usize) {
        let day = at("2024-01-01T00:00:00Z")..at("2024-01-02T00:00:00Z");
        let mut n = Normalizer::new("acct", at("2024-01-01T00:00:00Z"), chrono_tz::UTC, day);
        let page = decode_page(body.as_bytes()).expect("page");
        for claim in claims {
            n.push_page(&page, &RequestWindow::of(claim.clone()));
        }
        let rows = n.rows();
        (rows, n.finish().0.len())
    }

    #[test]
    fn both_casings_are_read_and_an_event_at_a_window_end_belongs_to_the_next() {
        let pascal = r#"{"accountId":"acct","AgentUpdates":[
            {"AgentId":"a-1","EventTime":"01/01/2024 1:00:00","Activity":"notready","ReasonCode":"1"},
            {"AgentId":"a-1","EventTime":"01/01/2024 0:30:00","Activity":"ready"}]}"#;
        let camel = pascal
            .replace("AgentUpdates", "agentUpdates")
            .replace("AgentId", "agentId")
            .replace("EventTime", "eventTime");
        let first = at("2024-01-01T00:00:00Z")..at("2024-01-01T01:00:00Z");
        let second = at("2024-01-01T01:00:00Z")..at("2024-01-01T02:00:00Z");
        for body in [pascal.to_string(), camel] {
            assert_eq!(rows_of(&body, std::slice::from_ref(&first)), (1, 0));
            assert_eq!(rows_of(&body, std::slice::from_ref(&second)), (1, 0));
            // Both windows served both events (an inclusive toTimeStamp): each kept once.
            assert_eq!(rows_of(&body, &[first.clone(), second.clone()]), (2, 0));
        }
    }

    #[test]
    fn bad_updates_are_rejected_once_and_bad_bodies_are_decode_errors() {
        let body = r#"{"AgentUpdates":[
            {"AgentId":"a-1","EventTime":"01/01/2024 0:10:00","Activity":7},
            {"AgentId":"a-1","EventTime":"not a time","Activity":"ready"}]}"#;
        let day = at("2024-01-01T00:00:00Z")..at("2024-01-02T00:00:00Z");
        assert_eq!(rows_of(body, &[day.clone(), day]), (0, 2));
        for bad in [
            "[]",
            "{}",
            r#"{"AgentUpdates":{}}"#,
            r#"{"errors":[{"msg":"x"}]}"#,
        ] {
            assert!(decode_page(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
