//! The `[agent_activity]` section: the shared history keys (off by default), the zone the
//! API's zone-less `EventTime` is read in (`event_time_zone`, UTC unless told: the API does not
//! say), the request window length (`window_minutes`) and the path. No `page_size`: the API
//! documents no paging. Pure validation.

use chrono_tz::Tz;
use serde::Deserialize;

use crate::config::history::{self, HistoryDefaults, HistoryKeys, RawHistoryKeys};
use crate::config::parse::{account_path, parse_tz};
use crate::config::{DatasetSection, Problems, SectionContext};

pub const SCHEDULE: &str = "0 */15 * * * *";
pub const PATH: &str = "/agentassist/api/public/analytics/account/{account_id}/agentactivity";
pub const WINDOW_MINUTES: u32 = 60;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentActivity {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub schedule_timezone: Option<String>,
    pub lookback_days: Option<u32>,
    pub max_days_per_run: Option<u32>,
    pub event_time_zone: Option<String>,
    pub window_minutes: Option<u32>,
    pub path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AgentActivityConfig {
    /// The shared history keys; `timezone`'s local days are the units and the `dt` of an
    /// event's time.
    pub keys: HistoryKeys,
    /// The zone `EventTime` (no zone on the wire) is local to.
    pub event_time_zone: Tz,
    /// Length of one request window (1..=1440 minutes).
    pub window_minutes: u32,
    /// Request path with `{account_id}` substituted.
    pub path: String,
}

impl DatasetSection for AgentActivityConfig {
    const NAME: &'static str = "agent_activity";
    const SHARED_DEFAULTS: &'static [(&'static str, &'static str)] = history::DEFAULTS;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "false"),
        ("schedule", "\"0 */15 * * * *\""),
        ("event_time_zone", "\"UTC\""),
        ("window_minutes", "60"),
        (
            "path",
            "\"/agentassist/api/public/analytics/account/{account_id}/agentactivity\"",
        ),
    ];
    type Raw = RawAgentActivity;

    fn validate(raw: &RawAgentActivity, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
        let keys = history::validate(
            RawHistoryKeys {
                section: Self::NAME,
                enabled: raw.enabled,
                schedule: &raw.schedule,
                timezone: raw.timezone.as_deref(),
                schedule_timezone: raw.schedule_timezone.as_deref(),
                lookback_days: raw.lookback_days,
                max_days_per_run: raw.max_days_per_run,
            },
            HistoryDefaults {
                enabled: false,
                schedule: SCHEDULE,
            },
            cx,
            p,
        );
        let window_minutes = raw.window_minutes.unwrap_or(WINDOW_MINUTES);
        if !(1..=1440).contains(&window_minutes) {
            p.push(
                "agent_activity.window_minutes",
                "must be between 1 and 1440 (one day)",
            );
        }
        AgentActivityConfig {
            keys,
            event_time_zone: parse_tz(
                p,
                "agent_activity.event_time_zone",
                Some(raw.event_time_zone.as_deref().unwrap_or("UTC")),
            ),
            window_minutes,
            path: account_path(
                p,
                "agent_activity.path",
                raw.path.as_deref(),
                PATH,
                cx.account_id,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(text: &str) -> (AgentActivityConfig, Vec<String>) {
        let raw: RawAgentActivity = toml::from_str(text).expect("parses");
        let mut p = Problems::default();
        let cx = SectionContext {
            account_id: "acct-1",
            iid: "",
            timezone: chrono_tz::America::New_York,
        };
        let cfg = AgentActivityConfig::validate(&raw, &cx, &mut p);
        (cfg, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_utc_event_times_hour_windows_and_the_documented_path() {
        let (cfg, problems) = validated("");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!cfg.keys.enabled);
        assert_eq!(cfg.event_time_zone, chrono_tz::UTC);
        assert_eq!(cfg.keys.timezone, chrono_tz::America::New_York);
        assert_eq!(cfg.window_minutes, 60);
        assert_eq!(
            cfg.path,
            "/agentassist/api/public/analytics/account/acct-1/agentactivity"
        );
    }

    #[test]
    fn bad_values_are_named_and_page_size_is_refused() {
        let (_, problems) = validated("window_minutes = 0\nevent_time_zone = \"Nowhere\"");
        for key in [
            "agent_activity.window_minutes",
            "agent_activity.event_time_zone",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key} missing from {problems:?}"
            );
        }
        let err = toml::from_str::<RawAgentActivity>("page_size = 10").expect_err("unknown key");
        assert!(err.to_string().contains("page_size"), "{err}");
    }
}
