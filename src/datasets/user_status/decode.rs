//! UserStatus ("Historical Agent Status Summary"): the request body of one page, decoding of a
//! response page (the current `{hasMore, limit, offset, data[]}` envelope and the legacy object
//! keyed by user id), and normalization of agent records into rows of
//! [`schema::user_status_schema`](crate::datasets::user_status::schema::user_status_schema).
//!
//! The caller sends [`request_body`] for each [`DayWindow`] of a day, decodes every page with
//! [`decode_page`] (retrying the request on [`DecodeError`]), advances `offset` by
//! `record_count` while `has_more`, dedupes agents by [`AgentRecord::user_id`], feeds each agent
//! to one [`UserStatusNormalizer`] per local day with the window's `claim`, and passes
//! page-level rejects to [`UserStatusNormalizer::push_reject`]. Decoding borrows from the body,
//! so the body must outlive the page.
//!
//! Keys are matched case-insensitively; string values are kept exactly as received. Leaves are
//! decoded leniently (any JSON type) and validated during normalization, so a wrong type, a
//! missing field or an unparsable value rejects one status entry (or one bucket, re-assembled
//! as JSON with its user id), not the agent; a structurally broken agent (e.g. `timeInterval`
//! not an array) or one without `userId` rejects the agent with its raw JSON.
//!
//! Decoding is one typed pass over the page; only a page with an agent to reject is decoded a
//! second time, agent by agent, to isolate each agent's raw JSON.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::schema::user_status_schema;
use crate::model::Granularity;
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::durations::parse_sec_sum;
use crate::sources::extra::{ExtraColumn, Unmapped, UnmappedCounts};
use crate::sources::window::DayWindow;
use crate::sources::wire::{json_string, leaf_str, opt_str, parse_instant, Leaf, StatsLeaf};
use crate::sources::{DecodeError, Reject};
use wire::{AgentWire, BucketWire, StatusWire, TopLevel};

const API: &str = "UserStatus";

/// The JSON body of one UserStatus request: the window's local day as both `startDate` and
/// `endDate`, its JavaScript-convention `timeZoneOffSet`, and the ISO-8601 granularity string.
/// `filter.agents` (email ids) is omitted when `agents` is empty, which selects every agent.
pub fn request_body(
    agents: &[String],
    window: &DayWindow,
    granularity: Granularity,
) -> serde_json::Value {
    let day = window.day.format("%Y-%m-%d").to_string();
    let mut filter = serde_json::Map::new();
    if !agents.is_empty() {
        filter.insert("agents".into(), serde_json::json!(agents));
    }
    filter.insert(
        "dateFilter".into(),
        serde_json::json!({
            "startDate": day,
            "endDate": day,
            "timeZoneOffSet": window.offset_minutes,
        }),
    );
    serde_json::json!({ "filter": filter, "granularity": granularity.as_str() })
}

/// One agent of a page: identity fields decoded, buckets kept for [`UserStatusNormalizer`].
/// Borrows from the response body.
#[derive(Debug, Clone)]
pub struct AgentRecord<'a> {
    user_id: Cow<'a, str>,
    email: Option<Cow<'a, str>>,
    first_name: Option<Cow<'a, str>>,
    last_name: Option<Cow<'a, str>>,
    custom_id: Option<Cow<'a, str>>,
    buckets: Vec<BucketWire<'a>>,
    /// The agent's fields no column maps.
    extra: Unmapped<'a>,
}

impl AgentRecord<'_> {
    /// `userId` (the map key in the legacy shape); never empty.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    /// `email`, or the legacy `emailId`; `None` when absent, null or empty.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref().filter(|s| !s.is_empty())
    }
    /// `firstName` as received (`""` stays `""`); `None` when absent or null.
    pub fn first_name(&self) -> Option<&str> {
        self.first_name.as_deref()
    }
    /// `lastName` as received (`""` stays `""`); `None` when absent or null.
    pub fn last_name(&self) -> Option<&str> {
        self.last_name.as_deref()
    }
    /// `customId`; `None` when absent, null or empty.
    pub fn custom_id(&self) -> Option<&str> {
        self.custom_id.as_deref().filter(|s| !s.is_empty())
    }
    /// Number of `timeInterval[]` buckets, including empty and out-of-claim ones.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
    /// Number of `timeInterval[].status[]` entries: an upper bound on the rows this agent adds.
    pub fn status_count(&self) -> usize {
        self.buckets.iter().map(|b| b.status.len()).sum()
    }
}

