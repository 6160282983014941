//! The built binary against S3 faults: `backfill` and the `run` daemon writing to moto's S3
//! server through the fault-injecting proxy of `common::s3_faults` (500 InternalError, 503
//! SlowDown, connections dropped mid-request or before the answer, slow answers), with the
//! `[output]` retry keys of the config. Expected rows come from the simulator's generator;
//! moto is asked directly (not through the proxy) which objects and multipart uploads exist
//! afterwards, and the proxy's own counts of injected faults are compared with the daemon's
//! `/metrics`. The S3 client alone against the same faults is tested in `s3_faults.rs`.
//!
//! The tests FAIL when moto cannot start; a developer without moto opts out with
//! `SMARTASSIST_SKIP_S3=1`.

mod common;

use std::time::Duration;

use common::s3_faults::{FaultKind, FaultPlan, S3FaultProxy, S3Op};
use common::*;
use smartassist_export::simulator::SimulatorConfig;
use smartassist_export::sink::{PAGE_ROW_GROUP_BYTES_ENV, UPLOAD_PART_BYTES};

const BUCKET: &str = "fault-bucket";

/// Object keys under `prefix`, asked of moto directly.
async fn keys_in_moto(moto: &MotoServer, prefix: &str) -> Vec<String> {
    s3_keys(s3_client(&moto.endpoint(), BUCKET).as_ref(), prefix).await
}

/// Agents of the backfill through faults: with one agent per page and one row group per page
/// (`SMARTASSIST_PAGE_ROW_GROUP_BYTES=0`, each row group carrying its own column chunks and
/// footer entries) a day of them encodes to about 9 MiB, more than one upload part. Pages
/// sharing row groups, the default, would make that day under 1 MiB: enough rows for that size
/// would take the simulator minutes to serve.
const MULTIPART_AGENTS: usize = 2600;

