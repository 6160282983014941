//! The CLI contract through the built binary: exit codes and messages for broken configs and
//! flags, `token`, `schema`, `check` and `demo`.

mod common;

use std::process::Command;

use common::*;
use smartassist_export::simulator::SimulatorConfig;

const GOOD: &str = r#"
[api]
base_url = "simulator"
account_id = "acct"
iid = "st-1"
client_id = "cs-1"
[output]
url = "out"
"#;

fn run_with(config_text: &str, args: &[&str]) -> std::process::Output {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("config.toml");
    std::fs::write(&path, config_text).expect("write");
    Command::new(BIN)
        .arg("-c")
        .arg(&path)
        .args(args)
        .current_dir(tmp.path())
        .env_remove("SMARTASSIST_CLIENT_SECRET")
        .output()
        .expect("runs")
}

fn assert_config_error(config_text: &str, needle: &str) {
    let out = run_with(config_text, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn broken_configs_exit_2_naming_the_key() {
    assert_config_error(
        &GOOD.replace("account_id = \"acct\"\n", ""),
        "api.account_id: missing required key",
    );
    assert_config_error(
        &format!("{GOOD}[user_status]\nschedule = \"* * * *\"\n"),
        "user_status.schedule",
    );
    assert_config_error(
        &format!("{GOOD}[user_status]\ngranularity = \"PT5M\"\n"),
        "user_status.granularity",
    );
    assert_config_error(
        &GOOD.replace("\"simulator\"", "\"not a url\""),
        "api.base_url",
    );
    assert_config_error(
        &GOOD.replace("url = \"out\"", "url = \"ftp://x/y\""),
        "output.url",
    );
    assert_config_error(
        &format!("{GOOD}[server]\nlisten = \"x\"\nbogus = 1\n"),
        "bogus",
    );
    assert_config_error(&GOOD.replace("\"acct\"", "\"../../etc\""), "api.account_id");
    assert_config_error("[api\n", "not valid");
}

#[test]
fn missing_config_file_and_unknown_flags_exit_2() {
    let out = Command::new(BIN)
        .args(["-c", "/nonexistent/config.toml", "check"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/config.toml"));
    let out = run_with(
        GOOD,
        &[
            "backfill",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-02",
            "--bogus",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run_with(
        GOOD,
        &["backfill", "--from", "2026-01-05", "--to", "2026-01-02"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
}

#[test]
fn token_is_an_hs256_jwt_with_app_id() {
    let out = run_with(GOOD, &["token"]);
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    let secret = SimulatorConfig::default().client_secret;
    let data = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &v,
    )
    .expect("verifies with the simulator secret");
    assert_eq!(data.claims["appId"], "cs-1");
}

#[test]
fn schema_lists_both_datasets() {
    let out = run_with(GOOD, &["schema"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user_status") && text.contains("intent_realtime"));
    // Exact lines: the column, its Arrow type and nullability as the schema module defines them.
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        line("bucket_start").as_deref(),
        Some("Timestamp(ms, \"UTC\") not null")
    );
    assert_eq!(line("duration_seconds").as_deref(), Some("Int64 not null"));
    assert_eq!(
        line("time_handled_seconds").as_deref(),
        Some("Int64 nullable")
    );
}

#[test]
fn check_probes_the_simulator_and_demo_writes_queryable_output() {
    let out = run_with(
        &format!("{GOOD}[intent_realtime]\nbot_ids = [\"st-demo-bot\"]\n"),
        &["check"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("user_status: OK")
            && stdout.contains("intent_realtime bot st-demo-bot: OK"),
        "{stdout}"
    );

    let tmp = tempfile::tempdir().expect("tmp");
    let demo_out = tmp.path().join("demo");
    let out = Command::new(BIN)
        .args(["demo", "--days", "2", "--out"])
        .arg(&demo_out)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("read_parquet"));
    let rows = user_status_rows(&demo_out);
    assert!(!rows.is_empty());
    assert_eq!(
        rows.iter()
            .map(|r| r.dt.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        2
    );
}

/// `schema --format athena|duckdb` takes the location, the ids and the S3 endpoint from the
/// config, and needs no client secret (the secret file here does not exist).
#[test]
fn schema_ddl_uses_the_configs_s3_output_and_ids_without_the_secret() {
    let config = r#"
[api]
base_url = "https://platform.kore.ai"
account_id = "acct-1"
iid = "st-1"
client_id = "cs-1"
client_secret_file = "/nonexistent/secret"
[output]
url = "s3://my-lake/exports"
endpoint = "http://127.0.0.1:9000"
region = "eu-west-1"
allow_http = true
[intent_realtime]
bot_ids = ["st-a", "st-b"]
"#;
    let athena = run_with(config, &["schema", "--format", "athena"]);
    let sql = String::from_utf8_lossy(&athena.stdout);
    assert!(
        athena.status.success(),
        "{}",
        String::from_utf8_lossy(&athena.stderr)
    );
    assert!(
        sql.contains("LOCATION 's3://my-lake/exports/user_status/'"),
        "{sql}"
    );
    assert!(
        sql.contains(
            "'projection.account_id.type' = 'enum',\n  'projection.account_id.values' = 'acct-1'"
        ),
        "{sql}"
    );
    assert!(
        sql.contains("'projection.bot_id.values' = 'st-a,st-b'"),
        "{sql}"
    );
    assert!(sql.contains("'storage.location.template' = 's3://my-lake/exports/intent_realtime/account_id=${account_id}/bot_id=${bot_id}/dt=${dt}/'"), "{sql}");

    let duck = run_with(config, &["schema", "--format", "duckdb"]);
    let sql = String::from_utf8_lossy(&duck.stdout);
    assert!(duck.status.success());
    assert!(sql.contains("CREATE OR REPLACE SECRET smartassist (TYPE s3, PROVIDER credential_chain, ENDPOINT '127.0.0.1:9000', URL_STYLE 'path', USE_SSL false, REGION 'eu-west-1');"), "{sql}");
    assert!(sql.contains("read_parquet('s3://my-lake/exports/user_status/*/*/*.parquet', hive_partitioning = true,\n    hive_types = {'account_id': VARCHAR, 'dt': DATE});"), "{sql}");

    // No config file: placeholders, and a note on stderr saying so.
    let out = Command::new(BIN)
        .args([
            "-c",
            "/nonexistent/config.toml",
            "schema",
            "--format",
            "athena",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("LOCATION 's3://YOUR-BUCKET/prefix/user_status/'"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no config file at /nonexistent/config.toml")
    );
}
