//! The `run` command: wires the exporter, the jobs, the cron ticker and the health/metrics
//! server together, and owns the shutdown sequence. `shutdown` is the process token cancelled
//! on SIGTERM/SIGINT: it stops scheduling at once; in-flight runs stop at their next step and
//! get `shutdown_timeout` to end (after 3/4 of it their outstanding HTTP requests are
//! abandoned); then the server stops and `run` returns `Ok` (exit 0). Nothing is cancelled in
//! the middle of a write, and sink writes are atomic, so an abandoned run leaves no partial
//! output; its state is simply not advanced.

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backfill::error_chain;
use crate::config::Config;
use crate::error::Error;
use crate::model::Dataset;
use crate::pipeline::Exporter;
use crate::scheduler::{self, Job, JobSpec, RunSignal, Scheduler, Work};
use crate::sync::{self, Outcome, RunSummary};

/// Remove staging files left by a crash, for every enabled dataset.
async fn cleanup(exporter: &Exporter) -> Result<(), Error> {
    let cfg = exporter.config();
    for (dataset, enabled) in [
        (Dataset::UserStatus, cfg.user_status.enabled),
        (Dataset::IntentRealtime, cfg.intent.enabled),
    ] {
        if enabled {
            let removed = exporter.sink().cleanup_staging(dataset).await?;
            if removed > 0 {
                info!(
                    dataset = dataset.name(),
                    removed, "Removed staging files left by an interrupted write."
                );
            }
        }
    }
    Ok(())
}

/// `run --once`: every enabled job once, in order (UserStatus, then each bot). Exits non-zero
/// when a job failed; a shutdown signal stops it between steps.
pub async fn run_once(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let exporter = Exporter::connect(config, shutdown.clone()).await?;
    let result = run_once_with(&exporter, &shutdown).await;
    exporter.shutdown().await;
    result
}

async fn run_once_with(exporter: &Exporter, shutdown: &CancellationToken) -> Result<(), Error> {
    cleanup(exporter).await?;
    let cfg = exporter.config().clone();
    let mut summaries: Vec<(String, RunSummary)> = Vec::new();
    if cfg.user_status.enabled {
        let s = sync::sync_user_status(exporter, shutdown, Utc::now()).await;
        summaries.push(("user_status".into(), s));
    }
    if cfg.intent.enabled {
        for bot in &cfg.intent.bot_ids {
            if shutdown.is_cancelled() {
                break;
            }
            let s = sync::sync_intent_bot(exporter, bot, Utc::now()).await;
            summaries.push((format!("intent_realtime/{bot}"), s));
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

/// The jobs of a config: one for UserStatus, one per bot.
fn build_jobs(
    config: &Config,
    exporter: &Arc<Exporter>,
    shutdown: &CancellationToken,
) -> Vec<Arc<Job>> {
    let now = Utc::now();
    let mut jobs = Vec::new();
    if config.user_status.enabled {
        let exporter = exporter.clone();
        let stop = shutdown.clone();
        let work: Work = Arc::new(move |at| {
            let exporter = exporter.clone();
            let stop = stop.clone();
            Box::pin(async move {
                let s = sync::sync_user_status(&exporter, &stop, at).await;
                outcome_to_signal(s)
            })
        });
        jobs.push(Job::new(
            JobSpec {
                name: "user_status".into(),
                dataset: Dataset::UserStatus,
                schedule: config.user_status.schedule.clone(),
                tz: config.user_status.schedule_timezone,
                fast_interval: None,
            },
            work,
            now,
            true,
        ));
    }
    if config.intent.enabled {
        for bot in &config.intent.bot_ids {
            let exporter = exporter.clone();
            let bot_id = bot.clone();
            let work: Work = Arc::new(move |at| {
                let exporter = exporter.clone();
                let bot_id = bot_id.clone();
                Box::pin(async move {
                    let s = sync::sync_intent_bot(&exporter, &bot_id, at).await;
                    outcome_to_signal(s)
                })
            });
            jobs.push(Job::new(
                JobSpec {
                    name: format!("intent_realtime/{bot}"),
                    dataset: Dataset::IntentRealtime,
                    schedule: config.intent.schedule.clone(),
                    tz: config.intent.schedule_timezone,
                    fast_interval: config.intent.gap_poll_interval,
                },
                work,
                now,
                true,
            ));
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

/// `run`: the scheduled daemon, until `shutdown` is cancelled.
pub async fn run_daemon(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| Error::Io {
            context: format!(
                "binding the health/metrics server to {}",
                config.server.listen
            ),
            source,
        })?;
    // Outstanding HTTP requests are abandoned only late in the drain, not on the signal.
    let abandon = CancellationToken::new();
    let exporter = Arc::new(Exporter::connect(config.clone(), abandon.clone()).await?);
    if let Err(e) = cleanup(&exporter).await {
        warn!(error = %error_chain(&e), "Could not clean up staging files; continuing.");
    }
    let jobs = build_jobs(&config, &exporter, &shutdown);
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
        server_stop.clone(),
    );
    info!(listen = %config.server.listen, "Serving /healthz and /metrics.");
    let mut cron = scheduler::start_cron_ticker(sched.clone())
        .await
        .map_err(|e| Error::Usage(format!("cannot start the scheduler: {}", error_chain(&e))))?;

    shutdown.cancelled().await;
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
    if let Ok(exporter) = Arc::try_unwrap(exporter) {
        exporter.shutdown().await;
    }
    info!("Stopped.");
    Ok(())
}
