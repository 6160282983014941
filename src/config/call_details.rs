//! The `[call_details]` section: the shared history keys (off by default; the zone of the
//! local days defaults to `[user_status] timezone`), plus the page size, the body filters
//! (`channels`, `queues`, `direction`, `selected_fields`) and which documented endpoint is
//! called (`path`). Pure validation.

use chrono_tz::Tz;
use serde::Deserialize;

use super::defaults;
use super::history::{self, RawHistoryKeys};
use super::parse::{Problems, Schedule};
use crate::datasets::call_details::{CallDetailsApi, RequestFilter, MAX_PAGE_SIZE};

/// Every documented `selectedFields` value (`campaigninfo` only for the v2 paths).
pub const SELECTABLE_FIELDS: [&str; 6] = [
    "skills",
    "customerinfo",
    "userleveltags",
    "sessionleveltags",
    "campaigninfo",
    "snoozeinfo",
];
/// The documented `direction` values.
pub const DIRECTIONS: [&str; 3] = ["Inbound", "Outbound", "Both"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCallDetails {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub schedule_timezone: Option<String>,
    pub lookback_days: Option<u32>,
    pub max_days_per_run: Option<u32>,
    pub page_size: Option<u32>,
    pub channels: Option<Vec<String>>,
    pub queues: Option<Vec<String>>,
    pub direction: Option<String>,
    pub selected_fields: Option<Vec<String>>,
    pub path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CallDetailsConfig {
    pub enabled: bool,
    pub schedule: Schedule,
    /// Zone whose local days are the units, the request windows and the `dt` partitions.
    pub timezone: Tz,
    pub schedule_timezone: Tz,
    pub lookback_days: u32,
    pub max_days_per_run: u32,
    /// `limit`: sessions per page (1..=100).
    pub page_size: u32,
    /// The body's `channels`, `queues`, `direction` and `selectedFields`.
    pub filter: RequestFilter,
    /// The endpoint called.
    pub api: CallDetailsApi,
}

/// Validates `[call_details]`; `default_timezone` is `[user_status] timezone`.
pub fn validate(cd: &RawCallDetails, default_timezone: Tz, p: &mut Problems) -> CallDetailsConfig {
    let keys = history::validate(
        RawHistoryKeys {
            section: "call_details",
            enabled: cd.enabled,
            schedule: &cd.schedule,
            timezone: Some(cd.timezone.as_deref().unwrap_or(default_timezone.name())),
            schedule_timezone: cd.schedule_timezone.as_deref(),
            lookback_days: cd.lookback_days,
            max_days_per_run: cd.max_days_per_run,
        },
        defaults::CALL_DETAILS_ENABLED,
        defaults::CALL_DETAILS_SCHEDULE,
        p,
    );
    let page_size = cd.page_size.unwrap_or(defaults::CALL_DETAILS_PAGE_SIZE);
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        p.push(
            "call_details.page_size",
            format!("must be between 1 and {MAX_PAGE_SIZE} (the API's maximum `limit`)"),
        );
    }
    let api = match cd
        .path
        .as_deref()
        .unwrap_or(defaults::CALL_DETAILS_PATH)
        .parse::<CallDetailsApi>()
    {
        Ok(api) => api,
        Err(e) => {
            p.push("call_details.path", e.to_string());
            CallDetailsApi::default()
        }
    };
    let filter = RequestFilter {
        channels: names(p, "call_details.channels", &cd.channels),
        queues: names(p, "call_details.queues", &cd.queues),
        direction: direction(p, cd.direction.as_deref(), api),
        selected_fields: selected_fields(p, cd.selected_fields.as_deref(), api),
    };
    CallDetailsConfig {
        enabled: keys.enabled,
        schedule: keys.schedule,
        timezone: keys.timezone,
        schedule_timezone: keys.schedule_timezone,
        lookback_days: keys.lookback_days,
        max_days_per_run: keys.max_days_per_run,
        page_size,
        filter,
        api,
    }
}

/// A list of non-empty, trimmed names (channels, queue ids).
fn names(p: &mut Problems, key: &str, values: &Option<Vec<String>>) -> Vec<String> {
    let values = values.clone().unwrap_or_default();
    for (i, v) in values.iter().enumerate() {
        if v.trim().is_empty() || v.trim() != v {
            p.push(
                &format!("{key}[{i}]"),
                format!("{v:?} must be non-empty without surrounding spaces"),
            );
        }
    }
    values
}

/// `direction` in its documented spelling (matched case-insensitively); v2 paths only.
fn direction(p: &mut Problems, value: Option<&str>, api: CallDetailsApi) -> Option<String> {
    let value = value?;
    let Some(canonical) = DIRECTIONS.iter().find(|d| d.eq_ignore_ascii_case(value)) else {
        p.push(
            "call_details.direction",
            format!("{value:?} is not one of Inbound, Outbound or Both"),
        );
        return None;
    };
    if api == CallDetailsApi::V1CallDetails {
        p.push(
            "call_details.direction",
            "is documented for the v2 paths only; remove it or set path = \"v2/interactionDetails\"",
        );
    }
    Some((*canonical).to_string())
}

/// `selected_fields` from the documented set (`campaigninfo` needs a v2 path); `None` sends
/// every documented value of the path.
fn selected_fields(
    p: &mut Problems,
    value: Option<&[String]>,
    api: CallDetailsApi,
) -> Option<Vec<String>> {
    let value = value?;
    let mut out = Vec::with_capacity(value.len());
    for (i, f) in value.iter().enumerate() {
        let key = format!("call_details.selected_fields[{i}]");
        match SELECTABLE_FIELDS.iter().find(|s| s.eq_ignore_ascii_case(f)) {
            None => p.push(
                &key,
                format!("{f:?} is not one of {}", SELECTABLE_FIELDS.join(", ")),
            ),
            Some(&"campaigninfo") if api == CallDetailsApi::V1CallDetails => {
                p.push(&key, "campaigninfo is documented for the v2 paths only")
            }
            Some(s) => out.push((*s).to_string()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: RawCallDetails) -> (CallDetailsConfig, Vec<String>) {
        let mut p = Problems::default();
        let c = validate(&raw, chrono_tz::America::New_York, &mut p);
        (c, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_hourly_in_the_user_status_zone_with_the_v2_path() {
        let (c, problems) = check(RawCallDetails::default());
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!c.enabled);
        assert_eq!(c.schedule.expression, "0 0 * * * *");
        assert_eq!(c.timezone, chrono_tz::America::New_York);
        assert_eq!(c.schedule_timezone, Tz::UTC);
        assert_eq!(
            (c.lookback_days, c.max_days_per_run, c.page_size),
            (1, 7, 100)
        );
        assert_eq!(c.api, CallDetailsApi::V2InteractionDetails);
        assert_eq!(c.filter, RequestFilter::default());
    }

    #[test]
    fn filters_are_normalized_to_their_documented_spelling() {
        let (c, problems) = check(RawCallDetails {
            timezone: Some("Asia/Kolkata".into()),
            path: Some("/v2/calldetails".into()),
            channels: Some(vec!["voice".into()]),
            queues: Some(vec!["qu-1".into()]),
            direction: Some("inbound".into()),
            selected_fields: Some(vec!["Skills".into(), "campaigninfo".into()]),
            page_size: Some(50),
            ..RawCallDetails::default()
        });
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.timezone, chrono_tz::Asia::Kolkata);
        assert_eq!(c.api, CallDetailsApi::V2CallDetails);
        assert_eq!(c.page_size, 50);
        assert_eq!(
            c.filter,
            RequestFilter {
                channels: vec!["voice".into()],
                queues: vec!["qu-1".into()],
                direction: Some("Inbound".into()),
                selected_fields: Some(vec!["skills".into(), "campaigninfo".into()]),
            }
        );
    }

    #[test]
    fn every_bad_key_is_reported_by_name() {
        let (_, problems) = check(RawCallDetails {
            page_size: Some(101),
            path: Some("v3/calls".into()),
            channels: Some(vec![" voice".into()]),
            queues: Some(vec![String::new()]),
            direction: Some("sideways".into()),
            selected_fields: Some(vec!["everything".into()]),
            lookback_days: Some(7),
            max_days_per_run: Some(7),
            timezone: Some("Mars/Olympus".into()),
            ..RawCallDetails::default()
        });
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or(""))
            .collect();
        for key in [
            "call_details.page_size",
            "call_details.path",
            "call_details.channels[0]",
            "call_details.queues[0]",
            "call_details.direction",
            "call_details.selected_fields[0]",
            "call_details.max_days_per_run",
            "call_details.timezone",
        ] {
            assert!(keys.contains(&key), "{key} not reported: {problems:?}");
        }
    }

    #[test]
    fn v1_refuses_what_only_v2_documents() {
        let (_, problems) = check(RawCallDetails {
            path: Some("calldetails".into()),
            direction: Some("Outbound".into()),
            selected_fields: Some(vec!["campaigninfo".into()]),
            ..RawCallDetails::default()
        });
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("call_details.direction"));
        assert!(problems[1].starts_with("call_details.selected_fields[0]"));
    }
}
