//! The wire format of Agent Performance (`POST …/analytics/account/{accountId}/agentperformance`)
//! and its normalization into rows of [`agent_performance_schema`]: the request body of one
//! page, the envelope of a response page, and one row per agent, interval and queue. No I/O;
//! [`super`] owns the requests, paging and the write.
//!
//! The body pages over **agents** (`skip`/`limit`); each agent record holds its `intervals`,
//! each interval its `queues`. Keys match in any casing; the keys no column maps are kept in the
//! row's `extra`, merged over the levels `response` (the envelope's keys but `hasMore`,
//! `totalCount` and `AgentPerformance`), `agent`, `interval` and `queue`. The envelope's keys
//! are counted once per page, whether or not a row of the page carries them.
//!
//! **Identity.** A row is one agent, interval start and queue. An agent record repeating one
//! kept in the day byte for byte (pages shifting between requests) is skipped; one with the
//! same `agentId` that differs is rejected whole, with its raw JSON, and the first stays. Within
//! an agent, a queue entry repeating an earlier one of the same interval start and `queueId`
//! byte for byte is skipped; one that differs is rejected alone and the first stays.
//!
//! **Days.** An interval belongs to the local day of its `intervalStartTimeStamp`: an interval
//! starting exactly at the requested range's end (if the server reads `toTimeStamp` as
//! inclusive) is the next day's and is skipped silently before anything else of it is read;
//! one starting anywhere else outside the range was not asked for: it is rejected with its raw
//! JSON and counted ([`Normalizer::outside`]; the caller warns and counts it in a metric).
//!
//! **Rejects**, each with the raw JSON of what was rejected: an agent record that is not an
//! object, has no `agentId` or whose `intervals` is not an array (the whole agent); an interval
//! without a valid start, starting outside the range, or whose `queues` is not an array (that
//! interval); a queue entry without
//! `queueId` or with a value of the wrong type (that entry).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::value::RawValue;

use super::super::history::{self, Outside, Placed};
use super::schema::{agent_performance_schema, COUNTS, DURATIONS};
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::extra::{ExtraColumn, Level, Unmapped, UnmappedCounts};
use crate::sources::members::Members;
use crate::sources::{DecodeError, Reject};

const API: &str = "agentperformance";
const RECORDS_KEY: &str = "AgentPerformance";

/// The request body of one page: the UTC range of one local day and `skip`/`limit` over agents.
pub fn request_body(range: &Range<DateTime<Utc>>, skip: usize, limit: u32) -> serde_json::Value {
    serde_json::json!({
        "fromTimeStamp": range.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        "toTimeStamp": range.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        "skip": skip,
        "limit": limit,
    })
}

/// A decoded response page: the envelope read, the agent records still raw.
#[derive(Debug)]
pub struct Page<'a> {
    pub has_more: bool,
    /// `totalCount`: agents with activity in the range.
    pub total_count: Option<i64>,
    pub agents: Vec<&'a RawValue>,
    /// The envelope's keys no column maps (level `response` of every row of the page).
    pub extra: Unmapped<'a>,
}

/// Decodes one response body; anything but the `{hasMore, totalCount, AgentPerformance}`
/// envelope is a [`DecodeError`].
pub fn decode_page(body: &[u8]) -> Result<Page<'_>, DecodeError> {
    let err = |reason: String| DecodeError { api: API, reason };
    let text = std::str::from_utf8(body).map_err(|e| err(format!("body is not UTF-8: {e}")))?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    let mut top = Members::of(raw).map_err(|_| err("body is not a JSON object".into()))?;
    if let Some(errors) = top.take("errors").or_else(|| top.take("error")) {
        return Err(err(format!("body is an error response: {}", errors.get())));
    }
    if !top.has(RECORDS_KEY) {
        return Err(err(format!("envelope has no \"{RECORDS_KEY}\" array")));
    }
    let has_more = top.take_bool("hasMore").map_err(err)?.unwrap_or(false);
    let total_count = top.take_int("totalCount").map_err(err)?;
    let agents = top.take_array(RECORDS_KEY).map_err(err)?;
    Ok(Page {
        has_more,
        total_count,
        agents,
        extra: top.into_unmapped(),
    })
}

/// One row before it becomes columns.
struct Row {
    agent_id: String,
    start: i64,
    end: Option<i64>,
    queue_id: String,
    queue_name: Option<String>,
    counts: [Option<i64>; 5],
    durations: [Option<i64>; 4],
    csat_score: Option<f64>,
}

