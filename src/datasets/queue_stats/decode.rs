//! Queue Size (`queueStatsById`): decoding of one answer (a JSON array of queue records, whose
//! documented sample holds a `//` line comment) into [`QueueSnapshot`]s and rejects, and the
//! conversion of snapshots into batches of
//! [`schema::queue_stats_schema`](super::schema::queue_stats_schema).
//!
//! The body is read as JSON after removing `//` line comments that stand outside strings
//! ([`strip_line_comments`]); nothing else is tolerated: a `/*` comment, a lone `/`, a
//! trailing comma or any other text that is not JSON makes the body a [`DecodeError`] (the
//! client retries it, then the poll fails and says why). Within the array each element is a
//! snapshot or a [`Reject`] (not an object, no `queueId`, a count that is not an integer, a
//! wait that is not a number, a nested status or summary that is not an object). Keys are
//! matched case-insensitively; unmapped keys are kept in `extra` (those of `agentStatus` and
//! `queueSummary` nested under their names); `skills` is kept as its exact JSON text.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::schema::queue_stats_schema;
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::extra::Unmapped;
use crate::sources::wire::{Key, Scalar};
use crate::sources::{DecodeError, Reject};

const API: &str = "queueStatsById";

/// One queue's state at one poll. Serializable so that a claimed but not yet published file
/// can be kept in the partition index (see [`crate::datasets::merged`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueueSnapshot {
    /// When the answer was requested (whole seconds, UTC).
    pub polled_at: DateTime<Utc>,
    /// `queueId`; never empty.
    pub queue_id: String,
    pub queue_name: Option<String>,
    pub waiting: Option<i64>,
    pub engaged: Option<i64>,
    /// `dropOff` (the period it counts over is not documented).
    pub drop_off: Option<i64>,
    /// `agentStatus.available`, `.offline`, `.busy`, `.away`.
    pub agents_available: Option<i64>,
    pub agents_offline: Option<i64>,
    pub agents_busy: Option<i64>,
    pub agents_away: Option<i64>,
    /// `noOfAgents`.
    pub agents: Option<i64>,
    /// `queueSummary.avgWait`, `.maxWait`, `.ASA`, as sent (units not documented).
    pub avg_wait: Option<f64>,
    pub max_wait: Option<f64>,
    pub asa: Option<f64>,
    /// `skills` as its exact JSON text (`[]` when none); `None` when absent or null.
    pub skills: Option<String>,
    /// The record's unmapped fields as its `extra` cell; `None` when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// `body` without its `//` line comments outside strings (each replaced by spaces, so error
/// positions stay those of the body); borrowed when it has none. Strings, escapes included,
/// are copied as they are, so `"http://x"` stays intact.
pub fn strip_line_comments(body: &str) -> Cow<'_, str> {
    if !body.contains("//") {
        return Cow::Borrowed(body);
    }
    let mut out = String::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            out.push(' ');
            while let Some(&next) = chars.peek() {
                if next == '\n' {
                    break;
                }
                out.push(' ');
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Decodes one answer polled at `polled_at`: a JSON array (with `//` line comments allowed
/// outside strings) of queue records, each a snapshot or a [`Reject`]; a body that is not
/// such an array is a [`DecodeError`].
pub fn decode_queue_stats(
    body: &[u8],
    polled_at: DateTime<Utc>,
) -> Result<Vec<Result<QueueSnapshot, Reject>>, DecodeError> {
    Ok(decode_elements(body, polled_at)?
        .into_iter()
        .map(|e| e.decoded)
        .collect())
}

/// One element of an answer: what it decoded to, with its exact JSON text (so that a record
/// which decodes but is not kept, a second record of the polled queue or one of another
/// queue, can still go to the rejects as it was sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub decoded: Result<QueueSnapshot, Reject>,
    pub raw_json: String,
}

/// [`decode_queue_stats`] keeping each element's JSON text.
pub fn decode_elements(body: &[u8], polled_at: DateTime<Utc>) -> Result<Vec<Element>, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError {
        api: API,
        reason: format!("body is not UTF-8: {e}"),
    })?;
    let text = strip_line_comments(text);
    let items: Vec<&RawValue> = serde_json::from_str(&text).map_err(|e| DecodeError {
        api: API,
        reason: e.to_string(),
    })?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, raw)| Element {
            decoded: decode_queue(raw, polled_at).map_err(|reason| Reject {
                reason: format!("[{i}]: {reason}"),
                raw_json: raw.get().to_owned(),
            }),
            raw_json: raw.get().to_owned(),
        })
        .collect())
}

