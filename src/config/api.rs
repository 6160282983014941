//! The `[api]` section: where requests go (the host or the built-in simulator), the account's
//! identifiers, the client secret's presence, the CA bundle, rate limit, timeout, the account zone,
//! retry policy and the response size cap. Pure validation over the raw keys and the files the
//! resolve step read.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::defaults;
use super::files::Resolved;
use super::parse::{is_loopback_host, is_safe_identifier, parse_tz, Problems};
use super::{Secret, SECRET_ENV};

/// `api.base_url` value that starts the built-in simulator instead of calling Kore.
pub const SIMULATOR_BASE_URL: &str = "simulator";

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
    /// Per-bot limits of the XO runtime APIs (getSessions, getMessages).
    pub bot_requests_per_minute: Option<u32>,
    pub bot_requests_per_hour: Option<u32>,
    pub timeout_seconds: Option<u64>,
    /// The account zone: the default `timezone` of every dataset section.
    pub timezone: Option<String>,
    pub max_retries: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub retry_max_backoff_seconds: Option<u64>,
    pub retry_after_cap_seconds: Option<u64>,
    pub throttle_backoff_seconds: Option<f64>,
    pub max_response_bytes: Option<u64>,
    /// Bytes of response body that may be in memory at once (the page gate's bound).
    pub page_memory_bytes: Option<u64>,
    /// Allow a plain `http://` base URL to a non-loopback host.
    pub allow_insecure_http: Option<bool>,
    /// PEM bundle of extra root CAs (corporate TLS inspection).
    pub ca_bundle_file: Option<PathBuf>,
}

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
    /// Per-bot budget of the XO runtime APIs (getSessions, getMessages): at most this many
    /// requests per bot in any minute and in any hour, apart from `requests_per_minute`.
    pub bot_requests_per_minute: u32,
    pub bot_requests_per_hour: u32,
    pub timeout: Duration,
    /// The account zone, the default `timezone` of every dataset section: `api.timezone`, or
    /// the legacy rule of [`super::section`] when that is unset.
    pub timezone: chrono_tz::Tz,
    pub retry: RetryPolicy,
    pub max_response_bytes: u64,
    /// The page gate's bound ([`crate::client::MemoryGate`]): response bodies read, decoded
    /// and not yet encoded total at most this many bytes (or one body, when it is larger).
    pub page_memory_bytes: u32,
    /// Extra trusted root certificates from `api.ca_bundle_file` (added to the system roots).
    pub extra_root_certs: Vec<reqwest::Certificate>,
}

/// Validates `[api]`.
pub fn validate(api: &RawApi, files: &Resolved, p: &mut Problems) -> ApiConfig {
    let base_url = base_url(api, p);
    let simulator = base_url == BaseUrl::Simulator;
    let (account_id, iid, client_id) = ids(api, p);
    let client_secret = client_secret(api, files, simulator, p);
    let extra_root_certs = root_certs(files, p);
    let requests_per_minute = at_least_one(
        p,
        "api.requests_per_minute",
        api.requests_per_minute
            .unwrap_or(defaults::REQUESTS_PER_MINUTE),
    );
    let bot_requests_per_minute = at_least_one(
        p,
        "api.bot_requests_per_minute",
        api.bot_requests_per_minute
            .unwrap_or(defaults::BOT_REQUESTS_PER_MINUTE),
    );
    let bot_requests_per_hour = at_least_one(
        p,
        "api.bot_requests_per_hour",
        api.bot_requests_per_hour
            .unwrap_or(defaults::BOT_REQUESTS_PER_HOUR),
    );
    let timeout_seconds = api.timeout_seconds.unwrap_or(defaults::TIMEOUT_SECONDS);
    if timeout_seconds == 0 || timeout_seconds > 3600 {
        p.push("api.timeout_seconds", "must be between 1 and 3600");
    }

    let timezone = match api.timezone.as_deref() {
        Some(name) => parse_tz(p, "api.timezone", Some(name)),
        None => chrono_tz::Tz::UTC,
    };
    let retry = retry_policy(api, p);
    let max_response_bytes = api
        .max_response_bytes
        .unwrap_or(defaults::MAX_RESPONSE_BYTES);
    if max_response_bytes < 1024 {
        p.push("api.max_response_bytes", "must be at least 1024");
    }
    let page_memory_bytes = page_memory_bytes(api, p);
    ApiConfig {
        base_url,
        account_id,
        iid,
        client_id,
        client_secret,
        requests_per_minute,
        bot_requests_per_minute,
        bot_requests_per_hour,
        timeout: Duration::from_secs(timeout_seconds),
        timezone,
        retry,
        max_response_bytes,
        page_memory_bytes,
        extra_root_certs,
    }
}

