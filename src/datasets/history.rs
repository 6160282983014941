//! Steps every history dataset takes the same way, so each dataset module keeps only what is
//! its own (requests, paging, decoding): the page cap of a window, the first request window of
//! a day (for `check` probes), and committing a day whose pages were streamed into one
//! partition writer (the last rows, the file, the day's rejects, the written-metrics and the
//! summary log line).

use std::time::Instant;

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tracing::info;

use super::{Context, DatasetInfo, UnitReport};
use crate::error::Error;
use crate::rejects;
use crate::sink::{PartitionKey, PartitionWriter};
use crate::sources::window::{plan_day, DayWindow};
use crate::sources::Reject;

/// Safety stop for a server that keeps saying `hasMore`: most pages one window may take.
pub const MAX_PAGES_PER_WINDOW: usize = 100_000;

/// The first request window of `day` (a day always has one under real zone rules).
pub fn first_window(info: &DatasetInfo, tz: Tz, day: NaiveDate) -> Result<DayWindow, Error> {
    plan_day(tz, day).into_iter().next().ok_or(Error::NoWindow {
        dataset: info.name,
        day,
    })
}

/// A day whose pages were streamed into `writer` and fetched without error.
pub struct FetchedDay<'a> {
    pub info: &'static DatasetInfo,
    pub key: &'a PartitionKey,
    pub day: NaiveDate,
    /// Rows still held by the normalizer.
    pub last: RecordBatch,
    pub rejects: Vec<Reject>,
    pub requests: usize,
    pub started: Instant,
    pub exported_at: DateTime<Utc>,
}

/// Writes the last rows, publishes the partition file, replaces the day's rejects, counts the
/// output and logs the day. Only then does the caller's run commit state.
pub async fn commit_day(
    cx: &Context,
    mut writer: PartitionWriter,
    day: FetchedDay<'_>,
) -> Result<UnitReport, Error> {
    if day.last.num_rows() > 0 {
        writer.write(day.last).await?;
    }
    let written = writer.commit().await?;
    rejects::replace(
        &cx.sink,
        &cx.metrics,
        day.key,
        day.info.endpoint,
        &day.rejects,
        day.exported_at,
    )
    .await?;
    cx.metrics
        .written(day.info.name, written.files, written.rows, written.bytes);
    info!(
        dataset = day.info.name,
        day = %day.day,
        requests = day.requests,
        rows = written.rows,
        rejects = day.rejects.len(),
        bytes = written.bytes,
        elapsed_ms = day.started.elapsed().as_millis() as u64,
        "Exported day."
    );
    Ok(UnitReport {
        unit: day.day.to_string(),
        requests: day.requests,
        rows: written.rows,
        rejects: day.rejects.len(),
        written,
        ..UnitReport::default()
    })
}
