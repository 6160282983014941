//! Agent Performance, a windowed-history dataset of the WFM Integration scope: one row per
//! agent, interval and queue. The unit of work is one local day of `[agent_performance]
//! timezone`, requested as its exact UTC range (`fromTimeStamp`/`toTimeStamp`; 23 h and 25 h on
//! DST days), paged over agents with `skip`/`limit` in the body while `hasMore`, and written as
//! the one file of its `agent_performance/account_id=A/dt=D` partition. [`decode`] owns the
//! wire format and the rows; this module owns the requests, paging and the write.
//!
//! An interval belongs to the local day of its start; one starting at the requested range's end
//! (if the server reads `toTimeStamp` as inclusive) is skipped, so it is written once, by the
//! next day; one starting anywhere else outside the range is rejected, counted in
//! [`OUTSIDE_WINDOW`] and logged once per day.

pub mod config;
pub mod decode;
pub mod schema;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
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
use crate::metrics::{DatasetMetric, MetricKind};
use crate::sources::extra::log_envelope_without_rows;
use crate::sources::window::{local_day_bounds, DayWindow};
use crate::sources::DecodeError;
pub use config::AgentPerformanceConfig;
use decode::{decode_page, request_body, Normalizer};
use schema::agent_performance_schema;

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "agent_performance";

/// The `agent_performance` table.
pub static TABLE: Table = Table {
    name: "agent_performance",
    schema: agent_performance_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["agent_id", "interval_start", "queue_id"],
    dedupe: None,
};

/// Intervals returned for a day whose start is outside the range requested (rejected).
pub static OUTSIDE_WINDOW: DatasetMetric = DatasetMetric {
    name: "smartassist_agent_performance_outside_window_total",
    help: "Agent Performance intervals returned for a day whose intervalStartTimeStamp is outside the range requested (rejected)",
    kind: MetricKind::Counter,
    label: "dataset",
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "agent_performance",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: &[&OUTSIDE_WINDOW],
    build,
    decoder: PageDecoder {
        decode: |body, _| decode_page(body).map(|p| p.agents.len()),
        rows: page_rows,
    },
    demo: Demo {
        section: Some("enabled = true"),
        queries: &[DemoQuery {
            about: "Handle time and contacts per agent and day",
            sql: "SELECT dt, agent_id, sum(answered_contacts) AS answered,\n\
                  round(sum(conversation_handle_time_ms) / 60000.0, 1) AS handle_minutes\n\
                  FROM read_parquet('{out}/agent_performance/*/*/*.parquet', hive_partitioning = true)\n\
                  GROUP BY ALL ORDER BY dt, handle_minutes DESC LIMIT 20",
        }],
    },
};

static CONFIG: SectionSpec = SectionSpec::of::<AgentPerformanceConfig>();

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<AgentPerformanceConfig>()?;
    cfg.keys
        .enabled
        .then(|| Dataset::History(Arc::new(AgentPerformance { cfg: cfg.clone() })))
}

/// [`PageDecoder::rows`]: a page's intervals that start in the window's claim.
fn page_rows(
    body: &[u8],
    window: &DayWindow,
    out: &mut dyn FnMut(&'static Table, RecordBatch),
) -> Result<usize, DecodeError> {
    let mut n = Normalizer::new(
        super::PAGE_DECODER_ACCOUNT,
        super::page_decoder_exported_at(),
    );
    n.push_page(&decode_page(body)?, &window.claim, &mut |_| true);
    let rows = n.rows();
    out(&TABLE, n.take_batch());
    Ok(rows)
}

/// The configured Agent Performance export.
pub struct AgentPerformance {
    cfg: AgentPerformanceConfig,
}

impl AgentPerformance {
    pub fn new(cfg: AgentPerformanceConfig) -> AgentPerformance {
        AgentPerformance { cfg }
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

    /// One page of a day's range: the request the export and `check` both send.
    async fn fetch_page<T>(
        &self,
        cx: &Context,
        range: &Range<DateTime<Utc>>,
        skip: usize,
        limit: u32,
        gated: bool,
        decode: impl FnMut(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<(T, Option<tokio::sync::OwnedSemaphorePermit>), ClientError> {
        let body = request_body(range, skip, limit);
        let gate = gated.then_some(cx.page_gate.as_ref());
        cx.client
            .post_json_gated(ENDPOINT, &self.cfg.path, &[], &body, gate, decode)
            .await
    }

    /// Fetches every page of the unit's day, streaming each page's rows into `day`. Agents are
    /// deduplicated by `agentId` within the day.
    async fn fetch_day(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
        day: &mut history::DayExport<'_>,
    ) -> Result<history::FetchedDay, Error> {
        let mut normalizer = Normalizer::new(&cx.account_id, exported_at);
        let windows = [local_day_bounds(self.cfg.keys.timezone, unit.day)];
        let mut pager = paging::OffsetPager::new(INFO.name, unit, &windows);
        while let Some((range, skip)) = pager.next_page() {
            let seen = pager.seen();
            let (page, permit) = self
                .fetch_page(cx, range, skip, self.cfg.page_size, true, |bytes| {
                    let page = decode_page(bytes)?;
                    let rows = normalizer.push_page(&page, range, &mut |a| seen.first(a));
                    log_envelope_without_rows(INFO.name, unit, &page.extra, rows);
                    Ok(paging::Page {
                        has_more: page.has_more,
                        records: page.agents.len(),
                        requests: 1,
                    })
                })
                .await?;
            day.write_page(&TABLE, normalizer.take_batch(), permit)
                .await?;
            pager.record(page)?;
        }
        normalizer
            .outside()
            .report(cx, &OUTSIDE_WINDOW, &INFO, unit, &windows[0]);
        Ok(history::FetchedDay {
            last: Vec::new(),
            rejects: normalizer.take_rejects(),
            requests: pager.requests(),
            unmapped: normalizer.take_unmapped(),
            open: false,
        })
    }

    async fn probe_today(&self, cx: &Context, today: NaiveDate) -> Result<String, Error> {
        let range = local_day_bounds(self.cfg.keys.timezone, today);
        let ((agents, has_more, total), _) = self
            .fetch_page(cx, &range, 0, 1, false, |b| {
                decode_page(b).map(|p| (p.agents.len(), p.has_more, p.total_count))
            })
            .await?;
        let total = total.map_or_else(|| "absent".to_string(), |t| t.to_string());
        Ok(format!(
            "{agents} agent record(s) on a 1-agent page of today, hasMore = {has_more}, totalCount = {total}"
        ))
    }
}

impl HistoryDataset for AgentPerformance {
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
