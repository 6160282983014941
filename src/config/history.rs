//! The keys every history dataset section shares (`enabled`, `schedule`, `timezone`,
//! `schedule_timezone`, `lookback_days`, `max_days_per_run`), validated by one function so
//! every history dataset follows the same rules as `[user_status]`.

use chrono_tz::Tz;

use super::defaults;
use super::parse::{parse_schedule, parse_tz, Problems, Schedule};

/// The shared keys of a history section as written in the file.
#[derive(Debug, Clone, Copy)]
pub struct RawHistoryKeys<'a> {
    /// Section name, for problem keys (`user_status`).
    pub section: &'a str,
    pub enabled: Option<bool>,
    pub schedule: &'a Option<String>,
    pub timezone: Option<&'a str>,
    pub schedule_timezone: Option<&'a str>,
    pub lookback_days: Option<u32>,
    pub max_days_per_run: Option<u32>,
}

/// Validated shared keys.
#[derive(Debug, Clone)]
pub struct HistoryKeys {
    pub enabled: bool,
    pub schedule: Schedule,
    pub timezone: Tz,
    pub schedule_timezone: Tz,
    pub lookback_days: u32,
    pub max_days_per_run: u32,
}

/// Validates the shared keys; `default_enabled` and `default_schedule` are the section's own.
pub fn validate(
    raw: RawHistoryKeys<'_>,
    default_enabled: bool,
    default_schedule: &str,
    p: &mut Problems,
) -> HistoryKeys {
    let key = |name: &str| format!("{}.{name}", raw.section);
    let lookback_days = raw.lookback_days.unwrap_or(defaults::LOOKBACK_DAYS);
    if lookback_days > 90 {
        p.push(&key("lookback_days"), "must be at most 90");
    }
    let max_days_per_run = raw.max_days_per_run.unwrap_or(defaults::MAX_DAYS_PER_RUN);
    if max_days_per_run <= lookback_days || max_days_per_run > 366 {
        p.push(
            &key("max_days_per_run"),
            format!(
                "must be greater than lookback_days ({lookback_days}) and at most 366, \
                 or catch-up after downtime could never progress"
            ),
        );
    }
    HistoryKeys {
        enabled: raw.enabled.unwrap_or(default_enabled),
        schedule: parse_schedule(p, &key("schedule"), raw.schedule, default_schedule),
        timezone: parse_tz(p, &key("timezone"), raw.timezone),
        schedule_timezone: parse_tz(
            p,
            &key("schedule_timezone"),
            Some(raw.schedule_timezone.unwrap_or(defaults::SCHEDULE_TIMEZONE)),
        ),
        lookback_days,
        max_days_per_run,
    }
}
