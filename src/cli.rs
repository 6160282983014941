//! Command-line definitions (clap) and nothing else: what this invocation should do. The
//! pipeline's shape lives in the config file; flags only describe the run (which days, how many
//! in parallel, log format).

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::datasets::{self, DatasetInfo};
use crate::telemetry::{LogFormat, LogLevel, Verbosity};

/// The command line (`--help` opens with [`about`]).
#[derive(Debug, Parser)]
#[command(name = "smartassist-export", version, about = about(), long_about = None)]
pub struct Cli {
    /// Config file.
    #[arg(
        short = 'c',
        long,
        env = "SMARTASSIST_EXPORT_CONFIG",
        default_value = "config.toml",
        global = true
    )]
    pub config: PathBuf,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// This program's log level (other crates log at warn), or a tracing filter such as
    /// `info,object_store=debug`. Default: info. RUST_LOG, when set, overrides it and -v/-q.
    #[arg(long, value_name = "LEVEL", global = true, conflicts_with_all = ["verbose", "quiet"])]
    pub log_level: Option<LogLevel>,
    /// More log detail: -v debug, -vv trace (this program only).
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log detail: -q warnings and errors, -qq errors only, -qqq nothing.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The one-line description `--help` opens with; the datasets come from the registry.
fn about() -> String {
    format!(
        "Exports Kore.ai SmartAssist report data ({}) to Hive-partitioned Parquet on local disk \
         or S3.",
        datasets::names().join(", ")
    )
}

