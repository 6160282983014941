//! The keys every history dataset section shares (`enabled`, `schedule`, `timezone`,
//! `schedule_timezone`, `lookback_days`, `max_days_per_run`), validated by one function so
//! every history dataset follows the same rules. A section's `timezone` defaults to the account
//! zone ([`super::section`]); `enabled` and `schedule` default to the section's own values.

use chrono_tz::Tz;

use super::defaults;
use super::parse::{parse_schedule, parse_tz, Problems, Schedule};
use super::section::SectionContext;

/// Documented defaults of the shared keys that are the same for every history section (its
/// `DatasetSection::SHARED_DEFAULTS`); `enabled` and `schedule` are each section's own, and
/// `timezone` is the account zone.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("lookback_days", "1"),
    ("schedule_timezone", "\"UTC\""),
    ("max_days_per_run", "7"),
];

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

/// The section's own defaults of the shared keys that differ between datasets.
#[derive(Debug, Clone, Copy)]
pub struct HistoryDefaults {
    pub enabled: bool,
    pub schedule: &'static str,
}

/// Validated shared keys.
#[derive(Debug, Clone)]
pub struct HistoryKeys {
    pub enabled: bool,
    pub schedule: Schedule,
    /// Zone whose local days are the units (and the `dt` partitions).
    pub timezone: Tz,
    /// Zone the cron `schedule` is evaluated in (UTC by default), DST-correct.
    pub schedule_timezone: Tz,
    /// Days before the watermark day re-exported by every scheduled run.
    pub lookback_days: u32,
    /// Most local days one scheduled run exports (catch-up after downtime resumes next run).
    pub max_days_per_run: u32,
}

/// Validates the shared keys of a history section.
pub fn validate(
    raw: RawHistoryKeys<'_>,
    own: HistoryDefaults,
    cx: &SectionContext<'_>,
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
        enabled: raw.enabled.unwrap_or(own.enabled),
        schedule: parse_schedule(p, &key("schedule"), raw.schedule, own.schedule),
        timezone: match raw.timezone {
            Some(name) => parse_tz(p, &key("timezone"), Some(name)),
            None => cx.timezone,
        },
        schedule_timezone: parse_tz(
            p,
            &key("schedule_timezone"),
            Some(raw.schedule_timezone.unwrap_or(defaults::SCHEDULE_TIMEZONE)),
        ),
        lookback_days,
        max_days_per_run,
    }
}
