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

pub mod config;
pub mod decode;
pub mod schema;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{history, paging};
use super::{
    Context, Dataset, DatasetInfo, DayUnit, Demo, DemoQuery, HistoryDataset, HistoryKeys,
    PageDecoder, PartitionLayout, Table, UnitReport,
};
use crate::client::ClientError;
use crate::config::{Config, SectionSpec};
use crate::error::Error;
use crate::sink::PartitionKey;
use crate::sources::window::{plan_day, DayWindow};
use crate::sources::DecodeError;
pub use config::AgentStatusDetailsConfig;
use decode::{decode_page, request_body_with, DateStyle, Normalizer, MAX_PAGE_SIZE};
use schema::agent_status_details_schema;

/// The `agent_status_details` table.
pub static TABLE: Table = Table {
    name: "agent_status_details",
    schema: agent_status_details_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["user_id", "start_time"],
    dedupe: None,
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "agent_status_details",
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
        section: Some("enabled = true"),
        queries: &[DemoQuery {
            about: "The time each agent spent in each status, from the status spans",
            sql: "SELECT dt, email, primary_status, secondary_status, round(sum(duration_seconds)/3600.0, 2) AS hours\n\
                  FROM read_parquet('{out}/agent_status_details/*/*/*.parquet', hive_partitioning = true)\n\
                  GROUP BY ALL ORDER BY dt, email, hours DESC LIMIT 20",
        }],
    },
};

static CONFIG: SectionSpec = SectionSpec::of::<AgentStatusDetailsConfig>();

/// [`PageDecoder::rows`]: a page's spans that start in the window's claim.
fn page_rows(
    body: &[u8],
    window: &DayWindow,
    out: &mut dyn FnMut(&'static Table, arrow::record_batch::RecordBatch),
) -> Result<usize, DecodeError> {
    let mut n = Normalizer::new(
        super::PAGE_DECODER_ACCOUNT,
        super::page_decoder_exported_at(),
    );
    for agent in decode_page(body)?.agents {
        match agent {
            Ok(a) => n.push_agent(&a, window),
            Err(r) => n.push_reject(r),
        }
    }
    let rows = n.rows();
    out(&TABLE, n.take_batch());
    Ok(rows)
}

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "agent_status_details";

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<AgentStatusDetailsConfig>()?;
    cfg.keys
        .enabled
        .then(|| Dataset::History(Arc::new(AgentStatusDetails::new(cfg.clone()))))
}

/// The configured Agent Status Details export.
pub struct AgentStatusDetails {
    cfg: AgentStatusDetailsConfig,
    /// How the date filter's bounds are written for the configured path's generation.
    style: DateStyle,
    /// `limit` of every request: the configured page size, never above [`MAX_PAGE_SIZE`].
    limit: u32,
}

impl AgentStatusDetails {
    pub fn new(cfg: AgentStatusDetailsConfig) -> AgentStatusDetails {
        AgentStatusDetails {
            style: DateStyle::for_path(&cfg.path),
            // Validation bounds page_size by the same maximum; the clamp keeps the cap local.
            limit: cfg.page_size.clamp(1, MAX_PAGE_SIZE as u32),
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

    /// Fetches every page of the unit's windows, streaming each page's rows into `day`. Agents
    /// are deduplicated by `userId` within a window (a server whose pages shift between
    /// requests may repeat one).
    async fn fetch_day(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
        day: &mut history::DayExport<'_>,
    ) -> Result<history::FetchedDay, Error> {
        let mut normalizer = Normalizer::new(&cx.account_id, exported_at);
        let windows = plan_day(self.cfg.keys.timezone, unit.day);
        let mut pager = paging::OffsetPager::new(INFO.name, unit, &windows);
        while let Some((window, offset)) = pager.next_page() {
            let seen = pager.seen();
            let (page, permit) = self
                .fetch_page(cx, window, self.limit, offset, true, |bytes| {
                    let page = decode_page(bytes)?;
                    for agent in page.agents {
                        match agent {
                            Ok(agent) if seen.first(agent.user_id()) => {
                                normalizer.push_agent(&agent, window)
                            }
                            Ok(_) => {}
                            Err(reject) => normalizer.push_reject(reject),
                        }
                    }
                    Ok(paging::Page {
                        has_more: page.has_more,
                        records: page.record_count,
                        requests: 1,
                    })
                })
                .await?;
            if normalizer.rows() > 0 {
                day.write_page(&TABLE, normalizer.take_batch(), permit)
                    .await?;
            }
            pager.record(page)?;
        }
        let open = normalizer.open_spans() > 0;
        let unmapped = normalizer.take_unmapped();
        let (last, rejects) = normalizer.finish();
        Ok(history::FetchedDay {
            last: vec![(&TABLE, last)],
            rejects,
            requests: pager.requests(),
            open,
            unmapped,
        })
    }

    async fn probe_today(&self, cx: &Context, today: NaiveDate) -> Result<String, Error> {
        let window = history::first_window(&INFO, self.cfg.keys.timezone, today)?;
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
