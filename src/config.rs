//! Configuration: the TOML file is parsed into [`RawConfig`] (serde, unknown keys rejected) and
//! then validated into [`Config`], the only type runtime code sees (parsed URLs, cron schedules,
//! `Duration`s, `chrono_tz::Tz`, the resolved [`Secret`]). Validation reports every problem at
//! once, each naming its key (`api.base_url: ...`); callers exit with code 2 on any of them.
//! Precedence for the client secret: env `SMARTASSIST_CLIENT_SECRET` > `api.client_secret_file`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use url::Url;

use crate::auth::jwe::{self, ContentEncryption, KeyAlgorithm, RecipientKey};
use crate::model::Granularity;
use crate::sink::OutputLocation;

/// Env var that may hold the client secret (wins over `api.client_secret_file`).
pub const SECRET_ENV: &str = "SMARTASSIST_CLIENT_SECRET";
/// `api.base_url` value that starts the built-in simulator instead of calling Kore.
pub const SIMULATOR_BASE_URL: &str = "simulator";
/// Default agents per UserStatus page (`limit`). The API documents no maximum; a server that
/// clamps it costs nothing (offsets advance by the records returned), and up to this many
/// agents a local day is one request and one Parquet row group.
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// Default UserStatus path (Gen C, no `1.1`): see kore-api.md §1.
pub const DEFAULT_USER_STATUS_PATH: &str =
    "/agentassist/api/public/analytics/account/{account_id}/userstatus";
/// Default IntentRealtimeData path.
pub const DEFAULT_INTENT_PATH: &str = "/api/public/bot/{bot_id}/intentrealtimedata";

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

// ---------------------------------------------------------------------------------------------
// Raw (file) form
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub output: RawOutput,
    #[serde(default)]
    pub user_status: RawUserStatus,
    #[serde(default)]
    pub intent_realtime: RawIntent,
    #[serde(default)]
    pub server: RawServer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub base_url: Option<String>,
    pub account_id: Option<String>,
    pub iid: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// Refused: kept only to give a helpful message instead of "unknown key".
    pub client_secret: Option<toml::Value>,
    pub requests_per_minute: Option<u32>,
    pub timeout_seconds: Option<u64>,
    pub user_status_path: Option<String>,
    pub intent_path: Option<String>,
    pub max_retries: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub retry_max_backoff_seconds: Option<u64>,
    pub retry_after_cap_seconds: Option<u64>,
    pub throttle_backoff_seconds: Option<f64>,
    pub max_response_bytes: Option<u64>,
    /// Allow a plain `http://` base URL to a non-loopback host.
    pub allow_insecure_http: Option<bool>,
    /// PEM bundle of extra root CAs (corporate TLS inspection).
    pub ca_bundle_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub enforce_jti: Option<bool>,
    pub token_ttl_seconds: Option<u64>,
    /// The platform's RSA public key (JWK as shown in the app settings, or PEM).
    pub jwe_public_key_file: Option<PathBuf>,
    /// Key id; required with a PEM key, must match a JWK's `kid`.
    pub jwe_kid: Option<String>,
    pub jwe_alg: Option<String>,
    pub jwe_enc: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub url: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUserStatus {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub granularity: Option<String>,
    pub timezone: Option<String>,
    pub lookback_days: Option<u32>,
    pub page_size: Option<u32>,
    pub agents: Option<Vec<String>>,
    pub schedule_timezone: Option<String>,
    pub max_days_per_run: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntent {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub bot_ids: Option<Vec<String>>,
    pub timezone: Option<String>,
    pub schedule_timezone: Option<String>,
    pub gap_poll_interval_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub shutdown_timeout_seconds: Option<u64>,
    pub unhealthy_after_intervals: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Validated form
// ---------------------------------------------------------------------------------------------

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseUrl {
    /// Start the built-in simulator on loopback and talk to it.
    Simulator,
    /// A real (or independently faked) Kore host.
    Remote(Url),
}

/// Retry and backoff policy for report requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff ceiling; doubles per attempt (full jitter below the ceiling).
    pub base: Duration,
    /// Ceiling of any computed backoff.
    pub max_backoff: Duration,
    /// Ceiling applied to a server's `Retry-After`.
    pub retry_after_cap: Duration,
    /// Minimum wait after throttling without `Retry-After`.
    pub throttle_backoff: Duration,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub base_url: BaseUrl,
    pub account_id: String,
    pub iid: String,
    pub client_id: String,
    /// `None` only with `base_url = "simulator"` and no secret configured: the composition root
    /// then uses the simulator's own default.
    pub client_secret: Option<Secret>,
    pub requests_per_minute: u32,
    pub timeout: Duration,
    /// Path template with `{account_id}` already substituted.
    pub user_status_path: String,
    /// Path template containing `{bot_id}`.
    pub intent_path: String,
    pub retry: RetryPolicy,
    pub max_response_bytes: u64,
    /// Extra trusted root certificates from `api.ca_bundle_file` (added to the system roots).
    pub extra_root_certs: Vec<reqwest::Certificate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub enforce_jti: bool,
    pub token_ttl: Duration,
    /// Wrap every token in a JWE ("Enforce JWE Encryption").
    pub jwe: Option<JweConfig>,
}

/// Validated `[auth] jwe_*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JweConfig {
    pub recipient: RecipientKey,
    pub alg: KeyAlgorithm,
    pub enc: ContentEncryption,
}

