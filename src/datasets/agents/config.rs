//! The `[agents]` section: `enabled` (off by default), `schedule`, `schedule_timezone`,
//! `timezone` (whose local date names the snapshot day) and `path`, validated by
//! [`crate::datasets::list::validate_section`]. Pure validation.

use serde::Deserialize;

use crate::config::{DatasetSection, Problems, SectionContext};
use crate::datasets::list::{validate_section, ListConfig, RawListSection};

/// Once a day, at 06:00 of `schedule_timezone`.
pub const SCHEDULE: &str = "0 0 6 * * *";
pub const PATH: &str = "/agentassist/api/public/analytics/account/{account_id}/agents";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgents {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub schedule_timezone: Option<String>,
    pub timezone: Option<String>,
    pub path: Option<String>,
}

/// The validated `[agents]` section.
#[derive(Debug, Clone)]
pub struct AgentsConfig(pub ListConfig);

impl DatasetSection for AgentsConfig {
    const NAME: &'static str = "agents";
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "false"),
        ("schedule", "\"0 0 6 * * *\""),
        ("schedule_timezone", "\"UTC\""),
        (
            "path",
            "\"/agentassist/api/public/analytics/account/{account_id}/agents\"",
        ),
    ];
    type Raw = RawAgents;

    fn validate(raw: &RawAgents, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
        AgentsConfig(validate_section(
            RawListSection {
                section: Self::NAME,
                enabled: raw.enabled,
                schedule: &raw.schedule,
                timezone: raw.timezone.as_deref(),
                schedule_timezone: raw.schedule_timezone.as_deref(),
                path: raw.path.as_deref(),
            },
            SCHEDULE,
            PATH,
            cx,
            p,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(text: &str) -> (AgentsConfig, Vec<String>) {
        let raw: RawAgents = toml::from_str(text).expect("parses");
        let mut p = Problems::default();
        let cx = SectionContext {
            account_id: "acct-1",
            iid: "",
            timezone: chrono_tz::Europe::Berlin,
        };
        let cfg = AgentsConfig::validate(&raw, &cx, &mut p);
        (cfg, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_daily_the_account_zone_and_the_documented_path() {
        let (AgentsConfig(cfg), problems) = validated("");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!cfg.keys.enabled);
        assert_eq!(cfg.keys.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(cfg.keys.schedule.expression, "0 0 6 * * *");
        assert_eq!(
            cfg.path,
            "/agentassist/api/public/analytics/account/acct-1/agents"
        );
    }

    #[test]
    fn bad_keys_are_named_and_history_keys_are_refused() {
        let (_, problems) =
            validated("timezone = \"Mars/Olympus\"\nschedule = \"soon\"\npath = \"agents\"");
        for key in ["agents.timezone", "agents.schedule", "agents.path"] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key} missing from {problems:?}"
            );
        }
        let err = toml::from_str::<RawAgents>("lookback_days = 1").expect_err("unknown key");
        assert!(err.to_string().contains("lookback_days"), "{err}");
    }
}
