//! The CLI contract through the built binary: exit codes and messages for broken configs and
//! flags, `token`, `schema`, `check` and `demo`, and which log lines each verbosity lets
//! through (JSON lines carry each event's `target`, so a dependency's line is recognisable).

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
    let queues = "[queue_stats]\nenabled = true\nqueue_ids = [\"qu-1\"]\n";
    assert_config_error(
        &format!("{GOOD}{queues}channels = [\"Web/Mobile Client\"]\n"),
        "queue_stats.channels[0]",
    );
    assert_config_error(
        &format!("{GOOD}{queues}languages = [\"en\", \"English\"]\n"),
        "queue_stats.languages[1]",
    );
}

#[test]
fn polls_alone_over_the_budget_are_refused_by_check_and_run_naming_the_numbers() {
    let text = format!(
        "{GOOD}[intent_realtime]\nbot_ids = [\"b1\", \"b2\", \"b3\"]\nschedule = \"* * * * * *\"\n"
    );
    for command in ["check", "run"] {
        let out = run_with(&text, &[command]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(
                "intent_realtime.schedule: the polls alone need 180 requests/minute \
                 (3 bots × 60 polls/minute (intent_realtime)), more than \
                 api.requests_per_minute = 60 admits"
            ),
            "{command}: {stderr}"
        );
    }
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("read_parquet"));
    // The demo shows today's capture: the bot's day, its share and its sessions.
    assert!(
        stdout.contains("realtime capture (intent_realtime against bot_sessions)")
            && stdout
                .lines()
                .any(|l| l.contains(" st-demo-bot ") && l.contains(" captured ")),
        "{stdout}"
    );
    // The `reconcile` command the capture points to (when more ids were missed than it lists)
    // names the demo's config, so it works from another directory; without a pointer, the
    // same command made from the config the demo says it keeps.
    let config = demo_out.join("_demo-config.toml");
    assert!(config.is_file(), "the demo keeps its config");
    let hint: Vec<String> = match stdout
        .lines()
        .find_map(|l| l.split_once("smartassist-export "))
    {
        Some((_, rest)) => rest.split_whitespace().map(String::from).collect(),
        None => vec![
            "-c".into(),
            config.display().to_string(),
            "reconcile".into(),
            "--bot".into(),
            "st-demo-bot".into(),
        ],
    };
    let rec = Command::new(BIN)
        .args(&hint)
        .current_dir(tmp.path())
        .output()
        .expect("runs");
    assert!(
        rec.status.success() && String::from_utf8_lossy(&rec.stdout).contains("st-demo-bot"),
        "{hint:?}: {}{}",
        String::from_utf8_lossy(&rec.stdout),
        String::from_utf8_lossy(&rec.stderr)
    );
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
    assert!(sql.contains("read_parquet('s3://my-lake/exports/user_status/*/*/*.parquet', hive_partitioning = true,\n    union_by_name = true, hive_types = {'account_id': VARCHAR, 'dt': DATE});"), "{sql}");

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

/// `target` of every stderr line, each of which must be a JSON log line.
fn log_targets(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
            let field = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("no {k}: {l}"))
                    .to_string()
            };
            (field("target"), field("level"))
        })
        .collect()
}

fn is_own(target: &str) -> bool {
    target == "smartassist_export" || target.starts_with("smartassist_export::")
}

/// A daemon against the built-in simulator, every job every second, stopped with SIGTERM once
/// the intent job ran twice (the second run comes from a scheduler tick, so the scheduler's
/// startup has been logged by then); returns its stderr.
#[cfg(unix)]
fn daemon_log(flags: &[&str], env: &[(&str, &str)]) -> String {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr: std::net::SocketAddr| {
        let text = format!(
            "{GOOD}[user_status]\nschedule = \"* * * * * *\"\n\
             [intent_realtime]\nschedule = \"* * * * * *\"\nbot_ids = [\"st-bot-1\"]\n\
             [server]\nlisten = \"{addr}\"\n"
        )
        .replace(
            "url = \"out\"",
            &format!("url = {:?}", out.display().to_string()),
        )
        // Per-second polls need more than the default 60 requests a minute.
        .replace(
            "client_id = \"cs-1\"\n",
            "client_id = \"cs-1\"\nrequests_per_minute = 6000\n",
        );
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        path
    };
    let log = tmp.path().join("run.log");
    let (mut child, addr) = spawn_daemon_on_free_port_with(config_for, &log, flags, env);
    let runs = "smartassist_runs_total{dataset=\"intent_realtime\",outcome=\"success\"}";
    wait_for_metrics(addr, &mut child, std::time::Duration::from_secs(60), |m| {
        metric(m, runs) >= 2.0
    });
    let status = sigterm_and_wait(&mut child, std::time::Duration::from_secs(15));
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(status.code(), Some(0), "{text}");
    text
}

#[cfg(unix)]
#[test]
fn at_the_default_level_the_daemon_logs_only_its_own_lines() {
    let log = daemon_log(&[], &[]);
    let targets = log_targets(&log);
    assert!(
        targets.iter().any(|(_, level)| level == "INFO"),
        "the exporter's INFO lines are missing:\n{log}"
    );
    let foreign: Vec<_> = targets.iter().filter(|(t, _)| !is_own(t)).collect();
    assert!(
        foreign.is_empty(),
        "dependency lines at the default level: {foreign:?}\n{log}"
    );
}

