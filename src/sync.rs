//! One scheduled run of a job, shared by the daemon and `run --once`: read state, plan what to
//! fetch, export through [`Exporter`], commit state only after the data, then emit the run
//! metrics (outcome, last success, watermark lag) and one summary log line. Callers pass a
//! `stop` token that is checked between steps (between days, never inside a write); a run
//! interrupted by shutdown commits the state of what it finished and reports `cancelled`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument};

use crate::backfill::error_chain;
use crate::metrics;
use crate::model::Dataset;
use crate::pipeline::Exporter;
use crate::sources::window::{local_date, local_day_bounds};
use crate::state::{self, UserStatusWatermark};

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
    pub dataset: Dataset,
    /// `2024-05-09..2024-05-10` for UserStatus, `bot_id=B` for an intent poll.
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
}

impl RunSummary {
    fn new(dataset: Dataset, window: String) -> RunSummary {
        RunSummary {
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
        }
    }

    fn finish(mut self, started: Instant, now: DateTime<Utc>) -> RunSummary {
        self.duration = started.elapsed();
        metrics::run(self.dataset.name(), self.outcome.label());
        if self.outcome == Outcome::Success {
            metrics::last_success(self.dataset.name(), unix_seconds(Utc::now().max(now)));
        }
        refresh_watermark_lag(Utc::now());
        let duration_ms = self.duration.as_millis() as u64;
        match &self.error {
            None => info!(
                dataset = self.dataset.name(),
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
                dataset = self.dataset.name(),
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
                dataset = self.dataset.name(),
                window = %self.window,
                rows = self.rows,
                files = self.files,
                bytes = self.bytes,
                rejects = self.rejects,
                requests = self.requests,
                duration_ms,
                outcome = self.outcome.label(),
                error = %e,
                "Run did not complete; the next run resumes from the stored state."
            ),
        }
        self
    }
}

fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// How far each dataset's data is known to be exported, for the lag gauge (updated by runs,
/// re-rendered on every scrape so the lag grows while nothing succeeds).
type Coverage = Mutex<BTreeMap<(Dataset, String), DateTime<Utc>>>;

fn covered() -> &'static Coverage {
    static COVERED: OnceLock<Coverage> = OnceLock::new();
    COVERED.get_or_init(Default::default)
}

fn set_covered(dataset: Dataset, unit: &str, until: DateTime<Utc>) {
    covered()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((dataset, unit.to_string()), until);
}

/// Set `smartassist_watermark_lag_seconds` per dataset from the oldest unit's coverage:
/// UserStatus `now - covered_until` of the watermark; IntentRealtimeData `now - last successful
/// poll` of the least recently polled bot.
pub fn refresh_watermark_lag(now: DateTime<Utc>) {
    let map = covered().lock().unwrap_or_else(|e| e.into_inner());
    for dataset in Dataset::ALL {
        if let Some(oldest) = map
            .iter()
            .filter(|((d, _), _)| *d == dataset)
            .map(|(_, t)| *t)
            .min()
        {
            let lag = (now - oldest).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::watermark_lag(dataset.name(), lag);
        }
    }
}

/// One scheduled UserStatus run: every local day from (watermark - lookback_days) up to today,
/// at most `max_days_per_run` of them, in order; stop at the first failure or on `stop`; then
/// advance the watermark over the committed prefix.
pub async fn sync_user_status(
    exporter: &Exporter,
    stop: &CancellationToken,
    now: DateTime<Utc>,
) -> RunSummary {
    let run_id = uuid::Uuid::new_v4();
    let span = tracing::info_span!("run", dataset = "user_status", %run_id);
    sync_user_status_inner(exporter, stop, now)
        .instrument(span)
        .await
}

