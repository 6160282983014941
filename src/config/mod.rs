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

use serde::Deserialize;

pub use agent_status_details::AgentStatusDetailsConfig;
pub use api::{ApiConfig, BaseUrl, RetryPolicy, SIMULATOR_BASE_URL};
pub use auth::{AuthConfig, JweConfig};
pub use call_details::CallDetailsConfig;
pub use intent_realtime::IntentConfig;
pub use output::OutputLocation;
pub use parse::{is_loopback_host, is_safe_identifier, Schedule};
pub use server::ServerConfig;
pub use user_status::UserStatusConfig;

use parse::Problems;

/// Env var that may hold the client secret (wins over `api.client_secret_file`).
pub const SECRET_ENV: &str = "SMARTASSIST_CLIENT_SECRET";

/// A secret string. Never printed: `Debug` and `Display` show `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is used (signing), never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The file as written: one optional raw struct per section, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub api: api::RawApi,
    #[serde(default)]
    pub auth: auth::RawAuth,
    #[serde(default)]
    pub output: output::RawOutput,
    #[serde(default)]
    pub user_status: user_status::RawUserStatus,
    #[serde(default)]
    pub intent_realtime: intent_realtime::RawIntent,
    #[serde(default)]
    pub agent_status_details: agent_status_details::RawAgentStatusDetails,
    #[serde(default)]
    pub server: server::RawServer,
    #[serde(default)]
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', "\n  "),
        })?;
        let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
        let mut p = Problems::default();
        let resolved = files::resolve(&raw, base_dir, env_secret, &mut p);
        let config = raw.validate(&resolved, &mut p);
        if p.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems: p.0,
            })
        }
    }
}

impl RawConfig {
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
