//! The `run` command: wires the exporter, the jobs, the cron ticker and the health/metrics
//! server together, and owns the shutdown sequence. `shutdown` is the process token cancelled
//! on SIGTERM/SIGINT: it stops scheduling at once; in-flight runs stop at their next step and
//! get `shutdown_timeout` to end (after 3/4 of it their outstanding HTTP requests are
//! abandoned); then the server stops and `run` returns `Ok` (exit 0). Nothing is cancelled in
//! the middle of a write, and sink writes are atomic, so an abandoned run leaves no partial
//! output; its state is simply not advanced. Both `run` and `run --once` ([`once`]) hold the
//! leases of their datasets and of the account's request budget ([`crate::lease`]) while they
//! run: a second `run` of the same data is refused at start, a process that loses a lease stops
//! as on SIGTERM and exits 1, and a `backfill` or `run --once` started beside the daemon hands
//! its work to it ([`crate::handover`]; the daemon serves it next to `/healthz` and drains it
//! with its own runs).
//!
//! Before anything starts, `run` (and `check`) compare what the configured polls ask of the
//! account's request budget with `requests_per_minute` ([`PollBudget`]): polls that alone
//! exceed it are refused (exit 2).

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod listed;
mod once;
mod poll_budget;

pub use listed::{listed_tick, poll_listed, NoList};
pub use once::run_once;
pub(crate) use once::{once_lines, once_result, run_each_once};
pub use poll_budget::{PollBudget, PollDemand};

use crate::app::App;
use crate::config::Config;
use crate::datasets::{self, Context, Dataset, EntitySource};
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::handover::daemon::HandoverService;
use crate::handover::{HandoverEndpoint, HandoverKey};
use crate::lease::{self, Identity, KeptLeases, Leases, LEASE_TTL, RENEW_EVERY};
use crate::metrics::Metrics;
use crate::pipeline::{self, sweep_staging, Outcome, RunSummary};
use crate::scheduler::{self, Job, JobSpec, RunSignal, Scheduler, Work};

/// The leases of the daemon: the account's request budget (recording its hand-over
/// `endpoint`) and every enabled dataset (see [`crate::lease`]). A second scheduled writer of
/// the same data, or a process already spending the budget, is refused here, naming the
/// holder. Watching a lease whose holder this host cannot see takes up to a TTL; a shutdown
/// signal meanwhile gives `None` (a lease taken by then expires on its own).
async fn acquire_leases(
    app: &App,
    endpoint: HandoverEndpoint,
    shutdown: &CancellationToken,
) -> Result<Option<KeptLeases>, Error> {
    let mut names: Vec<&str> = vec![lease::BUDGET];
    names.extend(app.datasets().iter().map(|d| d.name()));
    let me = Identity::current();
    let acquire = Leases::acquire_serving(
        &app.cx.state,
        &me,
        &app.cx.account_id,
        &names,
        "run",
        LEASE_TTL,
        Some(endpoint),
    );
    tokio::select! {
        leases = acquire => Ok(Some(leases?.keep(RENEW_EVERY))),
        _ = shutdown.cancelled() => {
            info!("Stopped while waiting for a lease.");
            Ok(None)
        }
    }
}

