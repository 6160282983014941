//! What the lake holds, unit by unit: the coverage record, written as each unit of work ends,
//! and what is read from it (`status`, `backfill --missing`, the daemon's status page).
//!
//! - [`record`]: the stored form, one object per dataset, account and month
//!   (`_state/<dataset>/account_id=A/coverage/YYYY-MM.json`), and its merge rules.
//! - This module: writing it. The pipeline and backfill call [`record_unit`] after every unit
//!   of a history dataset (a day, or an entity's day), committed or failed, and
//!   [`record_poll`] after every snapshot poll. The record is written after the unit's data
//!   (and, for a poll, after its poll state): it describes committed files, and a failure to
//!   write it is logged and never fails the unit (`status --rebuild` restores it from the
//!   files). Each write is a compare-and-swap of the month's object ([`state::update_object`]).
//! - [`status`]: the classification of every unit of a range (OK, EMPTY, MISSING, FAILED,
//!   PROVISIONAL), per dataset with its watermark, lag and freshness, the holes and the
//!   backfill commands that fill them: one serializable report (the `status --json` shape);
//!   [`facts`]: what it reads of each dataset (its facts from the config, its watermarks and
//!   coverage months from the state store).
//! - [`capture`]: the report's realtime-capture section (shape and lines), filled by the
//!   caller from the Parquet files of the days the report says both datasets hold.
//! - [`rebuild`]: the record rebuilt from the Parquet files of each table.
//! - [`text`]: `status` as lines for a terminal (a line per unit, or a grid for long ranges).
//!
//! What a unit is: for a history dataset the unit of work itself (a local day, per entity
//! when the dataset has entities). For a snapshot dataset, an entity's local day: the polls
//! that ran on it (ok, failed, suspected gaps, answers without the entity, the last one) and
//! the records the polls added to the day's partition (a poll just after midnight may still
//! add to the day before).

pub mod capture;
pub mod facts;
pub mod rebuild;
pub mod record;
pub mod status;
pub mod text;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tracing::warn;

use crate::datasets::{Context, DayUnit, UnitReport};
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::sink::StateStore;
use crate::sources::window::local_date;
use crate::state::{self, StateError};
pub use record::{
    is_coverage_object, CoverageMonth, Export, Failure, Month, Polls, TableWrite, UnitRecord,
    Writer,
};

/// Where a context's records go: its state store and account.
pub fn target(cx: &Context) -> (&StateStore, &str) {
    (&cx.state, &cx.account_id)
}

/// One attempt at a unit: who made it and when it began.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The run, backfill or poll (a UUID, as in the logs' `run_id`).
    pub run_id: String,
    pub by: Writer,
    pub started_at: DateTime<Utc>,
}

impl Attempt {
    /// An attempt starting now.
    pub fn now(run_id: &str, by: Writer) -> Attempt {
        Attempt {
            run_id: run_id.to_string(),
            by,
            started_at: Utc::now(),
        }
    }
}

/// A unit's result as the record takes it: its report, or its error on one line.
pub fn outcome(result: &Result<UnitReport, Error>) -> Result<&UnitReport, String> {
    result.as_ref().map_err(|e| error_chain(e))
}

/// The export of a history unit as the record keeps it.
fn export_of(report: &UnitReport, attempt: &Attempt, exported_at: DateTime<Utc>) -> Export {
    let mut tables: BTreeMap<String, TableWrite> = BTreeMap::new();
    for p in &report.partitions {
        let t = tables.entry(p.table.to_string()).or_default();
        t.rows += p.written.rows as u64;
        t.files += p.written.files as u64;
        t.bytes += p.written.bytes;
    }
    Export {
        started_at: attempt.started_at,
        finished_at: Utc::now().max(attempt.started_at),
        exported_at,
        run_id: attempt.run_id.clone(),
        by: attempt.by,
        tables,
        rejects: report.rejects as u64,
        requests: report.requests as u64,
        open: report.open,
        unmapped: report.unmapped.clone(),
    }
}

fn failure_of(error: &str, attempt: &Attempt) -> Failure {
    Failure {
        started_at: attempt.started_at,
        failed_at: Utc::now().max(attempt.started_at),
        run_id: attempt.run_id.clone(),
        by: attempt.by,
        error: error.to_string(),
    }
}

/// Records the outcome of a history unit of `dataset`: its export (`Ok`) or its error
/// (`Err`, on one line). Never fails: a record that cannot be written is logged.
pub async fn record_unit(
    (store, account_id): (&StateStore, &str),
    dataset: &str,
    unit: &DayUnit,
    attempt: &Attempt,
    outcome: Result<&UnitReport, String>,
    exported_at: DateTime<Utc>,
) {
    let entity = unit.entity.as_deref();
    let result = update_month(store, dataset, account_id, Month::of(unit.day), |m| {
        let rec = m.entry(unit.day, entity);
        match &outcome {
            Ok(report) => rec.apply_export(export_of(report, attempt, exported_at)),
            Err(error) => rec.apply_failure(failure_of(error, attempt)),
        }
    })
    .await;
    if let Err(e) = result {
        warn!(dataset, %unit, error = %error_chain(&e), "Could not record the unit in the coverage record; its data is committed (`status --rebuild` restores the record from the files).");
    }
}

