//! `run --once`: every enabled dataset once, in registry order (a snapshot dataset once per
//! entity). Beside a running daemon of the account the work is handed to it
//! ([`crate::handover`]), which runs the same steps ([`run_each_once`]) on its own request
//! budget, each under the guard of its job doing that work. Alone, the command holds the
//! account's budget lease and the lease of every dataset it exports while it runs.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::stop_on_lost_lease;
use crate::app::App;
use crate::config::Config;
use crate::datasets::{self, Context, Dataset};
use crate::error::Error;
use crate::handover::cli::{own_or_hand_over, Owner};
use crate::handover::JobRequest;
use crate::metrics::Metrics;
use crate::pipeline::{self, sweep_staging, Outcome, RunSummary};
use crate::scheduler::Scheduler;
use crate::sink::Output;

/// `run --once` (see the module docs). Exits non-zero when a run failed; a shutdown signal
/// stops it between steps (handed over: cancels the daemon's job).
pub async fn run_once(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let metrics = Metrics::new();
    let output = Output::open_with(&config.output, &metrics)?
        .with_page_row_group_bytes(config.encoding.page_row_group_bytes);
    let names: Vec<&'static str> = datasets::enabled(&config)
        .iter()
        .map(|d| d.name())
        .collect();
    let job = JobRequest::RunOnce {
        datasets: names.iter().map(|n| n.to_string()).collect(),
    };
    let owner = own_or_hand_over(
        &output.state,
        &config.api.account_id,
        "run --once",
        &names,
        &job,
        &shutdown,
    )
    .await?;
    let leases = match owner {
        Owner::Alone(leases) => leases,
        Owner::HandedOver(result) => return result,
        Owner::Stopped => return Ok(()),
    };
    let app = match App::start(config, shutdown.clone(), metrics).await {
        Ok(app) => app,
        Err(e) => {
            let _ = leases.release().await;
            return Err(e);
        }
    };
    leases.tell_budget(app.cx.client.budget());
    let stop = stop_on_lost_lease(&shutdown, &leases);
    let result = match sweep_staging(&app.cx, app.datasets()).await {
        Ok(()) => {
            let summaries = run_each_once(&app.cx, app.datasets(), &stop, None).await;
            for line in once_lines(&summaries) {
                println!("{line}");
            }
            once_result(&summaries)
        }
        Err(e) => Err(e.into()),
    };
    stop.cancel();
    let released = leases.release().await;
    app.shutdown().await;
    released?;
    result
}

/// Runs each of `datasets` once (a snapshot dataset once per entity), stopping between runs
/// on `stop`; with `jobs`, each run waits for the daemon's job doing the same work to be idle
/// and keeps it from starting until done.
pub(crate) async fn run_each_once(
    cx: &Context,
    datasets: &[Dataset],
    stop: &CancellationToken,
    jobs: Option<&Scheduler>,
) -> Vec<(String, RunSummary)> {
    let mut summaries = Vec::new();
    let mut units: Vec<(String, &Dataset, Option<&String>)> = Vec::new();
    for dataset in datasets {
        match dataset {
            Dataset::History(d) => units.push((d.info().name.to_string(), dataset, None)),
            // Listed entities: one unit, polling the list as it is when its turn comes.
            Dataset::Snapshot(d) if dataset.is_listed() => {
                units.push((d.info().name.to_string(), dataset, None))
            }
            Dataset::Snapshot(d) => units.extend(
                d.entities()
                    .iter()
                    .map(|e| (format!("{}/{e}", d.info().name), dataset, Some(e))),
            ),
        }
    }
    for (name, dataset, entity) in units {
        let held = match jobs.and_then(|s| s.job(&name)) {
            Some(job) => tokio::select! {
                guard = job.hold() => Some(guard),
                _ = stop.cancelled() => break,
            },
            None => None,
        };
        if stop.is_cancelled() {
            break;
        }
        let s = match (dataset, entity) {
            (Dataset::Snapshot(d), Some(e)) => {
                pipeline::run_snapshot(d.as_ref(), cx, e, Utc::now()).await
            }
            (Dataset::History(d), _) => {
                pipeline::run_history(d.as_ref(), cx, stop, Utc::now()).await
            }
            (Dataset::Snapshot(d), None) => {
                let polls = super::poll_listed(d.as_ref(), cx, Utc::now()).await;
                drop(held);
                match polls {
                    Ok(polls) => summaries.extend(polls),
                    Err(super::NoList(reason)) => {
                        let window = format!("{}s of the list", d.entity_kind());
                        summaries.push((name, RunSummary::failed(d.info().name, window, reason)))
                    }
                }
                continue;
            }
        };
        drop(held);
        summaries.push((name, s));
    }
    summaries
}

/// What `run --once` prints: one line per run.
pub(crate) fn once_lines(summaries: &[(String, RunSummary)]) -> Vec<String> {
    summaries
        .iter()
        .map(|(name, s)| {
            format!(
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
            )
        })
        .collect()
}

/// `Err(Error::Partial)` naming the runs that failed.
pub(crate) fn once_result(summaries: &[(String, RunSummary)]) -> Result<(), Error> {
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
