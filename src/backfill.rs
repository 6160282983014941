//! Backfill: export a range of local days of every selected history dataset with bounded
//! concurrency through the account's request budget at catch-up priority (a snapshot poll at
//! realtime), writing each day as soon as it is complete and
//! carrying on when a day fails. Failed days get one more try at the end; whatever still fails
//! is reported (the command exits 1). Snapshot datasets have no history, so a backfill of one
//! takes the current snapshot of each entity.
//!
//! The unit of work is a day, not a (day, page) request: the pages of one day are sequential
//! because only `hasMore` says whether another page exists (the API echoes no total count), and
//! `concurrency` days in flight already keep every rate-limit slot busy. Each day in flight
//! runs on its own task, so with the rate limit lifted the days use every core (one day
//! normalizing while another decodes). Memory does not depend on `concurrency` or the range
//! length: response bodies are read under the context's page gate ([`crate::client::MemoryGate`],
//! at most `api.page_memory_bytes` of them at once), and a day waiting for its next page holds
//! only the compressed Parquet bytes written so far.
//! Backfill never writes watermarks: re-exporting old days cannot move them. Every unit it
//! exports, and every unit that still fails at the end, is written to the coverage record
//! ([`crate::coverage`]); `--missing` ([`Selection::Holes`]) reads that record (and the
//! watermark, for what is provisional) to export only the units it classifies as holes.
//! Progress (bar on a terminal, log lines otherwise) is reported by [`crate::progress`].
//! A history dataset of [`DayScope::TodayOnly`] (a list the API serves only as it is now) has
//! no past to fetch: whatever the range, it exports today's snapshot day, and the report says
//! so (the CLI refuses such a range when the dataset is named with `--dataset`).
//!
//! **The run's instant.** Each dataset's backfill reads the clock once, when it starts: that
//! instant decides "today" (the snapshot day of a [`DayScope::TodayOnly`] list) and is the
//! `exported_at` of every unit it exports, so a run that starts just before local midnight and
//! fetches after it still exports the day it planned (a second reading could name the next
//! day and fail the unit as a past snapshot day). [`backfill_selected_at`] takes the clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::client::Priority;
use crate::coverage::{self, Attempt, Writer};
use crate::datasets::history::unit_key;
use crate::datasets::{
    Context, Dataset, DayScope, DayUnit, HistoryDataset, Kind, SnapshotDataset, UnitReport,
};
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::progress::{BackfillProgress, ProgressMode};
use crate::sources::extra::log_unmapped;
use crate::sources::window::local_date;

/// Which units of the range a backfill exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every unit (but those `--skip-existing` skips).
    #[default]
    All,
    /// Only the units the coverage record classifies as MISSING or FAILED, and with
    /// `provisional` also the PROVISIONAL ones (see [`crate::coverage::status`]). Snapshot
    /// datasets keep no history and are left alone.
    Holes { provisional: bool },
}

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The datasets to export (already filtered by the caller).
    pub datasets: Vec<Dataset>,
    pub concurrency: usize,
    pub skip_existing: bool,
}

/// What a backfill did for one dataset.
#[derive(Debug, Clone)]
pub struct DatasetBackfill {
    pub dataset: &'static str,
    pub kind: Kind,
    /// History: one report per exported unit (a day, or an entity's day), in unit order.
    pub days: Vec<UnitReport>,
    pub skipped_days: Vec<DayUnit>,
    pub failed_days: Vec<(DayUnit, String)>,
    /// Snapshot: what kind of entity was polled (`bot`).
    pub entity_kind: &'static str,
    pub entities: Vec<UnitReport>,
    pub failed_entities: Vec<(String, String)>,
    /// Why nothing was done for it, when nothing was.
    pub note: Option<String>,
    /// A [`DayScope::TodayOnly`] dataset asked for other days: today's snapshot day, which it
    /// exported instead (past snapshot days cannot be fetched).
    pub today_instead: Option<NaiveDate>,
}

impl DatasetBackfill {
    /// The unmapped fields of every exported unit, by name (see [`UnitReport::unmapped`]).
    pub fn unmapped(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for (name, n) in self
            .days
            .iter()
            .chain(&self.entities)
            .flat_map(|u| &u.unmapped)
        {
            *all.entry(name.clone()).or_default() += n;
        }
        all
    }