/// A validated 6-field cron expression (seconds required, as tokio-cron-scheduler expects).
#[derive(Clone)]
pub struct Schedule {
    pub expression: String,
    pub cron: croner::Cron,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.expression)
    }
}

#[derive(Debug, Clone)]
pub struct UserStatusConfig {
    pub enabled: bool,
    pub schedule: Schedule,
    pub granularity: Granularity,
    pub timezone: Tz,
    pub lookback_days: u32,
    pub page_size: u32,
    pub agents: Vec<String>,
    /// Zone the cron `schedule` is evaluated in (UTC by default), DST-correct.
    pub schedule_timezone: Tz,
    /// Most local days one scheduled run exports (catch-up after downtime resumes next run).
    pub max_days_per_run: u32,
}

#[derive(Debug, Clone)]
pub struct IntentConfig {
    pub enabled: bool,
    pub schedule: Schedule,
    pub bot_ids: Vec<String>,
    /// Zone whose local date of a session's end time names its `dt` partition.
    pub timezone: Tz,
    /// Zone the cron `schedule` is evaluated in (UTC by default), DST-correct.
    pub schedule_timezone: Tz,
    /// After a suspected gap, poll that bot this often until a poll overlaps again (`None`: off).
    pub gap_poll_interval: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: std::net::SocketAddr,
    /// How long `run` waits for in-flight work after SIGTERM/SIGINT before abandoning it.
    pub shutdown_timeout: Duration,
    /// `/healthz` fails when a job has not succeeded for this many schedule intervals.
    pub unhealthy_after_intervals: u32,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub output: OutputLocation,
    pub user_status: UserStatusConfig,
    pub intent: IntentConfig,
    pub server: ServerConfig,
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

    /// Parse and validate TOML text; `path` is used for messages and to resolve relative
    /// `client_secret_file` paths (relative to the config file's directory).
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
        raw.validate(base_dir, env_secret)
            .map_err(|problems| ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            })
    }
}

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn required(&mut self, key: &str, value: &Option<String>) -> String {
        match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => v.to_string(),
            Some(_) => {
                self.push(key, "must not be empty");
                String::new()
            }
            None => {
                self.push(key, "missing required key");
                String::new()
            }
        }
    }
}

/// Characters allowed in identifiers that become object-path segments or header values.
pub fn is_safe_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.starts_with('.')
}

fn parse_schedule(p: &mut Problems, key: &str, value: &Option<String>, default: &str) -> Schedule {
    let expression = value.clone().unwrap_or_else(|| default.to_string());
    let fields = expression.split_whitespace().count();
    let parsed = if fields != 6 {
        Err(format!(
            "cron expression {expression:?} has {fields} fields; expected 6 (sec min hour day month weekday)"
        ))
    } else {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&expression)
            .map_err(|e| format!("invalid cron expression {expression:?}: {e}"))
    };
    match parsed {
        Ok(cron) => Schedule { expression, cron },
        Err(msg) => {
            p.push(key, msg);
            // A placeholder so validation can continue; never reaches runtime (problems abort).
            let cron = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Required)
                .build()
                .parse("0 0 0 * * *");
            match cron {
                Ok(cron) => Schedule {
                    expression: "0 0 0 * * *".into(),
                    cron,
                },
                Err(_) => unreachable!("the placeholder cron expression is valid"),
            }
        }
    }
}

fn parse_tz(p: &mut Problems, key: &str, value: Option<&str>) -> Tz {
    let name = value.unwrap_or("UTC");
    match name.parse::<Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            p.push(key, format!("unknown IANA time zone {name:?}"));
            Tz::UTC
        }
    }
}

