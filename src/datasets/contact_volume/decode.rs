//! The wire format of Contact Volume (`POST …/analytics/account/{accountId}/callvolume`) and the
//! normalization of its records into rows of both tables: the request body of one page, the
//! envelope of a response page, and one row per record (queue and interval) plus one per entry
//! of its `skillBreakdown`. No I/O; [`super`] owns the requests, paging and the writes.
//!
//! **Keys.** Every key is matched in any ASCII casing (see [`crate::sources::members`]): the
//! documented `maxqueueHoldTimeAbandoned` (lower-case q) and the regular spelling both fill
//! `max_queue_hold_time_abandoned`. Keys no column maps (`__v`, anything new) are kept in the
//! row's `extra`, merged over its levels: the response envelope's (level `response`: any key
//! but `hasMore`, `totalCount` and `CallVolumeUpdate`), the record's (`record`) and, on a skill
//! row, the skill's (`skill`). The envelope's keys are counted once per page, whether or not a
//! row of the page carries them (a page with no record in the day has none to carry them).
//!
//! **Identity.** A row of `contact_volume` is a queue and an interval start (the reference's
//! "queue × interval"; `source` and `_id` are attributes of it). A record repeating one kept
//! in the day with the same `_id` and `source` (pages shifting between requests) is skipped;
//! one with another `_id` or `source` conflicts with the row kept and is rejected, so the table
//! never holds two rows of one key. The key is claimed before the rest of the record is read,
//! so a record repeated by the pages is rejected once, and a record following a rejected one
//! of its key is rejected too (the reason names the earlier record, kept or not).
//!
//! **Skills.** A skill row is one queue, interval and `skillId`: an entry of a record's
//! `skillBreakdown` repeating an earlier entry's `skillId` byte for byte is skipped; one that
//! differs is rejected alone, with its raw JSON and the reason, and the first entry stays the
//! row (the record level's rule, one level down).
//!
//! **Days.** A record belongs to the local day of its `intervalStartTimeStamp`: the caller
//! passes the UTC range of the day it requested. A record starting exactly at the range's end
//! (which a server reading `toTimeStamp` as inclusive returns) is the next day's and is
//! skipped silently before anything else of it is read; one starting anywhere else outside
//! the range was not asked for: it is rejected with its raw JSON (once, however often the
//! pages return it) and counted ([`Normalizer::outside`]; the caller warns and counts it in a
//! metric), so no record vanishes silently ([`history::place`]).
//!
//! **Durations.** Kept as sent; `<name>_ms` is the value times the milliseconds of the declared
//! unit (null on overflow). A row is *implausible* when one of its durations, in milliseconds,
//! exceeds the interval's length times its largest contact count (at least one): e.g. the
//! documentation's 180150 in a 900-second interval with one contact, read as seconds. Such rows
//! are written and counted ([`Normalizer::implausible`]).
//!
//! **Rejects.** A record that is not an object, lacks a valid `intervalStartTimeStamp` or
//! `queueId`, has a field of the wrong type, or a `skillBreakdown` entry without `skillId` or
//! with a wrong type, is rejected whole (its skill rows too), with its raw JSON.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::value::RawValue;

use super::super::history::{self, Outside, Placed};
use super::config::DurationUnit;
use super::schema::{schema, COUNTS, DURATIONS, MESSAGES, SKILL};
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::extra::{ExtraColumn, Unmapped, UnmappedCounts};
use crate::sources::members::Members;
use crate::sources::{DecodeError, Reject};

const API: &str = "callvolume";
/// The key of the envelope's record array.
const RECORDS_KEY: &str = "CallVolumeUpdate";

/// The request body of one page: the UTC range of one local day, `skip`/`limit`, the org and
/// whether to include skills. Times are sent as `YYYY-MM-DDTHH:MM:SSZ`, the documented form.
pub fn request_body(
    org_id: &str,
    range: &Range<DateTime<Utc>>,
    skip: usize,
    limit: u32,
    include_skill_breakdown: bool,
) -> serde_json::Value {
    serde_json::json!({
        "orgId": org_id,
        "fromTimeStamp": range.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        "toTimeStamp": range.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        "skip": skip,
        "limit": limit,
        "includeSkillBreakdown": include_skill_breakdown,
    })
}

