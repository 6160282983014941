//! UserStatus ("Historical Agent Status Summary"), a windowed-history dataset: the unit of work
//! is one local day of `[user_status] timezone`, fetched through the DST-correct request
//! windows of [`crate::sources::window::plan_day`], page by page, and written as the one file
//! of its `user_status/account_id=A/dt=D` partition. [`decode`] owns the wire format and the
//! normalization into rows; this module owns the requests, paging, the adaptive page size and
//! the partition write.
//!
//! Each page is read under the context's page gate, normalized and encoded as its own row group
//! as soon as it arrives, so a day waiting for its next page holds only compressed bytes. The
//! previous file stays visible until the new one is complete; any failure abandons the write
//! and leaves it in place.

pub mod config;
pub mod decode;
pub mod schema;

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::warn;

use super::{history, paging};
use super::{
    Context, Dataset, DatasetInfo, DayUnit, Demo, DemoQuery, HistoryDataset, HistoryKeys,
    PageDecoder, PartitionLayout, Table, UnitReport,
};
use crate::client::ClientError;
use crate::config::{Config, SectionSpec};
use crate::datasets::user_status::schema::user_status_schema;
use crate::error::Error;
use crate::sink::PartitionKey;
use crate::sources::window::{plan_day, DayWindow};
pub use config::UserStatusConfig;
use decode::{decode_page, request_body, UserStatusNormalizer};

/// The `user_status` table.
pub static TABLE: Table = Table {
    name: "user_status",
    schema: user_status_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["user_id", "bucket_start", "metric", "value"],
    dedupe: None,
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "user_status",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: &[],
    build,
    decoder: PageDecoder {
        decode: |body, _| decode_page(body).map(|p| p.record_count),
        rows: page_rows,
    },
    demo: Demo {
        section: Some("granularity = \"PT30M\""),
        queries: &[DemoQuery {
            about: "Hours per agent and status, from the status buckets",
            sql: "SELECT dt, email, value AS status, sum(duration_seconds)/3600.0 AS hours\n\
                  FROM read_parquet('{out}/user_status/*/*/*.parquet', hive_partitioning = true)\n\
                  WHERE metric = 'AgentStatus' GROUP BY ALL ORDER BY dt, email, status LIMIT 20",
        }],
    },
};

static CONFIG: SectionSpec = SectionSpec::of::<UserStatusConfig>();

/// [`PageDecoder::rows`]: a page's agents normalized at PT15M for the window's claim.
fn page_rows(
    body: &[u8],
    window: &DayWindow,
    out: &mut dyn FnMut(&'static Table, arrow::record_batch::RecordBatch),
) -> Result<usize, crate::sources::DecodeError> {
    let mut n = UserStatusNormalizer::new(
        super::PAGE_DECODER_ACCOUNT,
        crate::model::Granularity::PT15M,
        super::page_decoder_exported_at(),
    );
    for agent in decode_page(body)?.agents {
        match agent {
            Ok(a) => n.push_agent(&a, &window.claim),
            Err(r) => n.push_reject(r),
        }
    }
    let rows = n.rows();
    out(&TABLE, n.take_batch());
    Ok(rows)
}

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "user_status";
/// The UserStatus `limit` the API documents as its default (its sibling agentstatusdetails
/// also as its maximum). When the API refuses a larger `user_status.page_size` (400, 413 or
/// 422), the request is retried once with this; if that succeeds, the run keeps using it.
pub const FALLBACK_PAGE_SIZE: u32 = 50;

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<UserStatusConfig>()?;
    cfg.keys
        .enabled
        .then(|| Dataset::History(std::sync::Arc::new(UserStatus::new(cfg.clone()))))
}

/// The configured UserStatus export.
pub struct UserStatus {
    cfg: UserStatusConfig,
    /// `limit`: `page_size`, lowered to [`FALLBACK_PAGE_SIZE`] for the rest of the process once
    /// the API refuses the configured size and accepts that one.
    page_size: AtomicU32,
}

impl UserStatus {
    pub fn new(cfg: UserStatusConfig) -> UserStatus {
        UserStatus {
            page_size: AtomicU32::new(cfg.page_size),
            cfg,
        }
    }

    /// Partition key of a day.
    pub fn key(account_id: &str, day: NaiveDate) -> PartitionKey {
        PartitionKey::account_day(&TABLE, account_id, day)
    }

    async fn export(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let mut day = history::DayExport::begin(cx, &INFO, unit).await?;
        let fetched = self.fetch_day(cx, unit, exported_at, &mut day).await;
        day.finish(fetched, exported_at).await
    }

