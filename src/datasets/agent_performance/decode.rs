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

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::value::RawValue;

use super::super::history::{self, Outside, Placed};
use super::schema::{agent_performance_schema, COUNTS, DURATIONS};
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::extra::{ExtraColumn, Level, Unmapped, UnmappedCounts};
use crate::sources::members::Members;
use crate::sources::tape::Tape;
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

/// A decoded response page: the envelope read, the agent records found but not read yet.
#[derive(Debug)]
pub struct Page<'a> {
    pub has_more: bool,
    /// `totalCount`: agents with activity in the range.
    pub total_count: Option<i64>,
    /// The agent records' JSON texts. Each is indexed ([`Tape`]) when it is read and its index
    /// dropped after it, so the index held beside the body is one agent's, not the page's
    /// (README, "Performance").
    pub agents: Vec<&'a str>,
    /// The envelope's keys no column maps (level `response` of every row of the page).
    pub extra: Unmapped<'a>,
}

/// Decodes one response body; anything but the `{hasMore, totalCount, AgentPerformance}`
/// envelope is a [`DecodeError`].
pub fn decode_page(body: &[u8]) -> Result<Page<'_>, DecodeError> {
    let err = |reason: String| DecodeError { api: API, reason };
    let text = std::str::from_utf8(body).map_err(|e| err(format!("body is not UTF-8: {e}")))?;
    // The envelope's members and the agent records, not what is inside them, indexed as the
    // body is validated; serde_json's message for a body that is not JSON.
    let tape = match Tape::index_valid_levels(text, 2) {
        Some(tape) => tape,
        None => {
            let raw: &RawValue = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
            Tape::index_levels(raw.get(), 2)
                .ok_or_else(|| err("body could not be indexed as JSON".into()))?
        }
    };
    let mut top = Members::of_node(&tape, tape.root())
        .map_err(|_| err("body is not a JSON object".into()))?;
    if let Some(errors) = top.take("errors").or_else(|| top.take("error")) {
        return Err(err(format!("body is an error response: {errors}")));
    }
    if !top.has(RECORDS_KEY) {
        return Err(err(format!("envelope has no \"{RECORDS_KEY}\" array")));
    }
    let has_more = top.take_bool("hasMore").map_err(err)?.unwrap_or(false);
    let total_count = top.take_int("totalCount").map_err(err)?;
    let agents = top.take_array_nodes(RECORDS_KEY, &tape).map_err(err)?;
    Ok(Page {
        has_more,
        total_count,
        agents: agents.into_iter().map(|a| tape.text(a)).collect(),
        extra: top.into_unmapped(),
    })
}

/// The mapped values of one queue entry, borrowed from the body.
struct QueueRow<'a> {
    queue_id: Cow<'a, str>,
    queue_name: Option<Cow<'a, str>>,
    counts: [Option<i64>; 5],
    durations: [Option<i64>; 4],
    csat_score: Option<f64>,
}

/// The builders of the non-constant columns, in schema order: rows are appended as they are
/// read, with no row struct or string copies in between.
struct Columns {
    rows: usize,
    agent_id: StringBuilder,
    start: TimestampMillisecondBuilder,
    end: TimestampMillisecondBuilder,
    queue_id: StringBuilder,
    queue_name: StringBuilder,
    counts: [Int64Builder; 5],
    durations: [Int64Builder; 4],
    csat_score: Float64Builder,
}

impl Columns {
    fn new() -> Columns {
        Columns {
            rows: 0,
            agent_id: StringBuilder::new(),
            start: timestamp_builder(0),
            end: timestamp_builder(0),
            queue_id: StringBuilder::new(),
            queue_name: StringBuilder::new(),
            counts: std::array::from_fn(|_| Int64Builder::new()),
            durations: std::array::from_fn(|_| Int64Builder::new()),
            csat_score: Float64Builder::new(),
        }
    }

