//! Configuration, by section. The TOML file is parsed into [`RawConfig`] (serde, unknown keys
//! rejected); a resolve step ([`files`]) reads everything the file points at (the client
//! secret, the CA bundle, the JWE key, the working directory); then one pure validator per
//! section turns the raw keys into [`Config`], the only type runtime code sees (parsed URLs,
//! cron schedules, `Duration`s, `chrono_tz::Tz`, the [`Secret`]). Every problem, from reading or
//! validating, is reported at once, each naming its key (`api.base_url: ...`); callers exit with
//! code 2 on any of them. Every default of a shared section is defined once, in [`defaults`].
//! Precedence for the client secret: env `SMARTASSIST_CLIENT_SECRET` > `api.client_secret_file`.
//!
//! Sections: the shared [`api`], [`auth`], [`output`] and [`server`], and one per dataset. A
//! dataset owns its section (raw keys, validation, defaults) in its own folder and declares it
//! through [`section::DatasetSection`]; the loader is handed the registry's
//! [`section::SectionSpec`]s and never names a dataset. History datasets share [`history`]'s
//! keys and validator; the account zone and `[api]` aliases are [`section`]'s two shared rules.

pub mod api;
pub mod auth;
pub mod defaults;
pub mod files;
pub mod history;
pub mod output;
pub mod parse;
pub mod section;
pub mod server;

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::auth::{AuthConfig, JweConfig, Secret};
pub use api::{ApiConfig, BaseUrl, RetryPolicy, SIMULATOR_BASE_URL};
pub use history::{HistoryKeys, RawHistoryKeys};
pub use output::{Encoding, OutputLocation, StoreTuning};
pub use parse::{is_loopback_host, is_safe_identifier, Problems, Schedule};
pub use section::{
    ApiAlias, DatasetSection, DatasetSections, SectionContext, SectionSpec, SectionValue,
};
pub use server::ServerConfig;

/// Env var that may hold the client secret (wins over `api.client_secret_file`).
pub const SECRET_ENV: &str = "SMARTASSIST_CLIENT_SECRET";

/// The file as written: one raw struct per shared section (each rejects unknown keys), and the
/// raw value of every dataset section, built by parsing every section on its own so that each
/// section's mistakes are reported.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub api: api::RawApi,
    pub auth: auth::RawAuth,
    pub output: output::RawOutput,
    pub server: server::RawServer,
    /// Each dataset section given to the loader, with its TOML value (`None`: absent), `[api]`
    /// aliases already moved in.
    pub datasets: Vec<(&'static SectionSpec, Option<toml::Value>)>,
    /// `(section.key, api.key)` of every alias that was used, for naming problems as written.
    aliased: Vec<(String, String)>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub output: OutputLocation,
    /// How Parquet is encoded (`[output]` keys that apply to every location).
    pub encoding: Encoding,
    pub server: ServerConfig,
    /// Every dataset section, validated by its own dataset (see [`Config::section`]).
    pub datasets: DatasetSections,
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
    /// Read, parse and validate a config file whose dataset sections are `sections` (the
    /// registry's, `crate::datasets::sections()`). `env_secret` is the value of [`SECRET_ENV`]
    /// if set (passed in so precedence is testable without touching the process env).
    pub fn load(
        path: &Path,
        env_secret: Option<String>,
        sections: &[&'static SectionSpec],
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path, env_secret, sections)
    }

    /// Parse, resolve and validate TOML text; `path` is used for messages and to resolve
    /// relative file paths (relative to the config file's directory).
    pub fn from_toml(
        text: &str,
        path: &Path,
        env_secret: Option<String>,
        sections: &[&'static SectionSpec],
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', "\n  "),
        })?;
        let mut parsed = Sections::default();
        let raw = RawConfig::from_table(table, sections, &mut parsed);
        let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
        let mut p = Problems::default();
        let resolved = files::resolve(&raw, base_dir, env_secret, &mut p);
        let config = raw.validate(&resolved, &mut parsed, &mut p);
        // A section that did not parse was validated as empty: its "missing key" problems are
        // noise next to the parse problem that names the real mistake.
        p.0.retain(|problem| {
            !parsed
                .failed
                .iter()
                .any(|s| problem.key.starts_with(&format!("{s}.")))
        });
        let mut problems = parsed.problems.0;
        problems.append(&mut p.0);
        for problem in &mut problems {
            problem.key = raw.key_as_written(&problem.key);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            })
        }
    }

    /// The validated section of dataset section type `S` (`None` when the loader was not given
    /// its spec).
    pub fn section<S: DatasetSection>(&self) -> Option<&S> {
        self.datasets.get::<S>()
    }
}

/// What parsing the sections found: problems naming the section, and which sections failed.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    problems: Problems,
    failed: Vec<&'static str>,
    /// `(section, key)` of every value moved in from an `[api]` alias.
    moved: Vec<(&'static str, String)>,
}

