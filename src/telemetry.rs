//! Logging setup: `tracing` to stderr, human-readable on a terminal or JSON lines with
//! `--log-format json`. Which lines pass is decided in one place, [`filter_directives`], with
//! this precedence: `RUST_LOG` when set (a full filter, dependencies included) > the command
//! line (`--log-level`, or `-v`/`-q`) > the default, `info`. The command line sets this crate's
//! level only; every other crate stays at `warn` (or quieter, when the chosen level is), so
//! at the default level the log holds only the exporter's own lines. Nothing here ever formats
//! a secret: the types that hold one redact themselves. Lines go through
//! [`crate::progress::LogWriter`] so they do not tear a backfill progress bar.
//!
//! The caller calls [`init`] once, before the first event.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// This crate's `tracing` target prefix (the library; the binary logs through it).
const OWN_TARGET: &str = env!("CARGO_CRATE_NAME");

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The value of `--log-level`: a level for this crate (`trace` … `error`, `off`), or, for
/// whoever needs more, a full `tracing` filter such as `info,object_store=debug`, used as given
/// (like `RUST_LOG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLevel {
    Level(LevelFilter),
    Filter(String),
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "expected trace, debug, info, warn, error, off, or a tracing \
             filter with `=` or `,` (e.g. `info,object_store=debug`)";
        if s.trim().is_empty() {
            // LevelFilter would read "" as a level.
            return Err(EXPECTED.to_string());
        }
        if let Ok(level) = LevelFilter::from_str(s) {
            return Ok(LogLevel::Level(level));
        }
        // A bare word would be a valid filter too (a target name), so a typo such as `degub`
        // would silently log nothing: only `=` or `,` marks a filter.
        if !s.contains(['=', ',']) {
            return Err(EXPECTED.to_string());
        }
        EnvFilter::try_new(s)
            .map(|_| LogLevel::Filter(s.to_string()))
            .map_err(|e| format!("{EXPECTED}: {e}"))
    }
}

/// What the command line asked for: `-v` and `-q` counts and `--log-level` (clap keeps the
/// three mutually exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verbosity {
    pub verbose: u8,
    pub quiet: u8,
    pub log_level: Option<LogLevel>,
}

impl Verbosity {
    /// This crate's level: `--log-level`, else `info` moved one step per `-v` (debug, trace)
    /// or `-q` (warn, error, off).
    fn own_level(&self) -> LevelFilter {
        if let Some(LogLevel::Level(level)) = &self.log_level {
            return *level;
        }
        const QUIETER: [LevelFilter; 4] = [
            LevelFilter::INFO,
            LevelFilter::WARN,
            LevelFilter::ERROR,
            LevelFilter::OFF,
        ];
        match (self.verbose, self.quiet) {
            (0, q) => QUIETER[usize::from(q).min(QUIETER.len() - 1)],
            (1, _) => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    }
}

/// The filter for this process, by precedence: `rust_log` (the `RUST_LOG` variable) when set
/// and not blank, verbatim; a filter given to `--log-level`, verbatim; else this crate at the
/// level of [`Verbosity`] and every other target at `warn`, or at this crate's level when that
/// is quieter (`-qq` hides dependency warnings too).
pub fn filter_directives(rust_log: Option<&str>, verbosity: &Verbosity) -> String {
    if let Some(env) = rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        return env.to_string();
    }
    if let Some(LogLevel::Filter(filter)) = &verbosity.log_level {
        return filter.clone();
    }
    let own = verbosity.own_level();
    // LevelFilter orders by verbosity: OFF < ERROR < WARN < ... < TRACE.
    let others = own.min(LevelFilter::WARN);
    format!("{},{OWN_TARGET}={}", name(others), name(own))
}

fn name(level: LevelFilter) -> &'static str {
    match level.into_level() {
        None => "off",
        Some(tracing::Level::ERROR) => "error",
        Some(tracing::Level::WARN) => "warn",
        Some(tracing::Level::INFO) => "info",
        Some(tracing::Level::DEBUG) => "debug",
        Some(tracing::Level::TRACE) => "trace",
    }
}

/// Install the global subscriber with [`filter_directives`] of `RUST_LOG` and `verbosity`.
/// An invalid `RUST_LOG` is ignored with a warning on stderr. JSON lines carry each event's
/// `target` (module path), text lines do not. Safe to call once per process; later calls are
/// ignored.
pub fn init(format: LogFormat, verbosity: &Verbosity) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = match EnvFilter::try_new(filter_directives(rust_log.as_deref(), verbosity)) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("warning: ignoring RUST_LOG, which is not a valid filter: {e}");
            EnvFilter::new(filter_directives(None, verbosity))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::progress::LogWriter);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(verbose: u8, quiet: u8, log_level: Option<&str>) -> Verbosity {
        Verbosity {
            verbose,
            quiet,
            log_level: log_level.map(|s| s.parse().expect("valid --log-level")),
        }
    }

    #[test]
    fn default_is_info_for_the_exporter_and_warn_for_dependencies() {
        assert_eq!(
            filter_directives(None, &Verbosity::default()),
            "warn,smartassist_export=info"
        );
    }

    #[test]
    fn each_v_and_q_moves_only_the_exporters_level_until_quieter_than_warn() {
        let cases = [
            (v(1, 0, None), "warn,smartassist_export=debug"),
            (v(2, 0, None), "warn,smartassist_export=trace"),
            (v(5, 0, None), "warn,smartassist_export=trace"),
            (v(0, 1, None), "warn,smartassist_export=warn"),
            (v(0, 2, None), "error,smartassist_export=error"),
            (v(0, 3, None), "off,smartassist_export=off"),
            (v(0, 9, None), "off,smartassist_export=off"),
        ];
        for (verbosity, want) in cases {
            assert_eq!(filter_directives(None, &verbosity), want, "{verbosity:?}");
        }
    }

    #[test]
    fn log_level_sets_the_exporters_level_or_passes_a_filter_through() {
        assert_eq!(
            filter_directives(None, &v(0, 0, Some("debug"))),
            "warn,smartassist_export=debug"
        );
        assert_eq!(
            filter_directives(None, &v(0, 0, Some("ERROR"))),
            "error,smartassist_export=error"
        );
        assert_eq!(
            filter_directives(None, &v(0, 0, Some("info,object_store=debug"))),
            "info,object_store=debug"
        );
    }

    #[test]
    fn rust_log_wins_over_every_flag_unless_blank() {
        for flags in [v(0, 0, None), v(2, 0, None), v(0, 2, Some("off"))] {
            assert_eq!(
                filter_directives(Some("hyper=trace"), &flags),
                "hyper=trace"
            );
        }
        assert_eq!(
            filter_directives(Some("  "), &v(1, 0, None)),
            "warn,smartassist_export=debug"
        );
    }

    #[test]
    fn log_level_refuses_what_is_neither_a_level_nor_a_filter() {
        assert_eq!(
            "Warn".parse::<LogLevel>(),
            Ok(LogLevel::Level(LevelFilter::WARN))
        );
        assert_eq!(
            "smartassist_export=trace".parse::<LogLevel>(),
            Ok(LogLevel::Filter("smartassist_export=trace".into()))
        );
        for bad in ["degub", "", "info,[", "x=notalevel"] {
            assert!(bad.parse::<LogLevel>().is_err(), "{bad:?} accepted");
        }
    }
}
