//! The `[call_details]` section: the shared history keys (off by default, hourly; the zone of
//! the local days defaults to the account zone), plus the page size, the body filters
//! (`channels`, `queues`, `direction`, `selected_fields`) and which documented endpoint is
//! called (`path`). Pure validation.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::config::history::{self, HistoryDefaults, HistoryKeys, RawHistoryKeys};
use crate::config::{DatasetSection, Problems, SectionContext};

pub const ENABLED: bool = false;
/// Hourly: every run re-fetches whole days (the API has no "changed since"), so its cost grows
/// with the sessions of a day, not with the time since the last run.
pub const SCHEDULE: &str = "0 0 * * * *";
/// The API's maximum `limit`: fewest requests per session.
pub const PAGE_SIZE: u32 = 100;
/// The endpoint called by default ([`CallDetailsApi::V2InteractionDetails`]).
pub const PATH: &str = "v2/interactionDetails";

/// The documented maximum of `limit`.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Which documented endpoint to call. They share the body, paging and record shape; v1 records
/// carry `Direction` inside `customerinfo` and lack `smartStatus`, `reason`, `errorDetails`,
/// `isVoicemail` and `automationBotIDs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallDetailsApi {
    /// `…/v2/interactionDetails` (the default).
    #[default]
    V2InteractionDetails,
    /// `…/v2/calldetails`.
    V2CallDetails,
    /// `…/calldetails` (v1).
    V1CallDetails,
}

impl CallDetailsApi {
    pub const ALL: [CallDetailsApi; 3] = [
        CallDetailsApi::V2InteractionDetails,
        CallDetailsApi::V2CallDetails,
        CallDetailsApi::V1CallDetails,
    ];

    /// The config spelling, which is also the path tail.
    pub fn as_str(self) -> &'static str {
        match self {
            CallDetailsApi::V2InteractionDetails => "v2/interactionDetails",
            CallDetailsApi::V2CallDetails => "v2/calldetails",
            CallDetailsApi::V1CallDetails => "calldetails",
        }
    }

    /// The request path for `account_id` (no query string).
    pub fn path(self, account_id: &str) -> String {
        format!(
            "/agentassist/api/public/analytics/account/{account_id}/{}",
            self.as_str()
        )
    }

    /// `selectedFields` sent when the config names none: every documented value of this
    /// endpoint (`campaigninfo` is documented for v2 only; `snoozeinfo` is not requested because
    /// no column holds it).
    pub fn default_selected_fields(self) -> &'static [&'static str] {
        match self {
            CallDetailsApi::V1CallDetails => &[
                "skills",
                "customerinfo",
                "userleveltags",
                "sessionleveltags",
            ],
            _ => &[
                "skills",
                "customerinfo",
                "userleveltags",
                "sessionleveltags",
                "campaigninfo",
            ],
        }
    }
}

impl fmt::Display for CallDetailsApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown call_details path {0:?} (expected v2/interactionDetails, v2/calldetails or calldetails)")]
pub struct UnknownCallDetailsApi(pub String);

impl FromStr for CallDetailsApi {
    type Err = UnknownCallDetailsApi;
    /// Case-insensitive; a leading `/` is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('/');
        CallDetailsApi::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownCallDetailsApi(s.to_string()))
    }
}

/// The optional body filters, from the `[call_details]` config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// `channels`, e.g. `voice`, `rtm`; empty selects every channel.
    pub channels: Vec<String>,
    /// `queues` (queue ids); empty selects every queue.
    pub queues: Vec<String>,
    /// `direction` (`Inbound`, `Outbound`, `Both`); sent only when set (documented for v2).
    pub direction: Option<String>,
    /// `selectedFields`; `None` sends [`CallDetailsApi::default_selected_fields`].
    pub selected_fields: Option<Vec<String>>,
}

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
    /// The shared history keys; `timezone`'s local days are the units, the request windows and
    /// the `dt` partitions.
    pub keys: HistoryKeys,
    /// `limit`: sessions per page (1..=100).
    pub page_size: u32,
    /// The body's `channels`, `queues`, `direction` and `selectedFields`.
    pub filter: RequestFilter,
    /// The endpoint called.
    pub api: CallDetailsApi,
}

impl DatasetSection for CallDetailsConfig {
    const NAME: &'static str = "call_details";
    const SHARED_DEFAULTS: &'static [(&'static str, &'static str)] = history::DEFAULTS;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "false"),
        ("schedule", "\"0 0 * * * *\""),
        ("page_size", "100"),
        ("channels", "[]"),
        ("queues", "[]"),
        ("path", "\"v2/interactionDetails\""),
    ];
    type Raw = RawCallDetails;

    fn validate(cd: &RawCallDetails, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
        let keys = history::validate(
            RawHistoryKeys {
                section: Self::NAME,
                enabled: cd.enabled,
                schedule: &cd.schedule,
                timezone: cd.timezone.as_deref(),
                schedule_timezone: cd.schedule_timezone.as_deref(),
                lookback_days: cd.lookback_days,
                max_days_per_run: cd.max_days_per_run,
            },
            HistoryDefaults {
                enabled: ENABLED,
                schedule: SCHEDULE,
            },
            cx,
            p,
        );
        let page_size = cd.page_size.unwrap_or(PAGE_SIZE);
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            p.push(
                "call_details.page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE} (the API's maximum `limit`)"),
            );
        }
        let api = match cd.path.as_deref().unwrap_or(PATH).parse::<CallDetailsApi>() {
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
            keys,
            page_size,
            filter,
            api,
        }
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
        let cx = SectionContext {
            account_id: "acct",
            iid: "st-stream",
            timezone: chrono_tz::America::New_York,
        };
        let c = CallDetailsConfig::validate(&raw, &cx, &mut p);
        (c, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_hourly_in_the_account_zone_with_the_v2_path() {
        let (c, problems) = check(RawCallDetails::default());
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!c.keys.enabled);
        assert_eq!(c.keys.schedule.expression, "0 0 * * * *");
        assert_eq!(c.keys.timezone, chrono_tz::America::New_York);
        assert_eq!(c.keys.schedule_timezone, chrono_tz::Tz::UTC);
        assert_eq!(
            (c.keys.lookback_days, c.keys.max_days_per_run, c.page_size),
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
        assert_eq!(c.keys.timezone, chrono_tz::Asia::Kolkata);
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