/// A decoded page.
#[derive(Debug, Clone)]
pub struct UserStatusPage<'a> {
    /// `hasMore` of the envelope; always `false` for the legacy (unpaginated) shape.
    pub has_more: bool,
    /// Agents on this page, counted for `offset` advancement (including rejected ones).
    pub record_count: usize,
    pub agents: Vec<Result<AgentRecord<'a>, Reject>>,
}

/// Decodes one response body. Record-level problems become `Err(Reject)` entries in
/// `agents`; a body that is not JSON, is truncated, is an `{"errors": …}` body or has the wrong
/// top-level shape is a [`DecodeError`].
pub fn decode_page(body: &[u8]) -> Result<UserStatusPage<'_>, DecodeError> {
    // Validating UTF-8 once up front is cheaper than serde_json's per-string checks on bytes.
    let body = std::str::from_utf8(body).map_err(|e| DecodeError {
        api: API,
        reason: format!("body is not UTF-8: {e}"),
    })?;
    // Fast path: one typed pass over the whole page. Any problem (a structurally broken agent,
    // an agent to reject, an error body) falls back to the slow path, which isolates each
    // agent's raw JSON so it can be rejected on its own.
    if let Ok(top) = serde_json::from_str::<TopLevel<'_, AgentWire<'_>>>(body) {
        if let Some(page) = typed_page(top) {
            return Ok(page);
        }
    }
    raw_page(body)
}

/// The fast path's page, or `None` if any agent would be rejected or the shape needs the slow
/// path's diagnostics.
fn typed_page<'a>(top: TopLevel<'a, AgentWire<'a>>) -> Option<UserStatusPage<'a>> {
    if top.envelope {
        let data = top.data?.unwrap_or_default();
        let record_count = data.len();
        let agents = data
            .into_iter()
            .map(|w| agent_from_wire(w, None).map(Ok).ok())
            .collect::<Option<Vec<_>>>()?;
        return Some(UserStatusPage {
            has_more: top.has_more.unwrap_or(false),
            record_count,
            agents,
        });
    }
    if top
        .others
        .iter()
        .any(|(k, _)| k.is("errors") || k.is("error"))
    {
        return None;
    }
    let record_count = top.others.len();
    let agents = top
        .others
        .into_iter()
        .map(|(key, w)| agent_from_wire(w, Some(key.0)).map(Ok).ok())
        .collect::<Option<Vec<_>>>()?;
    Some(UserStatusPage {
        has_more: false,
        record_count,
        agents,
    })
}

/// The slow path: each agent is isolated as raw JSON first, then decoded on its own.
fn raw_page(body: &str) -> Result<UserStatusPage<'_>, DecodeError> {
    let top: TopLevel<'_, &RawValue> = serde_json::from_str(body).map_err(|e| DecodeError {
        api: API,
        reason: e.to_string(),
    })?;
    if top.envelope {
        let data = match top.data {
            Some(data) => data.unwrap_or_default(),
            None => {
                return Err(DecodeError {
                    api: API,
                    reason: "envelope has no \"data\" array".into(),
                })
            }
        };
        let agents = data
            .iter()
            .enumerate()
            .map(|(i, raw)| decode_agent(raw, None).map_err(|reason| reject(i, &reason, raw.get())))
            .collect();
        return Ok(UserStatusPage {
            has_more: top.has_more.unwrap_or(false),
            record_count: data.len(),
            agents,
        });
    }
    if let Some((key, raw)) = top
        .others
        .iter()
        .find(|(k, _)| k.is("errors") || k.is("error"))
    {
        return Err(DecodeError {
            api: API,
            reason: format!(
                "body is an error response: {{{}:{}}}",
                json_string(&key.0),
                raw.get()
            ),
        });
    }
    // Legacy shape: an object keyed by user id.
    let record_count = top.others.len();
    let agents = top
        .others
        .into_iter()
        .map(|(key, raw)| {
            let user_id = key.0;
            decode_agent(raw, Some(user_id.clone())).map_err(|reason| Reject {
                reason: format!("agent {user_id:?}: {reason}"),
                raw_json: format!("{{{}:{}}}", json_string(&user_id), raw.get()),
            })
        })
        .collect();
    Ok(UserStatusPage {
        has_more: false,
        record_count,
        agents,
    })
}

