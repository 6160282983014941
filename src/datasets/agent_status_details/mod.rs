//! Agent Status Details, a windowed-history dataset: one row per status span of an agent. The
//! unit of work is one local day of `[agent_status_details] timezone`, fetched through the
//! DST-correct request windows of [`crate::sources::window::plan_day`], page by page (`limit`
//! at most the documented 50, `offset` advanced by the agent records received while `hasMore`),
//! and written as the one file of its `agent_status_details/account_id=A/dt=D` partition.
//! [`decode`] owns the wire format and the rows; this module owns the requests, paging and the
//! partition write.
//!
//! The API returns a span for every day it overlaps; each window keeps only the spans whose UTC
//! start it claims, so a span is written once, in the `dt` of its local start. A span still open
//! at export time has a null end and is rewritten whenever its day is exported again. As for
//! UserStatus, each page is read under the context's page gate and encoded as its own row group
//! as soon as it arrives; the previous file stays visible until the new one is complete.

pub mod decode;

use std::collections::HashSet;
use std::sync::Arc;
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
use crate::config::{AgentStatusDetailsConfig, Config};
use crate::error::Error;
use crate::schema::agent_status_details_schema;
use crate::sink::{PartitionKey, PartitionWriter};
use crate::sources::window::{plan_day, DayWindow};
use crate::sources::DecodeError;
use decode::{decode_page, request_body_with, DateStyle, Normalizer, MAX_PAGE_SIZE};

/// The `agent_status_details` table.
pub static TABLE: Table = Table {
    name: "agent_status_details",
    schema: agent_status_details_schema,
    layout: PartitionLayout::AccountDay,
    dedupe: None,
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "agent_status_details",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    metrics: &[],
    build,
};

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "agent_status_details";

fn build(config: &Config) -> Option<Dataset> {
    let cfg = &config.agent_status_details;
    cfg.enabled
        .then(|| Dataset::History(Arc::new(AgentStatusDetails::new(cfg.clone()))))
}

/// The configured Agent Status Details export.
pub struct AgentStatusDetails {
    cfg: AgentStatusDetailsConfig,
    schedule: HistorySchedule,
    /// How the date filter's bounds are written for the configured path's generation.
    style: DateStyle,
    /// `limit` of every request: the configured page size, never above [`MAX_PAGE_SIZE`].
    limit: u32,
}

impl AgentStatusDetails {
    pub fn new(cfg: AgentStatusDetailsConfig) -> AgentStatusDetails {
        let schedule = HistorySchedule {
            schedule: cfg.schedule.clone(),
            schedule_timezone: cfg.schedule_timezone,
            timezone: cfg.timezone,
            lookback_days: cfg.lookback_days,
            max_days_per_run: cfg.max_days_per_run,
        };
        AgentStatusDetails {
            style: DateStyle::for_path(&cfg.path),
            // Validation bounds page_size by the same maximum; the clamp keeps the cap local.
            limit: cfg.page_size.clamp(1, MAX_PAGE_SIZE as u32),
            cfg,
            schedule,
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
        let mut normalizer = Normalizer::new(&cx.account_id, exported_at);
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
        decode: impl FnMut(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<(T, Option<tokio::sync::OwnedSemaphorePermit>), ClientError> {
        let body = request_body_with(&self.cfg.agents, window, self.style);
        let query = [("limit", limit.to_string()), ("offset", offset.to_string())];
        let gate = gated.then_some(cx.page_gate.as_ref());
        cx.client
            .post_json_gated(ENDPOINT, &self.cfg.path, &query, &body, gate, decode)
            .await
    }

    /// Fetch every page of a day's windows, streaming each page's rows into `writer`. Agents
    /// are deduplicated by `userId` within a window (a server whose pages shift between
    /// requests may repeat one). Returns the number of requests made.
    async fn fetch_day(
        &self,
        cx: &Context,
        day: NaiveDate,
        normalizer: &mut Normalizer,
        writer: &mut PartitionWriter,
    ) -> Result<usize, Error> {
        let mut requests = 0;
        for window in plan_day(self.cfg.timezone, day) {
            let mut offset: usize = 0;
            let mut seen: HashSet<String> = HashSet::new();
            for _ in 0..history::MAX_PAGES_PER_WINDOW {
                let ((has_more, record_count), permit) = self
                    .fetch_page(cx, &window, self.limit, offset, true, |bytes| {
                        let page = decode_page(bytes)?;
                        for agent in page.agents {
                            match agent {
                                Ok(agent) => {
                                    if seen.insert(agent.user_id().to_string()) {
                                        normalizer.push_agent(&agent, &window);
                                    }
                                }
                                Err(reject) => normalizer.push_reject(reject),
                            }
                        }
                        Ok((page.has_more, page.record_count))
                    })
                    .await?;
                requests += 1;
                if normalizer.rows() > 0 {
                    writer.write_page(normalizer.take_batch(), permit).await?;
                }
                if !has_more {
                    break;
                }
                if record_count == 0 {
                    warn!(dataset = INFO.name, %day, offset, "The API said hasMore but returned no records; stopping pagination.");
                    break;
                }
                offset += record_count;
            }
        }
        Ok(requests)
    }

    async fn probe_today(&self, cx: &Context, today: NaiveDate) -> Result<String, Error> {
        let window = history::first_window(&INFO, self.cfg.timezone, today)?;
        let ((records, spans, has_more), _) = self
            .fetch_page(cx, &window, 1, 0, false, |b| {
                decode_page(b).map(|p| {
                    let spans: usize = p
                        .agents
                        .iter()
                        .filter_map(|a| a.as_ref().ok())
                        .map(|a| a.span_count())
                        .sum();
                    (p.record_count, spans, p.has_more)
                })
            })
            .await?;
        Ok(format!(
            "{records} agent record(s) with {spans} span(s) on a 1-agent page, hasMore = {has_more}"
        ))
    }
}

impl HistoryDataset for AgentStatusDetails {
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
