//! The CLI commands, one function each: load the config, build what the command needs, run it,
//! print a human-readable result on stdout. `main.rs` only parses arguments, initialises logging
//! and maps the returned [`Error`] to an exit code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{Days, Utc};
use tokio_util::sync::CancellationToken;

use crate::app::{self, App};
use crate::auth::TokenMinter;
use crate::backfill::{backfill, backfill_selected, BackfillRequest, Selection};
use crate::cli::{
    BackfillArgs, Cli, Command, DemoArgs, HealthcheckArgs, ReconcileArgs, RunArgs, SchemaArgs,
    SchemaFormat, SimulateArgs, StatusArgs,
};
use crate::client::Priority;
use crate::config::{Config, OutputLocation, SECRET_ENV};
use crate::datasets::{self, Context, Dataset, EntitySource, Kind, SnapshotDataset};
use crate::ddl;
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::handover::cli::{budget_owner, own_or_hand_over, Owner};
use crate::handover::JobRequest;
use crate::metrics::Metrics;
use crate::progress::ProgressMode;
use crate::simulator::call_details::CallDetailsSim;
use crate::simulator::user_status::UserStatusSim;
use crate::simulator::{self, ModelSettings, SimulatorConfig};
use crate::sources::window::local_date;

/// Load and validate the config named on the command line.
pub fn load_config(path: &Path) -> Result<Config, Error> {
    let env_secret = std::env::var(SECRET_ENV).ok();
    Ok(datasets::load_config(path, env_secret)?)
}

/// Run one parsed command line.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let cancel = CancellationToken::new();
    let watcher = spawn_signal_watcher(cancel.clone());
    let result = match cli.command {
        Command::Backfill(args) => cmd_backfill(&cli.config, args, cancel).await,
        Command::Run(args) => cmd_run(&cli.config, args, cancel).await,
        Command::Token => cmd_token(&cli.config),
        Command::Healthcheck(args) => cmd_healthcheck(&cli.config, args),
        Command::Check => cmd_check(&cli.config, cancel).await,
        Command::Status(args) => cmd_status(&cli.config, args).await,
        Command::Schema(args) => cmd_schema(&cli.config, args),
        Command::Reconcile(args) => cmd_reconcile(&cli.config, args).await,
        Command::Demo(args) => cmd_demo(args, cancel).await,
        Command::Simulate(args) => cmd_simulate(*args, cancel).await,
    };
    watcher.abort();
    result
}

/// Cancel `token` on SIGINT or SIGTERM.
fn spawn_signal_watcher(token: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("Shutdown signal received; finishing in-flight work.");
        token.cancel();
    })
}

async fn cmd_backfill(
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

async fn cmd_run(path: &Path, args: RunArgs, cancel: CancellationToken) -> Result<(), Error> {
    let config = load_config(path)?;
    if args.once {
        crate::daemon::run_once(config, cancel).await
    } else {
        crate::daemon::run_daemon(config, cancel).await
    }
}

/// Exit 0 when `/healthz` of a running daemon answers 200 (for container HEALTHCHECKs in images
/// without curl).
fn cmd_healthcheck(path: &Path, args: HealthcheckArgs) -> Result<(), Error> {
    let addr = match args.addr {
        Some(a) => a,
        None => {
            let mut a = load_config(path)?.server.listen;
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            a
        }
    };
    match crate::server::http_get(addr, "/healthz") {
        Ok((200, body)) => {
            print!("{body}");
            Ok(())
        }
        Ok((status, body)) => Err(Error::Unhealthy(format!(
            "{addr}: {status}: {}",
            body.trim()
        ))),
        Err(source) => Err(Error::Io {
            context: format!("GET http://{addr}/healthz"),
            source,
        }),
    }
}

fn cmd_token(path: &Path) -> Result<(), Error> {
    let config = load_config(path)?;
    let minter = TokenMinter::new(
        &config.api.client_id,
        &app::client_secret(&config),
        &config.auth,
    );
    let token = minter.mint()?;
    println!("{}", token.expose());
    Ok(())
}

async fn cmd_check(path: &Path, cancel: CancellationToken) -> Result<(), Error> {
    let config = load_config(path)?;
    println!("config {}: valid", path.display());
    let polls = crate::daemon::PollBudget::of(
        &datasets::enabled(&config),
        config.api.requests_per_minute,
        Utc::now(),
    );
    polls.check()?;
    if let Some(line) = polls.summary() {
        println!("budget: {line}");
    }
    let minter = TokenMinter::new(
        &config.api.client_id,
        &app::client_secret(&config),
        &config.auth,
    );
    minter.mint()?;
    println!("token: minted (HS256, appId = {})", config.api.client_id);
    if let Some(jwe) = minter.jwe() {
        println!(
            "token: wrapped in a JWE ({}, {}, kid {})",
            jwe.alg(),
            jwe.enc(),
            jwe.kid()
        );
    }
    let metrics = Metrics::new();
    let output = crate::sink::Output::open_with(&config.output, &metrics)?
        .with_page_row_group_bytes(config.encoding.page_row_group_bytes);
    if let Some(owner) = budget_owner(&output.state, &config.api.account_id).await? {
        println!(
            "probes: skipped: the account's request budget is in use by {owner}; probes would \
             add requests beyond it (that process's /healthz and logs show whether its \
             requests succeed)"
        );
        return Ok(());
    }
    let app = App::start(config, cancel, metrics).await?;
    let (failures, probes) = probe_all(&app).await;
    app.shutdown().await;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Partial {
            failed: failures.len(),
            total: probes,
            units: failures,
        })
    }
}

