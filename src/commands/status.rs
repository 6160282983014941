//! `status` and `reconcile`: the commands that read what the output holds, talking to no API.
//! `status` prints the coverage report (text or JSON, rebuilt from the files with `--rebuild`)
//! with its realtime-capture section; `reconcile` prints the registered reconciliation's lines.

use std::path::Path;

use chrono::Utc;

use super::{load_config, shell_word, SCHEMA_STAND_IN_SECRET};
use crate::app;
use crate::cli::{ReconcileArgs, StatusArgs};
use crate::datasets;
use crate::error::Error;
use crate::metrics::Metrics;

/// `status`: reads the output's state (and, with `--rebuild`, its files) and prints the
/// report. Talks to no API, so no secret is needed; it works beside a running daemon.
pub(super) async fn cmd_status(path: &Path, args: StatusArgs) -> Result<(), Error> {
    use crate::coverage::{rebuild, status, text, Month};
    let config = datasets::load_config(path, Some(SCHEMA_STAND_IN_SECRET.to_string()))?;
    let chosen = app::select(&datasets::enabled(&config), &args.datasets)?;
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if from > to {
            return Err(Error::Usage(format!("--from {from} is after --to {to}")));
        }
    }
    let output = crate::sink::Output::open_with(&config.output, &Metrics::new())?;
    let account = &config.api.account_id;
    let now = Utc::now();
    if args.rebuild {
        for d in &chosen {
            let (from, to) = status::DatasetFacts::of(d).range(args.from, args.to, now);
            let r = rebuild::rebuild(
                &output.sink,
                &output.state,
                d.info(),
                account,
                &Month::span(from, to),
            )
            .await?;
            eprintln!(
                "{}: rebuilt from {} partition(s): {} unit(s) added to {} month(s), {} unreadable month(s) replaced",
                r.dataset, r.partitions, r.units_added, r.months, r.corrupt_replaced
            );
        }
    }
    let command = format!(
        "smartassist-export -c {}",
        shell_word(&path.display().to_string())
    );
    let mut report = status::report(
        &output.state,
        &chosen,
        account,
        (args.from, args.to),
        now,
        &command,
    )
    .await;
    report.capture = datasets::reconcile::status_section(datasets::reconcile::SectionRequest {
        sink: &output.sink,
        report: &report,
        last_days: Some(status::CAPTURE_DAYS),
        command: &command,
        cache: None,
    })
    .await;
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| Error::Io {
            context: "writing the status report as JSON".into(),
            source: e.into(),
        })?;
        println!("{json}");
    } else {
        for line in text::lines(&report, &command) {
            println!("{line}");
        }
    }
    Ok(())
}

/// `reconcile`: the registered reconciliation's lines ([`datasets::reconcile`]), printed.
pub(super) async fn cmd_reconcile(path: &Path, args: ReconcileArgs) -> Result<(), Error> {
    let config = load_config(path)?;
    let output = crate::sink::Output::open(&config.output)?;
    let req = datasets::reconcile::ReconcileRequest {
        from: args.from,
        to: args.to,
        entities: args.bots,
    };
    for line in datasets::reconcile::command(&config, &output.sink, &req).await? {
        println!("{line}");
    }
    Ok(())
}
