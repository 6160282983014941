//! Agent Activity, a windowed-history dataset: one row per agent event (`GET
//! …/analytics/account/{accountId}/agentactivity?fromTimeStamp&toTimeStamp`, scope WFM
//! Integration). The unit is one local day of `[agent_activity] timezone`: its exact UTC range
//! (23 or 25 hours on DST days) is cut into request windows of `window_minutes` ([`windows`];
//! shorter around a fall-back of `event_time_zone`, so that no window is asked for both
//! instants of one repeated local time), each asked for from one second before its start to
//! its end, so an event at its start is returned under either reading of `fromTimeStamp`, and
//! kept only when its time is in the window's claim `[start, end)`, so an event at its end
//! (returned again by the next window, or by this one under an inclusive `toTimeStamp`) is
//! written once, by the next window. An event read outside the window it was returned for is
//! counted in [`OUTSIDE_WINDOW`] and logged per window (a wrong `event_time_zone` looks like
//! this); [`decode`] says what becomes of it. No paging is documented: the windows are kept
//! short instead. Each whole update tuple is kept once per day (a server may return one twice);
//! the day's partition is replaced by each export, so re-runs never duplicate. [`decode`] owns
//! the wire format and the rows.

pub mod config;
pub mod decode;
pub mod schema;
mod seen;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Offset, SecondsFormat, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::warn;

use super::history;
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
pub use config::AgentActivityConfig;
use decode::{decode_page, Normalizer, RequestWindow};
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

/// Events returned for a request window whose `EventTime`, read in `event_time_zone`, is
/// outside the range the window asked for: a wrong `event_time_zone` (or a server that ignores
/// the range). Written by the window that holds them, or rejected when outside the day.
pub static OUTSIDE_WINDOW: DatasetMetric = DatasetMetric {
    name: "smartassist_agent_activity_outside_window_total",
    help: "Agent Activity events returned for a request window whose EventTime, read in event_time_zone, is outside the range asked for",
    kind: MetricKind::Counter,
    label: "dataset",
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "agent_activity",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: &[&OUTSIDE_WINDOW],
    build,
    decoder: PageDecoder {
        decode: |body, _| decode_page(body).map(|p| p.updates.len()),
        rows: page_rows,
    },
    demo: Demo {
        // The simulated tenant writes EventTime in New York time, the demo's zone.
        section: Some("enabled = true\nevent_time_zone = \"America/New_York\""),
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
    let served = window.served_range();
    let mut n = Normalizer::new(
        super::PAGE_DECODER_ACCOUNT,
        super::page_decoder_exported_at(),
        chrono_tz::UTC,
        served.clone(),
    );
    n.push_page(&decode_page(body)?, &RequestWindow::of(served));
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
/// each, in order, covering it exactly. Around each fall-back of `event_zone` (whose repeated
/// local times name two instants `shift` apart, see [`repeated_periods`]) the windows are cut
/// at the period's start and every `shift / 2` up to its end: a window is asked for one second
/// before its start to its end, both maybe inclusive, so a window of `shift - 1 s` or longer
/// there could be asked for both instants of one local time and could not tell which one the
/// API meant. Shorter windows always can (two extra requests on New York's fall-back day with
/// 60-minute windows).
pub fn windows(
    day: Range<DateTime<Utc>>,
    minutes: u32,
    event_zone: Tz,
) -> Vec<Range<DateTime<Utc>>> {
    let step = TimeDelta::minutes(i64::from(minutes.max(1)));
    let mut cuts = Vec::new();
    let mut at = day.start;
    while at < day.end {
        cuts.push(at);
        at += step;
    }
    for (start, shift) in repeated_periods(event_zone, &day) {
        for k in 0..=4 {
            let cut = start + shift / 2 * k;
            if day.start < cut && cut < day.end {
                cuts.push(cut);
            }
        }
    }
    cuts.push(day.end);
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

fn offset_seconds(zone: Tz, t: DateTime<Utc>) -> i32 {
    zone.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The fall-backs of `zone` near `range` (three hours either side): for each, the first
/// instant of the repeated local period's first occurrence and the shift, so the period's
/// instants are `[start, start + 2 * shift)`. Found by comparing the offset every 15 minutes
/// (zones change offset at most once in that long) and bisecting to the second.
pub fn repeated_periods(zone: Tz, range: &Range<DateTime<Utc>>) -> Vec<(DateTime<Utc>, TimeDelta)> {
    let step = TimeDelta::minutes(15);
    let mut out = Vec::new();
    let mut t = range.start - TimeDelta::hours(3);
    while t < range.end + TimeDelta::hours(3) {
        let (before, after) = (offset_seconds(zone, t), offset_seconds(zone, t + step));
        if after < before {
            // The first instant with the new offset is in (lo, hi].
            let (mut lo, mut hi) = (t, t + step);
            while hi - lo > TimeDelta::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset_seconds(zone, mid) == before {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let shift = TimeDelta::seconds(i64::from(before - after));
            out.push((hi - shift, shift));
        }
        t += step;
    }
    out
}

/// `fromTimeStamp`/`toTimeStamp` of a window: one second before its start (so an event at the
/// start is returned even if `fromTimeStamp` is exclusive) to its end, ISO 8601 UTC
/// ([`RequestWindow::asked`]).
pub fn window_query(window: &Range<DateTime<Utc>>) -> [(&'static str, String); 2] {
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let asked = RequestWindow::of(window.clone()).asked;
    [
        ("fromTimeStamp", iso(*asked.start())),
        ("toTimeStamp", iso(*asked.end())),
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
        let bounds = local_day_bounds(self.cfg.keys.timezone, unit.day);
        let zone = self.cfg.event_time_zone;
        let mut n = Normalizer::new(&cx.account_id, exported_at, zone, bounds.clone());
        let mut requests = 0;
        for claim in windows(bounds, self.cfg.window_minutes, zone) {
            let window = RequestWindow::of(claim);
            let (counts, permit) = self
                .fetch_window(cx, &window.claim, true, |body| {
                    let page = decode_page(body)?;
                    let counts = n.push_page(&page, &window);
                    log_envelope_without_rows(INFO.name, &unit.day, &page.extra, counts.rows);
                    Ok(counts)
                })
                .await?;
            requests += 1;
            if counts.outside > 0 {
                cx.metrics
                    .dataset_counter(&OUTSIDE_WINDOW, INFO.name)
                    .inc_by(counts.outside);
                let [(_, from), (_, to)] = window_query(&window.claim);
                warn!(
                    dataset = INFO.name,
                    day = %unit.day,
                    from,
                    to,
                    events = counts.outside,
                    updates = counts.updates,
                    event_time_zone = %zone,
                    "Events returned for a request window have an EventTime outside it; they are written by the window that holds them, or rejected when outside the day. Check agent_activity.event_time_zone."
                );
            }
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
        let first = windows(bounds, self.cfg.window_minutes, self.cfg.event_time_zone)
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
