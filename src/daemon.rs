//! The `run` command: wires the exporter, the jobs, the cron ticker and the health/metrics
//! server together, and owns the shutdown sequence. `shutdown` is the process token cancelled
//! on SIGTERM/SIGINT: it stops scheduling at once; in-flight runs stop at their next step and
//! get `shutdown_timeout` to end (after 3/4 of it their outstanding HTTP requests are
//! abandoned); then the server stops and `run` returns `Ok` (exit 0). Nothing is cancelled in
//! the middle of a write, and sink writes are atomic, so an abandoned run leaves no partial
//! output; its state is simply not advanced. Both commands hold the leases of their datasets
//! ([`crate::lease`]) while they run: a second `run` or `run --once` of the same data is
//! refused at start, and a process that loses a lease stops as on SIGTERM and exits 1.
//!
//! Before anything starts, `run` (and `check`) compare what the configured polls ask of the
//! account's request budget with `requests_per_minute` ([`PollBudget`]): polls that alone
//! exceed it are refused (exit 2), since no priority can keep their cadence and sessions
//! would be lost without any error.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::client::budget::{MINUTE, WINDOW};
use crate::config::Config;
use crate::datasets::{self, Context, Dataset};
use crate::error::{error_chain, Error};
use crate::lease::{Identity, KeptLeases, Leases, LEASE_TTL, RENEW_EVERY};
use crate::metrics::Metrics;
use crate::pipeline::{self, sweep_staging, Outcome, RunSummary};
use crate::scheduler::{self, Job, JobSpec, RunSignal, Scheduler, Work};

/// What the polls of one snapshot dataset ask of the request budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollDemand {
    pub dataset: &'static str,
    pub entity_kind: &'static str,
    pub entities: usize,
    /// Polls of one entity in the busiest minute of its schedule.
    pub polls_per_minute: u32,
    /// Extra polls a minute of one entity while a gap is suspected (fast re-polls).
    pub gap_polls_per_minute: u32,
}

impl PollDemand {
    fn requests_per_minute(&self) -> u64 {
        self.entities as u64 * u64::from(self.polls_per_minute)
    }
}

/// The configured polls against `api.requests_per_minute`.
#[derive(Debug, Clone, PartialEq)]
pub struct PollBudget {
    pub demands: Vec<PollDemand>,
    pub requests_per_minute: u32,
}

impl PollBudget {
    /// The polls of every enabled snapshot dataset, at the busiest minute of their schedules
    /// during the day after `now`.
    pub fn of(datasets: &[Dataset], requests_per_minute: u32, now: DateTime<Utc>) -> PollBudget {
        let demands = datasets
            .iter()
            .filter_map(|d| match d {
                Dataset::Snapshot(s) => Some(s),
                Dataset::History(_) => None,
            })
            .map(|s| {
                let sched = s.schedule();
                PollDemand {
                    dataset: s.info().name,
                    entity_kind: s.entity_kind(),
                    entities: s.entities().len(),
                    polls_per_minute: scheduler::busiest_minute(
                        &sched.schedule.cron,
                        sched.schedule_timezone,
                        now,
                    ),
                    gap_polls_per_minute: sched.gap_poll_interval.map_or(0, |every| {
                        u32::try_from(MINUTE.as_secs().div_ceil(every.as_secs().max(1)))
                            .unwrap_or(u32::MAX)
                    }),
                }
            })
            .collect();
        PollBudget {
            demands,
            requests_per_minute,
        }
    }

    /// Requests a minute the polls need at their busiest.
    pub fn polls_per_minute(&self) -> u64 {
        self.demands
            .iter()
            .map(PollDemand::requests_per_minute)
            .sum()
    }

    /// Requests a minute the budget admits: `requests_per_minute` per window of 61 s.
    pub fn admitted_per_minute(&self) -> f64 {
        f64::from(self.requests_per_minute) * MINUTE.as_secs_f64() / WINDOW.as_secs_f64()
    }

