//! The rejects dataset: records a dataset could not normalize, kept with their raw JSON, the
//! reason and the time, so nothing is silently dropped. Turns [`Reject`]s into a batch with
//! [`crate::schema::rejects_schema`] and writes it next to the data of the partition it belongs
//! to ([`replace`] for a re-exported day, [`merge`] — a compare-and-swap read-modify-write —
//! for repeated polls). Both count and log only the rejects the partition did not keep yet (by
//! raw JSON), so a day exported again or a record returned by several polls is counted once in
//! `smartassist_rejects_total`. The sink decides where the file goes.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use std::collections::HashSet;

use tracing::{debug, warn};

use crate::error::Error;
use crate::metrics::Metrics;
use crate::schema::{rejects_schema, timestamp_builder};
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
    let mut ts = timestamp_builder(n);
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
/// unit whose data was just replaced whole. Returns how many of `rejects` the partition did
/// not keep before (the ones counted): a re-exported day does not count its rejects again.
pub async fn replace(
    sink: &Sink,
    metrics: &Metrics,
    key: &PartitionKey,
    endpoint: &str,
    rejects: &[Reject],
    at: DateTime<Utc>,
) -> Result<usize, Error> {
    let new = if rejects.is_empty() {
        0
    } else {
        let kept = match sink.read_rejects_versioned(key).await {
            Ok(Some((batches, _))) => raw_jsons(&rejects_from_batches(&batches)),
            Ok(None) => HashSet::new(),
            // It is about to be replaced; only the count suffers: every reject counts as new.
            Err(e) => {
                warn!(dataset = key.table.name, dt = %key.dt, error = %e, "Could not read the rejects kept so far; counting all of this day's rejects as new.");
                HashSet::new()
            }
        };
        rejects
            .iter()
            .filter(|r| !kept.contains(r.raw_json.as_str()))
            .count()
    };
    write(sink, key, None, endpoint, rejects, at).await?;
    report(metrics, key, rejects.len(), new, rejects.first());
    Ok(new)
}

fn raw_jsons(rejects: &[Reject]) -> HashSet<String> {
    rejects.iter().map(|r| r.raw_json.clone()).collect()
}

/// Adds `rejects` to those already kept for the partition `key` (same raw JSON kept once), for
/// repeated polls that see the same records again. A read-modify-write of the rejects file by
/// compare-and-swap: a concurrent merge by another process is re-read and kept. Returns how
/// many records this call added (the ones counted): a record already kept, by an earlier poll
/// or another writer, is not counted again.
pub async fn merge(
    sink: &Sink,
    metrics: &Metrics,
    key: &PartitionKey,
    bot_id: Option<&str>,
    endpoint: &str,
    rejects: &[Reject],
    at: DateTime<Utc>,
) -> Result<usize, Error> {
    if rejects.is_empty() {
        return Ok(0);
    }
    for attempt in 0..MAX_UPDATE_ATTEMPTS {
        if attempt > 0 {
            state::conflict_pause(attempt).await;
        }
        let (mut all, version) = match sink.read_rejects_versioned(key).await? {
            Some((batches, version)) => (rejects_from_batches(&batches), Some(version)),
            None => (Vec::new(), None),
        };
        let known = raw_jsons(&all);
        let before = all.len();
        all.extend(
            rejects
                .iter()
                .filter(|r| !known.contains(&r.raw_json))
                .cloned(),
        );
        let new = all.len() - before;
        if new == 0 {
            report(metrics, key, rejects.len(), 0, rejects.first());
            return Ok(0);
        }
        let batch = rejects_batch(key.table.name, &key.account_id, bot_id, endpoint, &all, at)
            .map_err(|source| Error::Arrow {
                context: "building the rejects batch".into(),
                source,
            })?;
        let Some(batch) = batch else {
            return Ok(0);
        };
        if sink
            .put_rejects_if(key, &batch, version.as_ref())
            .await?
            .is_ok()
        {
            report(metrics, key, rejects.len(), new, rejects.first());
            return Ok(new);
        }
    }
    Err(Error::State(state::StateError::Contended {
        object: key.rejects_relative_dir(),
        attempts: MAX_UPDATE_ATTEMPTS,
    }))
}

