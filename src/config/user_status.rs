//! The `[user_status]` section: the shared history keys plus the UserStatus bucket
//! granularity, page size and agent filter. Pure validation.

use chrono_tz::Tz;
use serde::Deserialize;

use super::defaults;
use super::history::{self, RawHistoryKeys};
use super::parse::{Problems, Schedule};
use crate::model::Granularity;

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

/// Validates `[user_status]`.
pub fn validate(us: &RawUserStatus, p: &mut Problems) -> UserStatusConfig {
    let keys = history::validate(
        RawHistoryKeys {
            section: "user_status",
            enabled: us.enabled,
            schedule: &us.schedule,
            timezone: us.timezone.as_deref(),
            schedule_timezone: us.schedule_timezone.as_deref(),
            lookback_days: us.lookback_days,
            max_days_per_run: us.max_days_per_run,
        },
        defaults::USER_STATUS_ENABLED,
        defaults::USER_STATUS_SCHEDULE,
        p,
    );
    let granularity = match us
        .granularity
        .as_deref()
        .unwrap_or(defaults::GRANULARITY)
        .parse::<Granularity>()
    {
        Ok(g) => g,
        Err(e) => {
            p.push("user_status.granularity", e.to_string());
            Granularity::PT30M
        }
    };
    let page_size = us.page_size.unwrap_or(defaults::USER_STATUS_PAGE_SIZE);
    if page_size == 0 || page_size > 1000 {
        p.push("user_status.page_size", "must be between 1 and 1000");
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
    UserStatusConfig {
        enabled: keys.enabled,
        schedule: keys.schedule,
        granularity,
        timezone: keys.timezone,
        lookback_days: keys.lookback_days,
        page_size,
        agents,
        schedule_timezone: keys.schedule_timezone,
        max_days_per_run: keys.max_days_per_run,
    }
}