/// One request per enabled dataset (per entity for snapshots), through the same request path
/// the export uses. Returns the failed probes and how many probes ran.
async fn probe_all(app: &App) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut probes = 0;
    for dataset in app.datasets() {
        match dataset {
            Dataset::History(d) => {
                probes += 1;
                let today = local_date(d.schedule().timezone, Utc::now());
                let cx = app.cx.for_work(d.info().name, Priority::Scheduled);
                match d.probe(&cx, today).await {
                    Ok(detail) => println!("{}: OK ({detail})", d.info().name),
                    Err(e) => {
                        println!("{}: FAILED: {}", d.info().name, error_chain(&e));
                        failures.push(d.info().name.to_string());
                    }
                }
            }
            Dataset::Snapshot(d) => {
                let (name, kind) = (d.info().name, d.entity_kind());
                let cx = app.cx.for_work(name, Priority::Realtime);
                let entities = match listed_entities(d.as_ref(), &cx).await {
                    Ok(entities) => entities,
                    Err(line) => {
                        println!("{line}");
                        failures.push(format!("{name} {kind} list"));
                        continue;
                    }
                };
                for entity in &entities {
                    probes += 1;
                    match d.probe(&cx, entity).await {
                        Ok(detail) => println!("{name} {kind} {entity}: OK ({detail})"),
                        Err(e) => {
                            println!("{name} {kind} {entity}: FAILED: {}", error_chain(&e));
                            failures.push(format!("{kind} {entity}"));
                        }
                    }
                }
            }
        }
    }
    (failures, probes)
}

/// The entities `check` probes: the configured ones, or those of the current list (printing
/// where they come from); `Err` with the line to print when the list cannot be read.
async fn listed_entities(d: &dyn SnapshotDataset, cx: &Context) -> Result<Vec<String>, String> {
    let (name, kind) = (d.info().name, d.entity_kind());
    let source = d.entity_source();
    if source == EntitySource::Config {
        return Ok(d.entities().to_vec());
    }
    println!(
        "{name}: {kind} ids: {}",
        source.describe(&format!("{name}.{kind}_ids"), kind)
    );
    match d.current_entities(cx, Utc::now()).await {
        Ok(Some(entities)) => {
            println!("{name}: {} {kind}(s) in the latest list", entities.len());
            Ok(entities)
        }
        Ok(None) => {
            println!(
                "{name}: no {kind} list in the output yet: nothing to probe; the daemon polls \
                 every {kind} once the list export has written one"
            );
            Ok(Vec::new())
        }
        Err(e) => Err(format!(
            "{name}: FAILED reading the {kind} list: {}",
            error_chain(&e)
        )),
    }
}