/// A decoded response page: the envelope read, the records still raw.
#[derive(Debug)]
pub struct Page<'a> {
    /// `hasMore` (`false` when absent).
    pub has_more: bool,
    /// `totalCount` as sent (undefined by the docs; logged, never relied on).
    pub total_count: Option<i64>,
    pub records: Vec<&'a RawValue>,
    /// The envelope's keys no column maps (level `response` of every row of the page).
    pub extra: Unmapped<'a>,
}

/// Decodes one response body; a body that is not the `{hasMore, totalCount, CallVolumeUpdate}`
/// envelope (or an error body) is a [`DecodeError`] and the request is retried.
pub fn decode_page(body: &[u8]) -> Result<Page<'_>, DecodeError> {
    let err = |reason: String| DecodeError { api: API, reason };
    let text = std::str::from_utf8(body).map_err(|e| err(format!("body is not UTF-8: {e}")))?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    let mut top = Members::of(raw).map_err(|_| err("body is not a JSON object".into()))?;
    if let Some(errors) = top.take("errors").or_else(|| top.take("error")) {
        return Err(err(format!("body is an error response: {errors}")));
    }
    let has_more = top.take_bool("hasMore").map_err(err)?.unwrap_or(false);
    let total_count = top.take_int("totalCount").map_err(err)?;
    if !top.has(RECORDS_KEY) {
        return Err(err(format!("envelope has no \"{RECORDS_KEY}\" array")));
    }
    let records = top.take_array(RECORDS_KEY).map_err(err)?;
    Ok(Page {
        has_more,
        total_count,
        records,
        extra: top.into_unmapped(),
    })
}

/// The measures of a record or a skill entry.
#[derive(Debug, Default, Clone, PartialEq)]
struct Measures {
    counts: [Option<i64>; 4],
    durations: [Option<i64>; 8],
    messages: [Option<i64>; 3],
    csat_score: Option<f64>,
}

fn take_measures(m: &mut Members<'_>) -> Result<Measures, String> {
    let mut out = Measures::default();
    for (slot, (key, _)) in out.counts.iter_mut().zip(COUNTS) {
        *slot = m.take_int(key)?;
    }
    for (slot, (key, _)) in out.durations.iter_mut().zip(DURATIONS) {
        *slot = m.take_int(key)?;
    }
    for (slot, (key, _)) in out.messages.iter_mut().zip(MESSAGES) {
        *slot = m.take_int(key)?;
    }
    out.csat_score = m.take_f64("csatScore")?;
    Ok(out)
}

impl Measures {
    /// Whether a duration exceeds the interval times the largest count (see the module docs).
    fn implausible(&self, interval_ms: Option<i64>, unit: DurationUnit) -> bool {
        let Some(interval_ms) = interval_ms.filter(|&ms| ms > 0) else {
            return false;
        };
        let contacts = self.counts.iter().flatten().copied().max().unwrap_or(0);
        let bound = interval_ms.saturating_mul(contacts.max(1));
        self.durations
            .iter()
            .flatten()
            .any(|&d| d.checked_mul(unit.millis()).is_none_or(|ms| ms > bound))
    }
}

/// The interval columns a record's rows share.
#[derive(Debug, Clone)]
struct Interval {
    org_id: String,
    record_id: Option<String>,
    stream_id: Option<String>,
    queue_id: String,
    queue_name: Option<String>,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    source: Option<String>,
}

/// One skill entry, validated.
struct Skill<'a> {
    raw: &'a RawValue,
    names: [Option<String>; 4],
    measures: Measures,
    extra: Unmapped<'a>,
}