    fn new(dataset: &'static str, kind: Kind, entity_kind: &'static str) -> DatasetBackfill {
        DatasetBackfill {
            dataset,
            kind,
            days: Vec::new(),
            skipped_days: Vec::new(),
            failed_days: Vec::new(),
            entity_kind,
            entities: Vec::new(),
            failed_entities: Vec::new(),
            note: None,
            today_instead: None,
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, Default)]
pub struct BackfillReport {
    pub datasets: Vec<DatasetBackfill>,
    pub elapsed: Duration,
}

impl BackfillReport {
    fn units(&self) -> impl Iterator<Item = &UnitReport> {
        self.datasets
            .iter()
            .flat_map(|d| d.days.iter().chain(&d.entities))
    }
    /// Days exported, over every history dataset.
    pub fn days(&self) -> usize {
        self.datasets.iter().map(|d| d.days.len()).sum()
    }
    pub fn skipped_days(&self) -> usize {
        self.datasets.iter().map(|d| d.skipped_days.len()).sum()
    }
    pub fn failed_days(&self) -> usize {
        self.datasets.iter().map(|d| d.failed_days.len()).sum()
    }
    pub fn rows(&self) -> usize {
        self.units().map(|u| u.rows).sum()
    }
    pub fn requests(&self) -> usize {
        self.units().map(|u| u.requests).sum()
    }
    pub fn rejects(&self) -> usize {
        self.units().map(|u| u.rejects).sum()
    }

