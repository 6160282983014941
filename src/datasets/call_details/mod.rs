//! Call Details ("Get All Conversations Data – Call Details", v1 `/calldetails`, v2
//! `/v2/calldetails` and `/v2/interactionDetails`), a windowed-history dataset writing two
//! tables: `call_details` (one row per session) and `call_segments` (one row per agent or queue
//! leg), both partitioned by the local date of `session_start_time` in `[call_details] timezone`.
//!
//! The submodules are pure: `request` builds a window's request, `wire` decodes a page (from
//! one index of its `data` array, `sources::tape`, read level by level through `fields` by the
//! keys `keys` declares) into the records of `record`, which borrow their text from the body
//! until made to own it, `rows` owns both tables' schemas and the normalizer, and
//! `windows`/`planner` walk a local day in windows that stay under the API's caps (`limit` ≤
//! 100, `offset` = page index ≤ 10, 7 days), so every session of a day is exported once however
//! busy it is.
//!
//! This module registers the dataset and does its I/O. A day is one unit: the learned density
//! (`_state/call_details/account_id=A/density.json`) is read, [`fetch_day_with`] pages each
//! window through the client (a page permit is held only while a body is read and decoded), and
//! every finished window's rows are streamed, while the next window is fetched, into two
//! partition writers, one per table. Both partitions are committed only after the whole day
//! succeeded (details first, then segments; a failure before leaves both old files in place, a
//! failure between them fails the day, which is re-exported whole); then the rejects are
//! replaced, the metrics emitted and the density of a complete day stored.
//!
//! Memory: the planner holds the decoded records of the window being paged (at most 1,100
//! sessions, since page 10 is the last) until it is complete, because a full window is
//! discarded and split, so these records own their text (the body is dropped once its page is
//! decoded); a completed window's rows are encoded as their own row groups at once.

mod call_window;
pub mod config;
mod density;
mod fields;
mod keys;
mod owned;
mod planner;
mod record;
mod request;
mod rows;
mod windows;
mod wire;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::info;

use super::history;
use super::{
    Context, Dataset, DatasetInfo, DayUnit, Demo, DemoQuery, HistoryDataset, HistoryKeys,
    PageDecoder, PartitionLayout, Table, UnitReport,
};
use crate::client::ClientError;
use crate::config::{Config, SectionSpec};
use crate::error::Error;
use crate::sink::PartitionKey;
use crate::sources::window::{local_day_bounds, plan_day};
use crate::sources::{DecodeError, Reject};

pub use call_window::{CallWindow, TARGET_FILL};
pub use config::CallDetailsConfig;
pub use density::DensityState;
pub use owned::OwnedRecord;
pub use planner::Density;
pub use record::{
    AgentLeg, CallRecord, Campaign, Customer, Page, Segment, SegmentKind, StrItems, StrList,
};
pub use request::{
    local_wire_time, request_body, request_query, CallDetailsApi, RequestFilter,
    UnknownCallDetailsApi, ENDPOINT, MAX_PAGE_OFFSET, MAX_PAGE_SIZE, MAX_RANGE,
};
pub use rows::{details_schema, segments_schema, CallBatches, CallDetailsNormalizer};
pub use windows::{fetch_day, fetch_day_with, DayFetch, FetchStats, Session, WindowError};
pub use wire::decode_page;

/// The `call_details` table: one row per session.
pub static DETAILS: Table = Table {
    name: "call_details",
    schema: details_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["session_id"],
    dedupe: None,
};

/// The `call_segments` table: one row per agent or queue leg, in its session's `dt`.
pub static SEGMENTS: Table = Table {
    name: "call_segments",
    schema: segments_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["session_id", "segment_index"],
    dedupe: None,
};

/// Registration of the dataset (its rejects go under `_rejects/call_details/`).
pub static INFO: DatasetInfo = DatasetInfo {
    name: "call_details",
    tables: &[&DETAILS, &SEGMENTS],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: &[],
    build,
    decoder: PageDecoder {
        decode: |body, w| decode_owned(body, w.offset_minutes).map(|p| p.records.len()),
        rows: page_rows,
    },
    demo: Demo {
        section: Some("enabled = true"),
        queries: &[DemoQuery {
            about: "Sessions and their agent and queue legs per channel and day",
            sql: "SELECT d.dt, d.channel, count(DISTINCT d.session_id) AS sessions, count(s.session_id) AS legs\n\
                  FROM read_parquet('{out}/call_details/*/*/*.parquet', hive_partitioning = true) d\n\
                  LEFT JOIN read_parquet('{out}/call_segments/*/*/*.parquet', hive_partitioning = true) s USING (session_id)\n\
                  GROUP BY ALL ORDER BY d.dt, d.channel LIMIT 20",
        }],
    },
};