fn reject(index: usize, reason: &str, raw: &str) -> Reject {
    Reject {
        reason: format!("data[{index}]: {reason}"),
        raw_json: raw.to_owned(),
    }
}

fn decode_agent<'a>(
    raw: &'a RawValue,
    key_user_id: Option<Cow<'a, str>>,
) -> Result<AgentRecord<'a>, String> {
    if !raw.get().starts_with('{') {
        return Err("agent record is not an object".into());
    }
    let wire: AgentWire<'a> = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    agent_from_wire(wire, key_user_id)
}

fn agent_from_wire<'a>(
    wire: AgentWire<'a>,
    key_user_id: Option<Cow<'a, str>>,
) -> Result<AgentRecord<'a>, String> {
    let user_id = match key_user_id {
        Some(k) => Some(k),
        None => opt_str("userId", wire.user_id)?,
    };
    let user_id = user_id
        .filter(|u| !u.is_empty())
        .ok_or("agent has no userId")?;
    let email = match opt_str("email", wire.email)? {
        Some(e) => Some(e),
        None => opt_str("emailId", wire.email_id)?,
    };
    Ok(AgentRecord {
        user_id,
        email,
        first_name: opt_str("firstName", wire.first_name)?,
        last_name: opt_str("lastName", wire.last_name)?,
        custom_id: opt_str("customId", wire.custom_id)?,
        buckets: wire.buckets,
        extra: wire.extra,
    })
}

/// Accumulates the rows of one local day (one `dt` partition) and its rejects.
pub struct UserStatusNormalizer {
    account_id: String,
    granularity: Granularity,
    exported_at_ms: i64,
    user_id: StringBuilder,
    email: StringBuilder,
    first_name: StringBuilder,
    last_name: StringBuilder,
    custom_id: StringBuilder,
    bucket_start: TimestampMillisecondBuilder,
    bucket_end: TimestampMillisecondBuilder,
    metric: StringBuilder,
    value: StringBuilder,
    duration_seconds: Int64Builder,
    extra: ExtraColumn,
    unmapped: UnmappedCounts,
    rows: usize,
    rejects: Vec<Reject>,
}

impl fmt::Debug for UserStatusNormalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStatusNormalizer")
            .field("account_id", &self.account_id)
            .field("granularity", &self.granularity)
            .field("rows", &self.rows)
            .field("rejects", &self.rejects.len())
            .finish()
    }
}

/// A bucket or status entry that failed normalization.
struct EntryError {
    reason: String,
    raw_json: String,
}

impl UserStatusNormalizer {
    pub fn new(account_id: &str, granularity: Granularity, exported_at: DateTime<Utc>) -> Self {
        UserStatusNormalizer {
            account_id: account_id.to_owned(),
            granularity,
            exported_at_ms: exported_at.timestamp_millis(),
            user_id: StringBuilder::new(),
            email: StringBuilder::new(),
            first_name: StringBuilder::new(),
            last_name: StringBuilder::new(),
            custom_id: StringBuilder::new(),
            bucket_start: timestamp_builder(0),
            bucket_end: timestamp_builder(0),
            metric: StringBuilder::new(),
            value: StringBuilder::new(),
            duration_seconds: Int64Builder::new(),
            extra: ExtraColumn::default(),
            unmapped: UnmappedCounts::default(),
            rows: 0,
            rejects: Vec::new(),
        }
    }

