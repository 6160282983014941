//! Every configuration default, defined once. The section validators use these constants, and
//! [`TABLE`] states each default as the README's configuration table and the shipped
//! `config.toml` show it; a test checks that both agree with this table, so the documentation
//! cannot drift from the code.

/// Default UserStatus path: without `/1.1/` and with one slash before `userstatus`. The API
/// documentation also shows `…/analytics/1.1/account/…` and `…//userstatus`; a tenant may serve
/// only one of them (README, configuration reference: `api.user_status_path`).
pub const USER_STATUS_PATH: &str =
    "/agentassist/api/public/analytics/account/{account_id}/userstatus";
/// Default IntentRealtimeData path.
pub const INTENT_PATH: &str = "/api/public/bot/{bot_id}/intentrealtimedata";
pub const REQUESTS_PER_MINUTE: u32 = 60;
pub const TIMEOUT_SECONDS: u64 = 60;
pub const MAX_RETRIES: u32 = 6;
pub const RETRY_BASE_MS: u64 = 500;
pub const RETRY_MAX_BACKOFF_SECONDS: u64 = 60;
pub const RETRY_AFTER_CAP_SECONDS: u64 = 120;
pub const THROTTLE_BACKOFF_SECONDS: f64 = 10.0;
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
pub const ALLOW_INSECURE_HTTP: bool = false;
pub const ENFORCE_JTI: bool = false;
pub const TOKEN_TTL_SECONDS: u64 = 300;
pub const JWE_ALG: &str = "RSA-OAEP";
pub const JWE_ENC: &str = "A128CBC-HS256";
pub const USER_STATUS_ENABLED: bool = true;
pub const USER_STATUS_SCHEDULE: &str = "0 */15 * * * *";
pub const GRANULARITY: &str = "PT30M";
pub const TIMEZONE: &str = "UTC";
pub const LOOKBACK_DAYS: u32 = 1;
/// Default agents per UserStatus page (`limit`). The API documents no maximum; a server that
/// clamps it costs nothing (offsets advance by the records returned), and up to this many
/// agents a local day is one request and one Parquet row group.
pub const USER_STATUS_PAGE_SIZE: u32 = 500;
pub const SCHEDULE_TIMEZONE: &str = "UTC";
pub const MAX_DAYS_PER_RUN: u32 = 7;
pub const INTENT_SCHEDULE: &str = "*/30 * * * * *";
pub const CALL_DETAILS_ENABLED: bool = false;
/// Hourly: every run re-fetches whole days (the API has no "changed since"), so its cost grows
/// with the sessions of a day, not with the time since the last run.
pub const CALL_DETAILS_SCHEDULE: &str = "0 0 * * * *";
/// The API's maximum `limit`: fewest requests per session.
pub const CALL_DETAILS_PAGE_SIZE: u32 = 100;
/// The Call Details endpoint called (see `datasets::call_details::CallDetailsApi`).
pub const CALL_DETAILS_PATH: &str = "v2/interactionDetails";
pub const GAP_POLL_INTERVAL_SECONDS: u64 = 10;
pub const AGENT_STATUS_DETAILS_ENABLED: bool = false;
pub const AGENT_STATUS_DETAILS_SCHEDULE: &str = "0 */15 * * * *";
/// Agents per Agent Status Details page (`limit`): the documented maximum and default.
pub const AGENT_STATUS_DETAILS_PAGE_SIZE: u32 = 50;
/// Default Agent Status Details path: the unversioned generation (the others end in
/// `/v2/agentstatusdetails` and `/v3/agentstatusdetails`; README, "Agent status spans").
pub const AGENT_STATUS_DETAILS_PATH: &str =
    "/agentassist/api/public/analytics/account/{account_id}/agentstatusdetails";
pub const LISTEN: &str = "127.0.0.1:9464";
pub const SHUTDOWN_TIMEOUT_SECONDS: u64 = 10;
pub const UNHEALTHY_AFTER_INTERVALS: u32 = 3;
/// S3 client retry policy and timeouts (`[output]`); the reasoning is on
/// [`super::StoreTuning`].
pub const OUTPUT_MAX_RETRIES: u32 = 8;
pub const OUTPUT_RETRY_BASE_MS: u64 = 100;
pub const OUTPUT_RETRY_MAX_BACKOFF_SECONDS: u64 = 5;
pub const OUTPUT_RETRY_TIMEOUT_SECONDS: u64 = 60;
pub const OUTPUT_CONNECT_TIMEOUT_SECONDS: u64 = 5;
pub const OUTPUT_TIMEOUT_SECONDS: u64 = 30;
/// Growth factor of the S3 client's backoff: object_store's own, not a key.
pub const OUTPUT_BACKOFF_BASE: f64 = 2.0;