/// RUST_LOG beats -q, and lets the scheduler's INFO lines through: the check above can see a
/// dependency's lines when there are some.
#[cfg(unix)]
#[test]
fn rust_log_overrides_the_flags_and_reaches_dependencies() {
    let log = daemon_log(&["-q"], &[("RUST_LOG", "info")]);
    let targets = log_targets(&log);
    assert!(
        targets
            .iter()
            .any(|(t, level)| t.starts_with("tokio_cron_scheduler") && level == "INFO"),
        "no INFO line from tokio_cron_scheduler with RUST_LOG=info:\n{log}"
    );
    assert!(
        targets
            .iter()
            .any(|(t, level)| is_own(t) && level == "INFO"),
        "RUST_LOG=info did not override -q:\n{log}"
    );
}

/// `demo` with -q, default and -v: INFO lines only at the default level and above, DEBUG lines
/// only with -v and only from the exporter; the result on stdout in every case.
#[test]
fn quiet_and_verbose_flags_move_the_exporters_level() {
    let demo = |flags: &[&str]| {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = Command::new(BIN)
            .args(["--log-format", "json"])
            .args(flags)
            .args(["demo", "--days", "1", "--out"])
            .arg(tmp.path().join("demo"))
            .env_remove("RUST_LOG")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{flags:?}: {stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("read_parquet"));
        (log_targets(&stderr), stderr)
    };
    let count = |targets: &[(String, String)], level: &str| {
        targets.iter().filter(|(_, l)| l == level).count()
    };
    let (quiet, log) = demo(&["-q"]);
    assert_eq!(
        count(&quiet, "INFO") + count(&quiet, "DEBUG"),
        0,
        "-q:\n{log}"
    );
    let (default, log) = demo(&[]);
    assert!(count(&default, "INFO") > 0, "default:\n{log}");
    assert_eq!(count(&default, "DEBUG"), 0, "default:\n{log}");
    let (verbose, log) = demo(&["-v"]);
    assert!(count(&verbose, "DEBUG") > 0, "-v:\n{log}");
    assert_eq!(count(&verbose, "TRACE"), 0, "-v:\n{log}");
    assert!(
        verbose.iter().all(|(t, _)| is_own(t)),
        "-v let a dependency's line through:\n{log}"
    );
}

#[test]
fn log_flags_that_contradict_each_other_exit_2() {
    for flags in [
        &["-v", "-q"][..],
        &["-v", "--log-level", "info"],
        &["--log-level", "degub"],
    ] {
        let out = Command::new(BIN)
            .args(flags)
            .arg("schema")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
    }
}

/// `check` probes every bot of `[bot_sessions]`: a bot the simulator does not know (a 404) is
/// reported failing by name, the bot that answered is reported OK, and `check` fails.
#[test]
fn check_probes_every_bot_and_names_the_one_that_fails() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = rt.block_on(start_sim(SimulatorConfig::default()));
    assert_eq!(
        sim.config().bots,
        ["st-demo-bot"],
        "the simulator's one bot"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &tmp.path().join("out"),
        "[user_status]\nenabled = false\n[bot_sessions]\nenabled = true\n\
         bot_ids = [\"st-demo-bot\", \"st-no-such-bot\"]\n",
    );
    let out = run_bin(&config, &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("bot_sessions"))
        .unwrap_or_else(|| panic!("no bot_sessions probe in:\n{stdout}"));
    let (failed, ok) = line
        .split_once("; OK: ")
        .unwrap_or_else(|| panic!("no OK part in {line:?}"));
    assert!(
        failed.starts_with("bot_sessions: FAILED: unhealthy: bot st-no-such-bot: "),
        "{line}"
    );
    assert!(failed.contains("404"), "{line}");
    assert!(!failed.contains("st-demo-bot"), "{line}");
    assert!(ok.starts_with("bot st-demo-bot: "), "{line}");
    assert!(!ok.contains("st-no-such-bot"), "{line}");
    rt.block_on(sim.shutdown());
}

/// `reconcile --bot` takes only configured bots: another id exits 2 naming it.
#[test]
fn reconcile_of_an_unknown_bot_exits_2_naming_it() {
    let out = run_with(
        &format!("{GOOD}[bot_sessions]\nenabled = true\nbot_ids = [\"st-demo-bot\"]\n"),
        &["reconcile", "--bot", "st-no-such-bot"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--bot st-no-such-bot"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `check` alone sends its probes under the account's budget lease and releases it with their
/// grants, so a daemon started right after it counts them: the released record holds one grant
/// per request the simulator received, each stamped within the command's run.
#[test]
fn check_probes_under_the_budget_lease_and_hands_their_grants_on() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = rt.block_on(start_sim(SimulatorConfig::default()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out_dir = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        &out_dir,
        "[intent_realtime]\nbot_ids = [\"st-demo-bot\"]\n",
    );
    let started = chrono::Utc::now().timestamp_millis();
    let out = run_bin(&config, &["check"]);
    let ended = chrono::Utc::now().timestamp_millis();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let received = sim.stats().total_requests;
    assert!(received >= 2, "user_status and the bot were probed");
    let record = out_dir.join(format!(
        "_state/lease/_request_budget/account_id={}.json",
        sim.config().account_id
    ));
    let text = std::fs::read_to_string(&record)
        .unwrap_or_else(|e| panic!("no budget lease record at {}: {e}", record.display()));
    let holder: serde_json::Value = serde_json::from_str(&text).expect("a JSON record");
    assert_eq!(holder["released"], serde_json::json!(true), "{text}");
    let grants: Vec<i64> = holder["grants_ms"]
        .as_array()
        .unwrap_or_else(|| panic!("no grants in {text}"))
        .iter()
        .map(|g| g.as_i64().expect("milliseconds"))
        .collect();
    assert_eq!(grants.len() as u64, received, "{text}");
    assert!(
        grants.iter().all(|g| (started..=ended).contains(g)),
        "{grants:?} not within {started}..={ended}"
    );
    rt.block_on(sim.shutdown());
}
