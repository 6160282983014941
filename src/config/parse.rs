//! Shared parsing rules of the config sections: the [`Problems`] collector (every problem at
//! once, each naming its key), required strings, safe identifiers, 6-field cron schedules,
//! IANA zones, agent email lists, request path templates and loopback hosts. Pure functions; no I/O.

use chrono_tz::Tz;
use url::Url;

use std::fmt;

use super::ConfigProblem;

/// Collects every problem of a config, each naming its key.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<ConfigProblem>);

impl Problems {
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// A required, non-empty string (trimmed); pushes a problem and returns "" otherwise.
    pub fn required(&mut self, key: &str, value: &Option<String>) -> String {
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

pub fn parse_schedule(
    p: &mut Problems,
    key: &str,
    value: &Option<String>,
    default: &str,
) -> Schedule {
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

pub fn parse_tz(p: &mut Problems, key: &str, value: Option<&str>) -> Tz {
    let name = value.unwrap_or(super::defaults::TIMEZONE);
    match name.parse::<Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            p.push(key, format!("unknown IANA time zone {name:?}"));
            Tz::UTC
        }
    }
}

/// A list of agent email addresses (`filter.agents`), each checked to look like one.
pub fn emails(p: &mut Problems, key: &str, values: &Option<Vec<String>>) -> Vec<String> {
    let agents = values.clone().unwrap_or_default();
    for (i, a) in agents.iter().enumerate() {
        if !a.contains('@') || a.trim() != a {
            p.push(
                &format!("{key}[{i}]"),
                format!("{a:?} is not an email address"),
            );
        }
    }
    agents
}

/// A request path template (`default` when unset) with `{account_id}` substituted: it must start
/// with `/` and hold no other placeholder.
pub fn account_path(
    p: &mut Problems,
    key: &str,
    value: Option<&str>,
    default: &str,
    account_id: &str,
) -> String {
    let path = value.unwrap_or(default);
    if !path.starts_with('/') {
        p.push(key, "must start with '/'");
    }
    let path = path.replace("{account_id}", account_id);
    if path.contains('{') {
        p.push(key, "only the {account_id} placeholder is supported");
    }
    path
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