    /// Fetches every page of the unit's windows, streaming each page's rows into `day`.
    async fn fetch_day(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
        day: &mut history::DayExport<'_>,
    ) -> Result<history::FetchedDay, Error> {
        let mut normalizer =
            UserStatusNormalizer::new(&cx.account_id, self.cfg.granularity, exported_at);
        let windows = plan_day(self.cfg.keys.timezone, unit.day);
        let mut pager = paging::OffsetPager::new(INFO.name, unit, &windows);
        while let Some((window, offset)) = pager.next_page() {
            let page = self
                .fetch_into(cx, window, offset, pager.seen(), &mut normalizer, day)
                .await?;
            pager.record(page)?;
        }
        let unmapped = normalizer.take_unmapped();
        let (last, rejects) = normalizer.finish();
        Ok(history::FetchedDay {
            last: vec![(&TABLE, last)],
            rejects,
            requests: pager.requests(),
            unmapped,
            ..history::FetchedDay::default()
        })
    }

    /// One page of a window: the request the export and `check` both send.
    async fn fetch_page<T>(
        &self,
        cx: &Context,
        window: &DayWindow,
        limit: u32,
        offset: usize,
        gated: bool,
        decode: impl FnMut(&[u8]) -> Result<T, crate::sources::DecodeError>,
    ) -> Result<(T, Option<tokio::sync::OwnedSemaphorePermit>), ClientError> {
        let body = request_body(&self.cfg.agents, window, self.cfg.granularity);
        let query = [("limit", limit.to_string()), ("offset", offset.to_string())];
        let gate = gated.then_some(cx.page_gate.as_ref());
        cx.client
            .post_json_gated(ENDPOINT, &self.cfg.path, &query, &body, gate, decode)
            .await
    }

    /// Fetches the page at `offset` of `window` and streams its rows into `writers`. When the
    /// API refuses the configured `limit` (400, 413 or 422: the request never reached the
    /// decoder), the same offset is asked again once with [`FALLBACK_PAGE_SIZE`], which the API
    /// documents as its default.
    async fn fetch_into(
        &self,
        cx: &Context,
        window: &DayWindow,
        offset: usize,
        seen: &mut paging::Seen,
        normalizer: &mut UserStatusNormalizer,
        day: &mut history::DayExport<'_>,
    ) -> Result<paging::Page, Error> {
        let mut limit = self.page_size.load(Ordering::Relaxed);
        let mut refused_limit = None;
        let mut requests = 0;
        let (page, permit) = loop {
            requests += 1;
            let result = self
                .fetch_page(cx, window, limit, offset, true, |bytes| {
                    let page = decode_page(bytes)?;
                    for agent in page.agents {
                        match agent {
                            Ok(agent) if seen.first(agent.user_id()) => {
                                normalizer.push_agent(&agent, &window.claim)
                            }
                            Ok(_) => {}
                            Err(reject) => normalizer.push_reject(reject),
                        }
                    }
                    Ok(paging::Page {
                        has_more: page.has_more,
                        records: page.record_count,
                        requests: 0,
                    })
                })
                .await;
            match result {
                Ok(page) => break page,
                Err(ClientError::Rejected { status, .. })
                    if matches!(status, 400 | 413 | 422) && limit > FALLBACK_PAGE_SIZE =>
                {
                    refused_limit = Some(limit);
                    limit = FALLBACK_PAGE_SIZE;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(refused) = refused_limit {
            self.keep_smaller_page_size(refused, limit);
        }
        if normalizer.rows() > 0 {
            day.write_page(&TABLE, normalizer.take_batch(), permit)
                .await?;
        }
        Ok(paging::Page { requests, ..page })
    }

    /// The smaller page worked, so the size was the problem: keep it for every later request
    /// of this process instead of paying a refused request per day.
    fn keep_smaller_page_size(&self, refused: u32, limit: u32) {
        if self.page_size.fetch_min(limit, Ordering::Relaxed) > limit {
            warn!(
                refused_limit = refused,
                limit,
                "The API refused user_status.page_size; using its documented default from now on. Set page_size = {limit} to skip the refused request."
            );
        }
    }

    async fn probe_today(&self, cx: &Context, today: NaiveDate) -> Result<String, Error> {
        let window = history::first_window(&INFO, self.cfg.keys.timezone, today)?;
        let ((records, has_more), _) = self
            .fetch_page(cx, &window, 1, 0, false, |b| {
                decode_page(b).map(|p| (p.record_count, p.has_more))
            })
            .await?;
        Ok(format!(
            "{records} agent record(s) on a 1-agent page, hasMore = {has_more}"
        ))
    }
}

impl HistoryDataset for UserStatus {
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
mod tests;