/// Turns one day's agent records into batches, counting rejects and unmapped fields.
pub struct Normalizer {
    account_id: String,
    exported_at_ms: i64,
    rows: Vec<Row>,
    extra: ExtraColumn,
    rejects: Vec<Reject>,
    unmapped: UnmappedCounts,
    outside: Outside,
}

impl Normalizer {
    pub fn new(account_id: &str, exported_at: DateTime<Utc>) -> Normalizer {
        Normalizer {
            account_id: account_id.to_string(),
            exported_at_ms: exported_at.timestamp_millis(),
            rows: Vec::new(),
            extra: ExtraColumn::default(),
            rejects: Vec::new(),
            unmapped: UnmappedCounts::default(),
            outside: Outside::default(),
        }
    }

    fn reject(&mut self, reason: String, raw: &RawValue) {
        self.rejects.push(Reject {
            reason,
            raw_json: raw.get().to_string(),
        });
    }

    /// Reads the agent records of one page of a window that requested `claim` and counts the
    /// envelope's unmapped keys once; `first` says whether an agent id is new in this window.
    /// Returns the rows added.
    pub fn push_page(
        &mut self,
        page: &Page<'_>,
        claim: &Range<DateTime<Utc>>,
        first: &mut dyn FnMut(&str) -> bool,
    ) -> usize {
        let before = self.rows.len();
        self.unmapped.add(&page.extra);
        for agent in &page.agents {
            self.push_agent(agent, &page.extra, claim, first);
        }
        self.rows.len() - before
    }

    /// Reads one agent record of a page whose envelope's unmapped keys are `envelope`; an
    /// identical repeat of an agent is skipped, a differing one rejected whole (see the module
    /// docs, "Identity").
    fn push_agent(
        &mut self,
        raw: &RawValue,
        envelope: &Unmapped<'_>,
        claim: &Range<DateTime<Utc>>,
        first: &mut dyn FnMut(&str) -> bool,
    ) {
        let read = Members::of(raw).and_then(|mut m| {
            let id = m
                .take_str("agentId")?
                .filter(|a| !a.is_empty())
                .ok_or("agent has no agentId")?
                .into_owned();
            let intervals = m.take_array("intervals")?;
            Ok((id, intervals, m.into_unmapped()))
        });
        let (agent_id, intervals, agent_extra) = match read {
            Ok(a) => a,
            Err(reason) => return self.reject(reason, raw),
        };
        // Debug-quoted: no id can make two different keys equal.
        match (
            first(&agent_id),
            first(&format!("{agent_id:?} {}", raw.get())),
        ) {
            (true, _) => {}
            (false, false) => return,
            (false, true) => {
                return self.reject(
                    format!(
                        "an earlier record of the day has agent {agent_id} (a row is one agent, \
                         interval and queue); this one differs from it"
                    ),
                    raw,
                )
            }
        }
        let mut counted = false;
        let mut kept = HashMap::new();
        for interval in intervals {
            let levels = [("response", envelope), ("agent", &agent_extra)];
            let added = self.push_interval(&agent_id, &levels, interval, claim, &mut kept);
            if added && !counted {
                self.unmapped.add(&agent_extra);
                counted = true;
            }
        }
    }

