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

pub mod decode;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::warn;

use super::history;
use super::{
    Context, Dataset, DatasetInfo, HistoryDataset, HistorySchedule, PartitionLayout, Table,
    UnitReport,
};
use crate::client::ClientError;
use crate::config::{Config, UserStatusConfig};
use crate::error::Error;
use crate::schema::user_status_schema;
use crate::sink::{PartitionKey, PartitionWriter};
use crate::sources::window::{plan_day, DayWindow};
use decode::{decode_page, request_body, UserStatusNormalizer};

/// The `user_status` table.
pub static TABLE: Table = Table {
    name: "user_status",
    schema: user_status_schema,
    layout: PartitionLayout::AccountDay,
    dedupe: None,
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "user_status",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    metrics: &[],
    build,
};

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "user_status";
/// The UserStatus `limit` the API documents as its default (its sibling agentstatusdetails
/// also as its maximum). When the API refuses a larger `user_status.page_size` (400, 413 or
/// 422), the request is retried once with this; if that succeeds, the run keeps using it.
pub const FALLBACK_PAGE_SIZE: u32 = 50;

fn build(config: &Config) -> Option<Dataset> {
    let cfg = &config.user_status;
    cfg.enabled.then(|| {
        Dataset::History(std::sync::Arc::new(UserStatus::new(
            cfg.clone(),
            config.api.user_status_path.clone(),
        )))
    })
}

/// The configured UserStatus export.
pub struct UserStatus {
    cfg: UserStatusConfig,
    schedule: HistorySchedule,
    /// Path with `{account_id}` substituted.
    path: String,
    /// `limit`: `page_size`, lowered to [`FALLBACK_PAGE_SIZE`] for the rest of the process once
    /// the API refuses the configured size and accepts that one.
    page_size: AtomicU32,
}

impl UserStatus {
    pub fn new(cfg: UserStatusConfig, path: String) -> UserStatus {
        let schedule = HistorySchedule {
            schedule: cfg.schedule.clone(),
            schedule_timezone: cfg.schedule_timezone,
            timezone: cfg.timezone,
            lookback_days: cfg.lookback_days,
            max_days_per_run: cfg.max_days_per_run,
        };
        UserStatus {
            page_size: AtomicU32::new(cfg.page_size),
            cfg,
            schedule,
            path,
        }
    }

    /// Partition key of a day.
    pub fn key(account_id: &str, day: NaiveDate) -> PartitionKey {
        PartitionKey::account_day(&TABLE, account_id, day)
    }

    async fn export(
        &self,
        cx: &Context,
        day: NaiveDate,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let started = Instant::now();
        let key = Self::key(&cx.account_id, day);
        let mut writer = cx.sink.begin_partition(&key).await?;
        let mut normalizer =
            UserStatusNormalizer::new(&cx.account_id, self.cfg.granularity, exported_at);
        let requests = match self.fetch_day(cx, day, &mut normalizer, &mut writer).await {
            Ok(requests) => requests,
            Err(e) => {
                writer.abort().await;
                return Err(e);
            }
        };
        let (last, rejects) = normalizer.finish();
        let fetched = history::FetchedDay {
            info: &INFO,
            key: &key,
            day,
            last,
            rejects,
            requests,
            started,
            exported_at,
        };
        history::commit_day(cx, writer, fetched).await
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
            .post_json_gated(ENDPOINT, &self.path, &query, &body, gate, decode)
            .await
    }

    /// Fetch every page of a day's windows, streaming each page's rows into `writer`.
    /// Returns the number of requests made.
    async fn fetch_day(
        &self,
        cx: &Context,
        day: NaiveDate,
        normalizer: &mut UserStatusNormalizer,
        writer: &mut PartitionWriter,
    ) -> Result<usize, Error> {
        let mut requests = 0;
        let mut limit = self.page_size.load(Ordering::Relaxed);
        // Set while trying FALLBACK_PAGE_SIZE after the API refused a larger `limit`.
        let mut refused_limit: Option<u32> = None;
        for window in plan_day(self.cfg.timezone, day) {
            let mut offset: usize = 0;
            let mut seen: HashSet<String> = HashSet::new();
            for _ in 0..history::MAX_PAGES_PER_WINDOW {
                let result = self
                    .fetch_page(cx, &window, limit, offset, true, |bytes| {
                        let page = decode_page(bytes)?;
                        for agent in page.agents {
                            match agent {
                                Ok(agent) => {
                                    if seen.insert(agent.user_id().to_string()) {
                                        normalizer.push_agent(&agent, &window.claim);
                                    }
                                }
                                Err(reject) => normalizer.push_reject(reject),
                            }
                        }
                        Ok((page.has_more, page.record_count))
                    })
                    .await;
                requests += 1;
                let ((has_more, record_count), permit) = match result {
                    Ok(page) => page,
                    // A refused request never reached the decoder: retry the same offset once
                    // with the documented default, which the API must accept.
                    Err(ClientError::Rejected { status, .. })
                        if matches!(status, 400 | 413 | 422) && limit > FALLBACK_PAGE_SIZE =>
                    {
                        refused_limit = Some(limit);
                        limit = FALLBACK_PAGE_SIZE;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if let Some(refused) = refused_limit.take() {
                    self.keep_smaller_page_size(refused, limit);
                }
                if normalizer.rows() > 0 {
                    writer.write_page(normalizer.take_batch(), permit).await?;
                }
                if !has_more {
                    break;
                }
                if record_count == 0 {
                    warn!(%day, offset, "The API said hasMore but returned no records; stopping pagination.");
                    break;
                }
                offset += record_count;
            }
        }
        Ok(requests)
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
        let window = history::first_window(&INFO, self.cfg.timezone, today)?;
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

    fn schedule(&self) -> &HistorySchedule {
        &self.schedule
    }

    fn export_day<'a>(
        &'a self,
        cx: &'a Context,
        day: NaiveDate,
        exported_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>> {
        self.export(cx, day, exported_at).boxed()
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