fn parse_output(p: &mut Problems, raw: &RawOutput) -> OutputLocation {
    let url = raw.url.clone().unwrap_or_default();
    let url = url.trim();
    if url.is_empty() {
        p.push("output.url", "missing required key");
        return OutputLocation::Local(PathBuf::from("/nonexistent"));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.len() < 3
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            p.push(
                "output.url",
                format!("{bucket:?} is not a valid S3 bucket name"),
            );
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|seg| seg == ".." || seg == ".") {
            p.push(
                "output.url",
                "the S3 prefix must not contain '.' or '..' segments",
            );
        }
        if let Some(endpoint) = &raw.endpoint {
            if Url::parse(endpoint).is_err() {
                p.push("output.endpoint", format!("{endpoint:?} is not a URL"));
            }
        }
        return OutputLocation::S3 {
            bucket: bucket.to_string(),
            prefix,
            endpoint: raw.endpoint.clone(),
            region: raw.region.clone(),
            allow_http: raw.allow_http.unwrap_or(false),
        };
    }
    if raw.endpoint.is_some() || raw.region.is_some() || raw.allow_http.is_some() {
        p.push(
            "output.endpoint",
            "endpoint, region and allow_http apply only to s3:// output URLs",
        );
    }
    let path = if let Some(rest) = url.strip_prefix("file://") {
        match Url::parse(url).ok().and_then(|u| u.to_file_path().ok()) {
            Some(path) => path,
            None => {
                p.push(
                    "output.url",
                    format!("{url:?} is not an absolute file:// URL (use file:///abs/dir)"),
                );
                PathBuf::from(rest)
            }
        }
    } else if url.contains("://") {
        p.push(
            "output.url",
            format!("unsupported scheme in {url:?}: use file:///abs/dir, a relative path, or s3://bucket/prefix"),
        );
        PathBuf::from(url)
    } else {
        let relative = PathBuf::from(url);
        if relative.is_absolute() {
            relative
        } else {
            match std::env::current_dir() {
                Ok(cwd) => cwd.join(relative),
                Err(e) => {
                    p.push("output.url", format!("cannot resolve relative path: {e}"));
                    relative
                }
            }
        }
    };
    OutputLocation::Local(path)
}

