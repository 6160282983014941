//! The CLI commands, one function each: load the config, build what the command needs, run it,
//! print a human-readable result on stdout. `main.rs` only parses arguments, initialises logging
//! and maps the returned [`Error`] to an exit code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{Days, Utc};
use tokio_util::sync::CancellationToken;

use crate::auth::TokenMinter;
use crate::backfill::{backfill, error_chain, BackfillRequest};
use crate::cli::{
    BackfillArgs, Cli, Command, DemoArgs, HealthcheckArgs, RunArgs, SchemaArgs, SchemaFormat,
    SimulateArgs,
};
use crate::config::{Config, SECRET_ENV};
use crate::ddl;
use crate::error::Error;
use crate::model::Dataset;
use crate::pipeline::{Exporter, INTENT_ENDPOINT, USER_STATUS_ENDPOINT};
use crate::schema::{partition_columns, schema_for};
use crate::simulator::{self, SimulatorConfig};
use crate::sink::OutputLocation;
use crate::sources::user_status::{decode_page, request_body};
use crate::sources::window::{local_date, plan_day};

/// Load and validate the config named on the command line.
pub fn load_config(path: &Path) -> Result<Config, Error> {
    let env_secret = std::env::var(SECRET_ENV).ok();
    Ok(Config::load(path, env_secret)?)
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
        Command::Schema(args) => cmd_schema(&cli.config, args),
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
    for d in &args.datasets {
        let enabled = match d {
            Dataset::UserStatus => config.user_status.enabled,
            Dataset::IntentRealtime => config.intent.enabled,
        };
        if !enabled {
            return Err(Error::Usage(format!(
                "--dataset {d}: that dataset is disabled in the config"
            )));
        }
    }
    if let Some(why) = ddl::backfill_outside_projection(
        args.from,
        args.to,
        ddl::DEFAULT_PROJECTION_START,
        Utc::now(),
    ) {
        tracing::warn!(from = %args.from, to = %args.to, "Athena will not show every backfilled day: {why}.");
    }
    let exporter = Exporter::connect(config, cancel).await?;
    let req = BackfillRequest {
        from: args.from,
        to: args.to,
        datasets: args.datasets,
        concurrency: usize::from(args.concurrency),
        skip_existing: args.skip_existing,
    };
    let report = backfill(&exporter, &req).await;
    exporter.shutdown().await;
    let report = report?;
    println!(
        "Backfill {}..{}: {} day(s) exported, {} skipped, {} failed; {} rows, {} rejects, {} requests in {:.1}s.",
        req.from,
        req.to,
        report.days.len(),
        report.skipped_days.len(),
        report.failed_days.len(),
        report.rows(),
        report.rejects(),
        report.requests(),
        report.elapsed.as_secs_f64()
    );
    for (bot, r) in &report.bots {
        println!(
            "Bot {bot}: {} session(s) returned, {} new.",
            r.returned, r.new_sessions
        );
    }
    for (day, why) in &report.failed_days {
        println!("FAILED {day}: {why}");
    }
    for (bot, why) in &report.failed_bots {
        println!("FAILED bot {bot}: {why}");
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
        &config.api.client_secret,
        &config.auth,
    );
    let token = minter.mint()?;
    println!("{}", token.expose());
    Ok(())
}

async fn cmd_check(path: &Path, cancel: CancellationToken) -> Result<(), Error> {
    let config = load_config(path)?;
    println!("config {}: valid", path.display());
    let minter = TokenMinter::new(
        &config.api.client_id,
        &config.api.client_secret,
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
    let exporter = Exporter::connect(config, cancel).await?;
    let cfg = exporter.config().clone();
    let mut failures = Vec::new();
    if cfg.user_status.enabled {
        let today = local_date(cfg.user_status.timezone, Utc::now());
        let window = plan_day(cfg.user_status.timezone, today).remove(0);
        let body = request_body(
            &cfg.user_status.agents,
            &window,
            cfg.user_status.granularity,
        );
        let query = [("limit", "1".to_string()), ("offset", "0".to_string())];
        match exporter
            .client()
            .post_json(
                USER_STATUS_ENDPOINT,
                &cfg.api.user_status_path,
                &query,
                &body,
                |b| decode_page(b).map(|p| (p.record_count, p.has_more)),
            )
            .await
        {
            Ok((records, has_more)) => println!(
                "user_status: OK ({records} agent record(s) on a 1-agent page, hasMore = {has_more})"
            ),
            Err(e) => {
                println!("user_status: FAILED: {}", error_chain(&e));
                failures.push("user_status".to_string());
            }
        }
    }
    if cfg.intent.enabled {
        for bot in &cfg.intent.bot_ids {
            let path = cfg.api.intent_path.replace("{bot_id}", bot);
            match exporter
                .client()
                .post_json(
                    INTENT_ENDPOINT,
                    &path,
                    &[],
                    &serde_json::json!({}),
                    crate::sources::intent::decode_sessions,
                )
                .await
            {
                Ok(sessions) => println!(
                    "intent_realtime bot {bot}: OK ({} session(s))",
                    sessions.len()
                ),
                Err(e) => {
                    println!("intent_realtime bot {bot}: FAILED: {}", error_chain(&e));
                    failures.push(format!("bot {bot}"));
                }
            }
        }
    }
    exporter.shutdown().await;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Partial {
            failed: failures.len(),
            total: failures.len(),
            units: failures,
        })
    }
}

