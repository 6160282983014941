//! The `[output]` section: where Parquet goes, a local directory (`file:///abs/dir` or a path
//! relative to the working directory) or `s3://bucket/prefix` with overrides for S3-compatible
//! stores. Pure validation; the working directory comes from the resolve step.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::parse::Problems;

/// Where output goes. Built by the config layer from `[output] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub url: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: Option<bool>,
}

/// Validates `[output]`; a relative path is resolved against `cwd` (the working directory).
pub fn validate(raw: &RawOutput, cwd: Option<&Path>, p: &mut Problems) -> OutputLocation {
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