/// A relative path in the config file is relative to the config file's directory.
fn resolve(base_dir: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_path_buf()
    } else {
        base_dir.join(file)
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`: plain http there never leaves the machine.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Warn (naming the file, never its content) when a secret file is readable by group or others.
fn warn_if_readable_by_others(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %file.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "The client secret file is accessible by group or others; restrict it with chmod 600."
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// The `[auth] jwe_*` keys: all optional; a key file turns JWE on.
fn parse_jwe(p: &mut Problems, auth: &RawAuth, base_dir: &Path) -> Option<JweConfig> {
    let alg = match auth.jwe_alg.as_deref().unwrap_or("RSA-OAEP").parse() {
        Ok(a) => a,
        Err(msg) => {
            p.push("auth.jwe_alg", msg);
            KeyAlgorithm::RsaOaep
        }
    };
    let enc = match auth.jwe_enc.as_deref().unwrap_or("A128CBC-HS256").parse() {
        Ok(e) => e,
        Err(msg) => {
            p.push("auth.jwe_enc", msg);
            ContentEncryption::A128CbcHs256
        }
    };
    let Some(file) = &auth.jwe_public_key_file else {
        if auth.jwe_kid.is_some() || auth.jwe_alg.is_some() || auth.jwe_enc.is_some() {
            p.push(
                "auth.jwe_public_key_file",
                "jwe_kid, jwe_alg and jwe_enc need jwe_public_key_file (the platform's public key)",
            );
        }
        return None;
    };
    let file = resolve(base_dir, file);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            p.push(
                "auth.jwe_public_key_file",
                format!("cannot read {}: {e}", file.display()),
            );
            return None;
        }
    };
    match jwe::parse_public_key(&text, auth.jwe_kid.as_deref()) {
        Ok(recipient) => Some(JweConfig {
            recipient,
            alg,
            enc,
        }),
        Err(e) => {
            let key = match e {
                jwe::KeyError::MissingKid | jwe::KeyError::KidMismatch { .. } => "auth.jwe_kid",
                _ => "auth.jwe_public_key_file",
            };
            p.push(key, format!("{}: {e}", file.display()));
            None
        }
    }
}

impl RawConfig {
    /// Validate into a [`Config`], collecting every problem.
    pub fn validate(
        self,
        base_dir: &Path,
        env_secret: Option<String>,
    ) -> Result<Config, Vec<ConfigProblem>> {
        let mut p = Problems(Vec::new());
        let api = &self.api;

        let base_url_raw = p.required("api.base_url", &api.base_url);
        let base_url = if base_url_raw == SIMULATOR_BASE_URL {
            BaseUrl::Simulator
        } else {
            match Url::parse(&base_url_raw) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    if u.query().is_some() || u.fragment().is_some() {
                        p.push("api.base_url", "must not contain a query or fragment");
                    }
                    if u.scheme() == "http"
                        && !is_loopback_host(&u)
                        && !api.allow_insecure_http.unwrap_or(false)
                    {
                        p.push(
                            "api.base_url",
                            format!(
                                "{base_url_raw:?} is plain http to a non-loopback host: tokens \
                                 would travel unencrypted. Use https://, or set \
                                 api.allow_insecure_http = true (e.g. behind a TLS-terminating \
                                 sidecar)"
                            ),
                        );
                    }
                    BaseUrl::Remote(u)
                }
                Ok(_) => {
                    p.push(
                        "api.base_url",
                        format!("{base_url_raw:?} must be an http(s) URL or \"simulator\""),
                    );
                    BaseUrl::Simulator
                }
                Err(e) if !base_url_raw.is_empty() => {
                    p.push(
                        "api.base_url",
                        format!("{base_url_raw:?} is not a URL: {e}"),
                    );
                    BaseUrl::Simulator
                }
                Err(_) => BaseUrl::Simulator,
            }
        };
        let simulator = base_url == BaseUrl::Simulator;

        let account_id = p.required("api.account_id", &api.account_id);
        if !account_id.is_empty() && !is_safe_identifier(&account_id) {
            p.push(
                "api.account_id",
                "may contain only ASCII letters, digits, '-', '_' and '.' (no slashes, no '..')",
            );
        }
        let iid = p.required("api.iid", &api.iid);
        if !iid.is_empty() && !is_safe_identifier(&iid) {
            p.push(
                "api.iid",
                "may contain only ASCII letters, digits, '-', '_' and '.'",
            );
        }
        let client_id = p.required("api.client_id", &api.client_id);

        if api.client_secret.is_some() {
            p.push(
                "api.client_secret",
                format!(
                    "secrets are not accepted inline in the config file; put the secret in a file \
                     readable only by this service and set api.client_secret_file, or set the \
                     {SECRET_ENV} environment variable"
                ),
            );
        }
        let client_secret = match (
            env_secret.filter(|s| !s.is_empty()),
            &api.client_secret_file,
        ) {
            (Some(s), _) => Some(Secret::new(s)),
            (None, Some(file)) => {
                let file = if file.is_absolute() {
                    file.clone()
                } else {
                    base_dir.join(file)
                };
                warn_if_readable_by_others(&file);
                match std::fs::read_to_string(&file) {
                    Ok(s) if !s.trim().is_empty() => Some(Secret::new(s.trim().to_string())),
                    Ok(_) => {
                        p.push(
                            "api.client_secret_file",
                            format!("{} is empty", file.display()),
                        );
                        None
                    }
                    Err(e) => {
                        p.push(
                            "api.client_secret_file",
                            format!("cannot read {}: {e}", file.display()),
                        );
                        None
                    }
                }
            }
            (None, None) if simulator => None,
            (None, None) => {
                p.push(
                    "api.client_secret_file",
                    format!("no client secret: set api.client_secret_file or {SECRET_ENV}"),
                );
                None
            }
        };

        let extra_root_certs = match &api.ca_bundle_file {
            None => Vec::new(),
            Some(file) => {
                let file = resolve(base_dir, file);
                match std::fs::read(&file) {
                    Ok(pem) => match reqwest::Certificate::from_pem_bundle(&pem) {
                        Ok(certs) if !certs.is_empty() => certs,
                        Ok(_) => {
                            p.push(
                                "api.ca_bundle_file",
                                format!("{} holds no PEM certificate", file.display()),
                            );
                            Vec::new()
                        }
                        Err(e) => {
                            p.push(
                                "api.ca_bundle_file",
                                format!("{} is not a PEM certificate bundle: {e}", file.display()),
                            );
                            Vec::new()
                        }
                    },
                    Err(e) => {
                        p.push(
                            "api.ca_bundle_file",
                            format!("cannot read {}: {e}", file.display()),
                        );
                        Vec::new()
                    }
                }
            }
        };

        let requests_per_minute = api.requests_per_minute.unwrap_or(60);
        if requests_per_minute == 0 {
            p.push("api.requests_per_minute", "must be at least 1");
        }
        let timeout_seconds = api.timeout_seconds.unwrap_or(60);
        if timeout_seconds == 0 || timeout_seconds > 3600 {
            p.push("api.timeout_seconds", "must be between 1 and 3600");
        }

        let user_status_path = api
            .user_status_path
            .clone()
            .unwrap_or_else(|| DEFAULT_USER_STATUS_PATH.to_string());
        if !user_status_path.starts_with('/') {
            p.push("api.user_status_path", "must start with '/'");
        }
        let user_status_path = user_status_path.replace("{account_id}", &account_id);
        if user_status_path.contains('{') {
            p.push(
                "api.user_status_path",
                "only the {account_id} placeholder is supported",
            );
        }
        let intent_path = api
            .intent_path
            .clone()
            .unwrap_or_else(|| DEFAULT_INTENT_PATH.to_string());
        if !intent_path.starts_with('/') || !intent_path.contains("{bot_id}") {
            p.push(
                "api.intent_path",
                "must start with '/' and contain {bot_id}",
            );
        }

        let throttle = api.throttle_backoff_seconds.unwrap_or(10.0);
        if !(0.0..=3600.0).contains(&throttle) {
            p.push("api.throttle_backoff_seconds", "must be between 0 and 3600");
        }
        let retry = RetryPolicy {
            max_retries: api.max_retries.unwrap_or(6),
            base: Duration::from_millis(api.retry_base_ms.unwrap_or(500)),
            max_backoff: Duration::from_secs(api.retry_max_backoff_seconds.unwrap_or(60)),
            retry_after_cap: Duration::from_secs(api.retry_after_cap_seconds.unwrap_or(120)),
            throttle_backoff: Duration::from_secs_f64(throttle.clamp(0.0, 3600.0)),
        };
        if retry.max_retries > 20 {
            p.push("api.max_retries", "must be at most 20");
        }
        let max_response_bytes = api.max_response_bytes.unwrap_or(64 * 1024 * 1024);
        if max_response_bytes < 1024 {
            p.push("api.max_response_bytes", "must be at least 1024");
        }

        let enforce_jti = self.auth.enforce_jti.unwrap_or(false);
        let ttl = self.auth.token_ttl_seconds.unwrap_or(300);
        if ttl == 0 {
            p.push("auth.token_ttl_seconds", "must be at least 1");
        }
        if enforce_jti && ttl > 3600 {
            p.push(
                "auth.token_ttl_seconds",
                "must be at most 3600 when enforce_jti is true (the platform rejects longer tokens)",
            );
        }

        let jwe = parse_jwe(&mut p, &self.auth, base_dir);
        if jwe.is_some() && simulator {
            p.push(
                "auth.jwe_public_key_file",
                "the built-in simulator (base_url = \"simulator\") has no private key to decrypt \
                 JWEs; run `smartassist-export simulate --jwe-private-key-file ...` and point \
                 api.base_url at it",
            );
        }

        let output = parse_output(&mut p, &self.output);

        let us = &self.user_status;
        let granularity = match us
            .granularity
            .as_deref()
            .unwrap_or("PT30M")
            .parse::<Granularity>()
        {
            Ok(g) => g,
            Err(e) => {
                p.push("user_status.granularity", e.to_string());
                Granularity::PT30M
            }
        };
        let timezone = parse_tz(&mut p, "user_status.timezone", us.timezone.as_deref());
        let page_size = us.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page_size == 0 || page_size > 1000 {
            p.push("user_status.page_size", "must be between 1 and 1000");
        }
        let lookback_days = us.lookback_days.unwrap_or(1);
        if lookback_days > 90 {
            p.push("user_status.lookback_days", "must be at most 90");
        }
        let max_days_per_run = us.max_days_per_run.unwrap_or(7);
        if max_days_per_run <= lookback_days || max_days_per_run > 366 {
            p.push(
                "user_status.max_days_per_run",
                format!(
                    "must be greater than lookback_days ({lookback_days}) and at most 366, \
                     or catch-up after downtime could never progress"
                ),
            );
        }
        let agents = us.agents.clone().unwrap_or_default();
        for (i, a) in agents.iter().enumerate() {
            if !a.contains('@') || a.trim() != a {
                p.push(
                    &format!("user_status.agents[{i}]"),
                    format!("{a:?} is not an email address"),
                );
            }
        }
        let user_status = UserStatusConfig {
            enabled: us.enabled.unwrap_or(true),
            schedule: parse_schedule(
                &mut p,
                "user_status.schedule",
                &us.schedule,
                "0 */15 * * * *",
            ),
            granularity,
            timezone,
            lookback_days,
            page_size,
            agents,
            schedule_timezone: parse_tz(
                &mut p,
                "user_status.schedule_timezone",
                us.schedule_timezone.as_deref(),
            ),
            max_days_per_run,
        };

        let it = &self.intent_realtime;
        let bot_ids = it.bot_ids.clone().unwrap_or_default();
        for (i, b) in bot_ids.iter().enumerate() {
            if !is_safe_identifier(b) {
                p.push(
                    &format!("intent_realtime.bot_ids[{i}]"),
                    format!("{b:?} may contain only ASCII letters, digits, '-', '_' and '.'"),
                );
            }
        }
        let intent_enabled = it.enabled.unwrap_or(!bot_ids.is_empty());
        if intent_enabled && bot_ids.is_empty() {
            p.push(
                "intent_realtime.bot_ids",
                "enabled but no bot ids are configured",
            );
        }
        let intent = IntentConfig {
            enabled: intent_enabled,
            schedule: parse_schedule(
                &mut p,
                "intent_realtime.schedule",
                &it.schedule,
                "*/30 * * * * *",
            ),
            bot_ids,
            timezone: match it.timezone.as_deref() {
                Some(name) => parse_tz(&mut p, "intent_realtime.timezone", Some(name)),
                None => timezone,
            },
            schedule_timezone: parse_tz(
                &mut p,
                "intent_realtime.schedule_timezone",
                it.schedule_timezone.as_deref(),
            ),
            gap_poll_interval: match it.gap_poll_interval_seconds.unwrap_or(10) {
                0 => None,
                s if s > 86_400 => {
                    p.push(
                        "intent_realtime.gap_poll_interval_seconds",
                        "must be at most 86400 (0 turns it off)",
                    );
                    None
                }
                s => Some(Duration::from_secs(s)),
            },
        };

        let listen_raw = self
            .server
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:9464".into());
        let listen = match listen_raw.parse() {
            Ok(addr) => addr,
            Err(_) => {
                p.push(
                    "server.listen",
                    format!("{listen_raw:?} is not a socket address like 0.0.0.0:9464"),
                );
                std::net::SocketAddr::from(([127, 0, 0, 1], 9464))
            }
        };

        let shutdown_timeout_seconds = self.server.shutdown_timeout_seconds.unwrap_or(10);
        if !(1..=3600).contains(&shutdown_timeout_seconds) {
            p.push(
                "server.shutdown_timeout_seconds",
                "must be between 1 and 3600",
            );
        }
        let unhealthy_after_intervals = self.server.unhealthy_after_intervals.unwrap_or(3);
        if unhealthy_after_intervals == 0 {
            p.push("server.unhealthy_after_intervals", "must be at least 1");
        }

        if !p.0.is_empty() {
            return Err(p.0);
        }
        Ok(Config {
            api: ApiConfig {
                base_url,
                account_id,
                iid,
                client_id,
                client_secret,
                requests_per_minute,
                timeout: Duration::from_secs(timeout_seconds),
                user_status_path,
                intent_path,
                retry,
                max_response_bytes,
                extra_root_certs,
            },
            auth: AuthConfig {
                enforce_jti,
                token_ttl: Duration::from_secs(ttl),
                jwe,
            },
            output,
            user_status,
            intent,
            server: ServerConfig {
                listen,
                shutdown_timeout: Duration::from_secs(shutdown_timeout_seconds),
                unhealthy_after_intervals,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[api]
base_url = "https://platform.kore.ai"
account_id = "acct-1"
iid = "st-1"
client_id = "cs-1"
[output]
url = "file:///tmp/out"
"#;

    fn load(text: &str, secret: Option<&str>) -> Result<Config, ConfigError> {
        Config::from_toml(
            text,
            Path::new("/etc/x/config.toml"),
            secret.map(String::from),
        )
    }

    fn problems(text: &str) -> Vec<ConfigProblem> {
        match load(text, Some("s3cr3t")) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = load(MINIMAL, Some("s3cr3t")).expect("valid");
        assert_eq!(c.api.requests_per_minute, 60);
        assert_eq!(
            c.api.user_status_path,
            "/agentassist/api/public/analytics/account/acct-1/userstatus"
        );
        assert_eq!(c.user_status.granularity, Granularity::PT30M);
        assert_eq!(c.user_status.timezone, Tz::UTC);
        assert!(!c.intent.enabled);
        assert_eq!(c.output, OutputLocation::Local(PathBuf::from("/tmp/out")));
        assert_eq!(
            c.api
                .client_secret
                .as_ref()
                .map(Secret::expose)
                .unwrap_or_default(),
            "s3cr3t"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
[api]
base_url = "ftp://x"
iid = "st-1"
client_id = "cs-1"
[output]
url = "gs://bucket"
[user_status]
granularity = "PT5M"
schedule = "*/5 * * * *"
timezone = "Mars/Olympus"
"#;
        let keys: Vec<String> = problems(text).into_iter().map(|p| p.key).collect();
        for key in [
            "api.base_url",
            "api.account_id",
            "output.url",
            "user_status.granularity",
            "user_status.schedule",
            "user_status.timezone",
        ] {
            assert!(
                keys.contains(&key.to_string()),
                "{key} missing from {keys:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let text = format!("{MINIMAL}\n[server]\nlisten = \"127.0.0.1:1\"\nport = 3\n");
        let err = load(&text, Some("x")).expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("port"), "{msg}");
    }

    #[test]
    fn inline_secret_is_refused_with_guidance() {
        let text = MINIMAL.replace(
            "client_id = \"cs-1\"",
            "client_id = \"cs-1\"\nclient_secret = \"hunter2\"",
        );
        let p = problems(&text);
        let msg = &p
            .iter()
            .find(|p| p.key == "api.client_secret")
            .expect("problem")
            .message;
        assert!(msg.contains("client_secret_file") && msg.contains(SECRET_ENV));
        assert!(!msg.contains("hunter2"));
    }

    #[test]
    fn env_secret_wins_over_file_and_file_is_read_relative_to_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("secret.txt"), "from-file\n").expect("write");
        let text = MINIMAL.replace(
            "client_id = \"cs-1\"",
            "client_id = \"cs-1\"\nclient_secret_file = \"secret.txt\"",
        );
        let path = dir.path().join("config.toml");
        let c = Config::from_toml(&text, &path, None).expect("valid");
        assert_eq!(
            c.api
                .client_secret
                .as_ref()
                .map(Secret::expose)
                .unwrap_or_default(),
            "from-file"
        );
        let c = Config::from_toml(&text, &path, Some("from-env".into())).expect("valid");
        assert_eq!(
            c.api
                .client_secret
                .as_ref()
                .map(Secret::expose)
                .unwrap_or_default(),
            "from-env"
        );
    }

    #[test]
    fn missing_secret_is_an_error_except_for_the_simulator() {
        let p = match load(MINIMAL, None) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        };
        assert_eq!(p[0].key, "api.client_secret_file");
        let sim = MINIMAL.replace("https://platform.kore.ai", "simulator");
        let c = load(&sim, None).expect("simulator needs no secret");
        assert_eq!(c.api.base_url, BaseUrl::Simulator);
    }

    #[test]
    fn path_traversal_ids_are_rejected() {
        let text = MINIMAL.replace("acct-1", "../etc")
            + "\n[intent_realtime]\nbot_ids = [\"a/b\", \"..\", \"\"]\n";
        let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
        assert!(keys.contains(&"api.account_id".to_string()));
        assert!(keys.contains(&"intent_realtime.bot_ids[0]".to_string()));
        assert!(keys.contains(&"intent_realtime.bot_ids[1]".to_string()));
        assert!(keys.contains(&"intent_realtime.bot_ids[2]".to_string()));
    }

    #[test]
    fn s3_url_is_split_into_bucket_and_prefix() {
        let text = MINIMAL.replace("file:///tmp/out", "s3://my-bucket/lake/kore/");
        let c = load(&text, Some("x")).expect("valid");
        assert_eq!(
            c.output,
            OutputLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: "lake/kore".into(),
                endpoint: None,
                region: None,
                allow_http: false
            }
        );
    }

    #[test]
    fn daemon_keys_have_documented_defaults_and_are_validated() {
        let c = load(MINIMAL, Some("x")).expect("valid");
        assert_eq!(c.user_status.schedule_timezone, Tz::UTC);
        assert_eq!(c.user_status.max_days_per_run, 7);
        assert_eq!(c.intent.schedule_timezone, Tz::UTC);
        assert_eq!(c.intent.gap_poll_interval, Some(Duration::from_secs(10)));
        assert_eq!(c.server.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(c.server.unhealthy_after_intervals, 3);
        let text = format!(
            "{MINIMAL}\n[user_status]\nlookback_days = 3\nmax_days_per_run = 3\nschedule_timezone = \"Europe/Berlin\"\n\
             [intent_realtime]\ngap_poll_interval_seconds = 0\n[server]\nunhealthy_after_intervals = 0\nshutdown_timeout_seconds = 0\n"
        );
        let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            vec![
                "user_status.max_days_per_run",
                "server.shutdown_timeout_seconds",
                "server.unhealthy_after_intervals"
            ]
        );
        let text = format!(
            "{MINIMAL}\n[user_status]\nschedule_timezone = \"Europe/Berlin\"\n[intent_realtime]\ngap_poll_interval_seconds = 0\n"
        );
        let c = load(&text, Some("x")).expect("valid");
        assert_eq!(c.user_status.schedule_timezone, chrono_tz::Europe::Berlin);
        assert_eq!(c.intent.gap_poll_interval, None);
    }

    #[test]
    fn jti_requires_ttl_within_an_hour() {
        let text = format!("{MINIMAL}\n[auth]\nenforce_jti = true\ntoken_ttl_seconds = 7200\n");
        assert_eq!(problems(&text)[0].key, "auth.token_ttl_seconds");
    }

    #[test]
    fn secret_debug_and_display_are_redacted() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        let c = load(MINIMAL, Some("hunter2")).expect("valid");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwe")
            .join(name)
    }

    #[test]
    fn jwe_keys_are_validated_and_default_to_rsa_oaep_a128cbc_hs256() {
        let jwk = fixture("public.jwk.json");
        let text = format!(
            "{MINIMAL}\n[auth]\njwe_public_key_file = {:?}\n",
            jwk.display().to_string()
        );
        let c = load(&text, Some("x")).expect("valid");
        let jwe = c.auth.jwe.expect("jwe on");
        assert_eq!(jwe.alg, KeyAlgorithm::RsaOaep);
        assert_eq!(jwe.enc, ContentEncryption::A128CbcHs256);
        assert_eq!(jwe.recipient.kid, "k-test-fixture-0001");

        let pem = fixture("public.pem");
        let text = format!(
            "{MINIMAL}\n[auth]\njwe_public_key_file = {:?}\njwe_alg = \"RSA1_5\"\njwe_enc = \"A256GCM\"\njwe_kid = \"k-1\"\n",
            pem.display().to_string()
        );
        let jwe = load(&text, Some("x")).expect("valid").auth.jwe.expect("on");
        assert_eq!(
            (jwe.alg, jwe.enc, jwe.recipient.kid.as_str()),
            (KeyAlgorithm::Rsa1_5, ContentEncryption::A256Gcm, "k-1")
        );

        // PEM without a kid, an unknown alg and enc: every problem named.
        let text = format!(
            "{MINIMAL}\n[auth]\njwe_public_key_file = {:?}\njwe_alg = \"RSA-OAEP-256\"\njwe_enc = \"A192GCM\"\n",
            pem.display().to_string()
        );
        let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["auth.jwe_alg", "auth.jwe_enc", "auth.jwe_kid"]);
        // Parameters without a key file are a mistake, not silently ignored.
        let text = format!("{MINIMAL}\n[auth]\njwe_enc = \"A128GCM\"\n");
        assert_eq!(problems(&text)[0].key, "auth.jwe_public_key_file");
        let text = format!("{MINIMAL}\n[auth]\njwe_public_key_file = \"/nonexistent/k.json\"\n");
        assert_eq!(problems(&text)[0].key, "auth.jwe_public_key_file");
    }

    #[test]
    fn plain_http_is_refused_except_loopback_or_explicit_opt_in() {
        for url in [
            "http://127.0.0.1:8900",
            "http://127.1.2.3",
            "http://localhost:1",
            "http://[::1]:80",
            "https://platform.kore.ai",
        ] {
            let text = MINIMAL.replace("https://platform.kore.ai", url);
            assert!(load(&text, Some("x")).is_ok(), "{url}");
        }
        for url in [
            "http://platform.kore.ai",
            "http://10.0.0.1",
            "http://localhost.evil.com",
        ] {
            let text = MINIMAL.replace("https://platform.kore.ai", url);
            let p = problems(&text);
            assert_eq!(p[0].key, "api.base_url", "{url}");
            assert!(
                p[0].message.contains("allow_insecure_http"),
                "{}",
                p[0].message
            );
            let text = text.replace("[api]", "[api]\nallow_insecure_http = true");
            assert!(load(&text, Some("x")).is_ok(), "{url} with opt-in");
        }
    }

    #[test]
    fn ca_bundle_must_hold_pem_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate").expect("write");
        let text = MINIMAL.replace(
            "[api]",
            &format!("[api]\nca_bundle_file = {:?}", bad.display().to_string()),
        );
        assert_eq!(problems(&text)[0].key, "api.ca_bundle_file");
        let text = MINIMAL.replace("[api]", "[api]\nca_bundle_file = \"/nonexistent/ca.pem\"");
        assert_eq!(problems(&text)[0].key, "api.ca_bundle_file");
    }

    #[test]
    fn shipped_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let c = Config::load(&path, None).expect("shipped config.toml is valid");
        assert_eq!(c.api.base_url, BaseUrl::Simulator);
        assert!(c.user_status.enabled);
    }
}
