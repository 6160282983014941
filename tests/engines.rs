//! The output verified by real engines: the built binary exports both datasets from the
//! in-process simulator to a local directory and to S3 (moto), then `tests/py/verify_output.py`
//! reads them with pyarrow (local and `pyarrow.fs.S3FileSystem`) and runs the README's
//! ```` ```sql duckdb-check ```` blocks with DuckDB. Expected row counts and sums come from the
//! simulator's generator.
//!
//! Python runs in the pinned environment of `common::python()` (built on first use): the test
//! FAILS when it cannot be built unless `SMARTASSIST_SKIP_PY=1`; the S3 part is left out only
//! with `SMARTASSIST_SKIP_S3=1`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::{call_details, intent_realtime, SimulatorConfig};

const BOT: &str = "st-bot-1";

fn sections(days_tz: &str) -> String {
    format!(
        "[user_status]\ngranularity = \"PT30M\"\ntimezone = \"{days_tz}\"\npage_size = 50\n\
         [intent_realtime]\nbot_ids = [\"{BOT}\"]\ntimezone = \"UTC\"\n\
         [agent_status_details]\nenabled = true\n\
         [call_details]\nenabled = true\ntimezone = \"UTC\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_and_duckdb_read_the_exported_datasets() {
    if opted_out(SKIP_PY_ENV, "the pyarrow/DuckDB engine checks") {
        return;
    }
    // Builds the pinned environment on first use, before the simulator starts.
    python();
    let now = chrono::Utc::now();
    let cfg = SimulatorConfig {
        seed: 31,
        agents: 5,
        max_page_size: 50,
        bots: vec![BOT.into()],
        intent_interval: Duration::from_secs(900),
        intent_epoch: now - chrono::Duration::days(2),
        frozen_now: Some(now),
        malformed_every: None,
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let args = ["backfill", "--from", "2026-06-01", "--to", "2026-06-02"];
    let local_config = write_config(tmp.path(), &sim.base_url(), &out, &sections("UTC"));
    assert_success(&run_bin(&local_config, &args));

    let moto = moto_or_skip();
    let s3 = match &moto {
        Some(moto) => {
            moto.create_bucket("engines").await;
            let dir = tmp.path().join("s3cfg");
            std::fs::create_dir_all(&dir).expect("mkdir");
            let keys = format!(
                "endpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\n{}",
                moto.endpoint(),
                sections("UTC")
            );
            let config = write_config(&dir, &sim.base_url(), Path::new("s3://engines/lake"), &keys);
            let run = Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .args(args)
                .env(
                    "SMARTASSIST_CLIENT_SECRET",
                    SimulatorConfig::default().client_secret,
                )
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env_remove("AWS_ENDPOINT_URL")
                .env_remove("RUST_LOG")
                .output()
                .expect("binary runs");
            assert_success(&run);
            serde_json::json!({
                "endpoint": format!("127.0.0.1:{}", moto.port),
                "bucket": "engines",
                "prefix": "lake",
            })
        }
        None => serde_json::Value::Null,
    };

    let days = [date("2026-06-01"), date("2026-06-02")];
    let expected = expected_user_status(
        cfg.seed,
        cfg.agents,
        chrono_tz::UTC,
        &days,
        Granularity::PT30M,
        None,
    );
    let (rows, seconds) = expected
        .values()
        .fold((0usize, 0i64), |(r, s), (rows, sum, _)| (r + rows, s + sum));
    let generated = intent_realtime::latest_sessions(&intent_realtime::feed(&cfg, BOT), now);
    let sessions = generated.len();
    let handled: i64 = generated.iter().map(|s| s.time_handled_seconds).sum();
    assert!(rows > 0 && sessions > 0, "the fixture must have data");
    let calls = expected_calls(&cfg, &days);

    let spec = serde_json::json!({
        "local": out,
        "s3": s3,
        "expected": {
            "user_status": {"rows": rows, "sums": {"duration_seconds": seconds}},
            "intent_realtime": {"rows": sessions, "sums": {"time_handled_seconds": handled}},
            "agent_status_details": span_figures(&cfg, &days),
            "call_details": {"rows": calls.sessions, "sums": {"segment_count": calls.legs}},
            "call_segments": {"rows": calls.legs, "sums": {"interaction_seconds": calls.interaction}},
        },
        "ids": {"account_id": cfg.account_id, "bot_id": BOT},
        "infer_hive": true,
        "markdown": [readme()],
    });
    verify(tmp.path(), &spec);
    sim.shutdown().await;
}

/// `{"rows", "sums"}` of the `agent_status_details` rows the generator says `days` hold.
fn span_figures(cfg: &SimulatorConfig, days: &[chrono::NaiveDate]) -> serde_json::Value {
    let all: Vec<usize> = (0..cfg.agents).collect();
    let want = agent_status_details::expected_spans(cfg, chrono_tz::UTC, days, &all, false);
    assert!(!want.rows.is_empty(), "the fixture must have spans");
    let seconds: i64 = want.rows.iter().filter_map(|r| r.duration_seconds).sum();
    serde_json::json!({"rows": want.rows.len(), "sums": {"duration_seconds": seconds}})
}

/// Call Details figures of UTC `days` from the generator.
struct Calls {
    sessions: usize,
    legs: usize,
    interaction: i64,
}

fn expected_calls(cfg: &SimulatorConfig, days: &[chrono::NaiveDate]) -> Calls {
    let mut out = Calls {
        sessions: 0,
        legs: 0,
        interaction: 0,
    };
    for &day in days {
        let (start, end) = day_bounds(chrono_tz::UTC, day);
        for call in call_details::calls_in(cfg, start..end) {
            let legs = call_details::segments(&call);
            out.sessions += 1;
            out.legs += legs.len();
            out.interaction += legs
                .iter()
                .filter_map(|s| s.leg.as_ref()?.interaction_seconds)
                .sum::<i64>();
        }
    }
    assert!(out.legs > 0, "the fixture must have Call Details");
    out
}

fn readme() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")
}

/// Runs tests/py/verify_output.py on `spec` (written into `dir`).
fn verify(dir: &Path, spec: &serde_json::Value) {
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("write spec");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_output.py");
    let verify = Command::new(python())
        .arg(script)
        .arg(&spec_path)
        .output()
        .expect("python runs");
    println!("{}", String::from_utf8_lossy(&verify.stdout));
    assert!(
        verify.status.success(),
        "verify_output.py failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Ids that look like numbers (`0042`, bot `7`) keep their text in DuckDB and through the
/// README's pyarrow reader (plain `partitioning="hive"` would infer int32 and fail to merge with
/// the files' string column, which is why the README gives the partition schema explicitly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_looking_ids_keep_their_text_in_duckdb_and_pyarrow() {
    if opted_out(SKIP_PY_ENV, "the pyarrow/DuckDB engine checks") {
        return;
    }
    // Builds the pinned environment on first use, before the simulator starts.
    python();
    let (account, bot) = ("0042", "7");
    let now = chrono::Utc::now();
    let cfg = SimulatorConfig {
        seed: 37,
        agents: 3,
        max_page_size: 50,
        account_id: account.into(),
        bots: vec![bot.into()],
        intent_interval: Duration::from_secs(1800),
        intent_epoch: now - chrono::Duration::days(1),
        frozen_now: Some(now),
        malformed_every: None,
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let sections = format!(
        "[user_status]\ngranularity = \"PT30M\"\ntimezone = \"UTC\"\n\
         [intent_realtime]\nbot_ids = [\"{bot}\"]\ntimezone = \"UTC\"\n\
         [agent_status_details]\nenabled = true\n\
         [call_details]\nenabled = true\ntimezone = \"UTC\"\n"
    );
    let config = write_config(tmp.path(), &sim.base_url(), &out, &sections);
    let default_account = format!("account_id = \"{}\"", SimulatorConfig::default().account_id);
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains(&default_account));
    std::fs::write(
        &config,
        text.replace(&default_account, &format!("account_id = \"{account}\"")),
    )
    .expect("config");
    let day = date("2026-06-01");
    let days = [day];
    assert_success(&run_bin(
        &config,
        &["backfill", "--from", "2026-06-01", "--to", "2026-06-01"],
    ));
    let expected = expected_user_status(
        cfg.seed,
        cfg.agents,
        chrono_tz::UTC,
        &[day],
        Granularity::PT30M,
        None,
    );
    let (rows, seconds, _) = expected[&day.to_string()];
    let generated = intent_realtime::latest_sessions(&intent_realtime::feed(&cfg, bot), now);
    let sessions = generated.len();
    let handled: i64 = generated.iter().map(|s| s.time_handled_seconds).sum();
    assert!(rows > 0 && sessions > 0, "the fixture must have data");
    let calls = expected_calls(&cfg, &days);
    let spec = serde_json::json!({
        "local": out,
        "s3": null,
        "expected": {
            "user_status": {"rows": rows, "sums": {"duration_seconds": seconds}},
            "intent_realtime": {"rows": sessions, "sums": {"time_handled_seconds": handled}},
            "agent_status_details": span_figures(&cfg, &days),
            "call_details": {"rows": calls.sessions, "sums": {"segment_count": calls.legs}},
            "call_segments": {"rows": calls.legs, "sums": {"interaction_seconds": calls.interaction}},
        },
        "ids": {"account_id": account, "bot_id": bot},
        "infer_hive": false,
        "markdown": [readme()],
    });
    verify(tmp.path(), &spec);
    sim.shutdown().await;
}
