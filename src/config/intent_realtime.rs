//! The `[intent_realtime]` section: which bots to poll, how often, the zone of the `dt`
//! partition (by default `[user_status] timezone`) and the fast re-poll after a suspected gap.
//! Pure validation.

use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

use super::defaults;
use super::parse::{is_safe_identifier, parse_schedule, parse_tz, Problems, Schedule};

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

/// Validates `[intent_realtime]`; `default_timezone` is `[user_status] timezone`.
pub fn validate(it: &RawIntent, default_timezone: Tz, p: &mut Problems) -> IntentConfig {
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
    IntentConfig {
        enabled: intent_enabled,
        schedule: parse_schedule(
            p,
            "intent_realtime.schedule",
            &it.schedule,
            defaults::INTENT_SCHEDULE,
        ),
        bot_ids,
        timezone: match it.timezone.as_deref() {
            Some(name) => parse_tz(p, "intent_realtime.timezone", Some(name)),
            None => default_timezone,
        },
        schedule_timezone: parse_tz(
            p,
            "intent_realtime.schedule_timezone",
            it.schedule_timezone.as_deref(),
        ),
        gap_poll_interval: match it
            .gap_poll_interval_seconds
            .unwrap_or(defaults::GAP_POLL_INTERVAL_SECONDS)
        {
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
    }
}