/// The jobs of the enabled datasets: one per history dataset, one per configured snapshot
/// entity, one per snapshot dataset whose entities are listed ([`listed`]). Every job runs
/// once at startup; a snapshot job catches up an occurrence that finds it busy (the first
/// one after a slow startup run, say) instead of losing that poll ([`Job::catching_up`]).
pub(crate) fn build_jobs(
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
            Dataset::Snapshot(d) if d.entity_source() != EntitySource::Config => {
                let (cx2, d2) = (cx.clone(), d.clone());
                let polled = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
                let work: Work = Arc::new(move |at| {
                    let (cx, d, polled) = (cx2.clone(), d2.clone(), polled.clone());
                    Box::pin(async move { listed::listed_tick(d.as_ref(), &cx, at, &polled).await })
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
                jobs.push(Job::catching_up(spec, work, now, true));
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
                    jobs.push(Job::catching_up(spec, work, now, true));
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
            rows: s.rows as u64,
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
    let endpoint = HandoverEndpoint {
        addr: config.server.listen,
        key: HandoverKey::generate(),
    };
    // The lease first: a second daemon of the same config is refused naming the holder
    // rather than by "address in use".
    let leases = match acquire_leases(&app, endpoint.clone(), &shutdown).await {
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
    // Before the first request: the budget counts the last minute from the lease's record.
    leases.tell_budget(app.cx.client.budget());
    let stop = stop_on_lost_lease(&shutdown, &leases);
    let served = serve(&config, &app, listener, metrics, endpoint, &stop, &abandon).await;
    let released = leases.release().await;
    app.shutdown().await;
    served?;
    released?;
    info!("Stopped.");
    Ok(())
}

/// A token cancelled by `shutdown` or when a lease is lost (which stops the process like a
/// shutdown signal).
pub(crate) fn stop_on_lost_lease(
    shutdown: &CancellationToken,
    leases: &KeptLeases,
) -> CancellationToken {
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

/// The daemon proper: jobs, server (with the hand-over routes) and cron ticker until `stop`,
/// then the drain.
async fn serve(
    config: &Config,
    app: &App,
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    endpoint: HandoverEndpoint,
    stop: &CancellationToken,
    abandon: &CancellationToken,
) -> Result<(), Error> {
    let sched = schedule_jobs(app, stop).await?;
    let handover = HandoverService::new(
        app.cx.clone(),
        app.datasets().to_vec(),
        sched.clone(),
        endpoint,
        stop.clone(),
    );
    let router = routes(config, app, &sched, metrics, &handover);
    let server_stop = CancellationToken::new();
    let server = crate::server::serve(listener, router, server_stop.clone());
    info!(listen = %config.server.listen, "Serving /healthz, /metrics, the status page (/ and /status.json) and work handed over by backfill and run --once.");
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
    drain(timeout, &sched, &handover, abandon).await;
    server_stop.cancel();
    let _ = server.await;
    Ok(())
}

/// Cleans up staging files, then builds the jobs of the enabled datasets (an error when there
/// is none) and their scheduler.
async fn schedule_jobs(app: &App, stop: &CancellationToken) -> Result<Arc<Scheduler>, Error> {
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
    Ok(Scheduler::new(jobs))
}

/// The daemon's routes: `/healthz` and `/metrics`, the hand-over's, the status page's.
fn routes(
    config: &Config,
    app: &App,
    sched: &Arc<Scheduler>,
    metrics: Metrics,
    handover: &HandoverService,
) -> axum::Router {
    crate::server::router(
        sched.clone(),
        config.server.unhealthy_after_intervals,
        metrics,
    )
    .merge(handover.routes())
    .merge(
        crate::status_page::StatusSource::new(
            app.cx.clone(),
            app.datasets().to_vec(),
            sched.clone(),
        )
        .routes(),
    )
}

/// Waits up to `timeout` for the in-flight runs and handed-over jobs; after three quarters of
/// it, `abandon` tells them to give up.
async fn drain(
    timeout: std::time::Duration,
    sched: &Scheduler,
    handover: &HandoverService,
    abandon: &CancellationToken,
) {
    let grace = timeout.mul_f64(0.75);
    let handed_over = async {
        if handover.drain(grace).await {
            return true;
        }
        abandon.cancel();
        handover.drain(timeout - grace).await
    };
    let (drained, handed_over) = tokio::join!(
        sched.drain(timeout, grace, || abandon.cancel()),
        handed_over
    );
    if drained && handed_over {
        info!("Every in-flight run ended.");
    } else {
        warn!("Shutdown deadline reached with a run still in flight; it is abandoned (its writes are atomic and its state not advanced).");
    }
}