static CONFIG: SectionSpec = SectionSpec::of::<CallDetailsConfig>();

/// [`PageDecoder::rows`]: a page's sessions that start in the window's claim, into both tables.
/// Decoded as the export decodes them ([`decode_owned`]: its windows keep the records after the
/// body is gone), so the benchmarks measure what an export pays.
fn page_rows(
    body: &[u8],
    window: &crate::sources::window::DayWindow,
    out: &mut dyn FnMut(&'static Table, arrow::record_batch::RecordBatch),
) -> Result<usize, crate::sources::DecodeError> {
    let mut n = CallDetailsNormalizer::new(
        super::PAGE_DECODER_ACCOUNT,
        super::page_decoder_exported_at(),
    );
    for record in decode_owned(body, window.offset_minutes)?.records {
        match record {
            Ok(r) => {
                n.push(r.get(), &window.claim);
            }
            Err(r) => n.push_reject(r),
        }
    }
    let (sessions, legs) = n.counts();
    let batches = n.take_batches();
    out(&DETAILS, batches.details);
    out(&SEGMENTS, batches.segments);
    Ok(sessions + legs)
}

/// [`decode_page`] with each record owning its text in one buffer ([`OwnedRecord`]): the
/// window keeps a page's records until the window is complete, after the body is gone (see
/// `windows`).
fn decode_owned(body: &[u8], offset_minutes: i32) -> Result<Page<OwnedRecord>, DecodeError> {
    decode_page(body, offset_minutes).map(Page::into_packed)
}

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<CallDetailsConfig>()?;
    cfg.keys
        .enabled
        .then(|| Dataset::History(Arc::new(CallDetails::new(cfg.clone()))))
}

/// The configured Call Details export.
pub struct CallDetails {
    cfg: CallDetailsConfig,
    /// Makes the read-compare-store of the density one step for the days of this process
    /// (a backfill finishes several at once).
    density_lock: tokio::sync::Mutex<()>,
}

