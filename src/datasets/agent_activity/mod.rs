//! Agent Activity, a windowed-history dataset: one row per agent event (`GET
//! …/analytics/account/{accountId}/agentactivity?fromTimeStamp&toTimeStamp`, scope WFM
//! Integration). The unit is one local day of `[agent_activity] timezone`: its exact UTC range
//! (23 or 25 hours on DST days) is cut into request windows of `window_minutes`, each asked for
//! from one second before its start to its end, so an event at its start is returned under
//! either reading of `fromTimeStamp`, and kept only when its time is in the window's claim
//! `[start, end)`, so an event at its end (returned again by the next window, or by this one
//! under an inclusive `toTimeStamp`) is written once, by the next window. No paging is
//! documented: the windows are kept short instead. Each whole update tuple is kept once per day
//! (a server may return one twice); the day's partition is replaced by each export, so re-runs
//! never duplicate. [`decode`] owns the wire format and the rows.

pub mod config;
pub mod decode;
pub mod schema;

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::history;
use super::{
    Context, Dataset, DatasetInfo, DayUnit, Demo, DemoQuery, HistoryDataset, HistoryKeys,
    PageDecoder, PartitionLayout, Table, UnitReport,
};
use crate::client::ClientError;
use crate::config::{Config, SectionSpec};
use crate::error::Error;
use crate::sources::window::{local_day_bounds, DayWindow};
use crate::sources::DecodeError;
pub use config::AgentActivityConfig;
use decode::{decode_page, Normalizer};
use schema::agent_activity_schema;

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "agent_activity";

/// The `agent_activity` table.
pub static TABLE: Table = Table {
    name: "agent_activity",
    schema: agent_activity_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["agent_id", "event_time", "activity"],
    dedupe: None,
};

static CONFIG: SectionSpec = SectionSpec::of::<AgentActivityConfig>();

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "agent_activity",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: &[],
    build,
    decoder: PageDecoder {
        decode: |body, _| decode_page(body).map(|p| p.updates.len()),
        rows: page_rows,
    },
    demo: Demo {
        section: Some("enabled = true"),
        queries: &[DemoQuery {
            about: "Agent events per activity and reason code",
            sql: "SELECT dt, activity, reason_code, count(*) AS events\n\
                  FROM read_parquet('{out}/agent_activity/*/*/*.parquet', hive_partitioning = true)\n\
                  GROUP BY ALL ORDER BY dt, events DESC LIMIT 20",
        }],
    },
};

/// [`PageDecoder::rows`]: a page's updates in the window's served range, times in UTC.
fn page_rows(
    body: &[u8],
    window: &DayWindow,
    out: &mut dyn FnMut(&'static Table, arrow::record_batch::RecordBatch),
) -> Result<usize, DecodeError> {
    let mut n = Normalizer::new(
        super::PAGE_DECODER_ACCOUNT,
        super::page_decoder_exported_at(),
        chrono_tz::UTC,
    );
    n.push_page(&decode_page(body)?, &window.served_range());
    let rows = n.rows();
    if let Ok(batch) = n.take_batch() {
        out(&TABLE, batch);
    }
    Ok(rows)
}

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<AgentActivityConfig>()?;
    cfg.keys
        .enabled
        .then(|| Dataset::History(Arc::new(AgentActivity { cfg: cfg.clone() })))
}

/// The request windows of a local day's UTC range `day`: `[start, end)` of at most `minutes`
/// each, in order, covering it exactly.
pub fn windows(day: Range<DateTime<Utc>>, minutes: u32) -> Vec<Range<DateTime<Utc>>> {
    let step = TimeDelta::minutes(i64::from(minutes.max(1)));
    let mut out = Vec::new();
    let mut start = day.start;
    while start < day.end {
        let end = (start + step).min(day.end);
        out.push(start..end);
        start = end;
    }
    out
}

/// `fromTimeStamp`/`toTimeStamp` of a window: one second before its start (so an event at the
/// start is returned even if `fromTimeStamp` is exclusive) to its end, ISO 8601 UTC.
pub fn window_query(window: &Range<DateTime<Utc>>) -> [(&'static str, String); 2] {
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    [
        ("fromTimeStamp", iso(window.start - TimeDelta::seconds(1))),
        ("toTimeStamp", iso(window.end)),
    ]
}

/// The configured Agent Activity export.
pub struct AgentActivity {
    cfg: AgentActivityConfig,
}

impl AgentActivity {
    async fn fetch_window<T>(
        &self,
        cx: &Context,
        window: &Range<DateTime<Utc>>,
        gated: bool,
        decode: impl FnMut(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<(T, Option<tokio::sync::OwnedSemaphorePermit>), ClientError> {
        let gate = gated.then_some(cx.page_gate.as_ref());
        cx.client
            .get_json_gated(
                ENDPOINT,
                &self.cfg.path,
                &window_query(window),
                gate,
                decode,
            )
            .await
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

    async fn fetch_day(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
        day: &mut history::DayExport<'_>,
    ) -> Result<history::FetchedDay, Error> {
        let mut n = Normalizer::new(&cx.account_id, exported_at, self.cfg.event_time_zone);
        let bounds = local_day_bounds(self.cfg.keys.timezone, unit.day);
        let mut requests = 0;
        for window in windows(bounds, self.cfg.window_minutes) {
            let (_, permit) = self
                .fetch_window(cx, &window, true, |body| {
                    let page = decode_page(body)?;
                    Ok(n.push_page(&page, &window))
                })
                .await?;
            requests += 1;
            day.write_page(&TABLE, n.take_batch()?, permit).await?;
        }
        let last = n.take_batch()?;
        let (rejects, unmapped) = n.finish();
        Ok(history::FetchedDay {
            last: vec![(&TABLE, last)],
            rejects,
            requests,
            unmapped,
            open: false,
        })
    }

    async fn probe_today(&self, cx: &Context, today: NaiveDate) -> Result<String, Error> {
        let bounds = local_day_bounds(self.cfg.keys.timezone, today);
        let first = windows(bounds, self.cfg.window_minutes)
            .into_iter()
            .next()
            .ok_or(Error::NoWindow {
                dataset: INFO.name,
                day: today,
            })?;
        let (updates, _) = self
            .fetch_window(cx, &first, false, |b| {
                decode_page(b).map(|p| p.updates.len())
            })
            .await?;
        Ok(format!(
            "{updates} update(s) in the first {}-minute window of today",
            self.cfg.window_minutes
        ))
    }
}

impl HistoryDataset for AgentActivity {
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
mod tests {
    use super::*;

    #[test]
    fn windows_cover_dst_days_exactly_and_ask_one_second_early() {
        let ny = chrono_tz::America::New_York;
        for (day, hours) in [("2024-03-10", 23), ("2024-06-12", 24), ("2024-11-03", 25)] {
            let bounds = local_day_bounds(ny, day.parse().expect("day"));
            let w = windows(bounds.clone(), 60);
            assert_eq!(w.len(), hours, "{day}");
            assert_eq!((w[0].start, w[hours - 1].end), (bounds.start, bounds.end));
            assert!(w.windows(2).all(|p| p[0].end == p[1].start));
        }
        let bounds = local_day_bounds(ny, "2024-03-10".parse().expect("day"));
        assert_eq!(windows(bounds.clone(), 600).len(), 3);
        let q = window_query(&windows(bounds, 60)[0]);
        assert_eq!(q[0], ("fromTimeStamp", "2024-03-10T04:59:59Z".to_string()));
        assert_eq!(q[1], ("toTimeStamp", "2024-03-10T06:00:00Z".to_string()));
    }
}