    /// Appends one row per `status[]` entry of every bucket whose `startTime` lies in `claim`
    /// (`[start, end)`). Buckets outside the claim are skipped without validation (another
    /// window owns them), except that a bucket whose `startTime` is unusable is rejected since
    /// its owner cannot be known. Bad buckets and entries become rejects.
    pub fn push_agent(&mut self, agent: &AgentRecord<'_>, claim: &Range<DateTime<Utc>>) {
        let rows_before = self.rows;
        // The last `endTime` read: the next bucket's `startTime` is usually the same text, and
        // is then not parsed again.
        let mut last_end = None;
        for bucket in &agent.buckets {
            let start = match bucket_time("startTime", &bucket.start, last_end) {
                Ok(t) => t,
                Err(reason) => {
                    self.reject_bucket(agent, bucket, &reason);
                    continue;
                }
            };
            if !claim.contains(&start) {
                continue;
            }
            let end = match bucket_time("endTime", &bucket.end, None) {
                Ok(t) if t > start => t,
                Ok(_) => {
                    self.reject_bucket(agent, bucket, "endTime is not after startTime");
                    continue;
                }
                Err(reason) => {
                    self.reject_bucket(agent, bucket, &reason);
                    continue;
                }
            };
            if let Ok(Some(text)) = leaf_str("endTime", &bucket.end) {
                last_end = Some((text, end));
            }
            let (start_ms, end_ms) = (start.timestamp_millis(), end.timestamp_millis());
            let bucket_rows = self.rows;
            for entry in &bucket.status {
                match normalize_entry(entry) {
                    Ok((metric, value, seconds)) => {
                        self.bucket_start.append_value(start_ms);
                        self.bucket_end.append_value(end_ms);
                        self.metric.append_value(metric);
                        self.value.append_value(value);
                        self.duration_seconds.append_value(seconds);
                        self.extra.append(&[
                            ("agent", &agent.extra),
                            ("bucket", &bucket.extra),
                            ("status", &entry.extra),
                        ]);
                        self.unmapped.add(&entry.extra);
                        self.rows += 1;
                    }
                    Err(reason) => {
                        let e = entry_error(agent, bucket, std::slice::from_ref(entry), &reason);
                        self.rejects.push(Reject {
                            reason: e.reason,
                            raw_json: e.raw_json,
                        });
                    }
                }
            }
            if self.rows > bucket_rows {
                self.unmapped.add(&bucket.extra);
            }
        }
        // The agent's own columns, once for all its rows (they are contiguous): one copy loop
        // per column instead of five appends per row, a tenth of the normalizer's time.
        let rows = self.rows - rows_before;
        if rows > 0 {
            self.user_id.append_value_n(agent.user_id(), rows);
            append_n(&mut self.email, agent.email(), rows);
            append_n(&mut self.first_name, agent.first_name(), rows);
            append_n(&mut self.last_name, agent.last_name(), rows);
            append_n(&mut self.custom_id, agent.custom_id(), rows);
            self.unmapped.add(&agent.extra);
        }
    }

    /// Records a reject found before normalization (e.g. a page-level agent reject).
    pub fn push_reject(&mut self, reject: Reject) {
        self.rejects.push(reject);
    }

    /// Rows appended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Rejects recorded so far.
    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }

    /// The rows pushed since the last call as one batch with exactly [`user_status_schema`];
    /// the builders start empty again. Lets a caller stream each page into the Parquet writer
    /// instead of holding a whole day in memory.
    pub fn take_batch(&mut self) -> RecordBatch {
        let n = std::mem::take(&mut self.rows);
        let columns: Vec<ArrayRef> = vec![
            constant_utf8(&self.account_id, n),
            Arc::new(self.user_id.finish()),
            Arc::new(self.email.finish()),
            Arc::new(self.first_name.finish()),
            Arc::new(self.last_name.finish()),
            Arc::new(self.custom_id.finish()),
            Arc::new(self.bucket_start.finish()),
            Arc::new(self.bucket_end.finish()),
            constant_utf8(self.granularity.as_str(), n),
            Arc::new(self.metric.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.duration_seconds.finish()),
            constant_timestamp(self.exported_at_ms, n),
            self.extra.finish(),
        ];
        // Cannot fail: every column has `n` values, the types are the schema's (timestamps are
        // built with the "UTC" zone) and the non-nullable columns never receive a null.
        RecordBatch::try_new(user_status_schema(), columns)
            .expect("columns match user_status_schema by construction")
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

    /// The remaining rows as one batch with exactly [`user_status_schema`], and the rejects.
    pub fn finish(mut self) -> (RecordBatch, Vec<Reject>) {
        let batch = self.take_batch();
        (batch, self.rejects)
    }

    fn reject_bucket(&mut self, agent: &AgentRecord<'_>, bucket: &BucketWire<'_>, reason: &str) {
        let e = entry_error(agent, bucket, &bucket.status, reason);
        self.rejects.push(Reject {
            reason: e.reason,
            raw_json: e.raw_json,
        });
    }
}