impl Cli {
    /// The logging flags, for [`crate::telemetry::init`].
    pub fn verbosity(&self) -> Verbosity {
        Verbosity {
            verbose: self.verbose,
            quiet: self.quiet,
            log_level: self.log_level.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export a range of local days (inclusive). Intent data has no history: it takes the
    /// current snapshot.
    Backfill(BackfillArgs),
    /// Run the scheduled jobs (or each enabled job once with --once).
    Run(RunArgs),
    /// Print one freshly minted token.
    Token,
    /// Exit 0 when the running daemon's /healthz answers 200 (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Validate the config, mint a token and probe each enabled endpoint once.
    Check,
    /// Show what the output holds: per dataset (and entity) and local day OK, EMPTY, MISSING,
    /// FAILED or PROVISIONAL, the watermark, lag and freshness, and the backfill commands that
    /// fill the holes. Reads the output only (no API request).
    Status(StatusArgs),
    /// Print each dataset's schema.
    Schema(SchemaArgs),
    /// Measure intent_realtime's capture against bot_sessions, per bot and local day, from the
    /// output (no request is sent): sessions, captured, ratio and the missed session ids.
    Reconcile(ReconcileArgs),
    /// Start the built-in simulator, export a few days into a folder and print a DuckDB query.
    Demo(DemoArgs),
    /// Run the built-in API simulator in the foreground (for tests and benchmarks).
    Simulate(Box<SimulateArgs>),
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// First local day, YYYY-MM-DD.
    #[arg(long)]
    pub from: NaiveDate,
    /// Last local day (inclusive), YYYY-MM-DD.
    #[arg(long)]
    pub to: NaiveDate,
    /// Datasets to export (repeatable); default: every enabled dataset.
    #[arg(long = "dataset", value_name = "NAME", value_parser = datasets::parse_name)]
    pub datasets: Vec<&'static DatasetInfo>,
    /// Days fetched in parallel (all share the account's rate limit).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Skip days whose partition already exists (saves API budget when resuming).
    #[arg(long, conflicts_with = "missing")]
    pub skip_existing: bool,
    /// Export only the units `status` shows as MISSING or FAILED (from the coverage record).
    #[arg(long)]
    pub missing: bool,
    /// With --missing: also re-export the PROVISIONAL units.
    #[arg(long, requires = "missing")]
    pub provisional: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Datasets to show (repeatable); default: every enabled dataset.
    #[arg(long = "dataset", value_name = "NAME", value_parser = datasets::parse_name)]
    pub datasets: Vec<&'static DatasetInfo>,
    /// First local day, YYYY-MM-DD; default: 29 days before --to.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last local day (inclusive), YYYY-MM-DD; default: today (never later).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Print one JSON document (its shape is documented in the README).
    #[arg(long)]
    pub json: bool,
    /// First rebuild the coverage record from the Parquet files where it lacks a unit or
    /// cannot be read.
    #[arg(long)]
    pub rebuild: bool,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// First local day, YYYY-MM-DD; default: yesterday in `[bot_sessions] timezone`.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last local day (inclusive), YYYY-MM-DD; default: `--from`.
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Only this bot (repeatable); default: the bots of `[bot_sessions]`.
    #[arg(long = "bot", value_name = "BOT_ID")]
    pub bots: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run every enabled job once and exit.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Address of the daemon's server; default: `[server] listen` of the config (an
    /// unspecified address such as 0.0.0.0 is probed on loopback).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    /// Arrow field list.
    Arrow,
    /// Athena `CREATE EXTERNAL TABLE` statements with partition projection.
    Athena,
    /// DuckDB views over the output.
    Duckdb,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(long, value_enum, default_value_t = SchemaFormat::Arrow)]
    pub format: SchemaFormat,
    /// Output root to put in the DDL (`s3://bucket/prefix` or a directory); default: the
    /// config's `[output] url`.
    #[arg(long)]
    pub location: Option<String>,
    /// Athena: use `injected` projection for account_id/bot_id even when the config names them.
    #[arg(long)]
    pub injected_ids: bool,
    /// Athena: first day of the `dt` projection, YYYY-MM-DD (default 2020-01-01). Athena shows
    /// no rows for earlier days: set it no later than your earliest backfill.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub athena_range_start: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, default_value = "demo-output")]
    pub out: PathBuf,
    /// Number of past local days to export (ending yesterday).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=31))]
    pub days: u32,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8900")]
    pub listen: SocketAddr,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 20)]
    pub agents: usize,
    /// Bot ids served by IntentRealtimeData (repeatable).
    #[arg(long = "bot")]
    pub bots: Vec<String>,
    #[arg(long, default_value = "demo-account")]
    pub account_id: String,
    #[arg(long, default_value = "st-demo-stream")]
    pub iid: String,
    #[arg(long, default_value = "cs-demo-client")]
    pub client_id: String,
    /// Client secret the simulator verifies tokens with (env SMARTASSIST_CLIENT_SECRET).
    #[arg(long, env = "SMARTASSIST_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    #[arg(long)]
    pub enforce_jti: bool,
    /// Added latency per response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Largest page the simulator serves.
    #[arg(long, default_value_t = 100)]
    pub max_page_size: usize,
    /// Answer a `limit` above --max-page-size with HTTP 400 instead of clamping it.
    #[arg(long)]
    pub strict_page_size: bool,
    /// Server-side rate limit per minute (off by default).
    #[arg(long)]
    pub rate_limit_per_minute: Option<u32>,
    /// One intent session completes per bot every this many milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub intent_interval_ms: u64,
    /// Serve the legacy UserStatus response shape.
    #[arg(long)]
    pub legacy_shape: bool,
    /// Call Details: sessions starting in each UTC hour (each hour varies by ±20 %).
    #[arg(long, default_value_t = 12)]
    pub call_sessions_per_hour: u32,
    /// Keep every successful answer and send its bytes again to the same request (same path,
    /// query, identity headers and JSON body), so benchmarks measure the client, not response
    /// generation. Auth and the rate limit still apply; clock-dependent answers are frozen.
    #[arg(long)]
    pub cache_responses: bool,
    /// Enforce JWE: the `auth` header must be a JWE for this RSA private key (PEM or JWK).
    #[arg(long, value_name = "FILE")]
    pub jwe_private_key_file: Option<PathBuf>,
    /// With --jwe-private-key-file: the `kid` the JWE header must carry.
    #[arg(long, value_name = "KID", requires = "jwe_private_key_file")]
    pub jwe_kid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_names_every_registered_dataset() {
        let help = Cli::command().render_help().to_string();
        let first = help.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("Exports Kore.ai SmartAssist report data (")
                && first.ends_with(") to Hive-partitioned Parquet on local disk or S3."),
            "{help}"
        );
        for name in crate::datasets::names() {
            assert!(first.contains(name), "--help does not name {name}: {first}");
        }
    }

    #[test]
    fn log_flags_count_before_or_after_the_command_and_exclude_each_other() {
        let cli = Cli::try_parse_from(["x", "-vv", "schema"]).expect("parses");
        assert_eq!((cli.verbose, cli.quiet, cli.log_level), (2, 0, None));
        let cli = Cli::try_parse_from(["x", "schema", "-q", "-q"]).expect("parses");
        assert_eq!((cli.verbose, cli.quiet), (0, 2));
        let cli = Cli::try_parse_from(["x", "--log-level", "debug", "schema"]).expect("parses");
        assert_eq!(
            cli.log_level,
            Some(LogLevel::Level(tracing::level_filters::LevelFilter::DEBUG))
        );
        for conflicting in [
            &["x", "-v", "-q", "schema"][..],
            &["x", "-v", "--log-level", "info", "schema"],
            &["x", "schema", "-q", "--log-level", "info"],
            &["x", "--log-level", "degub", "schema"],
        ] {
            assert!(
                Cli::try_parse_from(conflicting).is_err(),
                "{conflicting:?} accepted"
            );
        }
    }

    #[test]
    fn backfill_parses_dates_and_datasets() {
        let cli = Cli::try_parse_from([
            "smartassist-export",
            "backfill",
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-03",
            "--dataset",
            "user_status",
        ])
        .expect("parses");
        match cli.command {
            Command::Backfill(b) => {
                assert_eq!(b.from, NaiveDate::from_ymd_opt(2024, 5, 1).expect("date"));
                let names: Vec<&str> = b.datasets.iter().map(|d| d.name).collect();
                assert_eq!(names, vec!["user_status"]);
                assert_eq!(b.concurrency, 4);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from([
            "x",
            "backfill",
            "--from",
            "2024-13-01",
            "--to",
            "2024-05-03"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "x",
            "backfill",
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-03",
            "--dataset",
            "nope"
        ])
        .is_err());
    }
}
