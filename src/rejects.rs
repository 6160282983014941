//! The rejects dataset's rows: records the sources could not normalize, kept with their raw
//! JSON, the reason and the time, so nothing is silently dropped. Turns [`Reject`]s into a batch
//! with [`crate::schema::rejects_schema`]; the sink decides where it goes.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder, TimestampMillisecondBuilder};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use crate::model::Dataset;
use crate::schema::rejects_schema;
use crate::sources::Reject;

/// Build a rejects batch; `None` when there are no rejects.
pub fn rejects_batch(
    dataset: Dataset,
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
        ds.append_value(dataset.name());
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
            Dataset::UserStatus,
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
            rejects_batch(Dataset::UserStatus, "a1", None, "x", &[], Utc::now())
                .expect("valid")
                .is_none()
        );
    }
}
