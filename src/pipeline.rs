//! The pipeline: one scheduled run of any dataset, shared by the daemon and `run --once`, and
//! the one place the ordering lives: read state, plan the units, have the dataset fetch,
//! normalize and write each unit ([`crate::datasets`]), commit state only after the data it
//! describes, then emit the run metrics (outcome, duration, last success, coverage for the lag
//! gauge) and one summary log line. It also decides each unit's place in the account's request
//! budget: a poll is realtime, a history day scheduled inside the dataset's steady-state
//! window and catch-up before it ([`Priority::of_history_day`]). Callers pass a `stop` token that is checked between units
//! (between days, never inside a write); a run interrupted by shutdown commits the state of what
//! it finished and reports `cancelled`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument};

use crate::client::Priority;
use crate::coverage::{self, Attempt, Writer};
use crate::datasets::{
    Context, Dataset, DayScope, DayUnit, HistoryDataset, SnapshotDataset, UnitReport,
};
use crate::error_chain::error_chain;
use crate::metrics::Metrics;
use crate::sink::SinkError;
use crate::sources::extra::log_unmapped;
use crate::sources::window::{local_date, local_day_bounds};
use crate::state::{self, Watermark};

mod entities;

/// How a run ended (the `outcome` label of `smartassist_runs_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Some units were exported, then one failed.
    Partial,
    Failure,
    /// Shutdown stopped the run between steps; what finished is committed.
    Cancelled,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Partial => "partial",
            Outcome::Failure => "failure",
            Outcome::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub dataset: &'static str,
    /// `2024-05-09..2024-05-10` for a history dataset, `bot_id=B` for a snapshot poll.
    pub window: String,
    pub rows: usize,
    pub files: usize,
    pub bytes: u64,
    pub rejects: usize,
    pub requests: usize,
    pub duration: Duration,
    pub outcome: Outcome,
    pub gap_suspected: bool,
    /// One-line reason when the outcome is not success.
    pub error: Option<String>,
    /// The run's id (as in its log span and the coverage record).
    pub run_id: String,
    /// Unmapped fields of the exported records, by name (see [`UnitReport::unmapped`]).
    pub unmapped: BTreeMap<String, u64>,
    /// A snapshot poll (nothing resumes it: its failure is said as such in the log).
    pub poll: bool,
}

impl RunSummary {
    /// A run of `dataset` (over `window`) that failed before any unit of work, for `reason`.
    pub fn failed(dataset: &'static str, window: String, reason: String) -> RunSummary {
        let mut summary = RunSummary::new(dataset, window, "");
        summary.outcome = Outcome::Failure;
        summary.error = Some(reason);
        summary
    }

    fn new(dataset: &'static str, window: String, run_id: &str) -> RunSummary {
        RunSummary {
            run_id: run_id.to_string(),
            dataset,
            window,
            rows: 0,
            files: 0,
            bytes: 0,
            rejects: 0,
            requests: 0,
            duration: Duration::ZERO,
            outcome: Outcome::Success,
            gap_suspected: false,
            error: None,
            unmapped: BTreeMap::new(),
            poll: false,
        }
    }

    fn add(&mut self, r: &UnitReport) {
        self.rows += r.rows;
        self.files += r.written.files;
        self.bytes += r.written.bytes;
        self.rejects += r.rejects;
        self.requests += r.requests;
        for (name, n) in &r.unmapped {
            *self.unmapped.entry(name.clone()).or_default() += n;
        }
    }

    fn finish(mut self, metrics: &Metrics, started: Instant, now: DateTime<Utc>) -> RunSummary {
        self.duration = started.elapsed();
        metrics.run(self.dataset, self.outcome.label(), self.duration);
        if self.outcome == Outcome::Success {
            metrics.last_success(self.dataset, unix_seconds(Utc::now().max(now)));
        }
        self.log();
        log_unmapped(self.dataset, &self.unmapped);
        self
    }

