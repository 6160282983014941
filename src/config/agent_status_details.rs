//! The `[agent_status_details]` section: the shared history keys (off by default), the page
//! size (`limit`, at most the documented 50), the agent filter and the endpoint path of the
//! tenant's API generation. `timezone` defaults to `[user_status] timezone`, so both history
//! datasets cut the same local days. Pure validation.

use chrono_tz::Tz;
use serde::Deserialize;

use super::defaults;
use super::history::{self, RawHistoryKeys};
use super::parse::{Problems, Schedule};

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
    pub enabled: bool,
    pub schedule: Schedule,
    /// Zone whose local days are the units and the `dt` of a span's start.
    pub timezone: Tz,
    pub lookback_days: u32,
    /// `limit` of every request (1..=50).
    pub page_size: u32,
    /// Agent emails sent as `filter.agents`; empty selects every agent.
    pub agents: Vec<String>,
    /// Request path with `{account_id}` already substituted.
    pub path: String,
    /// Zone the cron `schedule` is evaluated in (UTC by default), DST-correct.
    pub schedule_timezone: Tz,
    /// Most local days one scheduled run exports.
    pub max_days_per_run: u32,
}

/// Validates `[agent_status_details]`. `account_id` is substituted into `path`;
/// `default_timezone` is `[user_status] timezone`.
pub fn validate(
    raw: &RawAgentStatusDetails,
    account_id: &str,
    default_timezone: Tz,
    p: &mut Problems,
) -> AgentStatusDetailsConfig {
    const SECTION: &str = "agent_status_details";
    let keys = history::validate(
        RawHistoryKeys {
            section: SECTION,
            enabled: raw.enabled,
            schedule: &raw.schedule,
            timezone: Some(raw.timezone.as_deref().unwrap_or(default_timezone.name())),
            schedule_timezone: raw.schedule_timezone.as_deref(),
            lookback_days: raw.lookback_days,
            max_days_per_run: raw.max_days_per_run,
        },
        defaults::AGENT_STATUS_DETAILS_ENABLED,
        defaults::AGENT_STATUS_DETAILS_SCHEDULE,
        p,
    );
    let page_size = raw
        .page_size
        .unwrap_or(defaults::AGENT_STATUS_DETAILS_PAGE_SIZE);
    if !(1..=defaults::AGENT_STATUS_DETAILS_PAGE_SIZE).contains(&page_size) {
        p.push(
            "agent_status_details.page_size",
            "must be between 1 and 50 (the API's documented maximum of limit)",
        );
    }
    let agents = raw.agents.clone().unwrap_or_default();
    for (i, a) in agents.iter().enumerate() {
        if !a.contains('@') || a.trim() != a {
            p.push(
                &format!("agent_status_details.agents[{i}]"),
                format!("{a:?} is not an email address"),
            );
        }
    }
    AgentStatusDetailsConfig {
        enabled: keys.enabled,
        schedule: keys.schedule,
        timezone: keys.timezone,
        lookback_days: keys.lookback_days,
        page_size,
        agents,
        path: path(raw.path.as_deref(), account_id, p),
        schedule_timezone: keys.schedule_timezone,
        max_days_per_run: keys.max_days_per_run,
    }
}

/// The path with `{account_id}` substituted, validated as `api.user_status_path` is.
fn path(raw: Option<&str>, account_id: &str, p: &mut Problems) -> String {
    const KEY: &str = "agent_status_details.path";
    let path = raw.unwrap_or(defaults::AGENT_STATUS_DETAILS_PATH);
    if !path.starts_with('/') {
        p.push(KEY, "must start with '/'");
    }
    let path = path.replace("{account_id}", account_id);
    if path.contains('{') {
        p.push(KEY, "only the {account_id} placeholder is supported");
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(toml_text: &str) -> (AgentStatusDetailsConfig, Vec<String>) {
        let raw: RawAgentStatusDetails = toml::from_str(toml_text).expect("parses");
        let mut p = Problems::default();
        let cfg = validate(&raw, "acct-1", chrono_tz::Asia::Kolkata, &mut p);
        (cfg, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_fifty_per_page_the_unversioned_path_and_the_user_status_zone() {
        let (cfg, problems) = validated("");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!cfg.enabled);
        assert_eq!(cfg.page_size, 50);
        assert_eq!(cfg.timezone, chrono_tz::Asia::Kolkata);
        assert_eq!(cfg.schedule_timezone, chrono_tz::UTC);
        assert_eq!((cfg.lookback_days, cfg.max_days_per_run), (1, 7));
        assert_eq!(cfg.schedule.expression, "0 */15 * * * *");
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
        assert!(cfg.enabled);
        assert_eq!(cfg.timezone, chrono_tz::America::New_York);
        assert_eq!((cfg.lookback_days, cfg.page_size), (2, 25));
        assert_eq!(cfg.agents, ["a@example.com"]);
        assert_eq!(
            cfg.path,
            "/agentassist/api/public/analytics/account/acct-1/v3/agentstatusdetails"
        );
        assert_eq!(cfg.schedule_timezone, chrono_tz::Europe::Berlin);
        assert_eq!(cfg.max_days_per_run, 9);
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
