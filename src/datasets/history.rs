//! Steps every history dataset takes the same way, so each dataset module keeps only what is
//! its own (requests, paging, decoding): the export of one unit (a local day, of one entity when
//! the dataset has entities) into one partition per table ([`DayExport`]: begin a writer per
//! table, let the dataset stream its pages in, abort every writer if anything fails, commit
//! them in table order, replace the unit's rejects, count and log), the page cap of a window,
//! the first request window of a day (for `check` probes), and the rule for records an API
//! returns outside the range it was asked for ([`Outside`]).
//!
//! The previous files of a unit stay visible until its new ones are complete; a failure leaves
//! them in place. With several tables the commits are in table order: a failure after the
//! first commit fails the unit, which is re-exported whole by the next run.

use std::ops::Range;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{info, warn};

use super::{Context, DatasetInfo, DayUnit, PartitionWrite, Table, UnitReport};
use crate::error::Error;
use crate::metrics::DatasetMetric;
use crate::rejects;
use crate::sink::{PartitionKey, PartitionWriter, WriteStats};
use crate::sources::extra::UnmappedCounts;
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

/// Where a record whose time is `at` belongs, for a request of the UTC range `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// In the range: the request's to write.
    In,
    /// Exactly at the range's end: the next range's (a server reading `toTimeStamp` as
    /// inclusive returns it), which asks for it too; skipped silently.
    NextRange,
    /// Anywhere else: not asked for. Rejected with its raw JSON ([`Outside::reason`]), counted
    /// and warned about ([`Outside::report`]), never skipped silently.
    Outside,
}

/// Places `at` for a request of `range` (see [`Placed`]).
pub fn place(at: DateTime<Utc>, range: &Range<DateTime<Utc>>) -> Placed {
    if range.contains(&at) {
        Placed::In
    } else if at == range.end {
        Placed::NextRange
    } else {
        Placed::Outside
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The records of one request range read outside it ([`Placed::Outside`]): the reject reason
/// each gets, and the count, metric and warning of the range. One shape for every dataset
/// that requests a day's UTC range; each declares its own counter family
/// `smartassist_<dataset>_outside_window_total` (labelled by `dataset`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outside {
    /// Records rejected as outside the range.
    pub records: u64,
}

impl Outside {
    /// The reject reason of a record whose `field` reads `at`, outside `range`; counts it.
    pub fn reason(
        &mut self,
        field: &str,
        at: DateTime<Utc>,
        range: &Range<DateTime<Utc>>,
    ) -> String {
        self.records += 1;
        format!(
            "{field} {} is outside the range requested ({} to {}): the API returned a record \
             it was not asked for",
            iso(at),
            iso(range.start),
            iso(range.end)
        )
    }

    /// Counts the records in `metric` and logs one warning for the range, if there were any.
    pub fn report(
        &self,
        cx: &Context,
        metric: &'static DatasetMetric,
        info: &DatasetInfo,
        unit: &DayUnit,
        range: &Range<DateTime<Utc>>,
    ) {
        if self.records == 0 {
            return;
        }
        cx.metrics
            .dataset_counter(metric, info.name)
            .inc_by(self.records);
        warn!(
            dataset = info.name,
            unit = %unit,
            from = iso(range.start),
            to = iso(range.end),
            records = self.records,
            "The API returned records whose interval starts outside the range requested; they are rejected with their raw JSON."
        );
    }
}

/// The partition of `table` that holds `unit`: the entity is its `bot_id`. A unit of an entity
/// needs a layout with `bot_id`: otherwise the units of every entity of a day would replace
/// each other's partition.
pub fn unit_key(
    table: &'static Table,
    account_id: &str,
    unit: &DayUnit,
) -> Result<PartitionKey, Error> {
    match (&unit.entity, table.layout.has_bot()) {
        (Some(entity), false) => Err(Error::EntityWithoutPartition {
            table: table.name,
            entity: entity.clone(),
        }),
        (entity, _) => Ok(PartitionKey {
            table,
            account_id: account_id.to_string(),
            bot_id: entity.clone(),
            dt: unit.day,
        }),
    }
}

/// The export of one unit in progress: one open partition writer per table of the dataset,
/// in table order. [`DayExport::begin`] opens them, the dataset streams its pages in with
/// [`DayExport::write_page`], and [`DayExport::finish`] commits everything or aborts everything.
pub struct DayExport<'a> {
    cx: &'a Context,
    info: &'static DatasetInfo,
    unit: &'a DayUnit,
    writers: Vec<PartitionWriter>,
    started: Instant,
}

/// What a dataset's fetch of a unit produced besides the pages it wrote.
#[derive(Debug, Default)]
pub struct FetchedDay {
    /// Rows still held by the normalizer, per table (written before the commit).
    pub last: Vec<(&'static Table, RecordBatch)>,
    pub rejects: Vec<Reject>,
    pub requests: usize,
    /// The unit holds data that will still change (see [`UnitReport::open`]).
    pub open: bool,
    /// Unmapped fields of the records whose rows were written (see [`crate::sources::extra`]).
    pub unmapped: UnmappedCounts,
}

impl<'a> DayExport<'a> {
    /// Opens a writer on `unit`'s partition of every table of `info`.
    pub async fn begin(
        cx: &'a Context,
        info: &'static DatasetInfo,
        unit: &'a DayUnit,
    ) -> Result<DayExport<'a>, Error> {
        Self::begin_as(cx, info, unit, &|table| (table.schema)()).await
    }

