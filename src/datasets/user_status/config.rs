//! The `[user_status]` section: the shared history keys (on by default, every 15 minutes), the
//! bucket granularity, the page size, the agent filter and the request path. Its `timezone`
//! also stands for the account zone when `[api] timezone` is unset (configs written before that
//! key existed set the zone here), and `[api] user_status_path` is an alias of its `path`.
//! Pure validation.

use serde::Deserialize;

use crate::config::history::{self, HistoryDefaults, HistoryKeys, RawHistoryKeys};
use crate::config::parse::{account_path, emails};
use crate::config::{ApiAlias, DatasetSection, Problems, SectionContext};
use crate::model::Granularity;

pub const ENABLED: bool = true;
pub const SCHEDULE: &str = "0 */15 * * * *";
pub const GRANULARITY: &str = "PT30M";
/// Default agents per page (`limit`). The API documents no maximum; a server that clamps it
/// costs nothing (offsets advance by the records returned), and up to this many agents a local
/// day is one request and one Parquet row group.
pub const PAGE_SIZE: u32 = 500;
/// The largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Default path (the current generation, without the `1.1` segment some docs show; the
/// simulator serves both).
pub const PATH: &str = "/agentassist/api/public/analytics/account/{account_id}/userstatus";

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
    pub path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UserStatusConfig {
    pub keys: HistoryKeys,
    pub granularity: Granularity,
    pub page_size: u32,
    /// Agent emails sent as `filter.agents`; empty selects every agent.
    pub agents: Vec<String>,
    /// Request path with `{account_id}` substituted.
    pub path: String,
}

impl DatasetSection for UserStatusConfig {
    const NAME: &'static str = "user_status";
    const SHARED_DEFAULTS: &'static [(&'static str, &'static str)] = history::DEFAULTS;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "true"),
        ("schedule", "\"0 */15 * * * *\""),
        ("granularity", "\"PT30M\""),
        ("page_size", "500"),
        ("agents", "[]"),
        (
            "path",
            "\"/agentassist/api/public/analytics/account/{account_id}/userstatus\"",
        ),
    ];
    const API_ALIASES: &'static [ApiAlias] = &[ApiAlias {
        api_key: "user_status_path",
        key: "path",
    }];
    const TIMEZONE_IS_ACCOUNT_ZONE: bool = true;
    type Raw = RawUserStatus;

    fn validate(us: &RawUserStatus, cx: &SectionContext<'_>, p: &mut Problems) -> Self {
        let keys = history::validate(
            RawHistoryKeys {
                section: Self::NAME,
                enabled: us.enabled,
                schedule: &us.schedule,
                timezone: us.timezone.as_deref(),
                schedule_timezone: us.schedule_timezone.as_deref(),
                lookback_days: us.lookback_days,
                max_days_per_run: us.max_days_per_run,
            },
            HistoryDefaults {
                enabled: ENABLED,
                schedule: SCHEDULE,
            },
            cx,
            p,
        );
        let granularity = match us
            .granularity
            .as_deref()
            .unwrap_or(GRANULARITY)
            .parse::<Granularity>()
        {
            Ok(g) => g,
            Err(e) => {
                p.push("user_status.granularity", e.to_string());
                Granularity::PT30M
            }
        };
        let page_size = us.page_size.unwrap_or(PAGE_SIZE);
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            p.push(
                "user_status.page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            );
        }
        UserStatusConfig {
            keys,
            granularity,
            page_size,
            agents: emails(p, "user_status.agents", &us.agents),
            path: account_path(
                p,
                "user_status.path",
                us.path.as_deref(),
                PATH,
                cx.account_id,
            ),
        }
    }
}