/// `api.account_id`, `api.iid` and `api.client_id`: required; the first two name paths and
/// objects, so only safe characters.
fn ids(api: &RawApi, p: &mut Problems) -> (String, String, String) {
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
    (account_id, iid, client_id)
}

/// The client secret the file resolve step read: never inline, required unless the API is the
/// simulator (a secret file that failed to read is already a problem).
fn client_secret(
    api: &RawApi,
    files: &Resolved,
    simulator: bool,
    p: &mut Problems,
) -> Option<Secret> {
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
    let client_secret = files.secret.clone();
    if client_secret.is_none() && !files.secret_file_failed && !simulator {
        p.push(
            "api.client_secret_file",
            format!("no client secret: set api.client_secret_file or {SECRET_ENV}"),
        );
    }
    client_secret
}

/// `value` of the request limit `key`, a problem when it is 0.
fn at_least_one(p: &mut Problems, key: &str, value: u32) -> u32 {
    if value == 0 {
        p.push(key, "must be at least 1");
    }
    value
}

/// `api.page_memory_bytes`: between 1 KiB and 4 GiB − 1 (the gate counts bytes in a `u32`).
fn page_memory_bytes(api: &RawApi, p: &mut Problems) -> u32 {
    let raw = api
        .page_memory_bytes
        .unwrap_or(u64::from(defaults::PAGE_MEMORY_BYTES));
    match u32::try_from(raw) {
        Ok(bytes) if bytes >= 1024 => bytes,
        _ => {
            p.push(
                "api.page_memory_bytes",
                "must be between 1024 and 4294967295",
            );
            defaults::PAGE_MEMORY_BYTES
        }
    }
}

fn base_url(api: &RawApi, p: &mut Problems) -> BaseUrl {
    let base_url_raw = p.required("api.base_url", &api.base_url);
    if base_url_raw == SIMULATOR_BASE_URL {
        BaseUrl::Simulator
    } else {
        match Url::parse(&base_url_raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if u.query().is_some() || u.fragment().is_some() {
                    p.push("api.base_url", "must not contain a query or fragment");
                }
                if u.scheme() == "http"
                    && !is_loopback_host(&u)
                    && !api
                        .allow_insecure_http
                        .unwrap_or(defaults::ALLOW_INSECURE_HTTP)
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
    }
}

fn root_certs(files: &Resolved, p: &mut Problems) -> Vec<reqwest::Certificate> {
    match &files.ca_bundle {
        None => Vec::new(),
        Some((file, pem)) => match reqwest::Certificate::from_pem_bundle(pem) {
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
    }
}

fn retry_policy(api: &RawApi, p: &mut Problems) -> RetryPolicy {
    let throttle = api
        .throttle_backoff_seconds
        .unwrap_or(defaults::THROTTLE_BACKOFF_SECONDS);
    if !(0.0..=3600.0).contains(&throttle) {
        p.push("api.throttle_backoff_seconds", "must be between 0 and 3600");
    }
    let retry = RetryPolicy {
        max_retries: api.max_retries.unwrap_or(defaults::MAX_RETRIES),
        base: Duration::from_millis(api.retry_base_ms.unwrap_or(defaults::RETRY_BASE_MS)),
        max_backoff: Duration::from_secs(
            api.retry_max_backoff_seconds
                .unwrap_or(defaults::RETRY_MAX_BACKOFF_SECONDS),
        ),
        retry_after_cap: Duration::from_secs(
            api.retry_after_cap_seconds
                .unwrap_or(defaults::RETRY_AFTER_CAP_SECONDS),
        ),
        throttle_backoff: Duration::from_secs_f64(throttle.clamp(0.0, 3600.0)),
    };
    if retry.max_retries > 20 {
        p.push("api.max_retries", "must be at most 20");
    }
    retry
}
