//! `backfill` and `run`: the commands that export. `backfill` checks its range, hands its work to
//! a daemon holding the account's request budget or takes the budget's lease and runs alone;
//! `run` starts the daemon (or one pass of it, `--once`, in [`crate::daemon`]).

use std::path::Path;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::load_config;
use crate::app::{self, App};
use crate::backfill::{backfill_selected, BackfillRequest, Selection};
use crate::cli::{BackfillArgs, RunArgs};
use crate::config::Config;
use crate::datasets;
use crate::ddl;
use crate::error::Error;
use crate::handover::cli::{own_or_hand_over, Owner};
use crate::handover::JobRequest;
use crate::metrics::Metrics;
use crate::progress::ProgressMode;

pub(super) async fn cmd_backfill(
    path: &Path,
    args: BackfillArgs,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let config = load_config(path)?;
    if args.from > args.to {
        return Err(Error::Usage(format!(
            "--from {} is after --to {}",
            args.from, args.to
        )));
    }
    // Refuse disabled datasets before starting anything.
    let chosen = app::select(&datasets::enabled(&config), &args.datasets)?;
    if !args.datasets.is_empty() {
        refuse_past_snapshot_days(&chosen, args.from, args.to, Utc::now())?;
    }
    if let Some(why) = ddl::backfill_outside_projection(
        args.from,
        args.to,
        ddl::DEFAULT_PROJECTION_START,
        Utc::now(),
    ) {
        tracing::warn!(from = %args.from, to = %args.to, "Athena will not show every backfilled day: {why}.");
    }
    // One budget per account: beside a daemon, the daemon does the work.
    let metrics = Metrics::new();
    let output = crate::sink::Output::open_with(&config.output, &metrics)?
        .with_page_row_group_bytes(config.encoding.page_row_group_bytes);
    let job = JobRequest::Backfill {
        from: args.from,
        to: args.to,
        datasets: chosen.iter().map(|d| d.name().to_string()).collect(),
        concurrency: usize::from(args.concurrency),
        skip_existing: args.skip_existing,
        missing: args.missing,
        provisional: args.provisional,
    };
    let owner = own_or_hand_over(
        &output.state,
        &config.api.account_id,
        "backfill",
        &[],
        &job,
        &cancel,
    )
    .await?;
    let leases = match owner {
        Owner::Alone(leases) => leases,
        Owner::HandedOver(result) => return result,
        Owner::Stopped => return Ok(()),
    };
    let stop = crate::daemon::stop_on_lost_lease(&cancel, &leases);
    let result = backfill_alone(config, &args, stop.clone(), metrics, &leases).await;
    stop.cancel();
    let released = leases.release().await;
    result?;
    released.map_err(Error::from)
}

/// A dataset named with `--dataset` whose API serves only today's list
/// ([`datasets::DayScope::TodayOnly`]) cannot backfill other days: refused, naming it and
/// today's date. (Without `--dataset` the range is the history datasets', and such a dataset
/// takes today's snapshot, as the report says.)
fn refuse_past_snapshot_days(
    chosen: &[datasets::Dataset],
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    now: chrono::DateTime<Utc>,
) -> Result<(), Error> {
    for d in chosen {
        match d.snapshot_day(now) {
            Some(today) if (from, to) != (today, today) => {
                return Err(Error::Usage(format!(
                    "{name} keeps one snapshot per day of a list the API serves only as it is \
                     now: past snapshot days cannot be fetched. Export it with --from {today} \
                     --to {today} (today in its timezone), or leave it out of --dataset",
                    name = d.name()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A backfill by this process, on its own request budget (no daemon holds the account's).
async fn backfill_alone(
    config: Config,
    args: &BackfillArgs,
    cancel: CancellationToken,
    metrics: Metrics,
    leases: &crate::lease::KeptLeases,
) -> Result<(), Error> {
    let app = App::start(config, cancel, metrics).await?;
    leases.tell_budget(app.cx.client.budget());
    let req = BackfillRequest {
        from: args.from,
        to: args.to,
        datasets: app.select(&args.datasets)?,
        concurrency: usize::from(args.concurrency),
        skip_existing: args.skip_existing,
    };
    let selection = if args.missing {
        Selection::Holes {
            provisional: args.provisional,
        }
    } else {
        Selection::All
    };
    let report = backfill_selected(&app.cx, &req, ProgressMode::detect(), selection).await;
    app.shutdown().await;
    let report = report?;
    for line in report.lines(&req) {
        println!("{line}");
    }
    report.into_result().map(|_| ())
}

pub(super) async fn cmd_run(
    path: &Path,
    args: RunArgs,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let config = load_config(path)?;
    if args.once {
        crate::daemon::run_once(config, cancel).await
    } else {
        crate::daemon::run_daemon(config, cancel).await
    }
}
