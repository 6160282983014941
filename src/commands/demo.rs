//! `demo`: a few days of every dataset that takes part in the demo, exported from the built-in
//! simulator into a local directory; the config it uses (kept next to the output so the printed
//! commands work), today's realtime capture, and the DuckDB queries it prints.

use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;

use super::shell_word;
use crate::app::App;
use crate::backfill::{backfill, BackfillReport, BackfillRequest};
use crate::cli::DemoArgs;
use crate::datasets::{self, Dataset, Kind};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::sources::window::local_date;

/// The zone of the demo's local days: not UTC, so the demo shows local days at work.
pub const DEMO_TIMEZONE: &str = "America/New_York";

/// The file, in the demo's output directory, holding the demo's config (the printed commands
/// name it with `-c`).
pub const DEMO_CONFIG_FILE: &str = "_demo-config.toml";

/// Config used by `demo`: the built-in simulator, output in `out`, and the section of every
/// registered dataset that takes part in the demo.
pub fn demo_config_toml(out: &Path) -> String {
    let mut text = format!(
        r#"
[api]
base_url = "simulator"
account_id = "demo-account"
iid = "st-demo-stream"
client_id = "cs-demo-client"
timezone = "{DEMO_TIMEZONE}"

[output]
url = {url:?}
"#,
        url = out.display().to_string()
    );
    for d in datasets::REGISTRY {
        if let Some(lines) = d.demo.section {
            text.push_str(&format!("\n[{}]\n{}\n", d.config.name, lines.trim()));
        }
    }
    text
}

/// `demo`: exports the `--days` local days before today (and today's realtime capture, when the
/// demo has one) from the built-in simulator into `--out`, then prints what it exported and the
/// queries to try.
pub(super) async fn cmd_demo(args: DemoArgs, cancel: CancellationToken) -> Result<(), Error> {
    let out = demo_out_dir(&args.out)?;
    let text = demo_config_toml(&out);
    let config = datasets::config_from_toml(&text, Path::new("<demo>"), None)?;
    let config_path = write_demo_config(&out, &text)?;
    let command = format!(
        "smartassist-export -c {}",
        shell_word(&config_path.display().to_string())
    );
    let (from, yesterday) = demo_days(config.api.timezone, args.days)?;
    let app = App::start(config, cancel, Metrics::new()).await?;
    let req = BackfillRequest {
        from,
        to: yesterday,
        datasets: app.datasets().to_vec(),
        concurrency: 4,
        skip_existing: false,
    };
    let report = backfill(&app.cx, &req).await;
    let today = yesterday.succ_opt().unwrap_or(yesterday);
    let capture = match &report {
        Ok(_) => demo_capture(&app, today, &command).await,
        Err(_) => Ok(Vec::new()),
    };
    app.shutdown().await;
    let report = report?.into_result()?;
    let capture = capture?;
    println!(
        "Demo: exported {} into {}",
        exported_summary(&report),
        out.display()
    );
    print_capture(&capture);
    print_queries(&out);
    Ok(())
}

/// The output directory `out` as an absolute path without `.` components, so the printed
/// query paths are clean and work from anywhere.
fn demo_out_dir(out: &Path) -> Result<PathBuf, Error> {
    let out: PathBuf = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| Error::Io {
                context: "resolving the current directory".into(),
                source,
            })?
            .join(out)
    };
    Ok(out
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect())
}

/// Writes the demo's config `text` into `out` and returns its path. The commands the demo
/// prints (`reconcile`) need the config: it is kept next to the output (a hidden `_` file, as
/// the lake's own files are), so they work from anywhere.
fn write_demo_config(out: &Path, text: &str) -> Result<PathBuf, Error> {
    let config_path = out.join(DEMO_CONFIG_FILE);
    std::fs::create_dir_all(out)
        .and_then(|()| std::fs::write(&config_path, text))
        .map_err(|source| Error::Io {
            context: format!("writing the demo config {}", config_path.display()),
            source,
        })?;
    Ok(config_path)
}

