//! Realtime capture, measured: for one bot and local day that both `bot_sessions` and
//! `intent_realtime` hold in the lake, the share of the day's completed sessions (bot_sessions'
//! rows with an `end_time`: IntentRealtimeData lists only completed sessions) whose id
//! `intent_realtime` also holds, and the ids it misses. Read from the Parquet partitions alone
//! (bot_sessions `dt` = local date of the start; intent_realtime `dt` = local date of the end,
//! so its partitions of the day and the next are read), so `reconcile`, `status` and the
//! metric all say the same. Both datasets must cut days in the same `timezone` for a day to
//! mean the same hours; a day is covered when both have a partition for it.
//!
//! [`measure`] is the function to call; [`CAPTURE_RATIO`] and [`CAPTURE_SESSIONS`] are the
//! gauges the export sets for the last complete day.

use std::collections::BTreeSet;

use arrow::array::{Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{Days, NaiveDate};

use super::TABLE;
use crate::datasets::intent_realtime;
use crate::error::Error;
use crate::metrics::{DatasetMetric, MetricKind};
use crate::sink::{PartitionKey, Sink};

/// Share of the last complete day's completed sessions that intent_realtime captured.
pub static CAPTURE_RATIO: DatasetMetric = DatasetMetric {
    name: "smartassist_intent_capture_ratio",
    help: "Share of the last complete day's completed bot sessions (getSessions) that intent_realtime captured (read with smartassist_intent_capture_sessions; 0 sessions: not measured)",
    kind: MetricKind::Gauge,
    label: "bot_id",
};

/// Completed sessions the capture ratio of the last complete day was measured over.
pub static CAPTURE_SESSIONS: DatasetMetric = DatasetMetric {
    name: "smartassist_intent_capture_sessions",
    help: "Completed bot sessions of the last complete day the capture ratio was measured over (0: not measured)",
    kind: MetricKind::Gauge,
    label: "bot_id",
};

/// The capture of one bot and day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub bot_id: String,
    pub day: NaiveDate,
    /// Completed sessions bot_sessions holds for the day.
    pub sessions: usize,
    /// Of those, the ones intent_realtime holds.
    pub captured: usize,
    /// The ones it does not hold, sorted.
    pub missed: Vec<String>,
}

impl Capture {
    /// `captured / sessions`; `None` for a day without completed sessions.
    pub fn ratio(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.captured as f64 / self.sessions as f64)
    }
}

/// The capture of `bot_id` on local `day` from the lake, or `None` when either dataset has no
/// partition for that bot and day.
pub async fn measure(
    sink: &Sink,
    account_id: &str,
    bot_id: &str,
    day: NaiveDate,
) -> Result<Option<Capture>, Error> {
    let key = |table, dt| PartitionKey {
        table,
        account_id: account_id.to_string(),
        bot_id: Some(bot_id.to_string()),
        dt,
    };
    let sessions_key = key(&TABLE, day);
    let intent_key = key(&intent_realtime::TABLE, day);
    if sink.list_partition_files(&sessions_key).await?.is_empty()
        || sink.list_partition_files(&intent_key).await?.is_empty()
    {
        return Ok(None);
    }
    let completed = completed_ids(&sink.read_partition(&sessions_key).await?);
    let mut held = ids(&sink.read_partition(&intent_key).await?);
    if let Some(next) = day.checked_add_days(Days::new(1)) {
        held.extend(ids(&sink
            .read_partition(&key(&intent_realtime::TABLE, next))
            .await?));
    }
    let missed: Vec<String> = completed.difference(&held).cloned().collect();
    Ok(Some(Capture {
        bot_id: bot_id.to_string(),
        day,
        sessions: completed.len(),
        captured: completed.len() - missed.len(),
        missed,
    }))
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch.column_by_name(name)?.as_any().downcast_ref()
}

/// Every `session_id` of the batches.
fn ids(batches: &[RecordBatch]) -> BTreeSet<String> {
    batches
        .iter()
        .filter_map(|b| string_column(b, "session_id"))
        .flat_map(|a| a.iter().flatten().map(str::to_string))
        .collect()
}

/// The `session_id` of every row with an `end_time`.
fn completed_ids(batches: &[RecordBatch]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for b in batches {
        let (Some(idc), Some(end)) = (
            string_column(b, "session_id"),
            b.column_by_name("end_time")
                .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>()),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            if idc.is_valid(i) && end.is_valid(i) {
                out.insert(idc.value(i).to_string());
            }
        }
    }
    out
}