    /// `Err(Error::Partial)` when anything failed, listing the failed units.
    pub fn into_result(self) -> Result<BackfillReport, Error> {
        let mut total = 0;
        let mut units = Vec::new();
        for d in &self.datasets {
            total += d.days.len() + d.failed_days.len() + d.entities.len();
            total += d.failed_entities.len();
            units.extend(d.failed_days.iter().map(|(day, _)| day.to_string()));
            units.extend(
                d.failed_entities
                    .iter()
                    .map(|(e, _)| format!("{} {e}", d.entity_kind)),
            );
        }
        if units.is_empty() {
            Ok(self)
        } else {
            Err(Error::Partial {
                failed: units.len(),
                total,
                units,
            })
        }
    }
}

impl BackfillReport {
    /// What the command prints: one summary line, one per polled entity, one per failure.
    pub fn lines(&self, req: &BackfillRequest) -> Vec<String> {
        let mut lines = vec![format!(
            "Backfill {}..{}: {} day(s) exported, {} skipped, {} failed; {} rows, {} rejects, {} requests in {:.1}s.",
            req.from,
            req.to,
            self.days(),
            self.skipped_days(),
            self.failed_days(),
            self.rows(),
            self.rejects(),
            self.requests(),
            self.elapsed.as_secs_f64()
        )];
        for d in &self.datasets {
            if let Some(note) = &d.note {
                lines.push(format!("{}: {note}", d.dataset));
            }
            let kind = capitalized(d.entity_kind);
            for r in &d.entities {
                lines.push(format!(
                    "{kind} {}: {} session(s) returned, {} new.",
                    r.unit, r.returned, r.rows
                ));
            }
        }
        for d in &self.datasets {
            if let Some(today) = d.today_instead {
                lines.push(format!(
                    "{}: past snapshot days cannot be fetched (the API serves the list only as it is now); took today's snapshot, {today}.",
                    d.dataset
                ));
            }
        }
        for d in &self.datasets {
            for (day, why) in &d.failed_days {
                lines.push(format!("FAILED {day}: {why}"));
            }
            for (entity, why) in &d.failed_entities {
                lines.push(format!("FAILED {} {entity}: {why}", d.entity_kind));
            }
        }
        lines
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Inclusive list of days.
pub fn days_in_range(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days().take_while(|d| *d <= to).collect()
}

/// Run a backfill. Errors of individual days are collected in the report, not returned.
pub async fn backfill(cx: &Context, req: &BackfillRequest) -> Result<BackfillReport, Error> {
    backfill_showing(cx, req, ProgressMode::detect()).await
}

/// [`backfill`] with its progress shown (or published) as `progress` says.
pub async fn backfill_showing(
    cx: &Context,
    req: &BackfillRequest,
    progress: ProgressMode,
) -> Result<BackfillReport, Error> {
    backfill_selected(cx, req, progress, Selection::All).await
}

/// [`backfill_showing`] of the units `selection` picks.
pub async fn backfill_selected(
    cx: &Context,
    req: &BackfillRequest,
    progress: ProgressMode,
    selection: Selection,
) -> Result<BackfillReport, Error> {
    backfill_selected_at(cx, req, progress, selection, &Utc::now).await
}

/// The clock a backfill reads: [`Utc::now`], or a test's.
pub type Clock = dyn Fn() -> DateTime<Utc> + Send + Sync;

/// [`backfill_selected`] reading `clock` for the instant each dataset's run starts (see the
/// module docs, "The run's instant").
pub async fn backfill_selected_at(
    cx: &Context,
    req: &BackfillRequest,
    progress: ProgressMode,
    selection: Selection,
    clock: &Clock,
) -> Result<BackfillReport, Error> {
    if req.from > req.to {
        return Err(Error::Usage(format!(
            "--from {} is after --to {}",
            req.from, req.to
        )));
    }
    let started = Instant::now();
    crate::pipeline::sweep_staging(cx, &req.datasets).await?;
    let mut report = BackfillReport::default();
    let run_id = uuid::Uuid::new_v4().to_string();
    for dataset in &req.datasets {
        let plan = Plan {
            req,
            run_id: &run_id,
            selection,
            progress: &progress,
            clock,
        };
        let done = match dataset {
            Dataset::History(d) => backfill_history(d, cx, &plan).await?,
            Dataset::Snapshot(d) if selection == Selection::All => {
                snapshot_now(d.as_ref(), cx, &run_id, clock).await
            }
            Dataset::Snapshot(d) => {
                let info = d.info();
                let mut out = DatasetBackfill::new(info.name, Kind::Snapshot, d.entity_kind());
                out.note = Some(
                    "a snapshot dataset keeps no history: --missing leaves it alone".to_string(),
                );
                out
            }
        };
        log_unmapped(done.dataset, &done.unmapped());
        report.datasets.push(done);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// One backfill's settings, shared by its datasets.
struct Plan<'a> {
    req: &'a BackfillRequest,
    run_id: &'a str,
    selection: Selection,
    progress: &'a ProgressMode,
    clock: &'a Clock,
}

/// The days of the range a dataset exports: the range itself, or for a
/// [`DayScope::TodayOnly`] dataset today's snapshot day whatever the range (then also
/// returned on its own when the range asked for other days); today is that of `started_at`.
fn planned_days(
    dataset: &dyn HistoryDataset,
    req: &BackfillRequest,
    started_at: DateTime<Utc>,
) -> (Vec<NaiveDate>, Option<NaiveDate>) {
    let days = days_in_range(req.from, req.to);
    if dataset.day_scope() != DayScope::TodayOnly {
        return (days, None);
    }
    let today = local_date(dataset.schedule().timezone, started_at);
    if days == [today] {
        return (days, None);
    }
    let name = dataset.info().name;
    warn!(dataset = name, from = %req.from, to = %req.to, %today, "Past snapshot days cannot be fetched (the API serves the list only as it is now); taking today's snapshot instead.");
    (vec![today], Some(today))
}

/// The units of the range the backfill exports, and those it skips.
async fn select_units(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    req: &BackfillRequest,
    selection: Selection,
    days: Vec<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<(Vec<DayUnit>, Vec<DayUnit>), Error> {
    let wanted = match selection {
        Selection::All => None,
        Selection::Holes { provisional } => {
            Some(holes(dataset, cx, (req.from, req.to), provisional, now).await?)
        }
    };
    let (mut units, mut skipped) = (Vec::new(), Vec::new());
    for day in days {
        for unit in DayUnit::of_day(day, dataset.entities()) {
            let skip = match &wanted {
                Some(wanted) => !wanted.contains(&unit),
                None if req.skip_existing => {
                    let key = unit_key(dataset.info().primary(), &cx.account_id, &unit)?;
                    cx.sink.partition_exists(&key).await?
                }
                None => false,
            };
            if skip {
                skipped.push(unit);
            } else {
                units.push(unit);
            }
        }
    }
    Ok((units, skipped))
}

/// The units of `from..=to` the coverage record classifies as holes at `now` (and, with
/// `provisional`, as provisional). An unreadable record is an error: its holes are unknown.
async fn holes(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    (from, to): (NaiveDate, NaiveDate),
    provisional: bool,
    now: DateTime<Utc>,
) -> Result<std::collections::HashSet<DayUnit>, Error> {
    use crate::coverage::status::{self, DatasetFacts, UnitState};
    let facts = DatasetFacts::history(dataset);
    let stored = status::read(&cx.state, &facts, &cx.account_id, from, to).await;
    if let Some(problem) = stored.problems.first() {
        return Err(Error::Usage(format!(
            "{}: cannot tell its holes: {problem}",
            facts.name
        )));
    }
    let report = status::classify(&facts, &stored, (from, to), now, "");
    Ok(report
        .units
        .into_iter()
        .filter(|u| u.status.is_hole() || (provisional && u.status == UnitState::Provisional))
        .map(|u| DayUnit {
            day: u.day,
            entity: u.entity,
        })
        .collect())
}

async fn backfill_history(
    dataset: &Arc<dyn HistoryDataset>,
    cx: &Context,
    plan: &Plan<'_>,
) -> Result<DatasetBackfill, Error> {
    let (req, progress, run_id) = (plan.req, plan.progress, plan.run_id);
    let name = dataset.info().name;
    let cx = &cx.for_work(name, Priority::CatchUp);
    let mut out = DatasetBackfill::new(name, Kind::History, "");
    // Read once: the day planned and the exported_at of its units agree (module docs).
    let exported_at = (plan.clock)();
    let (days, today_instead) = planned_days(dataset.as_ref(), req, exported_at);
    out.today_instead = today_instead;
    let (units, skipped) =
        select_units(dataset.as_ref(), cx, req, plan.selection, days, exported_at).await?;
    out.skipped_days = skipped;
    info!(dataset = name, from = %req.from, to = %req.to, units = units.len(), skipped = out.skipped_days.len(), concurrency = req.concurrency, "Backfill started.");
    let progress = BackfillProgress::start(name, units.len() as u64, &cx.client, progress.clone());
    let mut failed = Vec::new();
    let mut units = units.into_iter();
    // Each unit on its own task, so the units in flight run on every core (normalizing one
    // day while another decodes), not in turns on the task that awaits them. Dropping the set
    // (the backfill cancelled) aborts them, as dropping their futures did.
    let mut running = JoinSet::new();
    loop {
        while running.len() < req.concurrency.max(1) {
            let Some(unit) = units.next() else { break };
            running.spawn(first_attempt(dataset, cx, run_id, unit, exported_at));
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (unit, result, attempt) = match joined {
            Ok(done) => done,
            // A panicking export is a bug: let it surface as it did on this task.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Nothing aborts a unit's task while this loop owns the set.
            Err(e) => unreachable!("backfill unit task cancelled: {e}"),
        };
        match result {
            Ok(r) => {
                progress.day_done(r.rows);
                out.days.push(r);
            }
            Err(e) => {
                warn!(dataset = name, %unit, error = %error_chain(&e), "Day failed; it will be retried at the end.");
                progress.day_failed();
                failed.push((unit, attempt));
            }
        }
    }
    retry_failed(
        dataset,
        cx,
        (run_id, exported_at),
        failed,
        &progress,
        &mut out,
    )
    .await;
    progress.finish();
    out.days.sort_by(|a, b| a.unit.cmp(&b.unit));
    Ok(out)
}

/// The retry round: each unit whose first attempt failed is exported once more, in turn; a
/// unit failing again is recorded (as of its first attempt) and reported failed.
async fn retry_failed(
    dataset: &Arc<dyn HistoryDataset>,
    cx: &Context,
    (run_id, exported_at): (&str, DateTime<Utc>),
    failed: Vec<(DayUnit, Attempt)>,
    progress: &BackfillProgress,
    out: &mut DatasetBackfill,
) {
    let name = dataset.info().name;
    for (unit, first) in failed {
        progress.retrying();
        let attempt = Attempt::now(run_id, Writer::Backfill);
        match export_unit(dataset.as_ref(), cx, &unit, &attempt, exported_at).await {
            Ok(r) => {
                progress.day_done(r.rows);
                out.days.push(r);
            }
            Err(e) => {
                let msg = error_chain(&e);
                // Recorded as of the first attempt: a unit another writer exported meanwhile
                // keeps its export.
                coverage::record_unit(
                    coverage::target(cx),
                    name,
                    &unit,
                    &first,
                    Err(msg.clone()),
                    exported_at,
                )
                .await;
                error!(dataset = name, %unit, error = %msg, "Day failed again; not exported.");
                progress.day_failed();
                out.failed_days.push((unit, msg));
            }
        }
    }
}

/// The first attempt at `unit`, as a task of its own: what it exported, or why not.
fn first_attempt(
    dataset: &Arc<dyn HistoryDataset>,
    cx: &Context,
    run_id: &str,
    unit: DayUnit,
    exported_at: DateTime<Utc>,
) -> impl Future<Output = (DayUnit, Result<UnitReport, Error>, Attempt)> + Send + 'static {
    let (dataset, cx, run_id) = (Arc::clone(dataset), cx.clone(), run_id.to_string());
    async move {
        let attempt = Attempt::now(&run_id, Writer::Backfill);
        let result = export_unit(dataset.as_ref(), &cx, &unit, &attempt, exported_at).await;
        (unit, result, attempt)
    }
}

/// Exports one unit and, when it succeeded, records it in the coverage record.
async fn export_unit(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    unit: &DayUnit,
    attempt: &Attempt,
    exported_at: DateTime<Utc>,
) -> Result<UnitReport, Error> {
    let name = dataset.info().name;
    let result = dataset.export_day(cx, unit, exported_at).await;
    if let Ok(r) = &result {
        coverage::record_unit(
            coverage::target(cx),
            name,
            unit,
            attempt,
            Ok(r),
            exported_at,
        )
        .await;
    }
    result
}

/// A snapshot dataset has no history: take the current snapshot of each entity.
async fn snapshot_now(
    dataset: &dyn SnapshotDataset,
    cx: &Context,
    run_id: &str,
    clock: &Clock,
) -> DatasetBackfill {
    let name = dataset.info().name;
    let mut out = DatasetBackfill::new(name, Kind::Snapshot, dataset.entity_kind());
    let cx = &cx.for_work(name, Priority::Realtime);
    let entities = match dataset.current_entities(cx, Utc::now()).await {
        Ok(Some(entities)) => entities,
        Ok(None) => {
            out.note = Some(format!(
                "no {} list in the output yet: nothing polled",
                dataset.entity_kind()
            ));
            return out;
        }
        Err(e) => {
            let msg = error_chain(&e);
            error!(dataset = name, error = %msg, "Could not read the list of entities to poll.");
            out.failed_entities.push(("list".to_string(), msg));
            return out;
        }
    };
    for entity in &entities {
        let attempt = Attempt::now(run_id, Writer::Backfill);
        let at = clock();
        let result = dataset.poll(cx, entity, at).await;
        let outcome = coverage::outcome(&result);
        coverage::record_poll(
            coverage::target(cx),
            name,
            dataset.timezone(),
            entity,
            &attempt,
            outcome,
            at,
        )
        .await;
        match result {
            Ok(r) => out.entities.push(r),
            Err(e) => {
                let msg = error_chain(&e);
                error!(dataset = out.dataset, entity = %entity, error = %msg, "Snapshot failed.");
                out.failed_entities.push((entity.clone(), msg));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_inclusive() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(
            days_in_range(d("2024-02-28"), d("2024-03-01")),
            vec![d("2024-02-28"), d("2024-02-29"), d("2024-03-01")]
        );
        assert_eq!(days_in_range(d("2024-03-01"), d("2024-03-01")).len(), 1);
        assert!(days_in_range(d("2024-03-02"), d("2024-03-01")).is_empty());
    }
}