async fn sync_user_status_inner(
    exporter: &Exporter,
    stop: &CancellationToken,
    now: DateTime<Utc>,
) -> RunSummary {
    let started = Instant::now();
    let cfg = &exporter.config().user_status;
    let account = &exporter.config().api.account_id;
    let tz = cfg.timezone;
    let previous = match state::load_user_status(exporter.sink(), account).await {
        Ok(p) => p,
        Err(e) => {
            let mut s = RunSummary::new(Dataset::UserStatus, "-".into());
            s.outcome = Outcome::Failure;
            s.error = Some(error_chain(&e));
            return s.finish(started, now);
        }
    };
    if let Some(p) = &previous {
        set_covered(Dataset::UserStatus, account, p.covered_until);
    }
    let today = local_date(tz, now);
    let plan = state::plan_user_status_days(
        previous.as_ref().map(|p| p.through_day),
        today,
        cfg.lookback_days,
        cfg.max_days_per_run,
    );
    let window = match (plan.first(), plan.last()) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "-".into(),
    };
    let mut summary = RunSummary::new(Dataset::UserStatus, window);
    let mut committed = Vec::with_capacity(plan.len());
    for day in &plan {
        if stop.is_cancelled() {
            summary.outcome = Outcome::Cancelled;
            summary.error = Some("stopped by shutdown between days".into());
            break;
        }
        match exporter.export_user_status_day(*day, now).await {
            Ok(r) => {
                committed.push(true);
                summary.rows += r.rows;
                summary.files += r.written.files;
                summary.bytes += r.written.bytes;
                summary.rejects += r.rejects;
                summary.requests += r.requests;
            }
            Err(e) => {
                summary.outcome = if stop.is_cancelled() {
                    Outcome::Cancelled
                } else if committed.is_empty() {
                    Outcome::Failure
                } else {
                    Outcome::Partial
                };
                summary.error = Some(format!("{day}: {}", error_chain(&e)));
                break;
            }
        }
    }
    let through =
        state::advance_through_day(previous.as_ref().map(|p| p.through_day), &plan, &committed);
    if let Some(through) = through {
        // The watermark day was (re-)exported in this run when it is in the committed prefix.
        let exported_now = plan
            .iter()
            .zip(&committed)
            .any(|(d, ok)| *ok && *d == through);
        let covered_until = if exported_now {
            local_day_bounds(tz, through).end.min(now)
        } else {
            previous.as_ref().map_or(now, |p| p.covered_until)
        };
        if committed.iter().any(|ok| *ok) {
            let mark = UserStatusWatermark {
                through_day: through,
                covered_until,
                updated_at: Utc::now(),
            };
            if let Err(e) = state::store_user_status(exporter.sink(), account, &mark).await {
                // The data is committed; the next run simply re-does these days.
                warn!(error = %error_chain(&e), "Could not store the watermark; the next run repeats these days.");
                if summary.error.is_none() {
                    summary.outcome = Outcome::Partial;
                    summary.error = Some(error_chain(&e));
                }
            } else {
                set_covered(Dataset::UserStatus, account, covered_until);
            }
        }
    }
    summary.finish(started, now)
}

/// One poll of one bot, merged by `session_id` (see [`Exporter::export_intent_bot`]).
pub async fn sync_intent_bot(exporter: &Exporter, bot_id: &str, now: DateTime<Utc>) -> RunSummary {
    let run_id = uuid::Uuid::new_v4();
    let span = tracing::info_span!("run", dataset = "intent_realtime", bot_id, %run_id);
    async {
        let started = Instant::now();
        let mut summary = RunSummary::new(Dataset::IntentRealtime, format!("bot_id={bot_id}"));
        summary.requests = 1;
        match exporter.export_intent_bot(bot_id, now).await {
            Ok(r) => {
                summary.rows = r.new_sessions;
                summary.files = r.written.files;
                summary.bytes = r.written.bytes;
                summary.rejects = r.rejects;
                summary.gap_suspected = r.gap_suspected;
                set_covered(Dataset::IntentRealtime, bot_id, now);
            }
            Err(e) => {
                summary.outcome = Outcome::Failure;
                summary.error = Some(error_chain(&e));
            }
        }
        summary.finish(started, now)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn lag_gauge_follows_the_least_recent_unit() {
        let t0: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().expect("ts");
        set_covered(Dataset::IntentRealtime, "lag-test-a", t0);
        set_covered(
            Dataset::IntentRealtime,
            "lag-test-b",
            t0 + chrono::TimeDelta::seconds(30),
        );
        refresh_watermark_lag(t0 + chrono::TimeDelta::seconds(90));
        // Other tests may register older units in this process; the gauge is at least 90 s.
        let lag = metrics::global()
            .value(metrics::WATERMARK_LAG, &[("dataset", "intent_realtime")])
            .expect("gauge set");
        assert!(lag >= 90.0, "{lag}");
    }
}
