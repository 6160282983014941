//! IntentRealtimeData ("Get Intent Real-Time Data"): decoding of the snapshot of the latest
//! completed bot sessions (a JSON array), and conversion between sessions and batches of
//! [`schema::intent_realtime_schema`](crate::datasets::intent_realtime::schema::intent_realtime_schema).
//!
//! The endpoint has no window and no pagination: the caller polls it, decodes each body with
//! [`decode_sessions`] (retrying the request on [`DecodeError`]), sends the `Err(Reject)`
//! entries to the rejects dataset, and merges the sessions by `session_id` into the partition of
//! each session's local end date ([`session_ids`] and [`sessions_from_batch`] read an existing
//! partition back). Keys are matched case-insensitively; timestamps with any offset become UTC;
//! `timeHandled` is kept raw next to its parsed seconds.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int64Array, Int64Builder, ListArray, ListBuilder, StringArray, StringBuilder,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::schema::intent_realtime_schema;
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::durations::parse_time_handled;
use crate::sources::extra::{Unmapped, EXTRA_COLUMN};
use crate::sources::wire::{opt_str, parse_instant, Key, Scalar};
use crate::sources::{DecodeError, Reject};

const API: &str = "IntentRealtimeData";

/// One completed bot session. Serializable so that a claimed but not yet published file can
/// be kept in the partition index (see `partition`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntentSession {
    /// `sessionId`; never empty.
    pub session_id: String,
    pub user_id: Option<String>,
    pub channel: Option<String>,
    /// `ANI`: caller id (phone number, stream id or user id).
    pub ani: Option<String>,
    /// `DNI`: dialed id.
    pub dni: Option<String>,
    /// `intent[]`; empty when absent or null.
    pub intents: Vec<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: DateTime<Utc>,
    pub status: Option<String>,
    /// `timeHandled` as received, e.g. `"13m: 8s"`.
    pub time_handled: Option<String>,
    /// `timeHandled` in seconds; `None` when absent or unparsable.
    pub time_handled_seconds: Option<i64>,
    pub deflected_to: Option<String>,
    /// The session's fields no column maps, as its `extra` cell (see
    /// [`crate::sources::extra`]); `None` when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// Decodes one response body: a JSON array of session objects. Each element is a session or a
/// [`Reject`] (missing `sessionId`, missing/unparsable/implausible `endTime`, an unparsable
/// `startTime`, a wrong type); a body that is not a JSON array is a [`DecodeError`].
pub fn decode_sessions(body: &[u8]) -> Result<Vec<Result<IntentSession, Reject>>, DecodeError> {
    let body = std::str::from_utf8(body).map_err(|e| DecodeError {
        api: API,
        reason: format!("body is not UTF-8: {e}"),
    })?;
    let items: Vec<&RawValue> = serde_json::from_str(body).map_err(|e| DecodeError {
        api: API,
        reason: e.to_string(),
    })?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            decode_session(raw).map_err(|reason| Reject {
                reason: format!("[{i}]: {reason}"),
                raw_json: raw.get().to_owned(),
            })
        })
        .collect())
}

fn decode_session(raw: &RawValue) -> Result<IntentSession, String> {
    if !raw.get().starts_with('{') {
        return Err("session record is not an object".into());
    }
    let w: SessionWire<'_> = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let owned = |field: &str, v: Option<Scalar<'_>>| -> Result<Option<String>, String> {
        Ok(opt_str(field, v)?.map(|c| c.into_owned()))
    };
    let session_id = owned("sessionId", w.session_id)?
        .filter(|s| !s.is_empty())
        .ok_or("session has no sessionId")?;
    let end_raw = opt_str("endTime", w.end_time)?
        .filter(|s| !s.trim().is_empty())
        .ok_or("session has no endTime")?;
    let end_time = parse_instant(&end_raw).map_err(|e| e.describe("endTime", &end_raw))?;
    // Stored in milliseconds; lookups compare with what is stored, so keep exactly that.
    let end_time = DateTime::from_timestamp_millis(end_time.timestamp_millis()).unwrap_or(end_time);
    let start_time = match opt_str("startTime", w.start_time)?.filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => Some(parse_instant(&s).map_err(|e| e.describe("startTime", &s))?),
    };
    let intents = match w.intent {
        None => Vec::new(),
        Some(raw) => decode_intents(raw)?,
    };
    let time_handled = owned("timeHandled", w.time_handled)?;
    let time_handled_seconds = time_handled.as_deref().and_then(parse_time_handled);
    Ok(IntentSession {
        session_id,
        user_id: owned("userId", w.user_id)?,
        channel: owned("channel", w.channel)?,
        ani: owned("ANI", w.ani)?,
        dni: owned("DNI", w.dni)?,
        intents,
        start_time,
        end_time,
        status: owned("status", w.status)?,
        time_handled,
        time_handled_seconds,
        deflected_to: owned("deflectedTo", w.deflected_to)?,
        extra: w.extra.cell(),
    })
}