/// Appends `value` (null when `None`) `n` times.
fn append_n(builder: &mut StringBuilder, value: Option<&str>, n: usize) {
    match value {
        Some(v) => builder.append_value_n(v, n),
        None => builder.append_nulls(n),
    }
}

/// A bucket's time; `known` is a text read before and its instant.
fn bucket_time(
    field: &str,
    v: &Option<Leaf<'_>>,
    known: Option<(&str, DateTime<Utc>)>,
) -> Result<DateTime<Utc>, String> {
    let s = leaf_str(field, v)?.ok_or_else(|| format!("bucket has no {field}"))?;
    if let Some((text, at)) = known {
        if text == s {
            return Ok(at);
        }
    }
    parse_instant(s).map_err(|e| e.describe(field, s))
}

/// `(metric, value, duration_seconds)` of a status entry.
fn normalize_entry<'e>(entry: &'e StatusWire<'_>) -> Result<(&'e str, &'e str, i64), String> {
    let metric = leaf_str("metric", &entry.metric)?.ok_or("status entry has no metric")?;
    let value = leaf_str("value", &entry.value)?.ok_or("status entry has no value")?;
    let sum = match &entry.stats {
        None | Some(StatsLeaf::NotObject(Leaf::Null)) => {
            return Err("status entry has no stats".into())
        }
        Some(StatsLeaf::NotObject(other)) => {
            return Err(format!("stats is not an object: {}", other.to_json()))
        }
        Some(StatsLeaf::Object { sum, .. }) => {
            leaf_str("stats.sum", sum)?.ok_or("status entry has no stats.sum")?
        }
    };
    let seconds =
        parse_sec_sum(sum).ok_or_else(|| format!("stats.sum {sum:?} is not \"<n> sec\""))?;
    Ok((metric, value, seconds))
}

/// A reject for a bucket (all its entries) or one entry of it, as a bucket-shaped JSON fragment
/// re-assembled from the raw leaves: `{"userId", "startTime", "endTime", "status": [...]}`.
/// Unknown fields of the bucket and entries are not kept.
fn entry_error(
    agent: &AgentRecord<'_>,
    bucket: &BucketWire<'_>,
    entries: &[StatusWire<'_>],
    reason: &str,
) -> EntryError {
    let mut raw = String::with_capacity(128);
    raw.push_str("{\"userId\":");
    raw.push_str(&json_string(agent.user_id()));
    push_field(
        &mut raw,
        "startTime",
        bucket.start.as_ref().map(Leaf::to_json),
    );
    push_field(&mut raw, "endTime", bucket.end.as_ref().map(Leaf::to_json));
    raw.push_str(",\"status\":[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            raw.push(',');
        }
        raw.push('{');
        let fields = [
            ("metric", e.metric.as_ref().map(Leaf::to_json)),
            ("value", e.value.as_ref().map(Leaf::to_json)),
            ("stats", e.stats.as_ref().map(StatsLeaf::to_json)),
        ];
        let mut first = true;
        for (name, v) in fields {
            if let Some(v) = v {
                if !first {
                    raw.push(',');
                }
                first = false;
                raw.push_str(&json_string(name));
                raw.push(':');
                raw.push_str(&v);
            }
        }
        raw.push('}');
    }
    raw.push_str("]}");
    let start = bucket
        .start
        .as_ref()
        .map_or_else(|| "null".to_owned(), Leaf::to_json);
    EntryError {
        reason: format!("user {} bucket {start}: {reason}", agent.user_id()),
        raw_json: raw,
    }
}

fn push_field(out: &mut String, name: &str, v: Option<String>) {
    if let Some(v) = v {
        out.push(',');
        out.push_str(&json_string(name));
        out.push(':');
        out.push_str(&v);
    }
}

#[cfg(test)]
mod tests;
mod wire;
