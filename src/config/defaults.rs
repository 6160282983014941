//! Every default of the shared sections (`[api]`, `[auth]`, `[output]`, `[server]`) and of the
//! shared history keys, defined once. The validators use these constants, and [`TABLE`] states
//! each default of a shared section as the README's configuration table and the shipped
//! `config.toml` show it (a dataset section states its own, [`super::DatasetSection::DEFAULTS`]).
//! Tests check that the README (and each dataset's page, `docs/datasets/<name>.md`, for its
//! section) and `config.toml` agree with every table, and that writing each
//! documented default explicitly validates exactly as leaving it out, so the documentation
//! cannot drift from the code.

pub const REQUESTS_PER_MINUTE: u32 = 60;
/// The XO runtime APIs' documented per-bot limits (getSessions, getMessages).
pub const BOT_REQUESTS_PER_MINUTE: u32 = 60;
pub const BOT_REQUESTS_PER_HOUR: u32 = 1800;
pub const TIMEOUT_SECONDS: u64 = 60;
pub const MAX_RETRIES: u32 = 6;
pub const RETRY_BASE_MS: u64 = 500;
pub const RETRY_MAX_BACKOFF_SECONDS: u64 = 60;
pub const RETRY_AFTER_CAP_SECONDS: u64 = 120;
pub const THROTTLE_BACKOFF_SECONDS: f64 = 10.0;
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
pub const PAGE_MEMORY_BYTES: u32 = 1024 * 1024;
pub const ALLOW_INSECURE_HTTP: bool = false;
pub const ENFORCE_JTI: bool = false;
pub const TOKEN_TTL_SECONDS: u64 = 300;
pub const JWE_ALG: &str = "RSA-OAEP";
pub const JWE_ENC: &str = "A128CBC-HS256";
pub const TIMEZONE: &str = "UTC";
pub const LOOKBACK_DAYS: u32 = 1;
pub const SCHEDULE_TIMEZONE: &str = "UTC";
pub const MAX_DAYS_PER_RUN: u32 = 7;
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
/// Pages share a row group until their rows hold this many bytes (`[output]`
/// `page_row_group_bytes`; the reasoning is on [`crate::sink::PAGE_ROW_GROUP_BYTES`]).
pub const OUTPUT_PAGE_ROW_GROUP_BYTES: u64 = 512 * 1024;
/// Growth factor of the S3 client's backoff: object_store's own, not a key.
pub const OUTPUT_BACKOFF_BASE: f64 = 2.0;

/// `(key, default as documented)` for every key that has a default. Values are written as in
/// TOML (`60`, `"UTC"`, `false`); keys whose default is not a literal (derived from another key,
/// or "required") are documented in the README only.
pub const TABLE: &[(&str, &str)] = &[
    ("api.requests_per_minute", "60"),
    ("api.bot_requests_per_minute", "60"),
    ("api.bot_requests_per_hour", "1800"),
    ("api.timeout_seconds", "60"),
    ("api.max_retries", "6"),
    ("api.retry_base_ms", "500"),
    ("api.retry_max_backoff_seconds", "60"),
    ("api.retry_after_cap_seconds", "120"),
    ("api.throttle_backoff_seconds", "10"),
    ("api.max_response_bytes", "67108864"),
    ("api.page_memory_bytes", "1048576"),
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
    ("output.page_row_group_bytes", "524288"),
    ("server.listen", "\"127.0.0.1:9464\""),
    ("server.shutdown_timeout_seconds", "10"),
    ("server.unhealthy_after_intervals", "3"),
];
