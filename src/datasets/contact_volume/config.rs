//! The `[contact_volume]` section: the shared history keys (off by default), the page size
//! (`limit`), the `orgId` every request must carry (required when the dataset is enabled), the
//! units the tenant's durations are in (records and skills separately, since the documentation
//! contradicts itself, see the dataset's page), whether the skill breakdown is asked for, and
//! the endpoint path. Pure validation.

use serde::Deserialize;

use crate::config::history::{self, HistoryDefaults, HistoryKeys, RawHistoryKeys};
use crate::config::parse::account_path;
use crate::config::{DatasetSection, Problems, SectionContext};

pub const ENABLED: bool = false;
pub const SCHEDULE: &str = "0 5,20,35,50 * * * *";
/// Records per page (`limit`). Undocumented maximum; a day of 15-minute intervals of a few
/// queues fits in a few pages, and a server that clamps costs nothing (`skip` advances by the
/// records received).
pub const PAGE_SIZE: u32 = 500;
/// The largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 5000;
pub const PATH: &str = "/agentassist/api/public/analytics/account/{account_id}/callvolume";

/// The unit a duration of the API is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    Seconds,
    Milliseconds,
}

impl DurationUnit {
    /// The config and Parquet metadata spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DurationUnit::Seconds => "seconds",
            DurationUnit::Milliseconds => "milliseconds",
        }
    }

    /// Milliseconds in one unit.
    pub fn millis(self) -> i64 {
        match self {
            DurationUnit::Seconds => 1000,
            DurationUnit::Milliseconds => 1,
        }
    }

    fn parse(p: &mut Problems, key: &str, value: Option<&str>, default: Self) -> Self {
        match value {
            None => default,
            Some("seconds") => DurationUnit::Seconds,
            Some("milliseconds") => DurationUnit::Milliseconds,
            Some(other) => {
                p.push(
                    key,
                    format!("must be \"seconds\" or \"milliseconds\", not {other:?}"),
                );
                default
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContactVolume {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub schedule_timezone: Option<String>,
    pub lookback_days: Option<u32>,
    pub max_days_per_run: Option<u32>,
    pub page_size: Option<u32>,
    pub org_id: Option<String>,
    pub duration_unit: Option<String>,
    pub skill_duration_unit: Option<String>,
    pub include_skill_breakdown: Option<bool>,
    pub path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ContactVolumeConfig {
    /// The shared history keys; `timezone`'s local days are the units and the `dt` of an
    /// interval's start.
    pub keys: HistoryKeys,
    /// `limit` of every request.
    pub page_size: u32,
    /// `orgId` of every request (empty only while the dataset is disabled).
    pub org_id: String,
    /// The unit of the queue-level durations.
    pub duration_unit: DurationUnit,
    /// The unit of the `skillBreakdown` durations.
    pub skill_duration_unit: DurationUnit,
    /// Sent as `includeSkillBreakdown`; the `contact_volume_skills` table stays empty without.
    pub include_skill_breakdown: bool,
    /// Request path with `{account_id}` substituted.
    pub path: String,
}

impl DatasetSection for ContactVolumeConfig {
    const NAME: &'static str = "contact_volume";
    const SHARED_DEFAULTS: &'static [(&'static str, &'static str)] = history::DEFAULTS;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "false"),
        ("schedule", "\"0 5,20,35,50 * * * *\""),
        ("page_size", "500"),
        ("duration_unit", "\"seconds\""),
        ("skill_duration_unit", "\"milliseconds\""),
        ("include_skill_breakdown", "true"),
        (
            "path",
            "\"/agentassist/api/public/analytics/account/{account_id}/callvolume\"",
        ),
    ];
    type Raw = RawContactVolume;

    fn validate(raw: &RawContactVolume, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
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
                "contact_volume.page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            );
        }
        let org_id = raw.org_id.as_deref().unwrap_or("").trim().to_string();
        if keys.enabled && org_id.is_empty() {
            p.push(
                "contact_volume.org_id",
                "is required when the dataset is enabled (the API's orgId, \"o-...\")",
            );
        }
        if org_id.contains(char::is_whitespace) {
            p.push(
                "contact_volume.org_id",
                "must not contain whitespace (the API's orgId, \"o-...\")",
            );
        }
        ContactVolumeConfig {
            keys,
            page_size,
            org_id,
            duration_unit: DurationUnit::parse(
                p,
                "contact_volume.duration_unit",
                raw.duration_unit.as_deref(),
                DurationUnit::Seconds,
            ),
            skill_duration_unit: DurationUnit::parse(
                p,
                "contact_volume.skill_duration_unit",
                raw.skill_duration_unit.as_deref(),
                DurationUnit::Milliseconds,
            ),
            include_skill_breakdown: raw.include_skill_breakdown.unwrap_or(true),
            path: account_path(
                p,
                "contact_volume.path",
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

    fn validated(toml_text: &str) -> (ContactVolumeConfig, Vec<String>) {
        let raw: RawContactVolume = toml::from_str(toml_text).expect("parses");
        let mut p = Problems::default();
        let cx = SectionContext {
            account_id: "acct-1",
            iid: "",
            timezone: chrono_tz::America::New_York,
        };
        let cfg = ContactVolumeConfig::validate(&raw, &cx, &mut p);
        (cfg, p.0.into_iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_are_off_seconds_for_records_milliseconds_for_skills_and_the_breakdown_on() {
        let (cfg, problems) = validated("");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!cfg.keys.enabled);
        assert_eq!(cfg.duration_unit, DurationUnit::Seconds);
        assert_eq!(cfg.skill_duration_unit, DurationUnit::Milliseconds);
        assert!(cfg.include_skill_breakdown);
        assert_eq!(cfg.page_size, 500);
        assert_eq!(
            cfg.path,
            "/agentassist/api/public/analytics/account/acct-1/callvolume"
        );
    }

    #[test]
    fn an_enabled_section_needs_its_org_id() {
        let (_, problems) = validated("enabled = true");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("contact_volume.org_id:"),
            "{problems:?}"
        );
        let (cfg, problems) = validated("enabled = true\norg_id = \"o-1\"");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.org_id, "o-1");
        let (_, problems) = validated("enabled = true\norg_id = \"bad org\"");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("contact_volume.org_id:") && problems[0].contains("whitespace"),
            "{problems:?}"
        );
    }

    #[test]
    fn units_and_page_size_are_checked_together() {
        let (_, problems) =
            validated("duration_unit = \"minutes\"\nskill_duration_unit = \"ms\"\npage_size = 0");
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            [
                "contact_volume.page_size",
                "contact_volume.duration_unit",
                "contact_volume.skill_duration_unit"
            ]
        );
        let (cfg, problems) = validated(
            "duration_unit = \"milliseconds\"\nskill_duration_unit = \"seconds\"\ninclude_skill_breakdown = false",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.duration_unit, DurationUnit::Milliseconds);
        assert_eq!(cfg.skill_duration_unit, DurationUnit::Seconds);
        assert!(!cfg.include_skill_breakdown);
    }
}
