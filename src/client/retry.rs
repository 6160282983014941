//! Retry policy as pure functions: classification of an HTTP outcome (retry, throttle,
//! re-authenticate, fail), exponential backoff with full jitter, `Retry-After` parsing, and
//! extraction of the API's `errors[].msg` text. The caller owns the loop.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::RetryPolicy;

/// What to do after a response with a non-success status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Transient: retry after backoff (408, 5xx).
    Retry,
    /// Throttled (429 or a 4xx whose body talks about a rate limit): wait and retry.
    Throttled,
    /// 401 for a replayed or over-long JTI token: mint a new token and retry once.
    Reauthenticate,
    /// Any other 4xx: fail now.
    Fatal,
}

/// Classify a non-2xx response.
pub fn classify(status: u16, body: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(&body[..body.len().min(8192)]).to_ascii_lowercase();
    match status {
        429 => Verdict::Throttled,
        408 | 500..=599 => Verdict::Retry,
        400..=499 if text.contains("rate limit") => Verdict::Throttled,
        401 if text.contains("possibly a replay")
            || text.contains("must be <= 1 hour")
            || text.contains("must be &lt;= 1 hour")
            || text.contains("jwt expired") =>
        {
            Verdict::Reauthenticate
        }
        _ => Verdict::Fatal,
    }
}

/// Backoff before retry number `attempt` (1-based): uniform in `[0, min(max, base * 2^(attempt-1))]`.
/// `unit` is a uniform sample from `[0, 1)`.
pub fn backoff(policy: &RetryPolicy, attempt: u32, unit: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let ceiling = policy
        .base
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// Parse a `Retry-After` value: delta-seconds or an HTTP date. `None` when unparsable.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(1e9)));
        }
        return None;
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (when.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The wait before retrying a throttled request: the server's `Retry-After` (capped) if given,
/// otherwise the larger of the throttle floor and the jittered backoff.
pub fn throttle_wait(
    policy: &RetryPolicy,
    retry_after: Option<Duration>,
    attempt: u32,
    unit: f64,
) -> Duration {
    match retry_after {
        Some(d) => d.min(policy.retry_after_cap),
        None => backoff(policy, attempt, unit).max(policy.throttle_backoff),
    }
}

/// How long a throttled answer pauses the whole request budget: the server's `Retry-After`
/// (capped) if given, otherwise the throttle floor (without the jitter of one request's own
/// wait, [`throttle_wait`], which is never shorter).
pub fn throttle_pause(policy: &RetryPolicy, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(d) => d.min(policy.retry_after_cap),
        None => policy.throttle_backoff,
    }
}

/// Human-readable error text from a response body: `errors[].msg` joined, else `message`,
/// else the (truncated) raw text.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Item {
        msg: Option<String>,
        code: Option<serde_json::Value>,
    }
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Option<Vec<Item>>,
        message: Option<String>,
    }
    if let Ok(parsed) = serde_json::from_slice::<Errors>(body) {
        if let Some(items) = parsed.errors {
            let msgs: Vec<String> = items
                .into_iter()
                .filter_map(|i| {
                    i.msg.map(|m| match i.code {
                        Some(c) => format!("{m} (code {c})"),
                        None => m,
                    })
                })
                .collect();
            if !msgs.is_empty() {
                return msgs.join("; ");
            }
        }
        if let Some(m) = parsed.message {
            return m;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            retry_after_cap: Duration::from_secs(120),
            throttle_backoff: Duration::from_secs(10),
        }
    }

    #[test]
    fn classification() {
        assert_eq!(classify(429, b""), Verdict::Throttled);
        assert_eq!(classify(503, b"oops"), Verdict::Retry);
        assert_eq!(classify(408, b""), Verdict::Retry);
        let kore = br#"{"errors":[{"msg":"You've exceeded the per-minute rate limit. Please wait for sometime before retrying.","code":400}]}"#;
        assert_eq!(classify(400, kore), Verdict::Throttled);
        let replay =
            br#"{"errors":[{"msg":"error verifying the jwt: possibly a replay","code":401}]}"#;
        assert_eq!(classify(401, replay), Verdict::Reauthenticate);
        let exp = br#"{"errors":[{"msg":"error verifying the jwt: if \"jti\" claim \"exp\" must be <= 1 hour(s)","code":401}]}"#;
        assert_eq!(classify(401, exp), Verdict::Reauthenticate);
        assert_eq!(
            classify(
                401,
                br#"{"errors":[{"msg":"Invalid SDK credentials","code":4002}]}"#
            ),
            Verdict::Fatal
        );
        assert_eq!(classify(404, b"not found"), Verdict::Fatal);
    }

    #[test]
    fn backoff_is_full_jitter_below_an_exponential_ceiling() {
        let p = policy();
        assert_eq!(
            backoff(&p, 1, 0.999_999),
            Duration::from_millis(500).mul_f64(0.999_999)
        );
        assert_eq!(backoff(&p, 3, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(&p, 10, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(&p, 10, 0.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn throttle_wait_caps_retry_after_and_floors_backoff() {
        let p = policy();
        assert_eq!(
            throttle_wait(&p, Some(Duration::from_secs(3600)), 1, 0.5),
            Duration::from_secs(120)
        );
        assert_eq!(
            throttle_wait(&p, Some(Duration::from_secs(2)), 1, 0.5),
            Duration::from_secs(2)
        );
        assert_eq!(throttle_wait(&p, None, 1, 0.5), Duration::from_secs(10));
        assert_eq!(
            throttle_pause(&p, Some(Duration::from_secs(3600))),
            Duration::from_secs(120)
        );
        assert_eq!(throttle_pause(&p, None), Duration::from_secs(10));
        for unit in [0.0, 0.5, 0.999] {
            for attempt in 1..8 {
                assert!(throttle_wait(&p, None, attempt, unit) >= throttle_pause(&p, None));
            }
        }
    }

    #[test]
    fn error_messages_prefer_errors_msg() {
        assert_eq!(
            error_message(br#"{"errors":[{"msg":"Invalid SDK credentials","code":4002}]}"#),
            "Invalid SDK credentials (code 4002)"
        );
        assert_eq!(error_message(br#"{"message":"nope"}"#), "nope");
        assert_eq!(error_message(b"plain"), "plain");
        assert_eq!(error_message(b""), "(empty body)");
    }
}