    fn log(&self) {
        let duration_ms = self.duration.as_millis() as u64;
        match &self.error {
            None => info!(
                dataset = self.dataset,
                window = %self.window,
                rows = self.rows,
                files = self.files,
                bytes = self.bytes,
                rejects = self.rejects,
                requests = self.requests,
                duration_ms,
                outcome = self.outcome.label(),
                "Run finished."
            ),
            Some(e) if self.outcome == Outcome::Cancelled => warn!(
                dataset = self.dataset,
                window = %self.window,
                rows = self.rows,
                files = self.files,
                bytes = self.bytes,
                duration_ms,
                outcome = self.outcome.label(),
                reason = %e,
                "Run stopped by shutdown; what finished is committed."
            ),
            Some(e) => error!(
                dataset = self.dataset,
                window = %self.window,
                rows = self.rows,
                files = self.files,
                bytes = self.bytes,
                rejects = self.rejects,
                requests = self.requests,
                duration_ms,
                outcome = self.outcome.label(),
                error = %e,
                "{}",
                if self.poll {
                    "Poll did not complete; nothing of it was written, the next poll runs at its time."
                } else {
                    "Run did not complete; the next run resumes from the stored state."
                }
            ),
        }
    }
}

/// The days a run of a history dataset (or of one of its entities) exports, from its previous
/// watermark: [`state::plan_days`] for a dataset of any day; today alone for one whose past
/// days cannot be fetched (no lookback, no catch-up).
fn plan_days(
    scope: DayScope,
    previous: Option<&Watermark>,
    today: chrono::NaiveDate,
    schedule: &crate::datasets::HistoryKeys,
) -> Vec<chrono::NaiveDate> {
    match scope {
        DayScope::AnyDay => state::plan_days(
            previous.map(|p| p.through_day),
            today,
            schedule.lookback_days,
            schedule.max_days_per_run,
        ),
        DayScope::TodayOnly => vec![today],
    }
}

fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// One scheduled run of a history dataset: every local day from (watermark - lookback_days) up
/// to today, at most `max_days_per_run` of them, in order; a failed day does not stop the
/// later ones, `stop` does; then advance the watermark over the committed prefix. A dataset
/// with entities does this for each entity on its own watermark, several entities at once
/// ([`entities`]).
pub async fn run_history(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    stop: &CancellationToken,
    now: DateTime<Utc>,
) -> RunSummary {
    let run_id = uuid::Uuid::new_v4();
    let span = tracing::info_span!("run", dataset = dataset.info().name, %run_id);
    run_history_inner(dataset, cx, stop, now, &run_id.to_string())
        .instrument(span)
        .await
}

async fn run_history_inner(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    stop: &CancellationToken,
    now: DateTime<Utc>,
    run_id: &str,
) -> RunSummary {
    let started = Instant::now();
    if !dataset.entities().is_empty() {
        return entities::run(dataset, cx, stop, now, run_id).await.finish(
            &cx.metrics,
            started,
            now,
        );
    }
    let name = dataset.info().name;
    let schedule = dataset.schedule();
    let state_name = state::watermark_name(name, &cx.account_id);
    let previous = match state::load::<Watermark>(&cx.state, &state_name).await {
        Ok(p) => p,
        Err(e) => {
            let mut s = RunSummary::new(name, "-".into(), run_id);
            s.outcome = Outcome::Failure;
            s.error = Some(error_chain(&e));
            return s.finish(&cx.metrics, started, now);
        }
    };
    if let Some(p) = &previous {
        cx.metrics
            .set_covered(name, &cx.account_id, p.covered_until);
    }
    let today = local_date(schedule.timezone, now);
    let plan = plan_days(dataset.day_scope(), previous.as_ref(), today, schedule);
    let window = match (plan.first(), plan.last()) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "-".into(),
    };
    let mut summary = RunSummary::new(name, window, run_id);
    let days_done = export_days(dataset, cx, stop, &plan, today, now, &mut summary).await;
    let mark = next_watermark(
        previous.as_ref(),
        &plan[..days_done],
        schedule.timezone,
        now,
    );
    if let Some(mark) = mark {
        let key = (name, cx.account_id.as_str());
        store_watermark(cx, key, &state_name, &mark, &mut summary).await;
    }
    summary.finish(&cx.metrics, started, now)
}

/// Exports the units of the planned days in order (an account-wide dataset: one unit per
/// day). Stops on `stop`. Returns how many days of `plan`, from its start, were exported whole:
/// the watermark stops before the first failed day, so the next run retries that day.
async fn export_days(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    stop: &CancellationToken,
    plan: &[chrono::NaiveDate],
    today: chrono::NaiveDate,
    now: DateTime<Utc>,
    summary: &mut RunSummary,
) -> usize {
    let mut days = DaysRun::default();
    let prefix = export_in_order(
        dataset,
        cx,
        stop,
        (plan, None),
        today,
        now,
        &summary.run_id,
        &mut days,
    )
    .await;
    days.settle_into(summary);
    prefix
}

