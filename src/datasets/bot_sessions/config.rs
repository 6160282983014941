//! The `[bot_sessions]` section: the shared history keys (off by default), the page size
//! (`limit`), the request path (with `{bot_id}`) and the bots whose sessions are exported
//! (`bot_ids`; by default the bots `[intent_realtime]` polls, so capture can be measured for
//! each of them). Pure validation, plus one check against `[intent_realtime]` for the default.

use serde::Deserialize;

use crate::config::history::{self, HistoryDefaults, HistoryKeys, RawHistoryKeys};
use crate::config::parse::is_safe_identifier;
use crate::config::{Config, DatasetSection, Problems, SectionContext};
use crate::datasets::intent_realtime::IntentConfig;

pub const ENABLED: bool = false;
pub const SCHEDULE: &str = "0 7 * * * *";
/// Sessions per page (`limit`). The API documents no maximum; a server that clamps it costs
/// nothing (the next `skip` advances by the sessions received).
pub const PAGE_SIZE: u32 = 100;
/// Largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 10_000;
/// Default path; `{bot_id}` is replaced by each bot.
pub const PATH: &str = "/api/public/bot/{bot_id}/getSessions";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBotSessions {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub schedule_timezone: Option<String>,
    pub lookback_days: Option<u32>,
    pub max_days_per_run: Option<u32>,
    pub page_size: Option<u32>,
    pub path: Option<String>,
    pub bot_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct BotSessionsConfig {
    /// The shared history keys; `timezone`'s local days are the units and the `dt` of a
    /// session's start.
    pub keys: HistoryKeys,
    /// `limit` of every request.
    pub page_size: u32,
    /// Path template containing `{bot_id}`.
    pub path: String,
    /// The bots as configured; empty: the bots of `[intent_realtime]` (see [`Self::bots`]).
    pub bot_ids: Vec<String>,
}

impl BotSessionsConfig {
    /// The bots whose sessions are exported: `bot_ids`, or else `[intent_realtime] bot_ids`.
    pub fn bots(&self, config: &Config) -> Vec<String> {
        if !self.bot_ids.is_empty() {
            return self.bot_ids.clone();
        }
        config
            .section::<IntentConfig>()
            .map(|i| i.bot_ids.clone())
            .unwrap_or_default()
    }

    /// The request path of `bot_id`.
    pub fn path_of(&self, bot_id: &str) -> String {
        self.path.replace("{bot_id}", bot_id)
    }
}

impl DatasetSection for BotSessionsConfig {
    const NAME: &'static str = "bot_sessions";
    const SHARED_DEFAULTS: &'static [(&'static str, &'static str)] = history::DEFAULTS;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "false"),
        ("schedule", "\"0 7 * * * *\""),
        ("page_size", "100"),
        ("path", "\"/api/public/bot/{bot_id}/getSessions\""),
        ("bot_ids", "[]"),
    ];
    type Raw = RawBotSessions;

    fn validate(raw: &RawBotSessions, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
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
                "bot_sessions.page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            );
        }
        let path = raw.path.clone().unwrap_or_else(|| PATH.to_string());
        if !path.starts_with('/') || !path.contains("{bot_id}") {
            p.push(
                "bot_sessions.path",
                "must start with '/' and contain {bot_id}",
            );
        }
        let bot_ids = raw.bot_ids.clone().unwrap_or_default();
        for (i, b) in bot_ids.iter().enumerate() {
            if !is_safe_identifier(b) {
                p.push(
                    &format!("bot_sessions.bot_ids[{i}]"),
                    format!("{b:?} may contain only ASCII letters, digits, '-', '_' and '.'"),
                );
            }
        }
        BotSessionsConfig {
            keys,
            page_size,
            path,
            bot_ids,
        }
    }

    fn check_against(&self, config: &Config, p: &mut Problems) {
        if self.keys.enabled && self.bots(config).is_empty() {
            p.push(
                "bot_sessions.bot_ids",
                "enabled but no bot ids are configured (here or in intent_realtime.bot_ids)",
            );
        }
        // The capture compares the two datasets' `dt` partitions: their days must be the same.
        if let Some(intent) = config.section::<IntentConfig>() {
            if self.keys.enabled && intent.enabled && intent.timezone != self.keys.timezone {
                p.push(
                    "bot_sessions.timezone",
                    format!(
                        "is {} but intent_realtime.timezone is {}: the realtime capture compares \
                         their dt partitions, so both datasets need the same zone",
                        self.keys.timezone, intent.timezone
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(toml_text: &str) -> (BotSessionsConfig, Vec<String>) {
        let raw: RawBotSessions = toml::from_str(toml_text).expect("parses");
        let mut p = Problems::default();
        let cx = SectionContext {
            account_id: "acct-1",
            iid: "",
            timezone: chrono_tz::Asia::Kolkata,
        };
        let cfg = BotSessionsConfig::validate(&raw, &cx, &mut p);
        (cfg, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_a_hundred_per_page_the_documented_path_and_the_account_zone() {
        let (cfg, problems) = validated("");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!cfg.keys.enabled);
        assert_eq!(cfg.page_size, 100);
        assert_eq!(cfg.keys.timezone, chrono_tz::Asia::Kolkata);
        assert_eq!(cfg.path_of("st-1"), "/api/public/bot/st-1/getSessions");
        assert!(cfg.bot_ids.is_empty());
    }

    #[test]
    fn page_size_path_and_bot_ids_are_checked_together() {
        let (_, problems) = validated(
            "page_size = 0\npath = \"getSessions\"\nbot_ids = [\"st/../x\"]\ntimezone = \"Mars/Base\"",
        );
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or(""))
            .collect();
        for key in [
            "bot_sessions.page_size",
            "bot_sessions.path",
            "bot_sessions.bot_ids[0]",
            "bot_sessions.timezone",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems:?}");
        }
    }

    #[test]
    fn bots_default_to_the_intent_bots_and_enabled_without_any_is_a_problem() {
        let base = "[api]\nbase_url = \"simulator\"\naccount_id = \"a\"\niid = \"st-i\"\n\
                    client_id = \"c\"\n[output]\nurl = \"out\"\n";
        let path = std::path::Path::new("/tmp/config.toml");
        let with_intent = format!(
            "{base}[intent_realtime]\nbot_ids = [\"st-x\", \"st-y\"]\n[bot_sessions]\nenabled = true\n"
        );
        let config = crate::datasets::config_from_toml(&with_intent, path, None).expect("valid");
        let section = config.section::<BotSessionsConfig>().expect("section");
        assert_eq!(section.bots(&config), ["st-x", "st-y"]);
        let own = format!(
            "{base}[intent_realtime]\nbot_ids = [\"st-x\"]\n[bot_sessions]\nenabled = true\nbot_ids = [\"st-z\"]\n"
        );
        let config = crate::datasets::config_from_toml(&own, path, None).expect("valid");
        let section = config.section::<BotSessionsConfig>().expect("section");
        assert_eq!(section.bots(&config), ["st-z"]);
        let none = format!("{base}[bot_sessions]\nenabled = true\n");
        let err = crate::datasets::config_from_toml(&none, path, None)
            .expect_err("no bots")
            .to_string();
        assert!(err.contains("bot_sessions.bot_ids"), "{err}");
    }

    #[test]
    fn both_datasets_enabled_in_different_zones_is_a_problem_naming_the_timezone() {
        let base = "[api]\nbase_url = \"simulator\"\naccount_id = \"a\"\niid = \"st-i\"\n\
                    client_id = \"c\"\n[output]\nurl = \"out\"\n";
        let path = std::path::Path::new("/tmp/config.toml");
        let text = |intent_enabled: bool, zone: &str| {
            format!(
                "{base}[intent_realtime]\nenabled = {intent_enabled}\nbot_ids = [\"st-x\"]\n\
                 timezone = \"Europe/Berlin\"\n[bot_sessions]\nenabled = true\ntimezone = \"{zone}\"\n"
            )
        };
        let err = crate::datasets::config_from_toml(&text(true, "Asia/Kolkata"), path, None)
            .expect_err("zones differ")
            .to_string();
        assert!(err.contains("bot_sessions.timezone"), "{err}");
        assert!(err.contains("Europe/Berlin"), "{err}");
        crate::datasets::config_from_toml(&text(true, "Europe/Berlin"), path, None)
            .expect("same zone");
        crate::datasets::config_from_toml(&text(false, "Asia/Kolkata"), path, None)
            .expect("intent_realtime disabled: nothing to compare");
    }
}