/// Stands in for the client secret when `schema` loads the config: DDL never uses it.
const SCHEMA_STAND_IN_SECRET: &str = "unused-by-schema";

fn cmd_schema(path: &Path, args: SchemaArgs) -> Result<(), Error> {
    if args.format == SchemaFormat::Arrow {
        for dataset in Dataset::ALL {
            println!(
                "{dataset} (partitioned by {})",
                partition_columns(dataset).join(", ")
            );
            for f in schema_for(dataset).fields() {
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
        return Ok(());
    }
    // The config supplies the location and the ids when it loads; DDL for a template (the
    // committed deploy/athena files) is produced with --location and --injected-ids. DDL never
    // uses the client secret, so a stand-in is passed (it wins over api.client_secret_file,
    // which is then not read): an analyst without the service's secret still gets real DDL.
    let config = if path.exists() {
        match Config::load(path, Some(SCHEMA_STAND_IN_SECRET.to_string())) {
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
    } else {
        if args.location.is_none() {
            eprintln!(
                "note: no config file at {}; printing placeholders",
                path.display()
            );
        }
        None
    };
    let config_root = config.as_ref().map(|c| match &c.output {
        OutputLocation::Local(dir) => dir.display().to_string(),
        OutputLocation::S3 { bucket, prefix, .. } if prefix.is_empty() => format!("s3://{bucket}"),
        OutputLocation::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
    });
    match args.format {
        SchemaFormat::Athena => {
            let root = args
                .location
                .or(config_root.filter(|r| r.starts_with("s3://")))
                .unwrap_or_else(|| ddl::PLACEHOLDER_LOCATION.to_string());
            let ids = match (&config, args.injected_ids) {
                (Some(c), false) => ddl::IdProjection::Known {
                    account_ids: vec![c.api.account_id.clone()],
                    bot_ids: c.intent.bot_ids.clone(),
                },
                _ => ddl::IdProjection::Injected,
            };
            let start = args
                .athena_range_start
                .unwrap_or(ddl::DEFAULT_PROJECTION_START);
            let sql = ddl::athena_ddl(&root, &ids, start)
                .map_err(|e| Error::Usage(format!("cannot generate Athena DDL: {e}")))?;
            print!("{sql}");
        }
        SchemaFormat::Duckdb => {
            let root = args
                .location
                .or(config_root)
                .unwrap_or_else(|| "out".to_string());
            let endpoint = match config.as_ref().map(|c| &c.output) {
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
        SchemaFormat::Arrow => {}
    }
    Ok(())
}

/// Config used by `demo`: the simulator, a few agents and one bot, output in `out`.
pub fn demo_config_toml(out: &Path) -> String {
    format!(
        r#"
[api]
base_url = "simulator"
account_id = "demo-account"
iid = "st-demo-stream"
client_id = "cs-demo-client"

[output]
url = {url:?}

[user_status]
granularity = "PT30M"
timezone = "America/New_York"

[intent_realtime]
bot_ids = ["st-demo-bot"]
"#,
        url = out.display().to_string()
    )
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
    let config = Config::from_toml(&demo_config_toml(&out), Path::new("<demo>"), None)?;
    let tz = config.user_status.timezone;
    let yesterday = local_date(tz, Utc::now())
        .checked_sub_days(Days::new(1))
        .ok_or_else(|| Error::Usage("date out of range".into()))?;
    let from = yesterday
        .checked_sub_days(Days::new(u64::from(args.days.saturating_sub(1))))
        .ok_or_else(|| Error::Usage("date out of range".into()))?;
    let exporter = Exporter::connect(config, cancel).await?;
    let req = BackfillRequest {
        from,
        to: yesterday,
        datasets: Vec::new(),
        concurrency: 4,
        skip_existing: false,
    };
    let report = backfill(&exporter, &req).await;
    exporter.shutdown().await;
    let report = report?.into_result()?;
    println!(
        "Demo: exported {} day(s) of user_status ({} rows) and {} intent session(s) into {}",
        report.days.len(),
        report.days.iter().map(|d| d.rows).sum::<usize>(),
        report
            .bots
            .iter()
            .map(|(_, b)| b.new_sessions)
            .sum::<usize>(),
        out.display()
    );
    println!();
    println!("Query it with DuckDB (https://duckdb.org), for example:");
    println!();
    println!(
        "  duckdb -c \"SELECT dt, email, value AS status, sum(duration_seconds)/3600.0 AS hours \\\n    FROM read_parquet('{}/user_status/*/*/*.parquet', hive_partitioning = true) \\\n    WHERE metric = 'AgentStatus' GROUP BY ALL ORDER BY dt, email, status LIMIT 20\"",
        out.display()
    );
    Ok(())
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
                Error::Usage(format!(
                    "--jwe-private-key-file: {}",
                    crate::backfill::error_chain(&e)
                ))
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
        legacy_shape: args.legacy_shape,
        rate_limit_per_minute: args.rate_limit_per_minute,
        intent_interval: Duration::from_millis(args.intent_interval_ms.max(1)),
        ..defaults
    };
    let sim = simulator::start(cfg, args.listen).await?;
    println!("simulator listening on {}", sim.base_url());
    cancel.cancelled().await;
    sim.shutdown().await;
    Ok(())
}
