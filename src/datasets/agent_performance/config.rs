//! The `[agent_performance]` section: the shared history keys (off by default), the page size
//! (`limit`: agents per page) and the endpoint path. Pure validation.

use serde::Deserialize;

use crate::config::history::{self, HistoryDefaults, HistoryKeys, RawHistoryKeys};
use crate::config::parse::account_path;
use crate::config::{DatasetSection, Problems, SectionContext};

pub const ENABLED: bool = false;
pub const SCHEDULE: &str = "0 5,20,35,50 * * * *";
/// Agents per page (`limit`); no default or maximum is documented.
pub const PAGE_SIZE: u32 = 100;
/// The largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 1000;
pub const PATH: &str = "/agentassist/api/public/analytics/account/{account_id}/agentperformance";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentPerformance {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub schedule_timezone: Option<String>,
    pub lookback_days: Option<u32>,
    pub max_days_per_run: Option<u32>,
    pub page_size: Option<u32>,
    pub path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AgentPerformanceConfig {
    /// The shared history keys; `timezone`'s local days are the units and the `dt` of an
    /// interval's start.
    pub keys: HistoryKeys,
    /// `limit` of every request: agents per page.
    pub page_size: u32,
    /// Request path with `{account_id}` substituted.
    pub path: String,
}

impl DatasetSection for AgentPerformanceConfig {
    const NAME: &'static str = "agent_performance";
    const SHARED_DEFAULTS: &'static [(&'static str, &'static str)] = history::DEFAULTS;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "false"),
        ("schedule", "\"0 5,20,35,50 * * * *\""),
        ("page_size", "100"),
        (
            "path",
            "\"/agentassist/api/public/analytics/account/{account_id}/agentperformance\"",
        ),
    ];
    type Raw = RawAgentPerformance;

    fn validate(raw: &RawAgentPerformance, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
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
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            p.push(
                "agent_performance.page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            );
        }
        AgentPerformanceConfig {
            keys,
            page_size,
            path: account_path(
                p,
                "agent_performance.path",
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

    fn validated(toml_text: &str) -> (AgentPerformanceConfig, Vec<String>) {
        let raw: RawAgentPerformance = toml::from_str(toml_text).expect("parses");
        let mut p = Problems::default();
        let cx = SectionContext {
            account_id: "acct-1",
            iid: "",
            timezone: chrono_tz::Europe::Berlin,
        };
        let cfg = AgentPerformanceConfig::validate(&raw, &cx, &mut p);
        (cfg, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_a_hundred_agents_per_page_and_the_account_zone() {
        let (cfg, problems) = validated("");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!cfg.keys.enabled);
        assert_eq!(cfg.page_size, 100);
        assert_eq!(cfg.keys.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(
            cfg.path,
            "/agentassist/api/public/analytics/account/acct-1/agentperformance"
        );
    }

    #[test]
    fn page_size_and_path_are_checked() {
        let (_, problems) = validated("page_size = 1001\npath = \"agentperformance\"");
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or(""))
            .collect();
        assert!(
            keys.contains(&"agent_performance.page_size"),
            "{problems:?}"
        );
        assert!(keys.contains(&"agent_performance.path"), "{problems:?}");
    }
}
