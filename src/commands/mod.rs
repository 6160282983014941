//! The CLI commands, one function each, in one module per family of commands: load the config,
//! build what the command needs, run it, print a human-readable result on stdout. `main.rs` only
//! parses arguments, initialises logging and maps the returned [`Error`] to an exit code. This
//! module dispatches a parsed command line and watches for the shutdown signals.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::config::{Config, SECRET_ENV};
use crate::datasets;
use crate::error::Error;

mod check;
mod demo;
mod export;
mod schema;
mod simulate;
mod status;

pub use demo::{demo_config_toml, DEMO_CONFIG_FILE, DEMO_TIMEZONE};

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
        Command::Backfill(args) => export::cmd_backfill(&cli.config, args, cancel).await,
        Command::Run(args) => export::cmd_run(&cli.config, args, cancel).await,
        Command::Token => check::cmd_token(&cli.config),
        Command::Healthcheck(args) => check::cmd_healthcheck(&cli.config, args),
        Command::Check => check::cmd_check(&cli.config, cancel).await,
        Command::Status(args) => status::cmd_status(&cli.config, args).await,
        Command::Schema(args) => schema::cmd_schema(&cli.config, args),
        Command::Reconcile(args) => status::cmd_reconcile(&cli.config, args).await,
        Command::Demo(args) => demo::cmd_demo(args, cancel).await,
        Command::Simulate(args) => simulate::cmd_simulate(*args, cancel).await,
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

/// Stands in for the client secret when `schema` or `status` loads the config: neither uses it.
const SCHEMA_STAND_IN_SECRET: &str = "unused-by-schema";