fn decode_queue(raw: &RawValue, polled_at: DateTime<Utc>) -> Result<QueueSnapshot, String> {
    if !raw.get().starts_with('{') {
        return Err("queue record is not an object".into());
    }
    let pairs: Pairs<'_> = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let mut q = QueueSnapshot {
        polled_at,
        queue_id: String::new(),
        queue_name: None,
        waiting: None,
        engaged: None,
        drop_off: None,
        agents_available: None,
        agents_offline: None,
        agents_busy: None,
        agents_away: None,
        agents: None,
        avg_wait: None,
        max_wait: None,
        asa: None,
        skills: None,
        extra: None,
    };
    let mut extra = Unmapped::default();
    for (key, value) in pairs.0 {
        let k = Key(key);
        let v = Scalar(value);
        if k.is("queueId") {
            q.queue_id = text("queueId", v)?.unwrap_or_default();
        } else if k.is("queueName") {
            q.queue_name = text("queueName", v)?;
        } else if k.is("skills") {
            q.skills = (v.raw() != "null").then(|| v.raw().to_owned());
        } else if k.is("waiting") {
            q.waiting = integer("waiting", v)?;
        } else if k.is("engaged") {
            q.engaged = integer("engaged", v)?;
        } else if k.is("dropOff") {
            q.drop_off = integer("dropOff", v)?;
        } else if k.is("noOfAgents") {
            q.agents = integer("noOfAgents", v)?;
        } else if k.is("agentStatus") {
            extra.push_nested(k.0, agent_status(&mut q, value)?);
        } else if k.is("queueSummary") {
            extra.push_nested(k.0, queue_summary(&mut q, value)?);
        } else {
            extra.push(k.0, value);
        }
    }
    if q.queue_id.is_empty() {
        return Err("queue record has no queueId".into());
    }
    q.extra = extra.cell();
    Ok(q)
}

/// `agentStatus`: the four counts; its other keys, for `extra`.
fn agent_status<'a>(q: &mut QueueSnapshot, raw: &'a RawValue) -> Result<Unmapped<'a>, String> {
    let mut extra = Unmapped::default();
    for (key, value) in object("agentStatus", raw)? {
        let k = Key(key);
        let v = Scalar(value);
        let slot = if k.is("available") {
            &mut q.agents_available
        } else if k.is("offline") {
            &mut q.agents_offline
        } else if k.is("busy") {
            &mut q.agents_busy
        } else if k.is("away") {
            &mut q.agents_away
        } else {
            extra.push(k.0, value);
            continue;
        };
        *slot = integer(&format!("agentStatus.{}", k.0), v)?;
    }
    Ok(extra)
}

/// `queueSummary`: the three waits; its other keys, for `extra`.
fn queue_summary<'a>(q: &mut QueueSnapshot, raw: &'a RawValue) -> Result<Unmapped<'a>, String> {
    let mut extra = Unmapped::default();
    for (key, value) in object("queueSummary", raw)? {
        let k = Key(key);
        let v = Scalar(value);
        let slot = if k.is("avgWait") {
            &mut q.avg_wait
        } else if k.is("maxWait") {
            &mut q.max_wait
        } else if k.is("ASA") {
            &mut q.asa
        } else {
            extra.push(k.0, value);
            continue;
        };
        *slot = number(&format!("queueSummary.{}", k.0), v)?;
    }
    Ok(extra)
}

/// The members of an object value; `null` has none.
fn object<'a>(field: &str, raw: &'a RawValue) -> Result<Vec<(Cow<'a, str>, &'a RawValue)>, String> {
    match raw.get().as_bytes().first() {
        Some(b'n') => Ok(Vec::new()),
        Some(b'{') => serde_json::from_str::<Pairs<'a>>(raw.get())
            .map(|p| p.0)
            .map_err(|e| format!("{field}: {e}")),
        _ => Err(format!("{field} is not an object: {}", raw.get())),
    }
}

