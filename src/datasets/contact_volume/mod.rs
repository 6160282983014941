//! Contact Volume, a windowed-history dataset of the WFM Integration scope: one row per queue
//! and interval (`contact_volume`) and one per queue, interval and skill of the record's
//! `skillBreakdown` (`contact_volume_skills`). The unit of work is one local day of
//! `[contact_volume] timezone`, requested as its exact UTC range (`fromTimeStamp`/`toTimeStamp`;
//! 23 h and 25 h on DST days), paged with `skip`/`limit` in the body while `hasMore`, and
//! written as the one file of each table's `account_id=A/dt=D` partition. [`decode`] owns the
//! wire format and the rows; this module owns the requests, paging and the writes.
//!
//! An interval belongs to the local day of its start; a record starting at the requested
//! range's end (if the server reads `toTimeStamp` as inclusive) is skipped, so it is written
//! once, by the next day; one starting anywhere else outside the range is rejected, counted in
//! [`OUTSIDE_WINDOW`] and logged once per day. The durations' units are declared by the
//! config and written into each duration column's Parquet field metadata (`unit`), so the
//! files of a unit are written in the schema of the configured units
//! ([`history::DayExport::begin_as`]). Rows with implausible durations under those units are
//! counted in [`IMPLAUSIBLE`] and logged once per day.

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
use tracing::warn;

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
pub use config::{ContactVolumeConfig, DurationUnit};
use decode::{decode_page, request_body, Normalizer};
use schema::{contact_volume_schema, contact_volume_skills_schema};

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "contact_volume";

/// The `contact_volume` table: one row per queue and interval.
pub static TABLE: Table = Table {
    name: "contact_volume",
    schema: contact_volume_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["queue_id", "interval_start"],
    dedupe: None,
};

/// The `contact_volume_skills` table: one row per queue, interval and skill.
pub static SKILLS_TABLE: Table = Table {
    name: "contact_volume_skills",
    schema: contact_volume_skills_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["queue_id", "interval_start", "skill_id"],
    dedupe: None,
};

/// Rows (of either table) exported with a duration longer than the interval times its
/// contacts under the configured unit: the tenant's unit is probably not the declared one.
pub static IMPLAUSIBLE: DatasetMetric = DatasetMetric {
    name: "smartassist_contact_volume_implausible_durations_total",
    help: "Contact volume rows exported with a duration longer than the interval times its contacts under the configured unit",
    kind: MetricKind::Counter,
    label: "dataset",
};

/// Records returned for a day whose interval starts outside the range requested (rejected).
pub static OUTSIDE_WINDOW: DatasetMetric = DatasetMetric {
    name: "smartassist_contact_volume_outside_window_total",
    help: "Contact Volume records returned for a day whose intervalStartTimeStamp is outside the range requested (rejected)",
    kind: MetricKind::Counter,
    label: "dataset",
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "contact_volume",
    tables: &[&TABLE, &SKILLS_TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: &[&IMPLAUSIBLE, &OUTSIDE_WINDOW],
    build,
    decoder: PageDecoder {
        decode: |body, _| decode_page(body).map(|p| p.records.len()),
        rows: page_rows,
    },
    demo: Demo {
        section: Some("enabled = true\norg_id = \"o-demo-org\""),
        queries: &[DemoQuery {
            about: "Service level and abandonment per queue and hour",
            sql: "SELECT queue_name, date_trunc('hour', interval_start) AS hour, sum(offered_contacts) AS offered,\n\
                  round(100.0 * sum(abandoned_contacts) / nullif(sum(offered_contacts), 0), 1) AS abandoned_pct,\n\
                  round(sum(queue_hold_time_answered_ms) / 1000.0 / nullif(sum(answered_contacts), 0), 1) AS avg_answer_s\n\
                  FROM read_parquet('{out}/contact_volume/*/*/*.parquet', hive_partitioning = true)\n\
                  GROUP BY ALL ORDER BY hour, queue_name LIMIT 20",
        }],
    },
};

static CONFIG: SectionSpec = SectionSpec::of::<ContactVolumeConfig>();

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<ContactVolumeConfig>()?;
    cfg.keys
        .enabled
        .then(|| Dataset::History(Arc::new(ContactVolume { cfg: cfg.clone() })))
}