/// What the days of one run (or of one entity in it) did.
#[derive(Debug, Default)]
struct DaysRun {
    reports: Vec<UnitReport>,
    /// `2024-05-01 st-bot-1: HTTP 404 ...`, one per failed unit.
    failed: Vec<String>,
    /// Why shutdown stopped it, when it did.
    cancelled: Option<String>,
}

impl DaysRun {
    /// Adds what was done to `summary` and sets its outcome: cancelled when shutdown stopped
    /// it; partial or failed, naming every failed unit, when a unit failed.
    fn settle_into(self, summary: &mut RunSummary) {
        for r in &self.reports {
            summary.add(r);
        }
        if let Some(reason) = self.cancelled {
            summary.outcome = Outcome::Cancelled;
            summary.error = Some(reason);
            return;
        }
        let mut failed = self.failed;
        if failed.is_empty() {
            return;
        }
        summary.outcome = if self.reports.is_empty() {
            Outcome::Failure
        } else {
            Outcome::Partial
        };
        let n = failed.len();
        summary.error = Some(if n == 1 {
            failed.remove(0)
        } else {
            format!("{n} units failed: {}", failed.join("; "))
        });
    }

    fn absorb(&mut self, other: DaysRun) {
        self.reports.extend(other.reports);
        self.failed.extend(other.failed);
        if self.cancelled.is_none() {
            self.cancelled = other.cancelled;
        }
    }
}

/// Exports the days of `plan` in order, of `entity` (or account-wide), recording each unit's
/// coverage. A failed day does not stop the later ones (they are written; the watermark
/// stops before the failed day). Stops on `stop`, between units. Returns how many days of
/// `plan`, from its start, were exported.
#[allow(clippy::too_many_arguments)] // The run's fixed inputs; a struct would only rename them.
async fn export_in_order(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    stop: &CancellationToken,
    (plan, entity): (&[chrono::NaiveDate], Option<&str>),
    today: chrono::NaiveDate,
    now: DateTime<Utc>,
    run_id: &str,
    out: &mut DaysRun,
) -> usize {
    let name = dataset.info().name;
    let lookback_days = dataset.schedule().lookback_days;
    let mut whole_prefix = None;
    for (done, day) in plan.iter().enumerate() {
        if stop.is_cancelled() {
            out.cancelled = Some("stopped by shutdown between days".into());
            return whole_prefix.unwrap_or(done);
        }
        let priority = Priority::of_history_day(*day, today, lookback_days);
        let day_cx = cx.for_work(name, priority);
        let unit = DayUnit {
            day: *day,
            entity: entity.map(str::to_string),
        };
        let attempt = Attempt::now(run_id, Writer::Run);
        let result = dataset.export_day(&day_cx, &unit, now).await;
        // A unit abandoned by shutdown did not fail: it is simply not recorded.
        if result.is_ok() || !stop.is_cancelled() {
            let outcome = coverage::outcome(&result);
            coverage::record_unit(coverage::target(cx), name, &unit, &attempt, outcome, now).await;
        }
        match result {
            Ok(r) => out.reports.push(r),
            Err(_) if stop.is_cancelled() => {
                out.cancelled = Some(format!("{unit}: stopped by shutdown"));
                return whole_prefix.unwrap_or(done);
            }
            Err(e) => {
                out.failed.push(format!("{unit}: {}", error_chain(&e)));
                whole_prefix.get_or_insert(done);
            }
        }
    }
    whole_prefix.unwrap_or(plan.len())
}