/// The built binary backfills two days to S3 through the proxy with every kind of fault on half
/// of all requests, each day's file large enough to be a multipart upload: the run succeeds
/// with the default tuning, the rows equal the generator's, only complete partition objects
/// exist and no multipart upload is left open. The seed is one whose faults hit each step of a
/// multipart upload (the proxy's decisions are deterministic); small PutObjects go through
/// faults in the daemon test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_with_multipart_uploads_through_random_s3_faults_is_exact() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let proxy = S3FaultProxy::start(&moto.endpoint(), Some(FaultPlan::random(21, 0.5, 2))).await;
    let sim_cfg = SimulatorConfig {
        seed: 29,
        agents: MULTIPART_AGENTS,
        max_page_size: 50,
        ..SimulatorConfig::default()
    };
    let sim = start_sim(sim_cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let sections = format!(
        "endpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\n\n[user_status]\ngranularity = \"PT15M\"\ntimezone = \"UTC\"\npage_size = 1\n\n[intent_realtime]\nenabled = false\n",
        proxy.endpoint()
    );
    let config = write_config(
        tmp.path(),
        &sim.base_url(),
        std::path::Path::new("s3://fault-bucket/lake"),
        &sections,
    );
    let run = tokio::task::spawn_blocking(move || {
        s3_command(&config)
            .env(PAGE_ROW_GROUP_BYTES_ENV, "0")
            .args(["backfill", "--from", "2026-06-01", "--to", "2026-06-02"])
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join");
    assert_success(&run);
    let injected = proxy.injected();
    eprintln!("injected: {injected:?}");
    for op in [
        S3Op::CreateMultipartUpload,
        S3Op::UploadPart,
        S3Op::CompleteMultipartUpload,
    ] {
        let failed: u64 = FaultKind::ALL
            .iter()
            .filter(|k| k.fails())
            .map(|k| proxy.injected_into(op, *k))
            .sum();
        assert!(failed > 0, "no failure injected into {op:?}: {injected:?}");
    }

    let days = [date("2026-06-01"), date("2026-06-02")];
    let store = s3_client(&moto.endpoint(), BUCKET);
    let files = read_s3_dataset(store.as_ref(), "lake", "user_status").await;
    let expected_keys: Vec<String> = days
        .iter()
        .map(|d| {
            format!(
                "account_id={}/dt={d}/part-00000.parquet",
                sim_cfg.account_id
            )
        })
        .collect();
    assert_eq!(
        files.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        expected_keys
    );
    for key in &expected_keys {
        let path = object_store::path::Path::from(format!("lake/user_status/{key}"));
        let size = object_store::ObjectStoreExt::head(store.as_ref(), &path)
            .await
            .expect("head")
            .size;
        assert!(
            size > UPLOAD_PART_BYTES as u64,
            "{key} is {size} bytes, not a multipart upload"
        );
    }
    let expected = expected_user_status(
        sim_cfg.seed,
        sim_cfg.agents,
        chrono_tz::UTC,
        &days,
        smartassist_export::model::Granularity::PT15M,
        None,
    );
    let actual = actual_per_day(&status_rows_of(files));
    for (day, (exp_rows, exp_sum, _)) in &expected {
        assert_eq!(actual.get(day), Some(&(*exp_rows, *exp_sum)), "day {day}");
    }
    assert_eq!(actual.len(), expected.len());
    let stray: Vec<String> = keys_in_moto(&moto, "lake")
        .await
        .into_iter()
        .filter(|k| !k.starts_with("lake/user_status/") && !k.starts_with("lake/_"))
        .collect();
    assert_eq!(stray, Vec::<String>::new());
    assert!(moto.open_multipart_uploads(BUCKET).await.is_empty());
    sim.shutdown().await;
}

/// `[output] max_retries` reaches the binary's S3 client: with PutObject failing for ever, each
/// attempt to write the day's file (the backfill tries a failed day twice) makes exactly
/// 1 + max_retries requests, and the run exits 1 naming the object. (The budget lease the
/// backfill takes first is spared: without it the backfill would not start; so is the coverage
/// record, whose write of the failed day is another object with its own attempts.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_max_retries_from_the_config_bounds_the_attempts_per_request() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let plan = FaultPlan::permanent(FaultKind::InternalError, &[S3Op::PutObject]);
    let proxy = S3FaultProxy::start(&moto.endpoint(), Some(plan)).await;
    proxy.spare("/_state/lease/");
    proxy.spare("/coverage/");
    let sim = start_sim(SimulatorConfig::default()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let sections = format!(
        "endpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\nmax_retries = 2\nretry_base_ms = 1\n\n[intent_realtime]\nenabled = false\n",
        proxy.endpoint()
    );
    let out = std::path::Path::new("s3://fault-bucket/capped");
    let config = write_config(tmp.path(), &sim.base_url(), out, &sections);
    let run = tokio::task::spawn_blocking(move || {
        s3_command(&config)
            .args(["backfill", "--from", "2026-06-01", "--to", "2026-06-01"])
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "stderr:\n{stderr}");
    let object = format!(
        "s3://{BUCKET}/capped/user_status/account_id={}/dt=2026-06-01/part-00000.parquet",
        SimulatorConfig::default().account_id
    );
    assert!(
        stderr.contains(&object),
        "stderr must name {object}:\n{stderr}"
    );
    assert_eq!(
        proxy.injected_into(S3Op::PutObject, FaultKind::InternalError),
        2 * (1 + 2)
    );
    let kept: Vec<String> = keys_in_moto(&moto, "capped")
        .await
        .into_iter()
        .filter(|k| !k.starts_with("capped/_state/lease/") && !k.contains("/coverage/"))
        .collect();
    assert_eq!(kept, Vec::<String>::new());
    sim.shutdown().await;
}

/// The built binary with `-c config`, the simulator's secret and moto's dummy credentials, and
/// no AWS setting from the developer's environment.
fn s3_command(config: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("-c")
        .arg(config)
        .env(
            "SMARTASSIST_CLIENT_SECRET",
            SimulatorConfig::default().client_secret,
        )
        .env_remove("RUST_LOG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    cmd
}

const STORE: &str = "smartassist_store_requests_total";

/// The daemon (`run`) on S3 through the proxy with every kind of fault on a third of all
/// requests, polling a bot and exporting UserStatus every second, until each job has succeeded
/// and every kind of failure was injected; then the faults stop and SIGTERM ends it. No run
/// failed, `/metrics` counts each injected failure under its outcome, the output equals the
/// generator's (yesterday's UserStatus; every intent session once, without gaps), and nothing
/// partial is left.
#[cfg(unix)]
#[test]
fn daemon_through_random_s3_faults_is_exact_and_counts_the_failed_attempts() {
    use smartassist_export::simulator::intent_realtime;
    let Some(moto) = moto_or_skip() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(moto.create_bucket(BUCKET));
    let proxy = rt.block_on(S3FaultProxy::start(
        &moto.endpoint(),
        Some(FaultPlan::random(31, 0.3, 2)),
    ));
    let started = chrono::Utc::now();
    let sim_cfg = SimulatorConfig {
        seed: 37,
        agents: 3,
        bots: vec!["st-bot-1".into()],
        intent_interval: Duration::from_millis(500),
        intent_epoch: started - chrono::TimeDelta::hours(1),
        ..SimulatorConfig::default()
    };
    let sim = rt.block_on(start_sim(sim_cfg.clone()));
    let tmp = tempfile::tempdir().expect("tmp");
    let config_for = |addr: std::net::SocketAddr| {
        let sections = format!(
            r#"endpoint = "{}"
region = "us-east-1"
allow_http = true
retry_base_ms = 10
retry_max_backoff_seconds = 1

[user_status]
schedule = "* * * * * *"
timezone = "UTC"
granularity = "PT30M"

[intent_realtime]
schedule = "* * * * * *"
bot_ids = ["st-bot-1"]

[server]
listen = "{addr}"
"#,
            proxy.endpoint()
        );
        let out = std::path::Path::new("s3://fault-bucket/daemon");
        write_config(tmp.path(), &sim.base_url(), out, &sections)
    };
    let creds = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    let log = tmp.path().join("run.log");
    let (mut child, addr) = spawn_daemon_on_free_port_with(config_for, &log, &[], &creds);
    let at_zero = wait_for_metrics(addr, &mut child, Duration::from_secs(60), |_| true);
    for outcome in ["answered", "throttled", "server_error", "transport_error"] {
        let series = format!("{STORE}{{outcome=\"{outcome}\"}}");
        assert!(at_zero.contains(&series), "{series} not registered");
    }
    let runs = |m: &str, dataset: &str, outcome: &str| {
        let series =
            format!("smartassist_runs_total{{dataset=\"{dataset}\",outcome=\"{outcome}\"}}");
        metric(m, &series)
    };
    let failing_kinds = FaultKind::ALL.iter().filter(|k| k.fails());
    wait_for_metrics(addr, &mut child, Duration::from_secs(120), |m| {
        runs(m, "user_status", "success") >= 1.0
            && runs(m, "intent_realtime", "success") >= 1.0
            && failing_kinds.clone().all(|k| proxy.injected().get(*k) > 0)
    });
    proxy.set_plan(None);
    let injected = proxy.injected();
    let expected = [
        ("throttled", injected.slow_down),
        ("server_error", injected.internal_error),
        (
            "transport_error",
            injected.drop_mid_request + injected.drop_before_response,
        ),
    ];
    let count = |m: &str, outcome: &str| metric(m, &format!("{STORE}{{outcome=\"{outcome}\"}}"));
    // The last failed attempts may still be on their way back to the client.
    let body = wait_for_metrics(addr, &mut child, Duration::from_secs(60), |m| {
        expected.iter().all(|(o, n)| count(m, o) >= *n as f64)
    });
    eprintln!("injected: {injected:?}");
    for (outcome, n) in expected {
        assert_eq!(count(&body, outcome), n as f64, "{outcome}: {injected:?}");
    }
    assert!(count(&body, "answered") > 0.0);
    for dataset in ["user_status", "intent_realtime"] {
        for outcome in ["failure", "partial"] {
            assert_eq!(runs(&body, dataset, outcome), 0.0, "{dataset} {outcome}");
        }
    }
    let status = sigterm_and_wait(&mut child, Duration::from_secs(30));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "log:\n{log_text}");

    let store = s3_client(&moto.endpoint(), BUCKET);
    // UserStatus: yesterday (complete) equals the generator; the watermark is today.
    let mark = rt.block_on(async {
        let path = object_store::path::Path::from(format!(
            "daemon/_state/user_status/account_id={}.json",
            sim_cfg.account_id
        ));
        let body = object_store::ObjectStoreExt::get(store.as_ref(), &path)
            .await
            .expect("watermark")
            .bytes()
            .await
            .expect("body");
        serde_json::from_slice::<serde_json::Value>(&body).expect("json")
    });
    let today = date(mark["through_day"].as_str().expect("through_day"));
    let yesterday = today.pred_opt().expect("date");
    let files = rt.block_on(read_s3_dataset(store.as_ref(), "daemon", "user_status"));
    let actual = actual_per_day(&status_rows_of(files));
    let want = expected_user_status(
        sim_cfg.seed,
        sim_cfg.agents,
        chrono_tz::UTC,
        &[yesterday],
        smartassist_export::model::Granularity::PT30M,
        None,
    );
    let (w_rows, w_sum, _) = want[&yesterday.to_string()];
    assert_eq!(actual.get(&yesterday.to_string()), Some(&(w_rows, w_sum)));

    // Intent sessions: each once, contiguous, from the first poll's page to the last poll.
    let feed = intent_realtime::feed(&sim_cfg, "st-bot-1");
    let newest = |t| intent_realtime::latest_session_index(&feed, t).expect("sessions");
    let (first_newest, max_k) = (newest(started), newest(chrono::Utc::now()));
    let by_id: std::collections::HashMap<String, u64> = (max_k.saturating_sub(20_000)..=max_k)
        .map(|k| (intent_realtime::session(&feed, k).session_id, k))
        .collect();
    let mut ks: Vec<u64> = Vec::new();
    for (_, batches) in rt.block_on(read_s3_dataset(store.as_ref(), "daemon", "intent_realtime")) {
        for b in batches {
            let ids = arrow::array::AsArray::as_string::<i32>(
                b.column_by_name("session_id").expect("session_id"),
            )
            .clone();
            for id in ids.iter().flatten() {
                ks.push(
                    *by_id
                        .get(id)
                        .unwrap_or_else(|| panic!("unknown session {id}")),
                );
            }
        }
    }
    ks.sort_unstable();
    assert!(!ks.is_empty(), "no intent session exported");
    for w in ks.windows(2) {
        assert_eq!(w[1], w[0] + 1, "a session is missing or exported twice");
    }
    assert!(ks[0] <= first_newest, "the first page was not exported");

    // Nothing partial: every object a reader lists is a complete partition file (read above):
    // `part-00000.parquet` for a history day, `part-<16 hex>.parquet` for an intent poll's
    // file. No multipart upload is open.
    let keys = rt.block_on(keys_in_moto(&moto, "daemon"));
    for key in keys.iter().filter(|k| !k.starts_with("daemon/_")) {
        let name = key.rsplit('/').next().unwrap_or_default();
        let poll_file = name
            .strip_prefix("part-")
            .and_then(|n| n.strip_suffix(".parquet"))
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let history_file = name == "part-00000.parquet" && !key.contains("/intent_realtime/");
        assert!(
            history_file || (poll_file && key.contains("/intent_realtime/")),
            "unexpected object {key}"
        );
    }
    assert!(rt.block_on(moto.open_multipart_uploads(BUCKET)).is_empty());
    rt.block_on(sim.shutdown());
}
