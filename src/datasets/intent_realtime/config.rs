//! The `[intent_realtime]` section: which bots to poll, how often, the request path, the zone of
//! the `dt` partition (the account zone by default) and the fast re-poll after a suspected gap.
//! `[api] intent_path` is an alias of its `path`. Pure validation.

use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

use crate::config::parse::{is_safe_identifier, parse_schedule, parse_tz};
use crate::config::{ApiAlias, DatasetSection, Problems, Schedule, SectionContext};

pub const SCHEDULE: &str = "*/30 * * * * *";
pub const GAP_POLL_INTERVAL_SECONDS: u64 = 10;
/// Default path; `{bot_id}` is replaced by each polled bot.
pub const PATH: &str = "/api/public/bot/{bot_id}/intentrealtimedata";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntent {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub bot_ids: Option<Vec<String>>,
    pub timezone: Option<String>,
    pub schedule_timezone: Option<String>,
    pub gap_poll_interval_seconds: Option<u64>,
    pub path: Option<String>,
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
    /// Path template containing `{bot_id}`.
    pub path: String,
}

impl DatasetSection for IntentConfig {
    const NAME: &'static str = "intent_realtime";
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("schedule", "\"*/30 * * * * *\""),
        ("bot_ids", "[]"),
        ("schedule_timezone", "\"UTC\""),
        ("gap_poll_interval_seconds", "10"),
        ("path", "\"/api/public/bot/{bot_id}/intentrealtimedata\""),
    ];
    const API_ALIASES: &'static [ApiAlias] = &[ApiAlias {
        api_key: "intent_path",
        key: "path",
    }];
    type Raw = RawIntent;

    fn validate(it: &RawIntent, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
        let bot_ids = it.bot_ids.clone().unwrap_or_default();
        for (i, b) in bot_ids.iter().enumerate() {
            if !is_safe_identifier(b) {
                p.push(
                    &format!("intent_realtime.bot_ids[{i}]"),
                    format!("{b:?} may contain only ASCII letters, digits, '-', '_' and '.'"),
                );
            }
        }
        let enabled = it.enabled.unwrap_or(!bot_ids.is_empty());
        if enabled && bot_ids.is_empty() {
            p.push(
                "intent_realtime.bot_ids",
                "enabled but no bot ids are configured",
            );
        }
        let path = it.path.clone().unwrap_or_else(|| PATH.to_string());
        if !path.starts_with('/') || !path.contains("{bot_id}") {
            p.push(
                "intent_realtime.path",
                "must start with '/' and contain {bot_id}",
            );
        }
        IntentConfig {
            enabled,
            schedule: parse_schedule(p, "intent_realtime.schedule", &it.schedule, SCHEDULE),
            bot_ids,
            timezone: match it.timezone.as_deref() {
                Some(name) => parse_tz(p, "intent_realtime.timezone", Some(name)),
                None => cx.timezone,
            },
            schedule_timezone: parse_tz(
                p,
                "intent_realtime.schedule_timezone",
                it.schedule_timezone.as_deref(),
            ),
            gap_poll_interval: gap_poll_interval(p, it.gap_poll_interval_seconds),
            path,
        }
    }
}

/// `gap_poll_interval_seconds`: 0 turns the fast re-poll off.
fn gap_poll_interval(p: &mut Problems, seconds: Option<u64>) -> Option<Duration> {
    match seconds.unwrap_or(GAP_POLL_INTERVAL_SECONDS) {
        0 => None,
        s if s > 86_400 => {
            p.push(
                "intent_realtime.gap_poll_interval_seconds",
                "must be at most 86400 (0 turns it off)",
            );
            None
        }
        s => Some(Duration::from_secs(s)),
    }
}