/// What [`Normalizer::push_record`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Its rows were added.
    Rows,
    /// It starts outside the day's range, or repeats a record of this window.
    Skipped,
    Rejected,
}

/// Rows of one table under construction.
#[derive(Default)]
struct Rows {
    interval: Vec<Interval>,
    skill: [Vec<Option<String>>; 4],
    measures: Vec<Measures>,
    extra: ExtraColumn,
}

/// Turns one day's records into batches of both tables, counting rejects, unmapped fields and
/// implausible rows.
pub struct Normalizer {
    account_id: String,
    exported_at_ms: i64,
    org_id: String,
    units: [DurationUnit; 2],
    schemas: [SchemaRef; 2],
    queues: Rows,
    skills: Rows,
    rejects: Vec<Reject>,
    unmapped: UnmappedCounts,
    implausible: u64,
    outside: Outside,
}

impl Normalizer {
    /// `org_id` is the requested one (a record's own `orgId` wins); `units` are the declared
    /// units of record and skill durations.
    pub fn new(
        account_id: &str,
        exported_at: DateTime<Utc>,
        org_id: &str,
        record_unit: DurationUnit,
        skill_unit: DurationUnit,
    ) -> Normalizer {
        Normalizer {
            account_id: account_id.to_string(),
            exported_at_ms: exported_at.timestamp_millis(),
            org_id: org_id.to_string(),
            units: [record_unit, skill_unit],
            schemas: [schema(false, record_unit), schema(true, skill_unit)],
            queues: Rows::default(),
            skills: Rows::default(),
            rejects: Vec::new(),
            unmapped: UnmappedCounts::default(),
            implausible: 0,
            outside: Outside::default(),
        }
    }

    /// The schemas the batches are built with: `contact_volume`, `contact_volume_skills`.
    pub fn schemas(&self) -> &[SchemaRef; 2] {
        &self.schemas
    }

    /// Reads the records of one page of a window that requested `claim` and counts the
    /// envelope's unmapped keys once; `first` says whether a key is new in this window (see
    /// [`Normalizer::push_record`]). Returns the records whose rows were added.
    pub fn push_page(
        &mut self,
        page: &Page<'_>,
        claim: &Range<DateTime<Utc>>,
        first: &mut dyn FnMut(&str) -> bool,
    ) -> usize {
        self.unmapped.add(&page.extra);
        page.records
            .iter()
            .filter(|raw| self.push_record(raw, &page.extra, claim, first) == Pushed::Rows)
            .count()
    }

