//! The `[output]` section: where Parquet goes, a local directory (`file:///abs/dir` or a path
//! relative to the working directory) or `s3://bucket/prefix` with overrides for S3-compatible
//! stores and the S3 client's retry policy and timeouts ([`StoreTuning`]). S3-only keys are
//! refused for local output. Pure validation; the working directory comes from the resolve step.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::defaults;
use super::parse::Problems;

/// Where output goes. Built by the config layer from `[output]`.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputLocation {
    /// Absolute directory on local disk.
    Local(PathBuf),
    /// `s3://bucket/prefix` plus optional overrides for S3-compatible stores.
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
        allow_http: bool,
        /// Retry policy and timeouts of the S3 client.
        tuning: StoreTuning,
    },
}

/// Retry policy and timeouts of the S3 client, from the `[output]` keys `max_retries`,
/// `retry_base_ms`, `retry_max_backoff_seconds`, `retry_timeout_seconds`,
/// `connect_timeout_seconds` and `timeout_seconds` (defaults in [`defaults`]); the sink applies
/// it to object_store's S3 client (ignored for local output).
///
/// The defaults aim at two things at once. A transient fault (a 500 or 503 SlowDown, a dropped
/// connection, a slow answer) must not fail a run: with 8 retries a request fails only after 9
/// failed attempts in a row, which at a 20 % fault rate happens to about one request in two
/// million. A dead endpoint must fail the run in bounded time instead of hanging a daemon
/// cycle: backoff grows from 100 ms by up to ×2 per retry (object_store's decorrelated jitter)
/// and is capped at 5 s, so 8 retries sleep at most about 16 s in total; no retry starts after
/// 60 s; a connection attempt gives up after 5 s and a whole request (connect, upload, answer)
/// after 30 s. So a refused connection fails after about 16 s, an endpoint that swallows
/// packets after about 60 s (+ one connect timeout), and a server that accepts but never
/// answers after at most about 90 s (timeouts are retried only for idempotent requests).
///
/// The 30 s request timeout also bounds one upload part (8 MiB,
/// [`crate::sink::UPLOAD_PART_BYTES`]): links slower than about 300 KB/s need a longer one. The retry timeout stays well below the
/// 5 minutes after which a signed request (retried as is) can expire.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreTuning {
    /// Retries per request after the first attempt (0 disables retries).
    pub max_retries: usize,
    /// No retry is started this long after a request's first attempt.
    pub retry_timeout: Duration,
    /// The first backoff; later ones are drawn between this and `backoff_base` × the previous.
    pub backoff_initial: Duration,
    /// Upper bound of one backoff.
    pub backoff_max: Duration,
    /// Growth factor of the backoff.
    pub backoff_base: f64,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request: connect, send the body, receive the full answer.
    pub request_timeout: Duration,
}