fn decode_intents(raw: Scalar<'_>) -> Result<Vec<String>, String> {
    if raw.as_opt_str() == Ok(None) {
        return Ok(Vec::new());
    }
    if !raw.raw().starts_with('[') {
        return Err(format!("intent is not an array: {}", raw.raw()));
    }
    let items: Vec<Scalar<'_>> =
        serde_json::from_str(raw.raw()).map_err(|e| format!("intent: {e}"))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            opt_str(&format!("intent[{i}]"), Some(item))?
                .map(|c| c.into_owned())
                .ok_or_else(|| format!("intent[{i}] is null"))
        })
        .collect()
}

struct SessionWire<'a> {
    intent: Option<Scalar<'a>>,
    ani: Option<Scalar<'a>>,
    dni: Option<Scalar<'a>>,
    channel: Option<Scalar<'a>>,
    start_time: Option<Scalar<'a>>,
    end_time: Option<Scalar<'a>>,
    status: Option<Scalar<'a>>,
    time_handled: Option<Scalar<'a>>,
    deflected_to: Option<Scalar<'a>>,
    user_id: Option<Scalar<'a>>,
    session_id: Option<Scalar<'a>>,
    extra: Unmapped<'a>,
}

impl<'de> Deserialize<'de> for SessionWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SessionWire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a session object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut w = SessionWire {
                    intent: None,
                    ani: None,
                    dni: None,
                    channel: None,
                    start_time: None,
                    end_time: None,
                    status: None,
                    time_handled: None,
                    deflected_to: None,
                    user_id: None,
                    session_id: None,
                    extra: Unmapped::default(),
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let slot = if key.is("intent") || key.is("intents") {
                        &mut w.intent
                    } else if key.is("ANI") {
                        &mut w.ani
                    } else if key.is("DNI") {
                        &mut w.dni
                    } else if key.is("channel") {
                        &mut w.channel
                    } else if key.is("startTime") {
                        &mut w.start_time
                    } else if key.is("endTime") {
                        &mut w.end_time
                    } else if key.is("status") {
                        &mut w.status
                    } else if key.is("timeHandled") {
                        &mut w.time_handled
                    } else if key.is("deflectedTo") {
                        &mut w.deflected_to
                    } else if key.is("userId") {
                        &mut w.user_id
                    } else if key.is("sessionId") {
                        &mut w.session_id
                    } else {
                        w.extra.push(key.0, map.next_value()?);
                        continue;
                    };
                    *slot = map.next_value()?;
                }
                Ok(w)
            }
        }
        d.deserialize_map(V)
    }
}

/// The sessions of one `(account, bot)` as a batch with exactly [`intent_realtime_schema`].
pub fn sessions_to_batch(
    account_id: &str,
    bot_id: &str,
    sessions: &[IntentSession],
    exported_at: DateTime<Utc>,
) -> RecordBatch {
    let n = sessions.len();
    let strings = |f: fn(&IntentSession) -> Option<&str>| -> ArrayRef {
        Arc::new(sessions.iter().map(f).collect::<StringArray>())
    };
    let times = |f: fn(&IntentSession) -> Option<i64>| -> ArrayRef {
        let mut b = timestamp_builder(n);
        for s in sessions {
            b.append_option(f(s));
        }
        Arc::new(b.finish())
    };
    let mut intents = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        true,
    )));
    for s in sessions {
        for i in &s.intents {
            intents.values().append_value(i);
        }
        intents.append(true);
    }
    let mut seconds = Int64Builder::with_capacity(n);
    for s in sessions {
        seconds.append_option(s.time_handled_seconds);
    }
    let columns: Vec<ArrayRef> = vec![
        constant_utf8(account_id, n),
        constant_utf8(bot_id, n),
        Arc::new(
            sessions
                .iter()
                .map(|s| Some(s.session_id.as_str()))
                .collect::<StringArray>(),
        ),
        strings(|s| s.user_id.as_deref()),
        strings(|s| s.channel.as_deref()),
        strings(|s| s.ani.as_deref()),
        strings(|s| s.dni.as_deref()),
        Arc::new(intents.finish()),
        times(|s| s.start_time.map(|t| t.timestamp_millis())),
        times(|s| Some(s.end_time.timestamp_millis())),
        strings(|s| s.status.as_deref()),
        strings(|s| s.time_handled.as_deref()),
        Arc::new(seconds.finish()),
        strings(|s| s.deflected_to.as_deref()),
        constant_timestamp(exported_at.timestamp_millis(), n),
        strings(|s| s.extra.as_deref()),
    ];
    // Cannot fail: every column has `n` values of the schema's type (timestamps carry the "UTC"
    // zone, the list item field is the schema's), and non-nullable columns get no nulls.
    RecordBatch::try_new(intent_realtime_schema(), columns)
        .expect("columns match intent_realtime_schema by construction")
}