impl CallDetails {
    pub fn new(cfg: CallDetailsConfig) -> CallDetails {
        CallDetails {
            cfg,
            density_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Partition key of a day of `table` (either of [`DETAILS`] and [`SEGMENTS`]).
    pub fn key(table: &'static Table, account_id: &str, day: NaiveDate) -> PartitionKey {
        PartitionKey::account_day(table, account_id, day)
    }

    /// One page of a window: the request the export and `check` both send. `gated` reads the
    /// body under the context's page gate; the permit is released once the page is decoded.
    async fn send(
        &self,
        cx: &Context,
        body: serde_json::Value,
        offset_minutes: i32,
        limit: u32,
        page: u32,
        gated: bool,
    ) -> Result<Page<OwnedRecord>, ClientError> {
        let path = self.cfg.api.path(&cx.account_id);
        let query = request_query(limit, page);
        let gate = gated.then_some(cx.page_gate.as_ref());
        // On the blocking pool: the day's task normalizes and encodes its finished windows
        // while this page decodes (see `client::decode`).
        let (page, _permit) = cx
            .client
            .post_json_gated_blocking(ENDPOINT, &path, &query, &body, gate, move |bytes| {
                decode_owned(bytes, offset_minutes)
            })
            .await?;
        Ok(page)
    }

    async fn export(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let tz = self.cfg.keys.timezone;
        let expected = density::expected(cx, tz).await?;
        let mut day = history::DayExport::begin(cx, &INFO, unit).await?;
        let (fetched, planned) = match self
            .fetch_into(cx, unit.day, exported_at, expected.as_ref(), &mut day)
            .await
        {
            Ok((fetched, planned)) => (Ok(fetched), Some(planned)),
            Err(e) => (Err(e), None),
        };
        let report = day.finish(fetched, exported_at).await?;
        if let Some((stats, density)) = planned {
            report_requests(cx, unit.day, &stats);
            if local_day_bounds(tz, unit.day).end <= exported_at {
                let _one_at_a_time = self.density_lock.lock().await;
                density::keep(cx, tz, unit.day, density).await;
            }
        }
        Ok(report)
    }

    /// Fetches the day's windows and, concurrently, normalizes each finished window into both
    /// tables (row groups bounded as [`crate::sink::PAGE_ROW_GROUP_BYTES`] says). Nothing is
    /// committed here.
    async fn fetch_into(
        &self,
        cx: &Context,
        day: NaiveDate,
        exported_at: DateTime<Utc>,
        expected: Option<&Density>,
        export: &mut history::DayExport<'_>,
    ) -> Result<(history::FetchedDay, (FetchStats, Density)), Error> {
        let plan = plan_day(self.cfg.keys.timezone, day);
        let claim = local_day_bounds(self.cfg.keys.timezone, day);
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(Vec<OwnedRecord>, Vec<Reject>)>();
        let fetch = |w: &CallWindow, page: u32| {
            let body = request_body(w, &self.cfg.filter, self.cfg.api);
            self.send(cx, body, w.offset_minutes, self.cfg.page_size, page, true)
        };
        let producer = async move {
            let keep = move |_: &CallWindow, records: Vec<OwnedRecord>, rejects: Vec<Reject>| {
                // The receiver lives until this future ends (try_join below drops both).
                let _ = tx.send((records, rejects));
            };
            fetch_day_with(&plan, expected, self.cfg.page_size, fetch, keep)
                .await
                .map_err(window_error)
        };
        let mut normalizer = CallDetailsNormalizer::new(&cx.account_id, exported_at);
        let consumer = async {
            while let Some((records, rejects)) = rx.recv().await {
                for r in &records {
                    normalizer.push(r.get(), &claim);
                }
                for r in rejects {
                    normalizer.push_reject(r);
                }
                let batches = normalizer.take_batches();
                export.write_page(&DETAILS, batches.details, None).await?;
                export.write_page(&SEGMENTS, batches.segments, None).await?;
            }
            Ok::<(), Error>(())
        };
        let ((stats, density), ()) = tokio::try_join!(producer, consumer)?;
        let fetched = history::FetchedDay {
            last: Vec::new(),
            rejects: normalizer.take_rejects(),
            requests: usize::try_from(stats.requests).unwrap_or(usize::MAX),
            unmapped: normalizer.take_unmapped(),
            ..history::FetchedDay::default()
        };
        Ok((fetched, (stats, density)))
    }

    async fn probe_today(&self, cx: &Context, today: NaiveDate) -> Result<String, Error> {
        let segment = super::history::first_window(&INFO, self.cfg.keys.timezone, today)?;
        let window = CallWindow::new(
            segment.claim.start,
            segment.claim.end,
            segment.offset_minutes,
        );
        let body = request_body(&window, &self.cfg.filter, self.cfg.api);
        let page = self
            .send(cx, body, window.offset_minutes, 1, 0, false)
            .await?;
        let hint = page
            .num_results
            .map_or_else(|| "absent".to_string(), |n| n.to_string());
        Ok(format!(
            "{} session record(s) on a 1-record page of {}, numResults = {hint}",
            page.records.len(),
            self.cfg.api
        ))
    }
}

/// The requests an exported day made against the minimum its windows needed: a metric and
/// one log line (the shared "Exported day." line follows it).
fn report_requests(cx: &Context, day: NaiveDate, stats: &FetchStats) {
    cx.metrics
        .api_requests(INFO.name, stats.requests, stats.minimum_requests());
    info!(
        dataset = INFO.name,
        %day,
        requests = stats.requests,
        minimum_requests = stats.minimum_requests(),
        lower_bound_requests = stats.lower_bound_requests(),
        windows = stats.windows,
        overflows = stats.overflows,
        early_splits = stats.early_splits,
        "Paged the day's request windows."
    );
}

impl HistoryDataset for CallDetails {
    fn info(&self) -> &'static DatasetInfo {
        &INFO
    }

    fn schedule(&self) -> &HistoryKeys {
        &self.cfg.keys
    }

    fn export_day<'a>(
        &'a self,
        cx: &'a Context,
        unit: &'a DayUnit,
        exported_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>> {
        self.export(cx, unit, exported_at).boxed()
    }

    fn probe<'a>(
        &'a self,
        cx: &'a Context,
        today: NaiveDate,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.probe_today(cx, today).boxed()
    }
}

#[cfg(test)]
mod export_tests;
#[cfg(test)]
mod normalize_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod window_tests;

/// The crate error of a failed day: a page that failed is retryable when its request is; a
/// saturated one-second window or a bad page size is not.
fn window_error(e: WindowError<crate::client::ClientError>) -> Error {
    let retryable = match &e {
        WindowError::Fetch { source, .. } => source.is_retryable(),
        WindowError::Saturated { .. } | WindowError::PageSize(_) => false,
    };
    Error::Dataset {
        dataset: INFO.name,
        retryable,
        source: Box::new(e),
    }
}