    /// `2 bots × 12 polls/minute (intent_realtime)`, for every snapshot dataset.
    fn terms(&self) -> String {
        self.demands
            .iter()
            .map(|d| {
                format!(
                    "{} {}s × {} polls/minute ({})",
                    d.entities, d.entity_kind, d.polls_per_minute, d.dataset
                )
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// `Err` (a usage error, exit 2) when the polls alone exceed the budget.
    pub fn check(&self) -> Result<(), Error> {
        let needed = self.polls_per_minute();
        if (needed as f64) <= self.admitted_per_minute() {
            return Ok(());
        }
        let keys: Vec<String> = self
            .demands
            .iter()
            .map(|d| format!("{}.schedule", d.dataset))
            .collect();
        Err(Error::Usage(format!(
            "{}: the polls alone need {needed} requests/minute ({}), more than \
             api.requests_per_minute = {} admits ({} per {} s, {:.1} a minute): polls would \
             fall behind and lose data. Poll less often or poll fewer {}, or raise \
             api.requests_per_minute if the account allows it",
            keys.join(", "),
            self.terms(),
            self.requests_per_minute,
            self.requests_per_minute,
            WINDOW.as_secs(),
            self.admitted_per_minute(),
            self.demands
                .first()
                .map_or_else(|| "entities".to_string(), |d| format!("{}s", d.entity_kind)),
        )))
    }

    /// One line for `check` and the daemon's start log; `None` without snapshot datasets.
    pub fn summary(&self) -> Option<String> {
        if self.demands.is_empty() {
            return None;
        }
        let gap: u64 = self
            .demands
            .iter()
            .map(|d| d.entities as u64 * u64::from(d.gap_polls_per_minute))
            .sum();
        let history = (self.admitted_per_minute() - self.polls_per_minute() as f64).max(0.0);
        Some(format!(
            "polls need {} of the {} requests/minute of api.requests_per_minute ({}); \
             history gets the rest, about {history:.0} a minute{}",
            self.polls_per_minute(),
            self.requests_per_minute,
            self.terms(),
            if gap > 0 {
                format!(" (less while a gap is suspected: up to {gap} more polls/minute)")
            } else {
                String::new()
            }
        ))
    }
}

/// `run --once`: every enabled dataset once, in registry order (a snapshot dataset once per
/// entity). Exits non-zero when a run failed; a shutdown signal stops it between steps.
pub async fn run_once(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let app = App::start(config, shutdown.clone(), Metrics::new()).await?;
    let leases = match acquire_leases(&app, "run --once", &shutdown).await {
        Ok(Some(leases)) => leases,
        stopped_or_failed => {
            app.shutdown().await;
            return stopped_or_failed.map(|_| ());
        }
    };
    let stop = stop_on_lost_lease(&shutdown, &leases);
    let result = run_once_with(&app, &stop).await;
    stop.cancel();
    let released = leases.release().await;
    app.shutdown().await;
    released?;
    result
}

/// The leases of every enabled dataset (see [`crate::lease`]): a second scheduled writer of
/// the same data is refused here, naming the holder. Watching a lease whose holder this host
/// cannot see takes up to a TTL; a shutdown signal meanwhile gives `None` (a lease taken by
/// then expires on its own).
async fn acquire_leases(
    app: &App,
    command: &str,
    shutdown: &CancellationToken,
) -> Result<Option<KeptLeases>, Error> {
    let names: Vec<&str> = app.datasets().iter().map(|d| d.name()).collect();
    let me = Identity::current();
    let acquire = Leases::acquire(
        &app.cx.sink,
        &me,
        &app.cx.account_id,
        &names,
        command,
        LEASE_TTL,
    );
    tokio::select! {
        leases = acquire => Ok(Some(leases?.keep(RENEW_EVERY))),
        _ = shutdown.cancelled() => {
            info!("Stopped while waiting for a lease.");
            Ok(None)
        }
    }
}

async fn run_once_with(app: &App, shutdown: &CancellationToken) -> Result<(), Error> {
    sweep_staging(&app.cx, app.datasets()).await?;
    let mut summaries: Vec<(String, RunSummary)> = Vec::new();
    for dataset in app.datasets() {
        match dataset {
            Dataset::History(d) => {
                if shutdown.is_cancelled() {
                    break;
                }
                let s = pipeline::run_history(d.as_ref(), &app.cx, shutdown, Utc::now()).await;
                summaries.push((d.info().name.to_string(), s));
            }
            Dataset::Snapshot(d) => {
                for entity in d.entities() {
                    if shutdown.is_cancelled() {
                        break;
                    }
                    let s = pipeline::run_snapshot(d.as_ref(), &app.cx, entity, Utc::now()).await;
                    summaries.push((format!("{}/{entity}", d.info().name), s));
                }
            }
        }
    }
    for (name, s) in &summaries {
        println!(
            "{name}: {} ({}): {} rows, {} files, {} bytes, {} rejects in {:.1}s{}",
            s.outcome,
            s.window,
            s.rows,
            s.files,
            s.bytes,
            s.rejects,
            s.duration.as_secs_f64(),
            s.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    let failed: Vec<String> = summaries
        .iter()
        .filter(|(_, s)| matches!(s.outcome, Outcome::Failure | Outcome::Partial))
        .map(|(n, _)| n.clone())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Partial {
            failed: failed.len(),
            total: summaries.len(),
            units: failed,
        })
    }
}

/// The jobs of the enabled datasets: one per history dataset, one per snapshot entity.
fn build_jobs(
    cx: &Arc<Context>,
    datasets: &[Dataset],
    shutdown: &CancellationToken,
) -> Vec<Arc<Job>> {
    let now = Utc::now();
    let mut jobs = Vec::new();
    for dataset in datasets {
        match dataset {
            Dataset::History(d) => {
                let (cx2, d2, stop) = (cx.clone(), d.clone(), shutdown.clone());
                let work: Work = Arc::new(move |at| {
                    let (cx, d, stop) = (cx2.clone(), d2.clone(), stop.clone());
                    Box::pin(async move {
                        outcome_to_signal(pipeline::run_history(d.as_ref(), &cx, &stop, at).await)
                    })
                });
                let s = d.schedule();
                let spec = JobSpec {
                    name: d.info().name.to_string(),
                    dataset: d.info().name,
                    schedule: s.schedule.clone(),
                    tz: s.schedule_timezone,
                    fast_interval: None,
                    metrics: cx.metrics.clone(),
                };
                jobs.push(Job::new(spec, work, now, true));
            }
            Dataset::Snapshot(d) => {
                for entity in d.entities() {
                    let (cx2, d2, e) = (cx.clone(), d.clone(), entity.clone());
                    let work: Work = Arc::new(move |at| {
                        let (cx, d, e) = (cx2.clone(), d2.clone(), e.clone());
                        Box::pin(async move {
                            outcome_to_signal(pipeline::run_snapshot(d.as_ref(), &cx, &e, at).await)
                        })
                    });
                    let s = d.schedule();
                    let spec = JobSpec {
                        name: format!("{}/{entity}", d.info().name),
                        dataset: d.info().name,
                        schedule: s.schedule.clone(),
                        tz: s.schedule_timezone,
                        fast_interval: s.gap_poll_interval,
                        metrics: cx.metrics.clone(),
                    };
                    jobs.push(Job::new(spec, work, now, true));
                }
            }
        }
    }
    jobs
}

fn outcome_to_signal(s: RunSummary) -> Result<RunSignal, String> {
    match s.outcome {
        Outcome::Success => Ok(RunSignal {
            gap_suspected: s.gap_suspected,
        }),
        _ => Err(s.error.unwrap_or_else(|| s.outcome.label().to_string())),
    }
}

/// `run`: the scheduled daemon, until `shutdown` is cancelled (or a lease is lost).
pub async fn run_daemon(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let polls = PollBudget::of(
        &datasets::enabled(&config),
        config.api.requests_per_minute,
        Utc::now(),
    );
    polls.check()?;
    if let Some(line) = polls.summary() {
        info!("Request budget: {line}.");
    }
    // Outstanding HTTP requests are abandoned only late in the drain, not on the signal.
    let abandon = CancellationToken::new();
    let metrics = Metrics::new();
    let app = App::start(config.clone(), abandon.clone(), metrics.clone()).await?;
    // The lease first: a second daemon of the same config is refused naming the holder
    // rather than by "address in use".
    let leases = match acquire_leases(&app, "run", &shutdown).await {
        Ok(Some(leases)) => leases,
        stopped_or_failed => {
            app.shutdown().await;
            return stopped_or_failed.map(|_| ());
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(listener) => listener,
        Err(source) => {
            let _ = leases.release().await;
            app.shutdown().await;
            return Err(Error::Io {
                context: format!(
                    "binding the health/metrics server to {}",
                    config.server.listen
                ),
                source,
            });
        }
    };
    let stop = stop_on_lost_lease(&shutdown, &leases);
    let served = serve(&config, &app, listener, metrics, &stop, &abandon).await;
    let released = leases.release().await;
    app.shutdown().await;
    served?;
    released?;
    info!("Stopped.");
    Ok(())
}

/// A token cancelled by `shutdown` or when a lease is lost (which stops the process like a
/// shutdown signal).
fn stop_on_lost_lease(shutdown: &CancellationToken, leases: &KeptLeases) -> CancellationToken {
    let stop = shutdown.child_token();
    let (lost, stop2) = (leases.lost().clone(), stop.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = lost.cancelled() => {
                warn!("Stopping: a lease was lost to another writer.");
                stop2.cancel();
            }
            _ = stop2.cancelled() => {}
        }
    });
    stop
}

/// The daemon proper: jobs, server and cron ticker until `stop`, then the drain.
async fn serve(
    config: &Config,
    app: &App,
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    stop: &CancellationToken,
    abandon: &CancellationToken,
) -> Result<(), Error> {
    if let Err(e) = sweep_staging(&app.cx, app.datasets()).await {
        warn!(error = %error_chain(&e), "Could not clean up staging files; continuing.");
    }
    let cx = Arc::new(app.cx.clone());
    let jobs = build_jobs(&cx, app.datasets(), stop);
    if jobs.is_empty() {
        return Err(Error::Usage(
            "no dataset is enabled in the config; nothing to schedule".into(),
        ));
    }
    for j in &jobs {
        info!(
            job = %j.spec().name,
            schedule = %j.spec().schedule.expression,
            schedule_timezone = %j.spec().tz,
            "Job scheduled (runs once now, then on its schedule)."
        );
    }
    let sched = Scheduler::new(jobs);
    let server_stop = CancellationToken::new();
    let server = crate::server::serve(
        listener,
        sched.clone(),
        config.server.unhealthy_after_intervals,
        metrics,
        server_stop.clone(),
    );
    info!(listen = %config.server.listen, "Serving /healthz and /metrics.");
    let mut cron = scheduler::start_cron_ticker(sched.clone())
        .await
        .map_err(|e| Error::Startup {
            what: "the cron scheduler",
            source: Box::new(e),
        })?;

    stop.cancelled().await;
    let timeout = config.server.shutdown_timeout;
    info!(
        timeout_s = timeout.as_secs_f64(),
        "Stopping: no new runs; waiting for in-flight runs."
    );
    if let Err(e) = cron.shutdown().await {
        warn!(error = %error_chain(&e), "The cron ticker did not stop cleanly; runs are still fenced.");
    }
    let drained = sched
        .drain(timeout, timeout.mul_f64(0.75), || abandon.cancel())
        .await;
    if drained {
        info!("Every in-flight run ended.");
    } else {
        warn!("Shutdown deadline reached with a run still in flight; it is abandoned (its writes are atomic and its state not advanced).");
    }
    server_stop.cancel();
    let _ = server.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(intent: &str, rpm: u32) -> Config {
        let text = format!(
            "[api]\nbase_url = \"simulator\"\naccount_id = \"a\"\niid = \"i\"\n\
             client_id = \"c\"\nrequests_per_minute = {rpm}\n\n[output]\nurl = \"out\"\n\n\
             [intent_realtime]\n{intent}\n"
        );
        Config::from_toml(&text, std::path::Path::new("<test>"), None).expect("valid config")
    }

    fn budget(intent: &str, rpm: u32) -> PollBudget {
        let now = "2024-01-01T10:00:00Z".parse().expect("time");
        PollBudget::of(&datasets::enabled(&config(intent, rpm)), rpm, now)
    }

    #[test]
    fn polls_within_the_budget_are_summarised_with_their_numbers() {
        let b = budget(
            "bot_ids = [\"b1\", \"b2\"]\nschedule = \"*/5 * * * * *\"",
            60,
        );
        assert_eq!(b.polls_per_minute(), 24);
        assert!(b.check().is_ok());
        assert_eq!(
            b.summary().as_deref(),
            Some(
                "polls need 24 of the 60 requests/minute of api.requests_per_minute \
                 (2 bots × 12 polls/minute (intent_realtime)); history gets the rest, about 35 \
                 a minute (less while a gap is suspected: up to 12 more polls/minute)"
            )
        );
    }

    #[test]
    fn polls_over_the_budget_are_refused_naming_the_numbers_and_keys() {
        let b = budget(
            "bot_ids = [\"b1\", \"b2\", \"b3\", \"b4\", \"b5\"]\nschedule = \"*/5 * * * * *\"\n\
             gap_poll_interval_seconds = 0",
            60,
        );
        let err = b.check().expect_err("over budget");
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "intent_realtime.schedule: the polls alone need 60 requests/minute (5 bots × 12 \
             polls/minute (intent_realtime)), more than api.requests_per_minute = 60 admits (60 \
             per 61 s, 59.0 a minute): polls would fall behind and lose data. Poll less often or \
             poll fewer bots, or raise api.requests_per_minute if the account allows it"
        );
        // No snapshot dataset: nothing to say, nothing to refuse.
        let none = budget("enabled = false", 1);
        assert!(none.check().is_ok());
        assert_eq!(none.summary(), None);
    }
}