/// Counts the `new` records of `seen` rejected ones (those the partition did not keep yet)
/// and logs them; records seen again are only logged at debug level.
fn report(metrics: &Metrics, key: &PartitionKey, seen: usize, new: usize, first: Option<&Reject>) {
    let Some(first) = first else {
        return;
    };
    if new == 0 {
        debug!(dataset = key.table.name, dt = %key.dt, rejects = seen, "Records rejected again; already kept in the rejects dataset.");
        return;
    }
    metrics.rejects(key.table.name, new);
    warn!(
        dataset = key.table.name,
        dt = %key.dt,
        rejects = seen,
        new_rejects = new,
        first_reason = %first.reason,
        "Records rejected; kept in the rejects dataset."
    );
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
    use crate::config::OutputLocation;
    use crate::sink::Output;
    use chrono::NaiveDate;

    const METRIC: &str = "smartassist_rejects_total";

    /// `n` hostile records, written by hand (not by the code under test).
    fn hostile(from: usize, n: usize) -> Vec<Reject> {
        (from..from + n)
            .map(|i| Reject {
                reason: format!("endTime is not a time (record {i})"),
                raw_json: format!(r#"{{"sessionId":"s-{i}","endTime":"yesterday-ish"}}"#),
            })
            .collect()
    }

    fn key(table: &'static crate::schema::Table, bot: Option<&str>) -> PartitionKey {
        PartitionKey {
            table,
            account_id: "acct".into(),
            bot_id: bot.map(str::to_string),
            dt: NaiveDate::from_ymd_opt(2024, 5, 1).expect("valid date"),
        }
    }

    fn counted(metrics: &Metrics, table: &str) -> f64 {
        metrics
            .value(METRIC, &[("dataset", table)])
            .unwrap_or_default()
    }

    fn open_sink(dir: &tempfile::TempDir) -> Sink {
        Output::open(&OutputLocation::Local(dir.path().to_path_buf()))
            .expect("local sink")
            .sink
    }

    #[tokio::test]
    async fn merging_the_same_rejects_again_counts_only_the_ones_not_kept_yet() {
        let dir = tempfile::tempdir().expect("tmp");
        let sink = open_sink(&dir);
        let metrics = Metrics::new();
        let table = &crate::datasets::intent_realtime::TABLE;
        let key = key(table, Some("st-bot"));
        let first = hostile(0, 3);
        let at = Utc::now();
        let merge = |rejects: Vec<Reject>| {
            let (sink, metrics, key) = (&sink, &metrics, &key);
            async move {
                merge(sink, metrics, key, Some("st-bot"), "ep", &rejects, at)
                    .await
                    .expect("merge")
            }
        };
        assert_eq!(merge(first.clone()).await, 3);
        assert_eq!(counted(&metrics, table.name), 3.0);
        // The next poll returns the same three records: nothing new is kept or counted.
        assert_eq!(merge(first.clone()).await, 0);
        assert_eq!(counted(&metrics, table.name), 3.0);
        // Two of them again plus two never seen: only those two count.
        let mut mixed = first[1..].to_vec();
        mixed.extend(hostile(3, 2));
        assert_eq!(merge(mixed).await, 2);
        assert_eq!(counted(&metrics, table.name), 5.0);
        let kept = rejects_from_batches(&sink.read_rejects(&key).await.expect("read"));
        assert_eq!(kept.len(), 5);
        // Another writer (its own process and metrics) that sees the same records counts none.
        let other = Metrics::new();
        let again = super::merge(
            &sink,
            &other,
            &key,
            Some("st-bot"),
            "ep",
            &hostile(0, 5),
            at,
        )
        .await
        .expect("merge");
        assert_eq!(again, 0);
        assert_eq!(counted(&other, table.name), 0.0);
    }

    #[tokio::test]
    async fn re_exporting_a_day_with_the_same_rejects_does_not_count_them_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let sink = open_sink(&dir);
        let metrics = Metrics::new();
        let table = &crate::datasets::user_status::TABLE;
        let key = key(table, None);
        let day = hostile(0, 4);
        let replace = |rejects: Vec<Reject>| {
            let (sink, metrics, key) = (&sink, &metrics, &key);
            async move {
                replace(sink, metrics, key, "ep", &rejects, Utc::now())
                    .await
                    .expect("replace")
            }
        };
        assert_eq!(replace(day.clone()).await, 4);
        assert_eq!(counted(&metrics, table.name), 4.0);
        assert_eq!(replace(day.clone()).await, 0);
        assert_eq!(counted(&metrics, table.name), 4.0);
        // The day exported again with one record fixed upstream and one new hostile record.
        let mut changed = day[1..].to_vec();
        changed.extend(hostile(4, 1));
        assert_eq!(replace(changed.clone()).await, 1);
        assert_eq!(counted(&metrics, table.name), 5.0);
        let kept = rejects_from_batches(&sink.read_rejects(&key).await.expect("read"));
        assert_eq!(
            kept, changed,
            "the file holds exactly the last export's rejects"
        );
    }

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