/// Stores `mark` unless another writer stored a later one meanwhile. The data is committed
/// already: a failure only makes the next run repeat these days.
async fn store_watermark(
    cx: &Context,
    (name, covered_key): (&'static str, &str),
    state_name: &str,
    mark: &Watermark,
    summary: &mut RunSummary,
) -> bool {
    let merged = state::update(&cx.state, state_name, |current: Option<Watermark>| {
        merge_watermark(current.as_ref(), mark)
    })
    .await;
    match merged {
        Err(e) => {
            warn!(error = %error_chain(&e), "Could not store the watermark; the next run repeats these days.");
            if summary.error.is_none() {
                summary.outcome = Outcome::Partial;
                summary.error = Some(error_chain(&e));
            }
            false
        }
        Ok(_) => {
            cx.metrics
                .set_covered(name, covered_key, mark.covered_until);
            true
        }
    }
}

/// The watermark to store after a run that exported the days of `exported` (a prefix of its
/// plan), or `None` when it exported none.
fn next_watermark(
    previous: Option<&Watermark>,
    exported: &[chrono::NaiveDate],
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<Watermark> {
    let last = *exported.last()?;
    let committed = vec![true; exported.len()];
    let through =
        state::advance_through_day(previous.map(|p| p.through_day), exported, &committed)?;
    // The watermark day was (re-)exported in this run when it is among the exported days.
    let covered_until = if through == last {
        local_day_bounds(tz, through).end.min(now)
    } else {
        previous.map_or(now, |p| p.covered_until)
    };
    Some(Watermark {
        through_day: through,
        covered_until,
        updated_at: Utc::now(),
    })
}

/// What to store when this run's watermark is `ours` and the stored one is now `current`
/// (another writer may have stored one since this run read it): never move it backwards;
/// `None` keeps `current`.
fn merge_watermark(current: Option<&Watermark>, ours: &Watermark) -> Option<Watermark> {
    match current {
        Some(c) if c.through_day > ours.through_day => None,
        Some(c) if c.through_day == ours.through_day && c.covered_until > ours.covered_until => {
            None
        }
        _ => Some(ours.clone()),
    }
}

/// Removes staging files left by a crash (older than the output's staging grace) under every table of
/// `datasets`. Called once at the start of a run, a daemon or a backfill.
pub async fn sweep_staging(cx: &Context, datasets: &[Dataset]) -> Result<(), SinkError> {
    for dataset in datasets {
        let name = dataset.name();
        let mut removed = cx.state.cleanup_staging(name).await?;
        for table in dataset.info().tables {
            removed += cx.sink.cleanup_staging(table).await?;
        }
        if removed > 0 {
            info!(
                dataset = name,
                removed, "Removed staging files left by an interrupted write."
            );
        }
    }
    Ok(())
}

/// One poll of one entity of a snapshot dataset, merged by key.
pub async fn run_snapshot(
    dataset: &dyn SnapshotDataset,
    cx: &Context,
    entity: &str,
    now: DateTime<Utc>,
) -> RunSummary {
    let run_id = uuid::Uuid::new_v4();
    let name = dataset.info().name;
    let kind = dataset.entity_kind();
    let span = tracing::info_span!("run", dataset = name, entity, %run_id);
    async {
        let started = Instant::now();
        let mut summary = RunSummary::new(name, format!("{kind}_id={entity}"), &run_id.to_string());
        summary.poll = true;
        let cx = cx.for_work(name, Priority::Realtime);
        let attempt = Attempt::now(&run_id.to_string(), Writer::Poll);
        let result = dataset.poll(&cx, entity, now).await;
        let outcome = coverage::outcome(&result);
        coverage::record_poll(
            coverage::target(&cx),
            name,
            dataset.timezone(),
            entity,
            &attempt,
            outcome,
            now,
        )
        .await;
        match result {
            Ok(r) => {
                summary.add(&r);
                summary.gap_suspected = r.gap_suspected;
                cx.metrics.set_covered(name, entity, now);
            }
            Err(e) => {
                summary.requests = 1;
                summary.outcome = Outcome::Failure;
                summary.error = Some(error_chain(&e));
            }
        }
        summary.finish(&cx.metrics, started, now)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watermark_stored_meanwhile_by_another_writer_never_moves_back() {
        let mark = |day: &str, covered: &str| Watermark {
            through_day: day.parse().expect("day"),
            covered_until: covered.parse().expect("ts"),
            updated_at: covered.parse().expect("ts"),
        };
        let ours = mark("2024-05-10", "2024-05-10T12:00:00Z");
        assert_eq!(merge_watermark(None, &ours), Some(ours.clone()));
        let older = mark("2024-05-09", "2024-05-10T00:00:00Z");
        assert_eq!(merge_watermark(Some(&older), &ours), Some(ours.clone()));
        let newer_day = mark("2024-05-11", "2024-05-11T01:00:00Z");
        assert_eq!(merge_watermark(Some(&newer_day), &ours), None);
        let same_day_later = mark("2024-05-10", "2024-05-10T13:00:00Z");
        assert_eq!(merge_watermark(Some(&same_day_later), &ours), None);
    }

    #[test]
    fn outcome_labels_match_the_metric_documentation() {
        let labels: Vec<&str> = [
            Outcome::Success,
            Outcome::Partial,
            Outcome::Failure,
            Outcome::Cancelled,
        ]
        .iter()
        .map(|o| o.label())
        .collect();
        assert_eq!(labels, vec!["success", "partial", "failure", "cancelled"]);
    }
}