impl Default for StoreTuning {
    fn default() -> Self {
        StoreTuning {
            max_retries: defaults::OUTPUT_MAX_RETRIES as usize,
            retry_timeout: Duration::from_secs(defaults::OUTPUT_RETRY_TIMEOUT_SECONDS),
            backoff_initial: Duration::from_millis(defaults::OUTPUT_RETRY_BASE_MS),
            backoff_max: Duration::from_secs(defaults::OUTPUT_RETRY_MAX_BACKOFF_SECONDS),
            backoff_base: defaults::OUTPUT_BACKOFF_BASE,
            connect_timeout: Duration::from_secs(defaults::OUTPUT_CONNECT_TIMEOUT_SECONDS),
            request_timeout: Duration::from_secs(defaults::OUTPUT_TIMEOUT_SECONDS),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub url: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: Option<bool>,
    pub max_retries: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub retry_max_backoff_seconds: Option<u64>,
    pub retry_timeout_seconds: Option<u64>,
    pub connect_timeout_seconds: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub page_row_group_bytes: Option<u64>,
}

impl RawOutput {
    /// The S3 client keys that are set, by name.
    fn tuning_keys_set(&self) -> Vec<&'static str> {
        [
            ("max_retries", self.max_retries.is_some()),
            ("retry_base_ms", self.retry_base_ms.is_some()),
            (
                "retry_max_backoff_seconds",
                self.retry_max_backoff_seconds.is_some(),
            ),
            (
                "retry_timeout_seconds",
                self.retry_timeout_seconds.is_some(),
            ),
            (
                "connect_timeout_seconds",
                self.connect_timeout_seconds.is_some(),
            ),
            ("timeout_seconds", self.timeout_seconds.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

/// The S3 client's retry policy and timeouts: the keys or their defaults, each within bounds
/// that keep a run from failing on a blip or hanging on a dead endpoint.
fn tuning(raw: &RawOutput, p: &mut Problems) -> StoreTuning {
    let mut in_range = |key: &str, value: u64, lo: u64, hi: u64| {
        if !(lo..=hi).contains(&value) {
            p.push(
                &format!("output.{key}"),
                format!("must be between {lo} and {hi}"),
            );
        }
        value
    };
    let max_retries = raw.max_retries.unwrap_or(defaults::OUTPUT_MAX_RETRIES);
    let max_retries = in_range("max_retries", u64::from(max_retries), 0, 20);
    let base_ms = raw.retry_base_ms.unwrap_or(defaults::OUTPUT_RETRY_BASE_MS);
    let base_ms = in_range("retry_base_ms", base_ms, 1, 60_000);
    let max_backoff = raw
        .retry_max_backoff_seconds
        .unwrap_or(defaults::OUTPUT_RETRY_MAX_BACKOFF_SECONDS);
    let max_backoff = in_range("retry_max_backoff_seconds", max_backoff, 1, 300);
    let retry_timeout = raw
        .retry_timeout_seconds
        .unwrap_or(defaults::OUTPUT_RETRY_TIMEOUT_SECONDS);
    let retry_timeout = in_range("retry_timeout_seconds", retry_timeout, 1, 3600);
    let connect = raw
        .connect_timeout_seconds
        .unwrap_or(defaults::OUTPUT_CONNECT_TIMEOUT_SECONDS);
    let connect = in_range("connect_timeout_seconds", connect, 1, 300);
    let request = raw
        .timeout_seconds
        .unwrap_or(defaults::OUTPUT_TIMEOUT_SECONDS);
    let request = in_range("timeout_seconds", request, 1, 3600);
    let tuning = StoreTuning {
        max_retries: max_retries as usize,
        retry_timeout: Duration::from_secs(retry_timeout),
        backoff_initial: Duration::from_millis(base_ms),
        backoff_max: Duration::from_secs(max_backoff),
        backoff_base: defaults::OUTPUT_BACKOFF_BASE,
        connect_timeout: Duration::from_secs(connect),
        request_timeout: Duration::from_secs(request),
    };
    if tuning.backoff_initial > tuning.backoff_max {
        p.push(
            "output.retry_base_ms",
            "must not exceed output.retry_max_backoff_seconds",
        );
    }
    tuning
}

/// How the sink encodes Parquet, from `[output]` keys that apply to every output location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// `page_row_group_bytes`: pages share a row group until their rows hold this many bytes
    /// (`0`: one row group per page); see [`crate::sink::PAGE_ROW_GROUP_BYTES`] for what the
    /// bound trades.
    pub page_row_group_bytes: usize,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            page_row_group_bytes: defaults::OUTPUT_PAGE_ROW_GROUP_BYTES as usize,
        }
    }
}

/// The largest `page_row_group_bytes`: a row group is written out at this size anyway
/// ([`crate::sink::ROW_GROUP_FLUSH_BYTES`]).
pub const MAX_PAGE_ROW_GROUP_BYTES: u64 = 64 * 1024 * 1024;

/// Validates the encoding keys of `[output]` (for local and S3 output alike).
pub fn encoding(raw: &RawOutput, p: &mut Problems) -> Encoding {
    let bytes = raw
        .page_row_group_bytes
        .unwrap_or(defaults::OUTPUT_PAGE_ROW_GROUP_BYTES);
    if bytes > MAX_PAGE_ROW_GROUP_BYTES {
        p.push(
            "output.page_row_group_bytes",
            format!("must be between 0 and {MAX_PAGE_ROW_GROUP_BYTES}"),
        );
    }
    Encoding {
        page_row_group_bytes: usize::try_from(bytes.min(MAX_PAGE_ROW_GROUP_BYTES))
            .unwrap_or(usize::MAX),
    }
}

/// Validates `[output]`; a relative path is resolved against `cwd` (the working directory).
pub fn validate(raw: &RawOutput, cwd: Option<&Path>, p: &mut Problems) -> OutputLocation {
    let url = raw.url.clone().unwrap_or_default();
    let url = url.trim();
    if url.is_empty() {
        p.push("output.url", "missing required key");
        return OutputLocation::Local(PathBuf::from("/nonexistent"));
    }
    match url.strip_prefix("s3://") {
        Some(rest) => s3_location(raw, rest, p),
        None => local_location(raw, url, cwd, p),
    }
}

/// `[output]` for an `s3://` URL (`rest` is what follows the scheme): bucket, prefix, endpoint
/// and the S3 client's tuning.
fn s3_location(raw: &RawOutput, rest: &str, p: &mut Problems) -> OutputLocation {
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
    OutputLocation::S3 {
        bucket: bucket.to_string(),
        prefix,
        endpoint: raw.endpoint.clone(),
        region: raw.region.clone(),
        allow_http: raw.allow_http.unwrap_or(false),
        tuning: tuning(raw, p),
    }
}

/// `[output]` for a local directory (`file://`, or a path, a relative one resolved against
/// `cwd`); the S3 keys are refused.
fn local_location(
    raw: &RawOutput,
    url: &str,
    cwd: Option<&Path>,
    p: &mut Problems,
) -> OutputLocation {
    if raw.endpoint.is_some() || raw.region.is_some() || raw.allow_http.is_some() {
        p.push(
            "output.endpoint",
            "endpoint, region and allow_http apply only to s3:// output URLs",
        );
    }
    for key in raw.tuning_keys_set() {
        p.push(
            &format!("output.{key}"),
            "the S3 client's retry and timeout keys apply only to s3:// output URLs",
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
            match cwd {
                Some(cwd) => cwd.join(relative),
                None => {
                    p.push(
                        "output.url",
                        "cannot resolve a relative path: the working directory is unknown",
                    );
                    relative
                }
            }
        }
    };
    OutputLocation::Local(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(raw: RawOutput) -> (OutputLocation, Vec<String>) {
        let mut p = Problems::default();
        let raw = RawOutput {
            url: Some("s3://bucket/prefix".into()),
            ..raw
        };
        let location = validate(&raw, None, &mut p);
        (location, p.0.iter().map(|p| p.to_string()).collect())
    }

    fn tuning_of(location: OutputLocation) -> StoreTuning {
        match location {
            OutputLocation::S3 { tuning, .. } => tuning,
            other => panic!("not S3: {other:?}"),
        }
    }

    #[test]
    fn unset_s3_client_keys_take_the_documented_defaults() {
        let (location, problems) = s3(RawOutput::default());
        assert_eq!(problems, Vec::<String>::new());
        let t = tuning_of(location);
        assert_eq!(t.max_retries, 8);
        assert_eq!(t.backoff_initial, Duration::from_millis(100));
        assert_eq!(t.backoff_max, Duration::from_secs(5));
        assert_eq!(t.retry_timeout, Duration::from_secs(60));
        assert_eq!(t.connect_timeout, Duration::from_secs(5));
        assert_eq!(t.request_timeout, Duration::from_secs(30));
        assert_eq!(t, StoreTuning::default());
    }

    #[test]
    fn s3_client_keys_set_the_tuning() {
        let (location, problems) = s3(RawOutput {
            max_retries: Some(0),
            retry_base_ms: Some(250),
            retry_max_backoff_seconds: Some(2),
            retry_timeout_seconds: Some(15),
            connect_timeout_seconds: Some(1),
            timeout_seconds: Some(120),
            ..RawOutput::default()
        });
        assert_eq!(problems, Vec::<String>::new());
        let t = tuning_of(location);
        assert_eq!(
            (t.max_retries, t.backoff_initial, t.backoff_max),
            (0, Duration::from_millis(250), Duration::from_secs(2))
        );
        assert_eq!(
            (t.retry_timeout, t.connect_timeout, t.request_timeout),
            (
                Duration::from_secs(15),
                Duration::from_secs(1),
                Duration::from_secs(120)
            )
        );
    }

    #[test]
    fn out_of_range_s3_client_keys_are_each_named() {
        let (_, problems) = s3(RawOutput {
            max_retries: Some(21),
            retry_base_ms: Some(0),
            retry_max_backoff_seconds: Some(0),
            retry_timeout_seconds: Some(0),
            connect_timeout_seconds: Some(301),
            timeout_seconds: Some(0),
            ..RawOutput::default()
        });
        assert_eq!(
            problems,
            vec![
                "output.max_retries: must be between 0 and 20",
                "output.retry_base_ms: must be between 1 and 60000",
                "output.retry_max_backoff_seconds: must be between 1 and 300",
                "output.retry_timeout_seconds: must be between 1 and 3600",
                "output.connect_timeout_seconds: must be between 1 and 300",
                "output.timeout_seconds: must be between 1 and 3600",
            ]
        );
    }

    #[test]
    fn page_row_group_bytes_defaults_to_half_a_mib_and_is_bounded() {
        let mut p = Problems::default();
        assert_eq!(
            encoding(&RawOutput::default(), &mut p).page_row_group_bytes,
            512 * 1024
        );
        let zero = RawOutput {
            page_row_group_bytes: Some(0),
            ..RawOutput::default()
        };
        assert_eq!(encoding(&zero, &mut p).page_row_group_bytes, 0);
        assert!(p.0.is_empty(), "{:?}", p.0);
        let over = RawOutput {
            page_row_group_bytes: Some(64 * 1024 * 1024 + 1),
            ..RawOutput::default()
        };
        encoding(&over, &mut p);
        let problems: Vec<String> = p.0.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            problems,
            vec!["output.page_row_group_bytes: must be between 0 and 67108864"]
        );
    }

    #[test]
    fn a_first_backoff_above_the_ceiling_is_refused() {
        let (_, problems) = s3(RawOutput {
            retry_base_ms: Some(3000),
            retry_max_backoff_seconds: Some(2),
            ..RawOutput::default()
        });
        assert_eq!(
            problems,
            vec!["output.retry_base_ms: must not exceed output.retry_max_backoff_seconds"]
        );
    }

    #[test]
    fn s3_client_keys_are_refused_for_local_output() {
        let mut p = Problems::default();
        let raw = RawOutput {
            url: Some("file:///tmp/out".into()),
            max_retries: Some(3),
            timeout_seconds: Some(10),
            ..RawOutput::default()
        };
        let location = validate(&raw, None, &mut p);
        assert_eq!(location, OutputLocation::Local(PathBuf::from("/tmp/out")));
        let problems: Vec<String> = p.0.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            problems,
            vec![
                "output.max_retries: the S3 client's retry and timeout keys apply only to s3:// output URLs",
                "output.timeout_seconds: the S3 client's retry and timeout keys apply only to s3:// output URLs",
            ]
        );
    }
}