    /// Reads one record of a page whose envelope's unmapped keys are `envelope`. `first` is
    /// asked twice: whether the record's row key (queue and start) is new in this window, and
    /// whether the record as sent (that key with its `_id` and `source`) is (see the module
    /// docs, "Identity"). The envelope is not counted here ([`Normalizer::push_page`] does).
    pub fn push_record(
        &mut self,
        raw: &RawValue,
        envelope: &Unmapped<'_>,
        claim: &Range<DateTime<Utc>>,
        first: &mut dyn FnMut(&str) -> bool,
    ) -> Pushed {
        match self.read_record(raw, claim, first) {
            Ok(Some((interval, measures, extra, skills))) => {
                self.append(envelope, interval, measures, extra, skills);
                Pushed::Rows
            }
            Ok(None) => Pushed::Skipped,
            Err(reason) => {
                self.rejects.push(Reject {
                    reason,
                    raw_json: raw.get().to_string(),
                });
                Pushed::Rejected
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn read_record<'a>(
        &mut self,
        raw: &'a RawValue,
        claim: &Range<DateTime<Utc>>,
        first: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<(Interval, Measures, Unmapped<'a>, Vec<Skill<'a>>)>, String> {
        let mut m = Members::of(raw)?;
        let start = m
            .take_instant("intervalStartTimeStamp")?
            .ok_or("record has no intervalStartTimeStamp")?;
        match history::place(start, claim) {
            Placed::In => {}
            Placed::NextRange => return Ok(None),
            // Rejected once, however often shifting pages return it.
            Placed::Outside if !first(&format!("outside {}", raw.get())) => return Ok(None),
            Placed::Outside => {
                return Err(self.outside.reason("intervalStartTimeStamp", start, claim))
            }
        }
        let queue_id = m
            .take_str("queueId")?
            .filter(|q| !q.is_empty())
            .ok_or("record has no queueId")?
            .into_owned();
        let source = m.take_str("source")?.map(|s| s.into_owned());
        let record_id = m.take_str("_id")?.map(|s| s.into_owned());
        // Debug-quoted parts: no id can make two different keys equal.
        let key = format!("{queue_id:?} {}", start.timestamp_millis());
        let (new_row, new_record) = (
            first(&key),
            first(&format!("{key} {record_id:?} {source:?}")),
        );
        match (new_row, new_record) {
            (true, _) => {}
            (false, false) => return Ok(None),
            (false, true) => {
                return Err(format!(
                    "an earlier record of the day has queue {queue_id} and interval start \
                     {start:?} (a row is one queue and interval start); this one differs in \
                     _id {record_id:?} or source {source:?}"
                ))
            }
        }
        let interval = Interval {
            org_id: m
                .take_str("orgId")?
                .map_or_else(|| self.org_id.clone(), |o| o.into_owned()),
            record_id,
            stream_id: m.take_str("iId")?.map(|s| s.into_owned()),
            queue_name: m.take_str("queueName")?.map(|s| s.into_owned()),
            end: m.take_instant("intervalEndTimeStamp")?,
            queue_id,
            start,
            source,
        };
        let measures = take_measures(&mut m)?;
        let mut skills: Vec<Skill<'a>> = Vec::new();
        for (i, raw_skill) in m.take_array("skillBreakdown")?.into_iter().enumerate() {
            let skill = read_skill(raw_skill).map_err(|e| format!("skillBreakdown[{i}]: {e}"))?;
            match skills.iter().position(|s| s.names[0] == skill.names[0]) {
                None => skills.push(skill),
                Some(j) if skills[j].raw.get() == raw_skill.get() => {}
                Some(j) => self.rejects.push(Reject {
                    reason: format!(
                        "queue {}, interval start {start:?}: skillBreakdown[{i}] repeats skillId \
                         {:?} of an earlier entry with other values (a skill row is one queue, \
                         interval and skill); the first entry is kept",
                        interval.queue_id,
                        skills[j].names[0].as_deref().unwrap_or_default()
                    ),
                    raw_json: raw_skill.get().to_string(),
                }),
            }
        }
        Ok(Some((interval, measures, m.into_unmapped(), skills)))
    }

    fn append(
        &mut self,
        envelope: &Unmapped<'_>,
        interval: Interval,
        measures: Measures,
        extra: Unmapped<'_>,
        skills: Vec<Skill<'_>>,
    ) {
        let interval_ms = interval
            .end
            .map(|e| (e - interval.start).num_milliseconds());
        self.unmapped.add(&extra);
        if measures.implausible(interval_ms, self.units[0]) {
            self.implausible += 1;
        }
        for skill in skills {
            if skill.measures.implausible(interval_ms, self.units[1]) {
                self.implausible += 1;
            }
            self.unmapped.add(&skill.extra);
            self.skills.interval.push(interval.clone());
            for (col, name) in self.skills.skill.iter_mut().zip(skill.names) {
                col.push(name);
            }
            self.skills.measures.push(skill.measures);
            self.skills.extra.append(&[
                ("response", envelope),
                ("record", &extra),
                ("skill", &skill.extra),
            ]);
        }
        self.queues.interval.push(interval);
        self.queues.measures.push(measures);
        self.queues
            .extra
            .append(&[("response", envelope), ("record", &extra)]);
    }

    /// Rows held for `contact_volume` and `contact_volume_skills`.
    pub fn rows(&self) -> [usize; 2] {
        [self.queues.interval.len(), self.skills.interval.len()]
    }

    /// The rows held, as batches of both tables (`contact_volume`, `contact_volume_skills`);
    /// the normalizer starts empty again.
    pub fn take_batches(&mut self) -> [RecordBatch; 2] {
        let queues = std::mem::take(&mut self.queues);
        let skills = std::mem::take(&mut self.skills);
        [
            self.batch(queues, false, self.units[0]),
            self.batch(skills, true, self.units[1]),
        ]
    }

    fn batch(&self, mut rows: Rows, skills: bool, unit: DurationUnit) -> RecordBatch {
        let n = rows.interval.len();
        let text = |f: &dyn Fn(&Interval) -> Option<&str>| -> ArrayRef {
            Arc::new(rows.interval.iter().map(f).collect::<StringArray>())
        };
        let ints = |f: &dyn Fn(&Measures) -> Option<i64>| -> ArrayRef {
            Arc::new(rows.measures.iter().map(f).collect::<Int64Array>())
        };
        let mut columns: Vec<ArrayRef> = vec![
            constant_utf8(&self.account_id, n),
            text(&|i| Some(i.org_id.as_str())),
            text(&|i| i.record_id.as_deref()),
            text(&|i| i.stream_id.as_deref()),
            text(&|i| Some(i.queue_id.as_str())),
            text(&|i| i.queue_name.as_deref()),
            timestamps(
                rows.interval
                    .iter()
                    .map(|i| Some(i.start.timestamp_millis())),
            ),
            timestamps(
                rows.interval
                    .iter()
                    .map(|i| i.end.map(|e| e.timestamp_millis())),
            ),
            text(&|i| i.source.as_deref()),
        ];
        if skills {
            for col in &rows.skill {
                columns.push(Arc::new(
                    col.iter().map(Option::as_deref).collect::<StringArray>(),
                ));
            }
        }
        for k in 0..COUNTS.len() {
            columns.push(ints(&|m| m.counts[k]));
        }
        for k in 0..DURATIONS.len() {
            columns.push(ints(&|m| m.durations[k]));
            columns.push(ints(&|m| {
                m.durations[k].and_then(|d| d.checked_mul(unit.millis()))
            }));
        }
        for k in 0..MESSAGES.len() {
            columns.push(ints(&|m| m.messages[k]));
        }
        columns.push(Arc::new(
            rows.measures
                .iter()
                .map(|m| m.csat_score)
                .collect::<Float64Array>(),
        ));
        columns.push(constant_timestamp(self.exported_at_ms, n));
        columns.push(rows.extra.finish());
        let schema = self.schemas[usize::from(skills)].clone();
        // The columns are built in the schema's order with its types, so this cannot fail.
        RecordBatch::try_new(schema.clone(), columns)
            .unwrap_or_else(|e| unreachable!("contact_volume batch does not match {schema:?}: {e}"))
    }

    /// Records rejected so far as starting outside the range requested.
    pub fn outside(&self) -> Outside {
        self.outside
    }

    /// Rows whose durations were implausible under the declared unit, so far.
    pub fn implausible(&self) -> u64 {
        self.implausible
    }

    /// The unmapped fields of the pages read and of the records whose rows were added, so far;
    /// the count restarts.
    pub fn take_unmapped(&mut self) -> UnmappedCounts {
        std::mem::take(&mut self.unmapped)
    }

    /// The rejects of the day.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }
}

fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    let mut b = timestamp_builder(0);
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn read_skill(raw: &RawValue) -> Result<Skill<'_>, String> {
    let mut m = Members::of(raw)?;
    let mut names: [Option<String>; 4] = Default::default();
    for (slot, (key, _)) in names.iter_mut().zip(SKILL) {
        *slot = m.take_str(key)?.map(|s| s.into_owned());
    }
    if names[0].as_deref().is_none_or(str::is_empty) {
        return Err("skill has no skillId".into());
    }
    let measures = take_measures(&mut m)?;
    Ok(Skill {
        raw,
        names,
        measures,
        extra: m.into_unmapped(),
    })
}