/// `status`: reads the output's state (and, with `--rebuild`, its files) and prints the
/// report. Talks to no API, so no secret is needed; it works beside a running daemon.
async fn cmd_status(path: &Path, args: StatusArgs) -> Result<(), Error> {
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

/// `word`, quoted for a POSIX shell when it holds anything but `[A-Za-z0-9/._=:-]`.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._=:-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Stands in for the client secret when `schema` loads the config: DDL never uses it.
const SCHEMA_STAND_IN_SECRET: &str = "unused-by-schema";

/// `reconcile`: the registered reconciliation's lines ([`datasets::reconcile`]), printed.
async fn cmd_reconcile(path: &Path, args: ReconcileArgs) -> Result<(), Error> {
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

fn cmd_schema(path: &Path, args: SchemaArgs) -> Result<(), Error> {
    if args.format == SchemaFormat::Arrow {
        print_arrow_schemas();
        return Ok(());
    }
    let config = schema_config(path, args.location.is_some());
    let config_root = config.as_ref().map(|c| match &c.output {
        OutputLocation::Local(dir) => dir.display().to_string(),
        OutputLocation::S3 { bucket, prefix, .. } if prefix.is_empty() => format!("s3://{bucket}"),
        OutputLocation::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
    });
    match args.format {
        SchemaFormat::Athena => print_athena(&args, config.as_ref(), config_root),
        SchemaFormat::Duckdb => {
            print_duckdb(args.location, config.as_ref(), config_root);
            Ok(())
        }
        SchemaFormat::Arrow => Ok(()),
    }
}

fn print_arrow_schemas() {
    for table in datasets::tables() {
        println!(
            "{table} (partitioned by {})",
            table.partition_columns().join(", ")
        );
        for f in (table.schema)().fields() {
            let null = if f.is_nullable() {
                "nullable"
            } else {
                "not null"
            };
            println!(
                "  {:<22} {:<40} {null}",
                f.name(),
                f.data_type().to_string()
            );
        }
        println!();
    }
}

/// The config for DDL, when it loads. It supplies the location and the ids; DDL for a template
/// (the committed deploy/athena files) is produced with --location and --injected-ids. DDL
/// never uses the client secret, so a stand-in is passed (it wins over api.client_secret_file,
/// which is then not read): an analyst without the service's secret still gets real DDL.
fn schema_config(path: &Path, location_given: bool) -> Option<Config> {
    if !path.exists() {
        if !location_given {
            eprintln!(
                "note: no config file at {}; printing placeholders",
                path.display()
            );
        }
        return None;
    }
    match datasets::load_config(path, Some(SCHEMA_STAND_IN_SECRET.to_string())) {
        Ok(config) => Some(config),
        Err(e) => {
            eprintln!(
                "note: not using {} ({}); printing placeholders",
                path.display(),
                error_chain(&e)
            );
            None
        }
    }
}

fn print_athena(
    args: &SchemaArgs,
    config: Option<&Config>,
    config_root: Option<String>,
) -> Result<(), Error> {
    let root = args
        .location
        .clone()
        .or(config_root.filter(|r| r.starts_with("s3://")))
        .unwrap_or_else(|| ddl::PLACEHOLDER_LOCATION.to_string());
    let ids = match (config, args.injected_ids) {
        (Some(c), false) => ddl::IdProjection::Known {
            account_ids: vec![c.api.account_id.clone()],
            bot_ids: bots_of(&datasets::enabled(c)),
        },
        _ => ddl::IdProjection::Injected,
    };
    let start = args
        .athena_range_start
        .unwrap_or(ddl::DEFAULT_PROJECTION_START);
    let sql = ddl::athena_ddl(&root, &ids, start).map_err(|e| Error::Ddl(Box::new(e)))?;
    print!("{sql}\n{}", ddl::athena_views());
    Ok(())
}

fn print_duckdb(location: Option<String>, config: Option<&Config>, config_root: Option<String>) {
    let root = location
        .or(config_root)
        .unwrap_or_else(|| "out".to_string());
    let endpoint = match config.map(|c| &c.output) {
        Some(OutputLocation::S3 {
            endpoint: Some(url),
            region,
            ..
        }) => Some(ddl::S3Endpoint {
            url: url.clone(),
            region: region.clone(),
        }),
        _ => None,
    };
    print!(
        "{}",
        ddl::duckdb_views_with_endpoint(&root, endpoint.as_ref())
    );
}

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

async fn cmd_demo(args: DemoArgs, cancel: CancellationToken) -> Result<(), Error> {
    let out: PathBuf = if args.out.is_absolute() {
        args.out.clone()
    } else {
        std::env::current_dir()
            .map_err(|source| Error::Io {
                context: "resolving the current directory".into(),
                source,
            })?
            .join(&args.out)
    };
    // Drop `.` components so the printed query path is clean.
    let out: PathBuf = out
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let text = demo_config_toml(&out);
    let config = datasets::config_from_toml(&text, Path::new("<demo>"), None)?;
    // The commands the demo prints (`reconcile`) need the config: it is kept next to the
    // output (a hidden `_` file, as the lake's own files are), so they work from anywhere.
    let config_path = out.join(DEMO_CONFIG_FILE);
    std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(&config_path, &text))
        .map_err(|source| Error::Io {
            context: format!("writing the demo config {}", config_path.display()),
            source,
        })?;
    let command = format!(
        "smartassist-export -c {}",
        shell_word(&config_path.display().to_string())
    );
    let tz = config.api.timezone;
    let yesterday = local_date(tz, Utc::now())
        .checked_sub_days(Days::new(1))
        .ok_or_else(|| Error::Usage("date out of range".into()))?;
    let from = yesterday
        .checked_sub_days(Days::new(u64::from(args.days.saturating_sub(1))))
        .ok_or_else(|| Error::Usage("date out of range".into()))?;
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
    let parts = match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => parts.concat(),
    };
    println!("Demo: exported {parts} into {}", out.display());
    if !capture.is_empty() {
        println!();
        println!(
            "Today's realtime capture, as `status` shows it (the one poll of the latest sessions \
             against the day's sessions so far, exported too):"
        );
        for line in &capture {
            println!("  {line}");
        }
    }
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
    Ok(())
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

async fn cmd_simulate(args: SimulateArgs, cancel: CancellationToken) -> Result<(), Error> {
    if !args.listen.ip().is_loopback() {
        return Err(Error::Usage(format!(
            "--listen {}: the simulator only binds loopback addresses",
            args.listen
        )));
    }
    let defaults = SimulatorConfig::default();
    let jwe = match &args.jwe_private_key_file {
        None => None,
        Some(path) => Some(
            simulator::jwe::SimJwe::from_key_file(path, args.jwe_kid.clone()).map_err(|e| {
                Error::Usage(format!("--jwe-private-key-file: {}", error_chain(&e)))
            })?,
        ),
    };
    let cfg = SimulatorConfig {
        jwe,
        seed: args.seed,
        account_id: args.account_id,
        iid: args.iid,
        client_id: args.client_id,
        client_secret: args.client_secret.unwrap_or(defaults.client_secret.clone()),
        agents: args.agents,
        bots: if args.bots.is_empty() {
            defaults.bots.clone()
        } else {
            args.bots
        },
        enforce_jti: args.enforce_jti,
        latency: Duration::from_millis(args.latency_ms),
        max_page_size: args.max_page_size,
        strict_page_size: args.strict_page_size,
        models: ModelSettings::default()
            .with(UserStatusSim {
                legacy_shape: args.legacy_shape,
            })
            .with(CallDetailsSim {
                sessions_per_hour: args.call_sessions_per_hour,
                ..CallDetailsSim::default()
            }),
        cache_responses: args.cache_responses,
        rate_limit_per_minute: args.rate_limit_per_minute,
        intent_interval: Duration::from_millis(args.intent_interval_ms.max(1)),
        ..defaults
    };
    let sim = simulator::start(cfg, args.listen)
        .await
        .map_err(|e| Error::Startup {
            what: "the simulator",
            source: Box::new(e),
        })?;
    println!("simulator listening on {}", sim.base_url());
    cancel.cancelled().await;
    sim.shutdown().await;
    Ok(())
}

/// The bots of every enabled dataset whose entities are bots (a snapshot's polls, a history
/// dataset's per-bot days), once each: the values of the DDL's `bot_id` projection.
fn bots_of(enabled: &[Dataset]) -> Vec<String> {
    let mut bots: Vec<String> = enabled
        .iter()
        .filter_map(|d| match d {
            Dataset::Snapshot(d) => (d.entity_kind() == "bot").then(|| d.entities().to_vec()),
            Dataset::History(d) => (d.entity_kind() == "bot").then(|| d.entities().to_vec()),
        })
        .flatten()
        .collect();
    bots.sort();
    bots.dedup();
    bots
}