    fn push(&mut self, agent_id: &str, start: i64, end: Option<i64>, q: &QueueRow<'_>) {
        self.rows += 1;
        self.agent_id.append_value(agent_id);
        self.start.append_value(start);
        self.end.append_option(end);
        self.queue_id.append_value(&q.queue_id);
        self.queue_name.append_option(q.queue_name.as_deref());
        for (b, v) in self.counts.iter_mut().zip(q.counts) {
            b.append_option(v);
        }
        for (b, v) in self.durations.iter_mut().zip(q.durations) {
            b.append_option(v);
        }
        self.csat_score.append_option(q.csat_score);
    }
}

/// Turns one day's agent records into batches, counting rejects and unmapped fields.
pub struct Normalizer {
    account_id: String,
    exported_at_ms: i64,
    columns: Columns,
    extra: ExtraColumn,
    rejects: Vec<Reject>,
    unmapped: UnmappedCounts,
    outside: Outside,
}

/// One agent record being read: its id, the page's index and the queue entries kept so far,
/// by interval start and `queueId`, with their JSON text (see the module docs, "Identity").
struct Agent<'t, 'a> {
    id: &'t str,
    tape: &'t Tape<'a>,
    kept: HashMap<(i64, Cow<'a, str>), &'a str>,
}

impl<'a> Agent<'_, 'a> {
    /// The queue entry at `node` of the agent's interval starting at `start_ms`: `None` when
    /// it repeats an earlier entry of that interval and queue identically (skipped), an error
    /// when it repeats one with other values (the first is kept).
    #[allow(clippy::type_complexity)]
    fn first_listing(
        &mut self,
        node: usize,
        start_ms: i64,
    ) -> Result<Option<(QueueRow<'a>, Unmapped<'a>)>, String> {
        let text = self.tape.text(node);
        let (row, extra) = read_queue(self.tape, node)?;
        let key = (start_ms, row.queue_id.clone());
        match self.kept.get(&key) {
            None => {
                self.kept.insert(key, text);
                Ok(Some((row, extra)))
            }
            Some(first) if *first == text => Ok(None),
            Some(_) => Err(format!(
                "queue {} repeats an earlier entry of the agent's interval with other values (a \
                 row is one agent, interval and queue); the first is kept",
                row.queue_id
            )),
        }
    }
}

impl Normalizer {
    pub fn new(account_id: &str, exported_at: DateTime<Utc>) -> Normalizer {
        Normalizer {
            account_id: account_id.to_string(),
            exported_at_ms: exported_at.timestamp_millis(),
            columns: Columns::new(),
            extra: ExtraColumn::default(),
            rejects: Vec::new(),
            unmapped: UnmappedCounts::default(),
            outside: Outside::default(),
        }
    }