/// Records one snapshot poll of `entity`, made at `at`: on the entity's local day of `at`
/// (in `tz`) the poll itself (ok or failed, a suspected gap, its requests, rejects and
/// unmapped fields); on each day whose partition it added records to, those records.
pub async fn record_poll(
    (store, account_id): (&StateStore, &str),
    dataset: &str,
    tz: Tz,
    entity: &str,
    attempt: &Attempt,
    outcome: Result<&UnitReport, String>,
    at: DateTime<Utc>,
) {
    let poll_day = local_date(tz, at);
    let mut days: Vec<NaiveDate> = vec![poll_day];
    if let Ok(report) = &outcome {
        days.extend(report.partitions.iter().map(|p| p.day));
    }
    let mut months: Vec<Month> = days.iter().map(|d| Month::of(*d)).collect();
    months.sort();
    months.dedup();
    for month in months {
        let result = update_month(store, dataset, account_id, month, |m| {
            let outcome = match &outcome {
                Ok(r) => Ok(*r),
                Err(e) => Err(e.as_str()),
            };
            apply_poll(m, month, poll_day, entity, attempt, outcome, at);
            true
        })
        .await;
        if let Err(e) = result {
            warn!(dataset, entity, error = %error_chain(&e), "Could not record the poll in the coverage record; its data is committed.");
        }
    }
}

/// The part of one poll that falls in `month`'s object.
fn apply_poll(
    m: &mut CoverageMonth,
    month: Month,
    poll_day: NaiveDate,
    entity: &str,
    attempt: &Attempt,
    outcome: Result<&UnitReport, &str>,
    at: DateTime<Utc>,
) {
    if Month::of(poll_day) == month {
        let rec = m.entry(poll_day, Some(entity));
        let polls = rec.polls.get_or_insert_with(Polls::default);
        match outcome {
            Ok(report) => {
                polls.ok += 1;
                polls.gaps += u64::from(report.gap_suspected);
                polls.empty += u64::from(report.empty);
                polls.last_ok_at = polls.last_ok_at.max(Some(at));
                let e = touch(&mut rec.export, attempt, at);
                e.requests += report.requests as u64;
                e.rejects += report.rejects as u64;
                for (name, n) in &report.unmapped {
                    *e.unmapped.entry(name.clone()).or_default() += n;
                }
            }
            Err(error) => {
                polls.failed += 1;
                let f = failure_of(error, attempt);
                if rec
                    .failure
                    .as_ref()
                    .is_none_or(|old| old.started_at <= f.started_at)
                {
                    rec.failure = Some(f);
                }
            }
        }
    }
    if let Ok(report) = outcome {
        for p in report
            .partitions
            .iter()
            .filter(|p| Month::of(p.day) == month)
        {
            let rec = m.entry(p.day, Some(entity));
            let t = touch(&mut rec.export, attempt, at)
                .tables
                .entry(p.table.to_string())
                .or_default();
            t.rows += p.written.rows as u64;
            t.files += p.written.files as u64;
            t.bytes += p.written.bytes;
        }
    }
}

/// The export of a snapshot day, created when absent, its times moved to this poll's when
/// the poll began later than the one that set them.
fn touch<'a>(e: &'a mut Option<Export>, attempt: &Attempt, at: DateTime<Utc>) -> &'a mut Export {
    let finished_at = Utc::now().max(attempt.started_at);
    let e = e.get_or_insert_with(|| Export {
        started_at: attempt.started_at,
        finished_at,
        exported_at: at,
        run_id: attempt.run_id.clone(),
        by: attempt.by,
        tables: BTreeMap::new(),
        rejects: 0,
        requests: 0,
        open: false,
        unmapped: BTreeMap::new(),
    });
    if e.started_at <= attempt.started_at {
        (e.started_at, e.finished_at) = (attempt.started_at, finished_at);
        (e.exported_at, e.run_id) = (at, attempt.run_id.clone());
    }
    e
}

/// Compare-and-swap of one month's object: `change` gets the current month (empty when
/// absent) and says whether it changed anything (nothing is written otherwise).
async fn update_month(
    store: &StateStore,
    dataset: &str,
    account_id: &str,
    month: Month,
    mut change: impl FnMut(&mut CoverageMonth) -> bool,
) -> Result<(), StateError> {
    state::update_object::<CoverageMonth, _>(store, dataset, account_id, &month, |current| {
        let mut m = current.unwrap_or_default();
        change(&mut m).then_some(m)
    })
    .await
    .map(|_| ())
}

/// The coverage of `dataset` for the months holding `from..=to`: each month's object (empty
/// when absent), or the error that kept it from being read (a corrupt object: `status` says
/// so and `status --rebuild` replaces it).
pub async fn load(
    store: &StateStore,
    dataset: &str,
    account_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(Month, Result<CoverageMonth, StateError>)> {
    let mut out = Vec::new();
    for month in Month::span(from, to) {
        let read = state::load_object::<CoverageMonth>(store, dataset, account_id, &month).await;
        out.push((month, read.map(Option::unwrap_or_default)));
    }
    out
}

#[cfg(test)]
mod tests;