fn text(field: &str, v: Scalar<'_>) -> Result<Option<String>, String> {
    v.as_opt_str()
        .map(|s| s.map(Cow::into_owned))
        .map_err(|kind| format!("{field} is {kind}, not a string: {}", v.raw()))
}

/// An integer count; `null` is `None`; a fraction, a string or another type is an error.
fn integer(field: &str, v: Scalar<'_>) -> Result<Option<i64>, String> {
    let raw = v.raw();
    if raw == "null" {
        return Ok(None);
    }
    raw.parse::<i64>()
        .map(Some)
        .map_err(|_| format!("{field} is not an integer: {raw}"))
}

/// A number; `null` is `None`; a string or another type is an error.
fn number(field: &str, v: Scalar<'_>) -> Result<Option<f64>, String> {
    let raw = v.raw();
    if raw == "null" {
        return Ok(None);
    }
    let is_number = raw
        .as_bytes()
        .first()
        .is_some_and(|b| *b == b'-' || b.is_ascii_digit());
    match raw.parse::<f64>() {
        Ok(n) if is_number && n.is_finite() => Ok(Some(n)),
        _ => Err(format!("{field} is not a number: {raw}")),
    }
}

/// A JSON object's members in order, repeated keys kept.
struct Pairs<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Pairs<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    out.push((key.0, map.next_value()?));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The snapshots of one account as a batch with exactly [`queue_stats_schema`].
pub fn snapshots_to_batch(
    account_id: &str,
    snapshots: &[QueueSnapshot],
    exported_at: DateTime<Utc>,
) -> RecordBatch {
    let n = snapshots.len();
    let ints = |f: fn(&QueueSnapshot) -> Option<i64>| -> ArrayRef {
        Arc::new(snapshots.iter().map(f).collect::<Int64Array>())
    };
    let floats = |f: fn(&QueueSnapshot) -> Option<f64>| -> ArrayRef {
        Arc::new(snapshots.iter().map(f).collect::<Float64Array>())
    };
    let strings = |f: fn(&QueueSnapshot) -> Option<&str>| -> ArrayRef {
        Arc::new(snapshots.iter().map(f).collect::<StringArray>())
    };
    let mut polled = timestamp_builder(n);
    for s in snapshots {
        polled.append_value(s.polled_at.timestamp_millis());
    }
    let columns: Vec<ArrayRef> = vec![
        constant_utf8(account_id, n),
        Arc::new(polled.finish()),
        strings(|s| Some(s.queue_id.as_str())),
        strings(|s| s.queue_name.as_deref()),
        ints(|s| s.waiting),
        ints(|s| s.engaged),
        ints(|s| s.drop_off),
        ints(|s| s.agents_available),
        ints(|s| s.agents_offline),
        ints(|s| s.agents_busy),
        ints(|s| s.agents_away),
        ints(|s| s.agents),
        floats(|s| s.avg_wait),
        floats(|s| s.max_wait),
        floats(|s| s.asa),
        strings(|s| s.skills.as_deref()),
        constant_timestamp(exported_at.timestamp_millis(), n),
        strings(|s| s.extra.as_deref()),
    ];
    // The columns follow the schema one for one, with its types and nullability; a mismatch
    // is a bug caught by every test that writes a batch.
    RecordBatch::try_new(queue_stats_schema(), columns)
        .expect("columns match queue_stats_schema by construction")
}

/// The row keys (`queue_id|polled_at`, see [`super::row_key`]) of a batch holding the
/// `queue_id` and `polled_at` columns.
pub fn row_keys(batch: &RecordBatch) -> Vec<String> {
    use arrow::array::{Array, TimestampMillisecondArray};
    let ids = batch
        .column_by_name("queue_id")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>());
    let at = batch
        .column_by_name("polled_at")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>());
    let (Some(ids), Some(at)) = (ids, at) else {
        return Vec::new();
    };
    (0..batch.num_rows())
        .filter(|&i| ids.is_valid(i) && at.is_valid(i))
        .filter_map(|i| {
            let t = DateTime::from_timestamp_millis(at.value(i))?;
            Some(super::row_key(ids.value(i), t))
        })
        .collect()
}

#[cfg(test)]
mod tests;