    fn reject(&mut self, reason: String, raw: &str) {
        self.rejects.push(Reject {
            reason,
            raw_json: raw.to_string(),
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
        let before = self.columns.rows;
        self.unmapped.add(&page.extra);
        for &agent in &page.agents {
            self.push_agent(agent, &page.extra, claim, first);
        }
        self.columns.rows - before
    }

    /// Reads the agent record `raw` (its JSON text) of a page whose envelope's unmapped keys
    /// are `envelope`; an identical repeat of an agent is skipped, a differing one rejected
    /// whole (see the module docs, "Identity").
    fn push_agent(
        &mut self,
        raw: &str,
        envelope: &Unmapped<'_>,
        claim: &Range<DateTime<Utc>>,
        first: &mut dyn FnMut(&str) -> bool,
    ) {
        // Cannot fail: the record is part of a validated body (`Tape::index_valid_levels`, or
        // serde_json when that refused it).
        let Some(tape) = Tape::index(raw) else {
            return self.reject("agent record could not be indexed as JSON".into(), raw);
        };
        let tape = &tape;
        let read = Members::of_node(tape, tape.root()).and_then(|mut m| {
            let id = m
                .take_str("agentId")?
                .filter(|a| !a.is_empty())
                .ok_or("agent has no agentId")?;
            let intervals = m.take_array_nodes("intervals", tape)?;
            Ok((id, intervals, m.into_unmapped()))
        });
        let (agent_id, intervals, agent_extra) = match read {
            Ok(a) => a,
            Err(reason) => return self.reject(reason, raw),
        };
        // Debug-quoted: no id can make two different keys equal.
        match (first(&agent_id), first(&format!("{agent_id:?} {raw}"))) {
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
        let mut agent = Agent {
            id: &agent_id,
            tape,
            kept: HashMap::new(),
        };
        let mut counted = false;
        for interval in intervals {
            let levels = [("response", envelope), ("agent", &agent_extra)];
            let added = self.push_interval(&mut agent, &levels, interval, claim);
            if added && !counted {
                self.unmapped.add(&agent_extra);
                counted = true;
            }
        }
    }

    /// The interval at `node` of `agent`, whose outer levels (envelope, agent) are `outer`;
    /// `true` when it added a row.
    fn push_interval<'a>(
        &mut self,
        agent: &mut Agent<'_, 'a>,
        outer: &[Level<'_, '_>; 2],
        node: usize,
        claim: &Range<DateTime<Utc>>,
    ) -> bool {
        let (agent_id, tape) = (agent.id, agent.tape);
        let raw = tape.text(node);
        let read = Members::of_node(tape, node).and_then(|mut m| {
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
            .and_then(|end| Ok((end, m.take_array_nodes("queues", tape)?)));
        let (end, queues) = match rest {
            Ok(x) => x,
            Err(reason) => {
                self.reject(format!("agent {agent_id}: {reason}"), raw);
                return false;
            }
        };
        let interval_extra = m.into_unmapped();
        let (start_ms, end_ms) = (start.timestamp_millis(), end.map(|e| e.timestamp_millis()));
        let mut added = false;
        for queue in queues {
            let text = tape.text(queue);
            match agent.first_listing(queue, start_ms) {
                Ok(None) => {}
                Ok(Some((row, queue_extra))) => {
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
                    self.columns.push(agent_id, start_ms, end_ms, &row);
                    added = true;
                }
                Err(reason) => self.reject(
                    format!("agent {agent_id}, interval {start}: {reason}"),
                    text,
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
        self.columns.rows
    }

    /// The rows held as a batch; the normalizer starts empty again.
    pub fn take_batch(&mut self) -> RecordBatch {
        let c = &mut self.columns;
        let n = std::mem::take(&mut c.rows);
        let mut columns: Vec<ArrayRef> = vec![
            constant_utf8(&self.account_id, n),
            Arc::new(c.agent_id.finish()),
            Arc::new(c.start.finish()),
            Arc::new(c.end.finish()),
            Arc::new(c.queue_id.finish()),
            Arc::new(c.queue_name.finish()),
        ];
        for b in &mut c.counts {
            columns.push(Arc::new(b.finish()));
        }
        for b in &mut c.durations {
            columns.push(Arc::new(b.finish()));
        }
        columns.push(Arc::new(c.csat_score.finish()));
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

fn read_queue<'a>(tape: &Tape<'a>, node: usize) -> Result<(QueueRow<'a>, Unmapped<'a>), String> {
    let mut m = Members::of_node(tape, node)?;
    let queue_id = m
        .take_str("queueId")?
        .filter(|q| !q.is_empty())
        .ok_or("queue has no queueId")?;
    let queue_name = m.take_str("queueName")?;
    let mut counts = [None; 5];
    for (slot, (key, _)) in counts.iter_mut().zip(COUNTS) {
        *slot = m.take_int(key)?;
    }
    let mut durations = [None; 4];
    for (slot, (key, _)) in durations.iter_mut().zip(DURATIONS) {
        *slot = m.take_int(key)?;
    }
    let csat_score = m.take_f64("csatScore")?;
    let row = QueueRow {
        queue_id,
        queue_name,
        counts,
        durations,
        csat_score,
    };
    Ok((row, m.into_unmapped()))
}