/// `(key, default as documented)` for every key that has a default. Values are written as in
/// TOML (`60`, `"UTC"`, `false`); keys whose default is not a literal (derived from another key,
/// or "required") are documented in the README only.
pub const TABLE: &[(&str, &str)] = &[
    ("api.requests_per_minute", "60"),
    ("api.timeout_seconds", "60"),
    (
        "api.user_status_path",
        "\"/agentassist/api/public/analytics/account/{account_id}/userstatus\"",
    ),
    (
        "api.intent_path",
        "\"/api/public/bot/{bot_id}/intentrealtimedata\"",
    ),
    ("api.max_retries", "6"),
    ("api.retry_base_ms", "500"),
    ("api.retry_max_backoff_seconds", "60"),
    ("api.retry_after_cap_seconds", "120"),
    ("api.throttle_backoff_seconds", "10"),
    ("api.max_response_bytes", "67108864"),
    ("api.allow_insecure_http", "false"),
    ("auth.enforce_jti", "false"),
    ("auth.token_ttl_seconds", "300"),
    ("auth.jwe_alg", "\"RSA-OAEP\""),
    ("auth.jwe_enc", "\"A128CBC-HS256\""),
    ("output.max_retries", "8"),
    ("output.retry_base_ms", "100"),
    ("output.retry_max_backoff_seconds", "5"),
    ("output.retry_timeout_seconds", "60"),
    ("output.connect_timeout_seconds", "5"),
    ("output.timeout_seconds", "30"),
    ("user_status.enabled", "true"),
    ("user_status.schedule", "\"0 */15 * * * *\""),
    ("user_status.granularity", "\"PT30M\""),
    ("user_status.timezone", "\"UTC\""),
    ("user_status.lookback_days", "1"),
    ("user_status.page_size", "500"),
    ("user_status.agents", "[]"),
    ("user_status.schedule_timezone", "\"UTC\""),
    ("user_status.max_days_per_run", "7"),
    ("intent_realtime.schedule", "\"*/30 * * * * *\""),
    ("intent_realtime.bot_ids", "[]"),
    ("intent_realtime.schedule_timezone", "\"UTC\""),
    ("intent_realtime.gap_poll_interval_seconds", "10"),
    ("agent_status_details.enabled", "false"),
    ("agent_status_details.schedule", "\"0 */15 * * * *\""),
    ("agent_status_details.lookback_days", "1"),
    ("agent_status_details.page_size", "50"),
    ("agent_status_details.agents", "[]"),
    (
        "agent_status_details.path",
        "\"/agentassist/api/public/analytics/account/{account_id}/agentstatusdetails\"",
    ),
    ("agent_status_details.schedule_timezone", "\"UTC\""),
    ("agent_status_details.max_days_per_run", "7"),
    ("call_details.enabled", "false"),
    ("call_details.schedule", "\"0 0 * * * *\""),
    ("call_details.lookback_days", "1"),
    ("call_details.page_size", "100"),
    ("call_details.channels", "[]"),
    ("call_details.queues", "[]"),
    ("call_details.path", "\"v2/interactionDetails\""),
    ("call_details.schedule_timezone", "\"UTC\""),
    ("call_details.max_days_per_run", "7"),
    ("server.listen", "\"127.0.0.1:9464\""),
    ("server.shutdown_timeout_seconds", "10"),
    ("server.unhealthy_after_intervals", "3"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The constants the code uses, rendered as TOML literals, for every row of [`TABLE`].
    fn code_defaults() -> BTreeMap<&'static str, String> {
        let q = |s: &str| format!("{s:?}");
        let n = |v: f64| {
            if v.fract() == 0.0 {
                format!("{}", v as i64)
            } else {
                v.to_string()
            }
        };
        [
            ("api.requests_per_minute", REQUESTS_PER_MINUTE.to_string()),
            ("api.timeout_seconds", TIMEOUT_SECONDS.to_string()),
            ("api.user_status_path", q(USER_STATUS_PATH)),
            ("api.intent_path", q(INTENT_PATH)),
            ("api.max_retries", MAX_RETRIES.to_string()),
            ("api.retry_base_ms", RETRY_BASE_MS.to_string()),
            (
                "api.retry_max_backoff_seconds",
                RETRY_MAX_BACKOFF_SECONDS.to_string(),
            ),
            (
                "api.retry_after_cap_seconds",
                RETRY_AFTER_CAP_SECONDS.to_string(),
            ),
            ("api.throttle_backoff_seconds", n(THROTTLE_BACKOFF_SECONDS)),
            ("api.max_response_bytes", MAX_RESPONSE_BYTES.to_string()),
            ("api.allow_insecure_http", ALLOW_INSECURE_HTTP.to_string()),
            ("auth.enforce_jti", ENFORCE_JTI.to_string()),
            ("auth.token_ttl_seconds", TOKEN_TTL_SECONDS.to_string()),
            ("auth.jwe_alg", q(JWE_ALG)),
            ("auth.jwe_enc", q(JWE_ENC)),
            ("output.max_retries", OUTPUT_MAX_RETRIES.to_string()),
            ("output.retry_base_ms", OUTPUT_RETRY_BASE_MS.to_string()),
            (
                "output.retry_max_backoff_seconds",
                OUTPUT_RETRY_MAX_BACKOFF_SECONDS.to_string(),
            ),
            (
                "output.retry_timeout_seconds",
                OUTPUT_RETRY_TIMEOUT_SECONDS.to_string(),
            ),
            (
                "output.connect_timeout_seconds",
                OUTPUT_CONNECT_TIMEOUT_SECONDS.to_string(),
            ),
            ("output.timeout_seconds", OUTPUT_TIMEOUT_SECONDS.to_string()),
            ("user_status.enabled", USER_STATUS_ENABLED.to_string()),
            ("user_status.schedule", q(USER_STATUS_SCHEDULE)),
            ("user_status.granularity", q(GRANULARITY)),
            ("user_status.timezone", q(TIMEZONE)),
            ("user_status.lookback_days", LOOKBACK_DAYS.to_string()),
            ("user_status.page_size", USER_STATUS_PAGE_SIZE.to_string()),
            ("user_status.agents", "[]".to_string()),
            ("user_status.schedule_timezone", q(SCHEDULE_TIMEZONE)),
            ("user_status.max_days_per_run", MAX_DAYS_PER_RUN.to_string()),
            ("intent_realtime.schedule", q(INTENT_SCHEDULE)),
            ("intent_realtime.bot_ids", "[]".to_string()),
            ("intent_realtime.schedule_timezone", q(SCHEDULE_TIMEZONE)),
            (
                "intent_realtime.gap_poll_interval_seconds",
                GAP_POLL_INTERVAL_SECONDS.to_string(),
            ),
            (
                "agent_status_details.enabled",
                AGENT_STATUS_DETAILS_ENABLED.to_string(),
            ),
            (
                "agent_status_details.schedule",
                q(AGENT_STATUS_DETAILS_SCHEDULE),
            ),
            (
                "agent_status_details.lookback_days",
                LOOKBACK_DAYS.to_string(),
            ),
            (
                "agent_status_details.page_size",
                AGENT_STATUS_DETAILS_PAGE_SIZE.to_string(),
            ),
            ("agent_status_details.agents", "[]".to_string()),
            ("agent_status_details.path", q(AGENT_STATUS_DETAILS_PATH)),
            (
                "agent_status_details.schedule_timezone",
                q(SCHEDULE_TIMEZONE),
            ),
            (
                "agent_status_details.max_days_per_run",
                MAX_DAYS_PER_RUN.to_string(),
            ),
            ("call_details.enabled", CALL_DETAILS_ENABLED.to_string()),
            ("call_details.schedule", q(CALL_DETAILS_SCHEDULE)),
            ("call_details.lookback_days", LOOKBACK_DAYS.to_string()),
            ("call_details.page_size", CALL_DETAILS_PAGE_SIZE.to_string()),
            ("call_details.channels", "[]".to_string()),
            ("call_details.queues", "[]".to_string()),
            ("call_details.path", q(CALL_DETAILS_PATH)),
            ("call_details.schedule_timezone", q(SCHEDULE_TIMEZONE)),
            (
                "call_details.max_days_per_run",
                MAX_DAYS_PER_RUN.to_string(),
            ),
            ("server.listen", q(LISTEN)),
            (
                "server.shutdown_timeout_seconds",
                SHUTDOWN_TIMEOUT_SECONDS.to_string(),
            ),
            (
                "server.unhealthy_after_intervals",
                UNHEALTHY_AFTER_INTERVALS.to_string(),
            ),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn the_table_states_the_constants_the_code_uses() {
        let code = code_defaults();
        let table: BTreeMap<&str, String> =
            TABLE.iter().map(|(k, v)| (*k, v.to_string())).collect();
        assert_eq!(table, code);
    }

    /// `| \`key\` | \`default\` | meaning |` rows of the README's configuration reference.
    fn readme_defaults() -> BTreeMap<String, String> {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("## Configuration reference")
            .expect("README has a configuration reference");
        let section = &readme[start..];
        let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
        let mut out = BTreeMap::new();
        for line in section[..end].lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 4 || !cells[1].starts_with('`') {
                continue;
            }
            out.insert(
                cells[1].trim_matches('`').to_string(),
                cells[2].trim_matches('`').to_string(),
            );
        }
        out
    }

    #[test]
    fn the_readme_table_shows_every_default() {
        let readme = readme_defaults();
        for (key, value) in TABLE {
            let shown = readme
                .get(*key)
                .unwrap_or_else(|| panic!("README configuration table lacks {key}"));
            // The README shows strings without TOML quotes.
            assert_eq!(shown, value.trim_matches('"'), "README default of {key}");
        }
    }

    #[test]
    fn commented_defaults_in_the_shipped_config_match() {
        let text = include_str!("../../config.toml");
        let mut section = "";
        let mut checked = 0;
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name;
                continue;
            }
            // `# key = value` lines show a default the file leaves unset.
            let Some((key, value)) = line.strip_prefix("# ").and_then(|l| l.split_once(" = "))
            else {
                continue;
            };
            let full = format!("{section}.{key}");
            if let Some((_, default)) = TABLE.iter().find(|(k, _)| *k == full) {
                assert_eq!(
                    value, *default,
                    "config.toml shows a wrong default for {full}"
                );
                checked += 1;
            }
        }
        assert!(checked > 0, "config.toml shows no commented default");
    }
}