impl Sections {
    /// Takes section `name` out of `table` and deserializes it (defaults when absent), so one
    /// section's mistake does not hide another's: every section is parsed and reported.
    fn take<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        table: &mut toml::Table,
        name: &'static str,
    ) -> T {
        let value = table.remove(name);
        self.parse(name, value)
    }

    /// Deserializes section `name` from its value (defaults when `None`). A key moved in from
    /// an `[api]` alias that does not parse is reported and left out, so the section's own
    /// keys are still parsed and validated.
    pub(crate) fn parse<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        name: &'static str,
        value: Option<toml::Value>,
    ) -> T {
        let Some(mut value) = value else {
            return T::default();
        };
        loop {
            // Re-parsed from its own text so the error can point at the offending key.
            let text = match &value {
                toml::Value::Table(t) => toml::to_string(t).unwrap_or_default(),
                _ => String::new(),
            };
            let e = match toml::from_str::<T>(&text) {
                Ok(section) if value.is_table() => return section,
                Ok(_) => {
                    self.problems.push(name, "must be a table ([section])");
                    self.failed.push(name);
                    return T::default();
                }
                Err(e) => e,
            };
            let key = e
                .span()
                .map(|span| line_at(&text, span.start))
                .and_then(|line| line.split('=').next())
                .map(str::trim)
                .filter(|k| !k.is_empty());
            let message = e.message().trim().replace('\n', " ");
            let moved = key.filter(|k| self.moved.contains(&(name, k.to_string())));
            if let (Some(k), Some(t)) = (moved, value.as_table_mut()) {
                self.problems.push(&format!("{name}.{k}"), message);
                t.remove(k);
                continue;
            }
            let key = key.map_or_else(|| name.to_string(), |k| format!("{name}.{k}"));
            self.problems.push(&key, message);
            self.failed.push(name);
            return T::default();
        }
    }
}

/// The line of `text` holding byte `at` (the line an error's span starts on).
fn line_at(text: &str, at: usize) -> &str {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    &text[start..end]
}

impl RawConfig {
    /// Splits the file into its sections, reporting every section that does not parse and every
    /// unknown top-level key. `[api]` aliases of dataset keys are moved into their sections.
    fn from_table(
        mut table: toml::Table,
        specs: &[&'static SectionSpec],
        sections: &mut Sections,
    ) -> RawConfig {
        let mut api = table.remove("api");
        let mut datasets = Vec::with_capacity(specs.len());
        let mut aliased = Vec::new();
        for spec in specs {
            let mut value = table.remove(spec.name);
            for alias in spec.api_aliases {
                let moved = api
                    .as_mut()
                    .and_then(toml::Value::as_table_mut)
                    .and_then(|t| t.remove(alias.api_key));
                let Some(moved) = moved else { continue };
                let own = format!("{}.{}", spec.name, alias.key);
                let api_key = format!("api.{}", alias.api_key);
                let section = value.get_or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match section.as_table_mut() {
                    Some(t) if t.contains_key(alias.key) => sections.problems.push(
                        &api_key,
                        format!("is an alias of {own}; set only one of them"),
                    ),
                    Some(t) => {
                        t.insert(alias.key.to_string(), moved);
                        aliased.push((own, api_key));
                        sections.moved.push((spec.name, alias.key.to_string()));
                    }
                    // Not a table: parsing the section reports it.
                    None => {}
                }
            }
            datasets.push((*spec, value));
        }
        let raw = RawConfig {
            api: sections.parse("api", api),
            auth: sections.take(&mut table, "auth"),
            output: sections.take(&mut table, "output"),
            server: sections.take(&mut table, "server"),
            datasets,
            aliased,
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
    fn validate(
        &self,
        resolved: &files::Resolved,
        parsed: &mut Sections,
        p: &mut Problems,
    ) -> Config {
        let mut api = api::validate(&self.api, resolved, p);
        if self.api.timezone.is_none() {
            api.timezone = self.legacy_account_zone();
        }
        let simulator = api.base_url == BaseUrl::Simulator;
        let auth = auth::validate(&self.auth, resolved, simulator, p);
        let output = output::validate(&self.output, resolved.cwd.as_deref(), p);
        let encoding = output::encoding(&self.output, p);
        let server = server::validate(&self.server, p);
        let cx = SectionContext {
            account_id: &api.account_id,
            iid: &api.iid,
            timezone: api.timezone,
        };
        let mut datasets = DatasetSections::default();
        for (spec, value) in &self.datasets {
            let raw = section::Raw {
                value: value.clone(),
                parse: parsed,
            };
            datasets.insert(spec.name, (spec.load)(raw, &cx, p));
        }
        let config = Config {
            api,
            auth,
            output,
            encoding,
            server,
            datasets,
        };
        for (spec, _) in &self.datasets {
            (spec.cross)(&config, p);
        }
        config
    }

    /// The account zone when `[api] timezone` is unset: the `timezone` of the first section
    /// that stands for it and sets a valid one, else UTC (see [`section`]).
    fn legacy_account_zone(&self) -> chrono_tz::Tz {
        self.datasets
            .iter()
            .filter(|(spec, _)| spec.timezone_is_account_zone)
            .filter_map(|(_, value)| value.as_ref()?.get("timezone")?.as_str()?.parse().ok())
            .next()
            .unwrap_or(chrono_tz::Tz::UTC)
    }

    /// `key` as the user wrote it: a key that arrived through an `[api]` alias is named so.
    fn key_as_written(&self, key: &str) -> String {
        for (own, api_key) in &self.aliased {
            if let Some(rest) = key.strip_prefix(own.as_str()) {
                if rest.is_empty() || rest.starts_with('[') {
                    return format!("{api_key}{rest}");
                }
            }
        }
        key.to_string()
    }
}

#[cfg(test)]
mod tests;