/// The first and the last day the demo exports: the `days` local days of `tz` up to yesterday.
fn demo_days(tz: chrono_tz::Tz, days: u32) -> Result<(NaiveDate, NaiveDate), Error> {
    let yesterday = local_date(tz, Utc::now())
        .checked_sub_days(Days::new(1))
        .ok_or_else(|| Error::Usage("date out of range".into()))?;
    let from = yesterday
        .checked_sub_days(Days::new(u64::from(days.saturating_sub(1))))
        .ok_or_else(|| Error::Usage("date out of range".into()))?;
    Ok((from, yesterday))
}

/// What the backfill exported, one part per dataset: "3 day(s) of x (10 rows), 5 y row(s) and
/// ...".
fn exported_summary(report: &BackfillReport) -> String {
    let parts: Vec<String> = report
        .datasets
        .iter()
        .map(|d| match d.kind {
            Kind::History => format!(
                "{} day(s) of {} ({} rows)",
                d.days.len(),
                d.dataset,
                d.days.iter().map(|u| u.rows).sum::<usize>()
            ),
            Kind::Snapshot => format!(
                "{} {} row(s)",
                d.entities.iter().map(|u| u.rows).sum::<usize>(),
                d.dataset
            ),
        })
        .collect();
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => parts.concat(),
    }
}

/// Prints today's capture lines, when the demo measured one.
fn print_capture(capture: &[String]) {
    if capture.is_empty() {
        return;
    }
    println!();
    println!(
        "Today's realtime capture, as `status` shows it (the one poll of the latest sessions \
         against the day's sessions so far, exported too):"
    );
    for line in capture {
        println!("  {line}");
    }
}

/// Prints the DuckDB queries of every dataset that takes part in the demo, over `out`.
fn print_queries(out: &Path) {
    println!();
    println!("Query it with DuckDB (https://duckdb.org), for example:");
    let root = out.display().to_string();
    for d in datasets::REGISTRY
        .iter()
        .filter(|d| d.demo.section.is_some())
    {
        for q in d.demo.queries {
            println!();
            println!("{}:", q.about);
            println!();
            let sql = q.sql.replace("{out}", &root).replace('\n', " \\\n    ");
            println!("  duckdb -c \"{sql}\"");
        }
    }
}

/// The demo's realtime capture: a snapshot dataset is polled once, for today, so the history a
/// registered reconciliation compares it with ([`datasets::reconcile`]) is exported for today
/// too (the day so far, provisional); then the capture section of today, as `status` prints
/// it. Empty when the demo enables no such pair.
async fn demo_capture(
    app: &App,
    today: chrono::NaiveDate,
    command: &str,
) -> Result<Vec<String>, Error> {
    use crate::coverage::{capture, status};
    let histories: Vec<Dataset> = app
        .datasets()
        .iter()
        .filter(|d| d.kind() == Kind::History)
        .filter(|d| {
            datasets::RECONCILIATIONS
                .iter()
                .any(|r| r.dataset == d.name())
        })
        .cloned()
        .collect();
    if histories.is_empty() {
        return Ok(Vec::new());
    }
    let req = BackfillRequest {
        from: today,
        to: today,
        datasets: histories,
        concurrency: 4,
        skip_existing: false,
    };
    backfill(&app.cx, &req).await?.into_result()?;
    let report = status::report(
        &app.cx.state,
        app.datasets(),
        &app.cx.account_id,
        (Some(today), Some(today)),
        Utc::now(),
        command,
    )
    .await;
    let section = datasets::reconcile::status_section(datasets::reconcile::SectionRequest {
        sink: &app.cx.sink,
        report: &report,
        last_days: None,
        command,
        cache: None,
    })
    .await;
    let mut lines = Vec::new();
    if let Some(s) = section {
        capture::lines(&s, &mut lines);
    }
    Ok(lines)
}
