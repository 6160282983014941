//! The `[agent_status_details]` section: the shared history keys (off by default), the page
//! size (`limit`, at most the documented 50), the agent filter and the endpoint path of the
//! tenant's API generation. `timezone` defaults to the account zone, so every history dataset
//! cuts the same local days unless told otherwise. Pure validation.

use serde::Deserialize;

use crate::config::history::{self, HistoryDefaults, HistoryKeys, RawHistoryKeys};
use crate::config::parse::{account_path, emails};
use crate::config::{DatasetSection, Problems, SectionContext};

pub const ENABLED: bool = false;
pub const SCHEDULE: &str = "0 */15 * * * *";
/// Agents per page (`limit`): the documented maximum and default.
pub const PAGE_SIZE: u32 = 50;
/// Default path (the unversioned generation; `v2/` and `v3/` paths are accepted too).
pub const PATH: &str = "/agentassist/api/public/analytics/account/{account_id}/agentstatusdetails";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentStatusDetails {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub lookback_days: Option<u32>,
    pub page_size: Option<u32>,
    pub agents: Option<Vec<String>>,
    pub path: Option<String>,
    pub schedule_timezone: Option<String>,
    pub max_days_per_run: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct AgentStatusDetailsConfig {
    /// The shared history keys; `timezone`'s local days are the units and the `dt` of a span's
    /// start.
    pub keys: HistoryKeys,
    /// `limit` of every request (1..=50).
    pub page_size: u32,
    /// Agent emails sent as `filter.agents`; empty selects every agent.
    pub agents: Vec<String>,
    /// Request path with `{account_id}` already substituted.
    pub path: String,
}

impl DatasetSection for AgentStatusDetailsConfig {
    const NAME: &'static str = "agent_status_details";
    const SHARED_DEFAULTS: &'static [(&'static str, &'static str)] = history::DEFAULTS;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "false"),
        ("schedule", "\"0 */15 * * * *\""),
        ("page_size", "50"),
        ("agents", "[]"),
        (
            "path",
            "\"/agentassist/api/public/analytics/account/{account_id}/agentstatusdetails\"",
        ),
    ];
    type Raw = RawAgentStatusDetails;

    fn validate(raw: &RawAgentStatusDetails, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
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
                enabled: ENABLED,
                schedule: SCHEDULE,
            },
            cx,
            p,
        );
        let page_size = raw.page_size.unwrap_or(PAGE_SIZE);
        if !(1..=PAGE_SIZE).contains(&page_size) {
            p.push(
                "agent_status_details.page_size",
                "must be between 1 and 50 (the API's documented maximum of limit)",
            );
        }
        AgentStatusDetailsConfig {
            keys,
            page_size,
            agents: emails(p, "agent_status_details.agents", &raw.agents),
            path: account_path(
                p,
                "agent_status_details.path",
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

    fn validated(toml_text: &str) -> (AgentStatusDetailsConfig, Vec<String>) {
        let raw: RawAgentStatusDetails = toml::from_str(toml_text).expect("parses");
        let mut p = Problems::default();
        let cx = SectionContext {
            account_id: "acct-1",
            iid: "st-stream",
            timezone: chrono_tz::Asia::Kolkata,
        };
        let cfg = AgentStatusDetailsConfig::validate(&raw, &cx, &mut p);
        (cfg, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_fifty_per_page_the_unversioned_path_and_the_account_zone() {
        let (cfg, problems) = validated("");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!cfg.keys.enabled);
        assert_eq!(cfg.page_size, 50);
        assert_eq!(cfg.keys.timezone, chrono_tz::Asia::Kolkata);
        assert_eq!(cfg.keys.schedule_timezone, chrono_tz::UTC);
        assert_eq!((cfg.keys.lookback_days, cfg.keys.max_days_per_run), (1, 7));
        assert_eq!(cfg.keys.schedule.expression, "0 */15 * * * *");
        assert_eq!(
            cfg.path,
            "/agentassist/api/public/analytics/account/acct-1/agentstatusdetails"
        );
        assert!(cfg.agents.is_empty());
    }

    #[test]
    fn every_key_is_read_and_the_v3_path_gets_the_account() {
        let (cfg, problems) = validated(
            r#"
enabled = true
schedule = "0 5 * * * *"
timezone = "America/New_York"
lookback_days = 2
page_size = 25
agents = ["a@example.com"]
path = "/agentassist/api/public/analytics/account/{account_id}/v3/agentstatusdetails"
schedule_timezone = "Europe/Berlin"
max_days_per_run = 9
"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(cfg.keys.enabled);
        assert_eq!(cfg.keys.timezone, chrono_tz::America::New_York);
        assert_eq!((cfg.keys.lookback_days, cfg.page_size), (2, 25));
        assert_eq!(cfg.agents, ["a@example.com"]);
        assert_eq!(
            cfg.path,
            "/agentassist/api/public/analytics/account/acct-1/v3/agentstatusdetails"
        );
        assert_eq!(cfg.keys.schedule_timezone, chrono_tz::Europe::Berlin);
        assert_eq!(cfg.keys.max_days_per_run, 9);
    }

    #[test]
    fn page_size_path_agents_and_shared_keys_are_checked_together() {
        let (_, problems) = validated(
            r#"
page_size = 51
path = "agentstatusdetails/{bot_id}"
agents = ["not-an-email"]
timezone = "Mars/Olympus"
lookback_days = 7
max_days_per_run = 7
"#,
        );
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or(""))
            .collect();
        for key in [
            "agent_status_details.page_size",
            "agent_status_details.path",
            "agent_status_details.agents[0]",
            "agent_status_details.timezone",
            "agent_status_details.max_days_per_run",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems:?}");
        }
        let path_problems = problems.iter().filter(|p| p.contains(".path")).count();
        assert_eq!(path_problems, 2, "{problems:?}");
        let (_, zero) = validated("page_size = 0");
        assert_eq!(
            zero,
            ["agent_status_details.page_size: must be between 1 and 50 (the API's documented maximum of limit)"]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<RawAgentStatusDetails>("granularity = \"PT30M\"")
            .expect_err("unknown key");
        assert!(err.to_string().contains("granularity"), "{err}");
    }
}
