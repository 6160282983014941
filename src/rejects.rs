//! The rejects dataset: records a dataset could not normalize, kept with their raw JSON, the
//! reason and the time, so nothing is silently dropped. Turns [`Reject`]s into a batch with
//! [`crate::schema::rejects_schema`] and writes it next to the data of the partition it belongs
//! to ([`replace`] for a re-exported day, [`merge`] — a compare-and-swap read-modify-write —
//! for repeated polls), counting and logging them. The sink decides where the file goes.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder, TimestampMillisecondBuilder};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use std::collections::HashSet;

use tracing::warn;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::schema::rejects_schema;
use crate::sink::{PartitionKey, Sink};
use crate::sources::Reject;
use crate::state::{self, MAX_UPDATE_ATTEMPTS};

/// Build a rejects batch; `None` when there are no rejects.
pub fn rejects_batch(
    dataset: &str,
    account_id: &str,
    bot_id: Option<&str>,
    endpoint: &str,
    rejects: &[Reject],
    at: DateTime<Utc>,
) -> Result<Option<RecordBatch>, ArrowError> {
    if rejects.is_empty() {
        return Ok(None);
    }
    let n = rejects.len();
    let mut ds = StringBuilder::with_capacity(n, n * 16);
    let mut acct = StringBuilder::with_capacity(n, n * account_id.len());
    let mut bot = StringBuilder::with_capacity(n, n * 8);
    let mut ep = StringBuilder::with_capacity(n, n * endpoint.len());
    let mut reason = StringBuilder::with_capacity(n, n * 32);
    let mut raw = StringBuilder::with_capacity(n, n * 128);
    let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    for r in rejects {
        ds.append_value(dataset);
        acct.append_value(account_id);
        bot.append_option(bot_id);
        ep.append_value(endpoint);
        reason.append_value(&r.reason);
        raw.append_value(&r.raw_json);
        ts.append_value(at.timestamp_millis());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ds.finish()),
        Arc::new(acct.finish()),
        Arc::new(bot.finish()),
        Arc::new(ep.finish()),
        Arc::new(reason.finish()),
        Arc::new(raw.finish()),
        Arc::new(ts.finish()),
    ];
    RecordBatch::try_new(rejects_schema(), columns).map(Some)
}

/// Read rejects back from batches with the rejects schema (for merging repeated polls).
pub fn rejects_from_batches(batches: &[RecordBatch]) -> Vec<Reject> {
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        };
        if let (Some(reason), Some(raw)) = (col("reason"), col("raw_json")) {
            for i in 0..b.num_rows() {
                out.push(Reject {
                    reason: reason.value(i).to_string(),
                    raw_json: raw.value(i).to_string(),
                });
            }
        }
    }
    out
}

/// Replaces the rejects of the partition `key` with `rejects` (none: removes old ones), for a
/// unit whose data was just replaced whole.
pub async fn replace(
    sink: &Sink,
    metrics: &Metrics,
    key: &PartitionKey,
    endpoint: &str,
    rejects: &[Reject],
    at: DateTime<Utc>,
) -> Result<(), Error> {
    report(metrics, key, rejects);
    write(sink, key, None, endpoint, rejects, at).await
}

/// Adds `rejects` to those already kept for the partition `key` (same raw JSON kept once), for
/// repeated polls that see the same records again. A read-modify-write of the rejects file by
/// compare-and-swap: a concurrent merge by another process is re-read and kept.
pub async fn merge(
    sink: &Sink,
    metrics: &Metrics,
    key: &PartitionKey,
    bot_id: Option<&str>,
    endpoint: &str,
    rejects: &[Reject],
    at: DateTime<Utc>,
) -> Result<(), Error> {
    if rejects.is_empty() {
        return Ok(());
    }
    report(metrics, key, rejects);
    for attempt in 0..MAX_UPDATE_ATTEMPTS {
        if attempt > 0 {
            state::conflict_pause(attempt).await;
        }
        let (mut all, version) = match sink.read_rejects_versioned(key).await? {
            Some((batches, version)) => (rejects_from_batches(&batches), Some(version)),
            None => (Vec::new(), None),
        };
        let known: HashSet<String> = all.iter().map(|r| r.raw_json.clone()).collect();
        let before = all.len();
        all.extend(
            rejects
                .iter()
                .filter(|r| !known.contains(&r.raw_json))
                .cloned(),
        );
        if all.len() == before {
            return Ok(());
        }
        let batch = rejects_batch(key.table.name, &key.account_id, bot_id, endpoint, &all, at)
            .map_err(|source| Error::Arrow {
                context: "building the rejects batch".into(),
                source,
            })?;
        let Some(batch) = batch else {
            return Ok(());
        };
        if sink
            .put_rejects_if(key, &batch, version.as_ref())
            .await?
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(Error::State(state::StateError::Contended {
        object: key.rejects_relative_dir(),
        attempts: MAX_UPDATE_ATTEMPTS,
    }))
}

fn report(metrics: &Metrics, key: &PartitionKey, rejects: &[Reject]) {
    if let Some(first) = rejects.first() {
        metrics.rejects(key.table.name, rejects.len());
        warn!(
            dataset = key.table.name,
            dt = %key.dt,
            rejects = rejects.len(),
            first_reason = %first.reason,
            "Records rejected; kept in the rejects dataset."
        );
    }
}

async fn write(
    sink: &Sink,
    key: &PartitionKey,
    bot_id: Option<&str>,
    endpoint: &str,
    rejects: &[Reject],
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let batch = rejects_batch(
        key.table.name,
        &key.account_id,
        bot_id,
        endpoint,
        rejects,
        at,
    )
    .map_err(|source| Error::Arrow {
        context: "building the rejects batch".into(),
        source,
    })?;
    sink.write_rejects(key, batch).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_one_row_per_reject_with_the_raw_json() {
        let rejects = vec![Reject {
            reason: "bad sum".into(),
            raw_json: r#"{"sum":"abc sec"}"#.into(),
        }];
        let b = rejects_batch(
            "user_status",
            "a1",
            None,
            "user_status",
            &rejects,
            Utc::now(),
        )
        .expect("valid")
        .expect("some");
        assert_eq!(b.num_rows(), 1);
        let raw = b
            .column(5)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8");
        assert_eq!(raw.value(0), r#"{"sum":"abc sec"}"#);
        assert!(b.column(2).is_null(0));
        assert_eq!(rejects_from_batches(&[b]), rejects);
        assert!(
            rejects_batch("user_status", "a1", None, "x", &[], Utc::now())
                .expect("valid")
                .is_none()
        );
    }
}