/// `session_id` values of a batch with the intent schema (empty if the batch has no Utf8
/// `session_id` column).
pub fn session_ids(batch: &RecordBatch) -> Vec<String> {
    batch
        .column_by_name("session_id")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .map(|a| a.iter().flatten().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A batch that does not have the intent schema's columns.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "batch is not an intent_realtime batch: column {column:?} is missing or has the wrong type"
)]
pub struct NotAnIntentBatch {
    pub column: &'static str,
}

/// Reads sessions back from a batch with the intent schema (e.g. an existing partition being
/// merged). The inverse of [`sessions_to_batch`] apart from the constant columns
/// (`account_id`, `bot_id`, `exported_at`). Rows with a null `session_id` or `end_time` are
/// skipped (the schema forbids them). A batch of a file written before the `extra` column
/// existed reads as sessions without unmapped fields.
pub fn sessions_from_batch(batch: &RecordBatch) -> Result<Vec<IntentSession>, NotAnIntentBatch> {
    fn col<'b, T: 'static>(
        batch: &'b RecordBatch,
        column: &'static str,
    ) -> Result<&'b T, NotAnIntentBatch> {
        batch
            .column_by_name(column)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or(NotAnIntentBatch { column })
    }
    let text = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
    let time = |a: &TimestampMillisecondArray, i: usize| {
        if a.is_valid(i) {
            DateTime::<Utc>::from_timestamp_millis(a.value(i))
        } else {
            None
        }
    };
    let session_id = col::<StringArray>(batch, "session_id")?;
    let user_id = col::<StringArray>(batch, "user_id")?;
    let channel = col::<StringArray>(batch, "channel")?;
    let ani = col::<StringArray>(batch, "ani")?;
    let dni = col::<StringArray>(batch, "dni")?;
    let intents = col::<ListArray>(batch, "intents")?;
    let start_time = col::<TimestampMillisecondArray>(batch, "start_time")?;
    let end_time = col::<TimestampMillisecondArray>(batch, "end_time")?;
    let status = col::<StringArray>(batch, "status")?;
    let time_handled = col::<StringArray>(batch, "time_handled")?;
    let seconds = col::<Int64Array>(batch, "time_handled_seconds")?;
    let deflected_to = col::<StringArray>(batch, "deflected_to")?;
    let extra = match batch.column_by_name(EXTRA_COLUMN) {
        None => None,
        Some(_) => Some(col::<StringArray>(batch, "extra")?),
    };
    if intents
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .is_none()
    {
        return Err(NotAnIntentBatch { column: "intents" });
    }
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let (Some(sid), Some(end)) = (text(session_id, i), time(end_time, i)) else {
            continue;
        };
        let list = if intents.is_valid(i) {
            let values = intents.value(i);
            values
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|a| a.iter().flatten().map(str::to_owned).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push(IntentSession {
            session_id: sid,
            user_id: text(user_id, i),
            channel: text(channel, i),
            ani: text(ani, i),
            dni: text(dni, i),
            intents: list,
            start_time: time(start_time, i),
            end_time: end,
            status: text(status, i),
            time_handled: text(time_handled, i),
            time_handled_seconds: seconds.is_valid(i).then(|| seconds.value(i)),
            deflected_to: text(deflected_to, i),
            extra: extra.and_then(|a| text(a, i)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