    /// One interval of an agent whose outer levels (envelope, agent) are `outer`; `true` when
    /// it added a row.
    fn push_interval(
        &mut self,
        agent_id: &str,
        outer: &[Level<'_, '_>; 2],
        raw: &RawValue,
        claim: &Range<DateTime<Utc>>,
        kept: &mut HashMap<(i64, String), String>,
    ) -> bool {
        let read = Members::of(raw).and_then(|mut m| {
            let start = m
                .take_instant("intervalStartTimeStamp")?
                .ok_or("interval has no intervalStartTimeStamp")?;
            Ok((start, m))
        });
        let (start, mut m) = match read {
            Ok(x) => x,
            Err(reason) => {
                self.reject(format!("agent {agent_id}: {reason}"), raw);
                return false;
            }
        };
        match history::place(start, claim) {
            Placed::In => {}
            Placed::NextRange => return false,
            Placed::Outside => {
                let reason = self.outside.reason("intervalStartTimeStamp", start, claim);
                self.reject(format!("agent {agent_id}: {reason}"), raw);
                return false;
            }
        }
        let rest = m
            .take_instant("intervalEndTimeStamp")
            .and_then(|end| Ok((end, m.take_array("queues")?)));
        let (end, queues) = match rest {
            Ok(x) => x,
            Err(reason) => {
                self.reject(format!("agent {agent_id}: {reason}"), raw);
                return false;
            }
        };
        let interval_extra = m.into_unmapped();
        let mut added = false;
        for queue in queues {
            let read = read_queue(queue).and_then(|(row, extra)| {
                let key = (start.timestamp_millis(), row.queue_id.clone());
                match kept.get(&key) {
                    None => {
                        kept.insert(key, queue.get().to_string());
                        Ok(Some((row, extra)))
                    }
                    Some(first) if first == queue.get() => Ok(None),
                    Some(_) => Err(format!(
                        "queue {} repeats an earlier entry of the agent's interval with other \
                         values (a row is one agent, interval and queue); the first is kept",
                        row.queue_id
                    )),
                }
            });
            match read {
                Ok(None) => {}
                Ok(Some((mut row, queue_extra))) => {
                    row.agent_id = agent_id.to_string();
                    row.start = start.timestamp_millis();
                    row.end = end.map(|e| e.timestamp_millis());
                    if !added {
                        self.unmapped.add(&interval_extra);
                    }
                    self.unmapped.add(&queue_extra);
                    self.extra.append(&[
                        outer[0],
                        outer[1],
                        ("interval", &interval_extra),
                        ("queue", &queue_extra),
                    ]);
                    self.rows.push(row);
                    added = true;
                }
                Err(reason) => self.reject(
                    format!("agent {agent_id}, interval {start}: {reason}"),
                    queue,
                ),
            }
        }
        added
    }

    /// Intervals rejected so far as starting outside the range requested.
    pub fn outside(&self) -> Outside {
        self.outside
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// The rows held as a batch; the normalizer starts empty again.
    pub fn take_batch(&mut self) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        let n = rows.len();
        let text = |f: &dyn Fn(&Row) -> Option<&str>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        let ints = |f: &dyn Fn(&Row) -> Option<i64>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<Int64Array>())
        };
        let mut starts = timestamp_builder(n);
        let mut ends = timestamp_builder(n);
        for r in &rows {
            starts.append_value(r.start);
            ends.append_option(r.end);
        }
        let mut columns: Vec<ArrayRef> = vec![
            constant_utf8(&self.account_id, n),
            text(&|r| Some(r.agent_id.as_str())),
            Arc::new(starts.finish()),
            Arc::new(ends.finish()),
            text(&|r| Some(r.queue_id.as_str())),
            text(&|r| r.queue_name.as_deref()),
        ];
        for k in 0..COUNTS.len() {
            columns.push(ints(&|r| r.counts[k]));
        }
        for k in 0..DURATIONS.len() {
            columns.push(ints(&|r| r.durations[k]));
        }
        columns.push(Arc::new(
            rows.iter().map(|r| r.csat_score).collect::<Float64Array>(),
        ));
        columns.push(constant_timestamp(self.exported_at_ms, n));
        columns.push(self.extra.finish());
        // The columns are built in the schema's order with its types, so this cannot fail.
        RecordBatch::try_new(agent_performance_schema(), columns)
            .unwrap_or_else(|e| unreachable!("agent_performance batch does not match: {e}"))
    }

    /// The unmapped fields of the pages read and of the records whose rows were added; the
    /// count restarts.
    pub fn take_unmapped(&mut self) -> UnmappedCounts {
        std::mem::take(&mut self.unmapped)
    }

    /// The rejects so far.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }
}

fn read_queue(raw: &RawValue) -> Result<(Row, Unmapped<'_>), String> {
    let mut m = Members::of(raw)?;
    let queue_id = m
        .take_str("queueId")?
        .filter(|q| !q.is_empty())
        .ok_or("queue has no queueId")?
        .into_owned();
    let queue_name = m.take_str("queueName")?.map(|s| s.into_owned());
    let mut counts = [None; 5];
    for (slot, (key, _)) in counts.iter_mut().zip(COUNTS) {
        *slot = m.take_int(key)?;
    }
    let mut durations = [None; 4];
    for (slot, (key, _)) in durations.iter_mut().zip(DURATIONS) {
        *slot = m.take_int(key)?;
    }
    let csat_score = m.take_f64("csatScore")?;
    let row = Row {
        agent_id: String::new(),
        start: 0,
        end: None,
        queue_id,
        queue_name,
        counts,
        durations,
        csat_score,
    };
    Ok((row, m.into_unmapped()))
}
