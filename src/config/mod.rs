//! Configuration, by section. The TOML file is parsed into [`RawConfig`] (serde, unknown keys
//! rejected); a resolve step ([`files`]) reads everything the file points at (the client
//! secret, the CA bundle, the JWE key, the working directory); then one pure validator per
//! section turns the raw keys into [`Config`], the only type runtime code sees (parsed URLs,
//! cron schedules, `Duration`s, `chrono_tz::Tz`, the [`Secret`]). Every problem, from reading or
//! validating, is reported at once, each naming its key (`api.base_url: ...`); callers exit with
//! code 2 on any of them. Every default is defined once, in [`defaults`].
//! Precedence for the client secret: env `SMARTASSIST_CLIENT_SECRET` > `api.client_secret_file`.
//!
//! Sections: [`api`], [`auth`], [`output`], [`server`], and one per dataset ([`user_status`],
//! [`intent_realtime`], [`agent_status_details`], [`call_details`]); history datasets share
//! [`history`]'s keys.

pub mod agent_status_details;
pub mod api;
pub mod auth;
pub mod call_details;
pub mod defaults;
pub mod files;
pub mod history;
pub mod intent_realtime;
pub mod output;
pub mod parse;
pub mod server;
pub mod user_status;

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::auth::{AuthConfig, JweConfig, Secret};
pub use agent_status_details::AgentStatusDetailsConfig;
pub use api::{ApiConfig, BaseUrl, RetryPolicy, SIMULATOR_BASE_URL};
pub use call_details::CallDetailsConfig;
pub use intent_realtime::IntentConfig;
pub use output::{OutputLocation, StoreTuning};
pub use parse::{is_loopback_host, is_safe_identifier, Schedule};
pub use server::ServerConfig;
pub use user_status::UserStatusConfig;

use parse::Problems;

/// Env var that may hold the client secret (wins over `api.client_secret_file`).
pub const SECRET_ENV: &str = "SMARTASSIST_CLIENT_SECRET";

/// The file as written: one raw struct per section (each rejects unknown keys), built by
/// parsing every section on its own so that each section's mistakes are reported.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub api: api::RawApi,
    pub auth: auth::RawAuth,
    pub output: output::RawOutput,
    pub user_status: user_status::RawUserStatus,
    pub intent_realtime: intent_realtime::RawIntent,
    pub agent_status_details: agent_status_details::RawAgentStatusDetails,
    pub server: server::RawServer,
    pub call_details: call_details::RawCallDetails,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub output: OutputLocation,
    pub user_status: UserStatusConfig,
    pub intent: IntentConfig,
    pub agent_status_details: AgentStatusDetailsConfig,
    pub server: ServerConfig,
    pub call_details: CallDetailsConfig,
}

/// One problem with the configuration, naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration in {path}:\n  {}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
}

impl Config {
    /// Read, parse and validate a config file. `env_secret` is the value of
    /// [`SECRET_ENV`] if set (passed in so precedence is testable without touching the process env).
    pub fn load(path: &Path, env_secret: Option<String>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path, env_secret)
    }

    /// Parse, resolve and validate TOML text; `path` is used for messages and to resolve
    /// relative file paths (relative to the config file's directory).
    pub fn from_toml(
        text: &str,
        path: &Path,
        env_secret: Option<String>,
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', "\n  "),
        })?;
        let mut sections = Sections::default();
        let raw = RawConfig::from_table(table, &mut sections);
        let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
        let mut p = Problems::default();
        let resolved = files::resolve(&raw, base_dir, env_secret, &mut p);
        let config = raw.validate(&resolved, &mut p);
        // A section that did not parse was validated as empty: its "missing key" problems are
        // noise next to the parse problem that names the real mistake.
        p.0.retain(|problem| {
            !sections
                .failed
                .iter()
                .any(|s| problem.key.starts_with(&format!("{s}.")))
        });
        let mut problems = sections.problems.0;
        problems.append(&mut p.0);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            })
        }
    }
}

/// What parsing the sections found: problems naming the section, and which sections failed.
#[derive(Debug, Default)]
struct Sections {
    problems: Problems,
    failed: Vec<&'static str>,
}

impl Sections {
    /// Takes section `name` out of `table` and deserializes it (defaults when absent), so one
    /// section's mistake does not hide another's: every section is parsed and reported.
    fn take<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        table: &mut toml::Table,
        name: &'static str,
    ) -> T {
        let Some(value) = table.remove(name) else {
            return T::default();
        };
        // Re-parsed from its own text so the error can point at the offending key.
        let text = match &value {
            toml::Value::Table(t) => toml::to_string(t).unwrap_or_default(),
            _ => String::new(),
        };
        match toml::from_str::<T>(&text) {
            Ok(section) if value.is_table() => section,
            Ok(_) => {
                self.problems.push(name, "must be a table ([section])");
                self.failed.push(name);
                T::default()
            }
            Err(e) => {
                let key = e
                    .span()
                    .and_then(|span| text[..span.start.min(text.len())].lines().last())
                    .and_then(|line| line.split('=').next())
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map_or_else(|| name.to_string(), |k| format!("{name}.{k}"));
                let message = e.message().trim().replace('\n', " ");
                self.problems.push(&key, message);
                self.failed.push(name);
                T::default()
            }
        }
    }
}

impl RawConfig {
    /// Splits the file into its sections, reporting every section that does not parse and every
    /// unknown top-level key.
    fn from_table(mut table: toml::Table, sections: &mut Sections) -> RawConfig {
        let raw = RawConfig {
            api: sections.take(&mut table, "api"),
            auth: sections.take(&mut table, "auth"),
            output: sections.take(&mut table, "output"),
            user_status: sections.take(&mut table, "user_status"),
            intent_realtime: sections.take(&mut table, "intent_realtime"),
            agent_status_details: sections.take(&mut table, "agent_status_details"),
            server: sections.take(&mut table, "server"),
            call_details: sections.take(&mut table, "call_details"),
        };
        for unknown in table.keys() {
            sections.problems.push(
                unknown,
                "unknown section or key (see README.md, \"Configuration reference\")",
            );
        }
        raw
    }

    /// Validates every section (pure: the files were read by [`files::resolve`]), pushing every
    /// problem to `p`. The result is meaningful only when `p` stays empty.
    pub fn validate(&self, resolved: &files::Resolved, p: &mut Problems) -> Config {
        let api = api::validate(&self.api, resolved, p);
        let simulator = api.base_url == BaseUrl::Simulator;
        let auth = auth::validate(&self.auth, resolved, simulator, p);
        let output = output::validate(&self.output, resolved.cwd.as_deref(), p);
        let user_status = user_status::validate(&self.user_status, p);
        let intent = intent_realtime::validate(&self.intent_realtime, user_status.timezone, p);
        let agent_status_details = agent_status_details::validate(
            &self.agent_status_details,
            &api.account_id,
            user_status.timezone,
            p,
        );
        let server = server::validate(&self.server, p);
        let call_details = call_details::validate(&self.call_details, user_status.timezone, p);
        Config {
            api,
            auth,
            output,
            user_status,
            intent,
            agent_status_details,
            server,
            call_details,
        }
    }
}

#[cfg(test)]
mod tests;