    /// [`DayExport::begin`] with each table's file written in the schema `schema_of` gives it:
    /// the table's columns with field metadata that depends on the dataset's config (see
    /// [`crate::sink::Sink::begin_partition_as`]); the pages written must use the same schema.
    pub async fn begin_as(
        cx: &'a Context,
        info: &'static DatasetInfo,
        unit: &'a DayUnit,
        schema_of: &(dyn Fn(&'static Table) -> arrow::datatypes::SchemaRef + Sync),
    ) -> Result<DayExport<'a>, Error> {
        let mut export = DayExport {
            cx,
            info,
            unit,
            writers: Vec::with_capacity(info.tables.len()),
            started: Instant::now(),
        };
        for table in info.tables {
            let opened = match unit_key(table, &cx.account_id, unit) {
                Ok(key) => cx
                    .sink
                    .begin_partition_as(&key, schema_of(table))
                    .await
                    .map_err(Error::from),
                Err(e) => Err(e),
            };
            match opened {
                Ok(w) => export.writers.push(w),
                Err(e) => {
                    export.abort().await;
                    return Err(e);
                }
            }
        }
        Ok(export)
    }

    /// Encodes one page of rows of `table` into its open row group (bounded), then frees them
    /// and `permit` (see [`PartitionWriter::write_page`]). Empty batches are skipped.
    pub async fn write_page(
        &mut self,
        table: &Table,
        batch: RecordBatch,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<(), Error> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let i = self
            .info
            .tables
            .iter()
            .position(|t| t.name == table.name)
            .ok_or(Error::UnknownTable { table: table.name })?;
        Ok(self.writers[i].write_page(batch, permit).await?)
    }

    /// Ends the export. `Err` (the fetch failed) aborts every writer, leaving the previous files
    /// in place. `Ok` writes the last rows, commits the writers in table order (a failure aborts
    /// the rest), replaces the unit's rejects (under the primary table's partition), counts the
    /// rows and logs the unit. State is the caller's to commit, after this returns `Ok`.
    pub async fn finish(
        self,
        fetched: Result<FetchedDay, Error>,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                self.abort().await;
                return Err(e);
            }
        };
        let (cx, info, unit, started) = (self.cx, self.info, self.unit, self.started);
        let stats = self.commit(fetched.last).await?;
        let (rejects, open, mut unmapped) = (fetched.rejects, fetched.open, fetched.unmapped);
        let primary = unit_key(info.primary(), &cx.account_id, unit)?;
        rejects::replace(
            &cx.sink,
            &cx.metrics,
            &primary,
            info.endpoint,
            &rejects,
            exported_at,
        )
        .await?;
        let mut written = WriteStats::default();
        let mut partitions = Vec::with_capacity(stats.len());
        for (table, s) in info.tables.iter().zip(stats) {
            cx.metrics.written(table.name, s.files, s.rows, s.bytes);
            written.files += s.files;
            written.rows += s.rows;
            written.bytes += s.bytes;
            partitions.push(PartitionWrite {
                table: table.name,
                day: unit.day,
                written: s,
            });
        }
        cx.metrics.unmapped_fields(info.name, unmapped.total());
        info!(
            dataset = info.name,
            day = %unit.day,
            entity = unit.entity.as_deref(),
            requests = fetched.requests,
            rows = written.rows,
            rejects = rejects.len(),
            bytes = written.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Exported day."
        );
        Ok(UnitReport {
            unit: unit.to_string(),
            requests: fetched.requests,
            rows: written.rows,
            rejects: rejects.len(),
            written,
            partitions,
            open,
            unmapped: unmapped.take(),
            ..UnitReport::default()
        })
    }

    /// Writes `last`, then commits every writer in table order; after a failure the rest are
    /// aborted.
    async fn commit(
        mut self,
        last: Vec<(&'static Table, RecordBatch)>,
    ) -> Result<Vec<WriteStats>, Error> {
        for (table, batch) in last {
            if let Err(e) = self.write_page(table, batch, None).await {
                self.abort().await;
                return Err(e);
            }
        }
        let mut stats = Vec::with_capacity(self.writers.len());
        let mut writers = std::mem::take(&mut self.writers).into_iter();
        while let Some(w) = writers.next() {
            match w.commit().await {
                Ok(s) => stats.push(s),
                Err(e) => {
                    for rest in writers {
                        rest.abort().await;
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(stats)
    }

    async fn abort(self) {
        for w in self.writers {
            w.abort().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::PartitionLayout;

    fn table(layout: PartitionLayout) -> &'static Table {
        Box::leak(Box::new(Table {
            name: "t",
            schema: crate::schema::rejects_schema,
            layout,
            key: &["reason"],
            dedupe: None,
        }))
    }

    #[test]
    fn an_entity_unit_needs_a_bot_partition_or_two_entities_would_share_one() {
        let day = "2024-06-01".parse().expect("day");
        let of = |e: &str| DayUnit {
            day,
            entity: Some(e.to_string()),
        };
        let by_bot = table(PartitionLayout::ACCOUNT_BOT_DAY);
        let a = unit_key(by_bot, "acct", &of("b1")).expect("key");
        let b = unit_key(by_bot, "acct", &of("b2")).expect("key");
        assert_ne!(a, b);
        let account_wide = table(PartitionLayout::ACCOUNT_DAY);
        assert!(matches!(
            unit_key(account_wide, "acct", &of("b1")),
            Err(Error::EntityWithoutPartition { .. })
        ));
        let whole = unit_key(account_wide, "acct", &DayUnit::day(day)).expect("key");
        assert_eq!(whole.bot_id, None);
    }
}