/// [`PageDecoder::rows`]: a page's records that start in the window's claim, with the
/// documented units.
fn page_rows(
    body: &[u8],
    window: &DayWindow,
    out: &mut dyn FnMut(&'static Table, RecordBatch),
) -> Result<usize, DecodeError> {
    let mut n = Normalizer::new(
        super::PAGE_DECODER_ACCOUNT,
        super::page_decoder_exported_at(),
        "o-bench",
        DurationUnit::Seconds,
        DurationUnit::Milliseconds,
    );
    n.push_page(&decode_page(body)?, &window.claim, &mut |_| true);
    let rows = n.rows().iter().sum();
    let [queues, skills] = n.take_batches();
    out(&TABLE, queues);
    out(&SKILLS_TABLE, skills);
    Ok(rows)
}

/// The configured Contact Volume export.
pub struct ContactVolume {
    cfg: ContactVolumeConfig,
}

impl ContactVolume {
    pub fn new(cfg: ContactVolumeConfig) -> ContactVolume {
        ContactVolume { cfg }
    }

    async fn export(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let mut normalizer = Normalizer::new(
            &cx.account_id,
            exported_at,
            &self.cfg.org_id,
            self.cfg.duration_unit,
            self.cfg.skill_duration_unit,
        );
        let [queues, skills] = normalizer.schemas().clone();
        let schema_of = move |t: &'static Table| {
            if t.name == SKILLS_TABLE.name {
                skills.clone()
            } else {
                queues.clone()
            }
        };
        let mut day = history::DayExport::begin_as(cx, &INFO, unit, &schema_of).await?;
        let fetched = self.fetch_day(cx, unit, &mut normalizer, &mut day).await;
        let implausible = normalizer.implausible();
        let report = day.finish(fetched, exported_at).await?;
        if implausible > 0 {
            cx.metrics
                .dataset_counter(&IMPLAUSIBLE, INFO.name)
                .inc_by(implausible);
            warn!(
                dataset = INFO.name,
                day = %unit.day,
                rows = implausible,
                duration_unit = self.cfg.duration_unit.as_str(),
                skill_duration_unit = self.cfg.skill_duration_unit.as_str(),
                "Rows have durations longer than their interval times their contacts; check contact_volume.duration_unit and skill_duration_unit."
            );
        }
        Ok(report)
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
        let body = request_body(
            &self.cfg.org_id,
            range,
            skip,
            limit,
            self.cfg.include_skill_breakdown,
        );
        let gate = gated.then_some(cx.page_gate.as_ref());
        cx.client
            .post_json_gated(ENDPOINT, &self.cfg.path, &[], &body, gate, decode)
            .await
    }

    /// Fetches every page of the unit's day, streaming each page's rows into `day`. A row is
    /// one queue and interval start within the day: a record repeated by pages that shift
    /// between requests is kept once, another record of the same key is rejected
    /// ([`decode`], "Identity").
    async fn fetch_day(
        &self,
        cx: &Context,
        unit: &DayUnit,
        normalizer: &mut Normalizer,
        day: &mut history::DayExport<'_>,
    ) -> Result<history::FetchedDay, Error> {
        let windows = [local_day_bounds(self.cfg.keys.timezone, unit.day)];
        let mut pager = paging::OffsetPager::new(INFO.name, unit, &windows);
        while let Some((range, skip)) = pager.next_page() {
            let seen = pager.seen();
            let (page, permit) = self
                .fetch_page(cx, range, skip, self.cfg.page_size, true, |bytes| {
                    let page = decode_page(bytes)?;
                    let kept = normalizer.push_page(&page, range, &mut |k| seen.first(k));
                    log_envelope_without_rows(INFO.name, unit, &page.extra, kept);
                    Ok(paging::Page {
                        has_more: page.has_more,
                        records: page.records.len(),
                        requests: 1,
                    })
                })
                .await?;
            let [queues, skills] = normalizer.take_batches();
            day.write_page(&SKILLS_TABLE, skills, None).await?;
            day.write_page(&TABLE, queues, permit).await?;
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
        let ((records, has_more, total), _) = self
            .fetch_page(cx, &range, 0, 1, false, |b| {
                decode_page(b).map(|p| (p.records.len(), p.has_more, p.total_count))
            })
            .await?;
        let total = total.map_or_else(|| "absent".to_string(), |t| t.to_string());
        Ok(format!(
            "{records} record(s) on a 1-record page of today, hasMore = {has_more}, totalCount = {total}"
        ))
    }
}

impl HistoryDataset for ContactVolume {
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
