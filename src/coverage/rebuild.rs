//! `status --rebuild`: the coverage record restored from the Parquet files, for a month whose
//! object is missing (an output written before the record existed, a deleted object) or
//! corrupt. Every partition of each of the dataset's tables is listed and its files' footers
//! read (rows), its rejects' footers too; a unit found in the files that the record does not
//! hold gets an export written `by: rebuild`, dated by its newest file. Units the record
//! already holds are left as they are (they know more: requests, failures, polls).
//!
//! What the files can tell: which units were exported, rows per table, files, bytes,
//! rejects, and roughly when (the files' modification time). An empty history day still
//! writes a file without rows, so EMPTY is told apart from never fetched. What they cannot:
//! failures (a day that failed and never succeeded has no file: it reads MISSING, which
//! `backfill --missing` fetches just the same), requests, run ids, whether the data held open
//! spans, and a snapshot dataset's polls (a poll that found nothing new writes no file).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::record::{CoverageMonth, Export, Month, TableWrite, Writer};
use crate::datasets::DatasetInfo;
use crate::error::Error;
use crate::sink::{Sink, StateStore, StoredPartition};
use crate::state::{self, StateError, MAX_UPDATE_ATTEMPTS};

/// What a rebuild found and changed for one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub dataset: &'static str,
    /// Partitions found (data and rejects, every table).
    pub partitions: usize,
    /// Months written.
    pub months: usize,
    /// Units added to the record from the files.
    pub units_added: usize,
    /// Corrupt month objects replaced.
    pub corrupt_replaced: usize,
}

/// What the files say about one unit.
#[derive(Debug, Clone, Default)]
struct Found {
    tables: BTreeMap<String, TableWrite>,
    rejects: u64,
    newest: Option<DateTime<Utc>>,
}

type UnitKey = (NaiveDate, Option<String>);

/// Rebuilds the coverage of `info` for every month holding one of its partitions, and for
/// `also` (months a caller wants checked, e.g. the range `status` shows: a corrupt object there
/// is replaced even without files).
pub async fn rebuild(
    sink: &Sink,
    store: &StateStore,
    info: &'static DatasetInfo,
    account_id: &str,
    also: &[Month],
) -> Result<RebuildReport, Error> {
    let mut report = RebuildReport {
        dataset: info.name,
        ..RebuildReport::default()
    };
    let mut found: BTreeMap<UnitKey, Found> = BTreeMap::new();
    for table in info.tables {
        let partitions = sink.stored_partitions(table, account_id).await?;
        report.partitions += partitions.len();
        for p in partitions {
            let (key, write, newest) = read_partition(sink, &p).await?;
            let unit = found.entry(key).or_default();
            unit.tables.insert(table.name.to_string(), write);
            unit.newest = unit.newest.max(newest);
        }
    }
    let rejects = sink.stored_rejects(info.primary(), account_id).await?;
    report.partitions += rejects.len();
    for p in rejects {
        let (key, write, _) = read_partition(sink, &p).await?;
        if let Some(unit) = found.get_mut(&key) {
            unit.rejects += write.rows;
        }
    }
    let mut months: BTreeMap<Month, Vec<(UnitKey, Found)>> =
        also.iter().map(|m| (*m, Vec::new())).collect();
    for (key, f) in found {
        months.entry(Month::of(key.0)).or_default().push((key, f));
    }
    for (month, units) in months {
        let (added, corrupt) = merge_month(store, info.name, account_id, month, &units).await?;
        report.units_added += added;
        report.corrupt_replaced += usize::from(corrupt);
        report.months += usize::from(added > 0 || corrupt);
    }
    Ok(report)
}

/// A partition's unit, what it holds (rows from the footers, files, bytes) and its newest
/// file's time.
async fn read_partition(
    sink: &Sink,
    p: &StoredPartition,
) -> Result<(UnitKey, TableWrite, Option<DateTime<Utc>>), Error> {
    let mut write = TableWrite::default();
    let mut newest = None;
    for f in &p.files {
        let Some(rows) = sink.file_rows(&f.path).await? else {
            continue;
        };
        write.rows += rows;
        write.files += 1;
        write.bytes += f.size;
        newest = newest.max(Some(f.last_modified));
    }
    Ok(((p.day, p.bot_id.clone()), write, newest))
}

/// Adds the units found to one month's object by compare-and-swap (a corrupt object is
/// replaced); returns how many units were added and whether a corrupt object was replaced.
async fn merge_month(
    store: &StateStore,
    dataset: &str,
    account_id: &str,
    month: Month,
    units: &[(UnitKey, Found)],
) -> Result<(usize, bool), Error> {
    let name = state::object_name::<CoverageMonth>(dataset, account_id, &month);
    for attempt in 0..MAX_UPDATE_ATTEMPTS {
        if attempt > 0 {
            state::conflict_pause(attempt).await;
        }
        let read = store
            .get_versioned(&name)
            .await
            .map_err(|source| StateError::Store {
                name: name.clone(),
                source: Box::new(source),
            })?;
        let (mut current, version, corrupt) = match &read {
            None => (CoverageMonth::default(), None, false),
            Some((bytes, version)) => match state::decode::<CoverageMonth>(&name, bytes) {
                Ok(m) => (m, Some(version), false),
                Err(StateError::Corrupt { .. }) => (CoverageMonth::default(), Some(version), true),
                Err(e) => return Err(e.into()),
            },
        };
        let added = add_found(&mut current, units);
        if added == 0 && !corrupt {
            return Ok((0, false));
        }
        if state::store_if(store, &name, &current, version)
            .await?
            .is_ok()
        {
            return Ok((added, corrupt));
        }
    }
    Err(StateError::Contended {
        object: format!("{}/{name}", crate::sink::STATE_DIR),
        attempts: MAX_UPDATE_ATTEMPTS,
    }
    .into())
}

/// Gives every unit found that has no export one rebuilt from its files; how many.
fn add_found(month: &mut CoverageMonth, units: &[(UnitKey, Found)]) -> usize {
    let mut added = 0;
    for ((day, entity), f) in units {
        let rec = month.entry(*day, entity.as_deref());
        if rec.export.is_some() {
            continue;
        }
        let at = f.newest.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        added += usize::from(rec.apply_export(Export {
            started_at: at,
            finished_at: at,
            exported_at: at,
            run_id: String::new(),
            by: Writer::Rebuild,
            tables: f.tables.clone(),
            rejects: f.rejects,
            requests: 0,
            open: false,
            unmapped: BTreeMap::new(),
        }));
    }
    added
}
