//! More than one writer on one output. Two exporters in this test process, each with its own
//! API client and its own sink (like two processes), poll the same bots and backfill the same
//! days at the same time, on local disk and on moto's S3 server; every session and every row
//! must then be stored exactly once (expected values from the simulator's generator). The
//! compare-and-swap primitive is pinned on moto, including a conditional put whose answer is
//! lost. With the built binary: a second scheduled writer is refused naming the holder, an
//! holder on another host is refused while it renews, an
//! expired lease is taken over, and a `run --once` or a backfill beside a running daemon is
//! run by the daemon and completes exactly.
//!
//! The S3 tests FAIL when moto cannot start; a developer without moto opts out with
//! `SMARTASSIST_SKIP_S3=1`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::{DurationRound, NaiveDate, TimeDelta, Utc};
use common::s3_faults::{FaultKind, FaultPlan, S3FaultProxy, S3Op};
use common::*;
use object_store::aws::AmazonS3Builder;
use smartassist_export::app::App;
use smartassist_export::backfill::{backfill, BackfillRequest};
use smartassist_export::config::{OutputLocation, StoreTuning};
use smartassist_export::datasets::intent_realtime::partition::Policy;
use smartassist_export::datasets::intent_realtime::{IntentConfig, IntentRealtime};
use smartassist_export::datasets::{Context, Dataset, SnapshotDataset};
use smartassist_export::metrics::Metrics;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::intent_realtime::{self, IntentFeed};
use smartassist_export::simulator::SimulatorConfig;
use smartassist_export::sink::Output;
use tokio_util::sync::CancellationToken;

const BUCKET: &str = "writers-bucket";
const BOTS: [&str; 2] = ["st-bot-a", "st-bot-b"];
/// Poll rounds of each exporter (every bot once per round).
const ROUNDS: usize = 30;

fn sim_config() -> SimulatorConfig {
    let epoch = Utc::now() - TimeDelta::hours(1);
    SimulatorConfig {
        seed: 31,
        agents: 4,
        max_page_size: 50,
        bots: BOTS.iter().map(|b| b.to_string()).collect(),
        // A page (25 sessions) takes 6 s to arrive, far longer than two polls of a bot are
        // apart even on a loaded machine: a missing session is then an exactly-once bug, not
        // a late poll.
        intent_interval: Duration::from_millis(250),
        intent_epoch: epoch.duration_trunc(TimeDelta::seconds(1)).unwrap_or(epoch),
        ..SimulatorConfig::default()
    }
}

fn sections(extra_output: &str) -> String {
    format!(
        "{extra_output}\n[user_status]\ngranularity = \"PT30M\"\ntimezone = \"UTC\"\npage_size = 50\n\n\
         [intent_realtime]\nbot_ids = [\"st-bot-a\", \"st-bot-b\"]\ntimezone = \"UTC\"\n"
    )
}

fn backfill_days() -> Vec<NaiveDate> {
    vec![date("2026-06-01"), date("2026-06-02"), date("2026-06-03")]
}

/// One exporter: its own app (client, rate limiter) and, for S3, its own S3 client.
async fn exporter(config: &Path, s3: Option<&str>) -> (App, Context) {
    let secret = SimulatorConfig::default().client_secret;
    let config = smartassist_export::datasets::load_config(config, Some(secret)).expect("config");
    let app = App::start(config, CancellationToken::new(), Metrics::new())
        .await
        .expect("app");
    let mut cx = app.cx.clone();
    if let Some(endpoint) = s3 {
        let output = s3_output(endpoint, "lake");
        cx.sink = output.sink;
        cx.state = output.state;
    }
    (app, cx)
}

fn s3_output(endpoint: &str, prefix: &str) -> Output {
    let location = OutputLocation::S3 {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        allow_http: true,
        tuning: StoreTuning::default(),
    };
    Output::open_on(&location, None, || {
        AmazonS3Builder::new()
            .with_access_key_id("test")
            .with_secret_access_key("test")
    })
    .expect("S3 output")
}

/// What one exporter does: backfill the days while polling every bot `ROUNDS` times; merges
/// are frequent (more than 3 files in a partition).
async fn work(app: &App, cx: &Context) {
    let config = &app.config;
    let intent = IntentRealtime::new(
        config
            .section::<IntentConfig>()
            .cloned()
            .expect("intent section"),
    )
    .with_policy(Policy {
        max_files: 3,
        fan_in: 2,
        ..Policy::default()
    });
    let user_status: Vec<Dataset> = app
        .datasets()
        .iter()
        .filter(|d| d.name() == "user_status")
        .cloned()
        .collect();
    let days = backfill_days();
    let req = BackfillRequest {
        from: days[0],
        to: days[days.len() - 1],
        datasets: user_status,
        concurrency: 2,
        skip_existing: false,
    };
    let history = async {
        let report = backfill(cx, &req).await.expect("backfill");
        assert_eq!(report.failed_days(), 0);
    };
    let polls = async {
        for _ in 0..ROUNDS {
            for bot in BOTS {
                intent.poll(cx, bot, Utc::now()).await.expect("poll");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    };
    tokio::join!(history, polls);
}

/// Both exporters at once, then one more poll of each bot (so the last sessions are known).
async fn two_writers(config: &Path, s3: Option<&str>) -> chrono::DateTime<Utc> {
    let (a, cx_a) = exporter(config, s3).await;
    let (b, cx_b) = exporter(config, s3).await;
    tokio::join!(work(&a, &cx_a), work(&b, &cx_b));
    let intent = IntentRealtime::new(
        a.config
            .section::<IntentConfig>()
            .cloned()
            .expect("intent section"),
    );
    let last = Utc::now();
    for bot in BOTS {
        intent.poll(&cx_a, bot, last).await.expect("final poll");
    }
    a.shutdown().await;
    b.shutdown().await;
    last
}

/// Every intent row: its session must be one the generator made for its bot, once, with the
/// generator's values; per bot the sessions are contiguous from before `started` up to the
/// final poll at `last`.
fn assert_intent_exact(
    files: &[(String, Vec<RecordBatch>)],
    cfg: &SimulatorConfig,
    started: chrono::DateTime<Utc>,
    last: chrono::DateTime<Utc>,
) {
    for bot in BOTS {
        let feed: IntentFeed = intent_realtime::feed(cfg, bot);
        let lo = intent_realtime::latest_session_index(&feed, started).expect("k") - 30;
        let hi = intent_realtime::latest_session_index(&feed, Utc::now()).expect("k");
        let by_id: BTreeMap<String, intent_realtime::GeneratedSession> = (lo..=hi)
            .map(|k| intent_realtime::session(&feed, k))
            .map(|s| (s.session_id.clone(), s))
            .collect();
        let mut ks = Vec::new();
        for (file, batches) in files {
            if !file.contains(&format!("bot_id={bot}/")) {
                continue;
            }
            for b in batches {
                for (id, end, user, handled) in intent_rows(b) {
                    let s = by_id
                        .get(&id)
                        .unwrap_or_else(|| panic!("{file}: unknown session {id}"));
                    assert_eq!(end, s.end_time.timestamp_millis(), "{id} end_time");
                    assert_eq!(user, s.user_id, "{id} user_id");
                    assert_eq!(handled, s.time_handled_seconds, "{id} time_handled");
                    ks.push(s.k);
                }
            }
        }
        ks.sort_unstable();
        let unique: HashSet<u64> = ks.iter().copied().collect();
        assert_eq!(unique.len(), ks.len(), "{bot}: a session was stored twice");
        for w in ks.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{bot}: sessions missing after k={}", w[0]);
        }
        let first = intent_realtime::latest_session_index(&feed, started).expect("k");
        let final_k = intent_realtime::latest_session_index(&feed, last).expect("k");
        assert!(
            ks[0] <= first,
            "{bot}: the first poll's sessions are missing"
        );
        assert!(
            *ks.last().expect("k") >= final_k,
            "{bot}: sessions up to the final poll"
        );
    }
}

fn assert_user_status_exact(files: Vec<(String, Vec<RecordBatch>)>, cfg: &SimulatorConfig) {
    let per_day_files: HashSet<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        per_day_files.len(),
        3,
        "one file per day: {per_day_files:?}"
    );
    let rows = status_rows_of(files);
    let keys: HashSet<_> = rows
        .iter()
        .map(|r| (&r.dt, &r.user_id, r.bucket_start, &r.metric, &r.value))
        .collect();
    assert_eq!(keys.len(), rows.len(), "a UserStatus row was stored twice");
    let expected = expected_user_status(
        cfg.seed,
        cfg.agents,
        chrono_tz::UTC,
        &backfill_days(),
        Granularity::PT30M,
        None,
    );
    let actual = actual_per_day(&rows);
    for (day, (rows, sum, _)) in &expected {
        assert_eq!(actual.get(day), Some(&(*rows, *sum)), "day {day}");
    }
    assert_eq!(actual.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_exporters_polling_and_backfilling_the_same_data_on_local_disk_store_it_once() {
    let cfg = sim_config();
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(tmp.path(), &sim.base_url(), &out, &sections(""));
    let started = Utc::now();
    let last = two_writers(&config, None).await;
    assert_intent_exact(&read_dataset(&out, "intent_realtime"), &cfg, started, last);
    assert_user_status_exact(read_dataset(&out, "user_status"), &cfg);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_exporters_polling_and_backfilling_the_same_data_on_s3_store_it_once() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let cfg = sim_config();
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let url = Path::new("s3://writers-bucket/lake");
    let config = write_config(tmp.path(), &sim.base_url(), url, &sections(""));
    let started = Utc::now();
    let last = two_writers(&config, Some(&moto.endpoint())).await;
    let store = s3_client(&moto.endpoint(), BUCKET);
    let intent = read_s3_dataset(store.as_ref(), "lake", "intent_realtime").await;
    assert_intent_exact(&intent, &cfg, started, last);
    assert_user_status_exact(
        read_s3_dataset(store.as_ref(), "lake", "user_status").await,
        &cfg,
    );
    sim.shutdown().await;
}

/// Stale versions are refused on S3 as on local disk; a conditional create whose answer was
/// lost (object_store retries it and gets 412 for its own object) counts as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_on_s3_refuses_a_stale_version_and_knows_its_own_lost_write() {
    let Some(moto) = moto_or_skip() else { return };
    moto.create_bucket(BUCKET).await;
    let state = s3_output(&moto.endpoint(), "cas").state;
    let v1 = state
        .put_if("x.json", Bytes::from_static(b"one"), None)
        .await
        .expect("put")
        .expect("created");
    assert!(state
        .put_if("x.json", Bytes::from_static(b"two"), None)
        .await
        .expect("put")
        .is_err());
    let (_, read) = state
        .get_versioned("x.json")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(read, v1);
    state
        .put_if("x.json", Bytes::from_static(b"two"), Some(&v1))
        .await
        .expect("put")
        .expect("current version");
    assert!(
        state
            .put_if("x.json", Bytes::from_static(b"three"), Some(&v1))
            .await
            .expect("put")
            .is_err(),
        "stale version"
    );

    let plan = FaultPlan {
        max_consecutive: 1,
        ..FaultPlan::permanent(FaultKind::DropResponse, &[S3Op::PutObject])
    };
    let proxy = S3FaultProxy::start(&moto.endpoint(), Some(plan)).await;
    let lossy = s3_output(&proxy.endpoint(), "cas").state;
    lossy
        .put_if("lost.json", Bytes::from_static(b"mine"), None)
        .await
        .expect("put")
        .expect("our own write, although the retry got 412");
    assert_eq!(proxy.injected().get(FaultKind::DropResponse), 1);
    assert_eq!(proxy.requests(S3Op::PutObject), 2, "one retry");
}

// ---------------------------------------------------------------------------------------------
// Leases, with the built binary
// ---------------------------------------------------------------------------------------------

fn daemon_sections(addr: std::net::SocketAddr) -> String {
    format!(
        "[user_status]\nschedule = \"* * * * * *\"\ngranularity = \"PT30M\"\ntimezone = \"UTC\"\n\
         lookback_days = 1\n\n[intent_realtime]\nschedule = \"* * * * * *\"\n\
         bot_ids = [\"st-bot-a\", \"st-bot-b\"]\ntimezone = \"UTC\"\n\n[server]\nlisten = \"{addr}\"\n"
    )
}

const RUNS_INTENT: &str = "smartassist_runs_total{dataset=\"intent_realtime\",outcome=\"success\"}";

#[cfg(unix)]
#[test]
fn a_second_daemon_is_refused_naming_the_holder_and_run_once_and_backfill_run_in_the_daemon() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = SimulatorConfig {
        intent_interval: Duration::from_millis(200),
        ..sim_config()
    };
    let sim = rt.block_on(start_sim(cfg.clone()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr| write_config(tmp.path(), &sim.base_url(), &out, &daemon_sections(addr));
    let (mut daemon, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    let config = tmp.path().join("config.toml");
    wait_for_metrics(addr, &mut daemon, Duration::from_secs(60), |m| {
        metric(m, RUNS_INTENT) >= 2.0
    });

    // `run --once` does not take the daemon's leases: it hands its work to the daemon.
    let once = run_bin(&config, &["run", "--once"]);
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert_eq!(once.status.code(), Some(0), "{stderr}");
    let holder = format!("pid {} on host", daemon.id());
    assert!(
        stderr.contains("A daemon owns the account's request budget") && stderr.contains(&holder),
        "the daemon is named: {stderr}"
    );

    // A second daemon (its own port) is refused the same way, and exits.
    let second_dir = tmp.path().join("second");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let second_addr = free.local_addr().expect("addr");
    drop(free);
    let second = write_config(
        &second_dir,
        &sim.base_url(),
        &out,
        &daemon_sections(second_addr),
    );
    let (code, stderr) = run_to_exit(&second, &["run"], Duration::from_secs(60));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&holder), "the holder is named: {stderr}");

    // A backfill beside the daemon runs in it, over days the daemon also writes.
    let yesterday = (Utc::now() - TimeDelta::days(1)).date_naive();
    let from = yesterday - TimeDelta::days(2);
    let args = [
        "backfill",
        "--from",
        &from.to_string(),
        "--to",
        &yesterday.to_string(),
    ];
    assert_success(&run_bin(&config, &args));
    wait_for_metrics(addr, &mut daemon, Duration::from_secs(60), |m| {
        metric(m, RUNS_INTENT) >= 8.0
    });
    let status = sigterm_and_wait(&mut daemon, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));

    let days: Vec<NaiveDate> = from.iter_days().take(3).collect();
    let expected = expected_user_status(
        cfg.seed,
        cfg.agents,
        chrono_tz::UTC,
        &days,
        Granularity::PT30M,
        None,
    );
    let rows = user_status_rows(&out);
    let actual = actual_per_day(&rows);
    for (day, (n, sum, _)) in &expected {
        assert_eq!(actual.get(day), Some(&(*n, *sum)), "day {day}");
    }
    let ids = intent_session_ids(&out);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an intent session was stored twice"
    );
    assert!(ids.len() > 25, "the daemon kept polling");
    rt.block_on(sim.shutdown());
}

#[cfg(unix)]
/// Runs the binary until it exits (killed after `limit`: a refused daemon must not run on);
/// returns its exit code and stderr.
fn run_to_exit(config: &Path, args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let log = config.with_extension("log");
    let mut child = std::process::Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(args)
        .env(
            "SMARTASSIST_CLIENT_SECRET",
            SimulatorConfig::default().client_secret,
        )
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("binary starts");
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} still running after {limit:?}: it was not refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

#[test]
fn a_renewing_holder_on_another_host_is_refused_and_an_expired_lease_is_taken_over() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt.block_on(start_sim(sim_config()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(tmp.path(), &sim.base_url(), &out, &sections(""));
    let lease = |expires: chrono::DateTime<Utc>| {
        serde_json::json!({
            "version": 2, "write_id": "x", "id": "dead", "host": "gone-host", "pid": 7,
            "command": "run", "started_at": "2026-01-01T00:00:00Z",
            "renewed_at": "2026-01-01T00:00:00Z", "expires_at": expires.to_rfc3339(),
        })
    };
    let path = out.join("_state/lease/intent_realtime/account_id=demo-account.json");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    // A holder on another host that keeps renewing (atomically, as a writer would): this host
    // cannot see its process, so its renewal is what proves it alive.
    let renewing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let renewer = {
        let (path, renewing) = (path.clone(), renewing.clone());
        std::thread::spawn(move || {
            let staged = path.with_extension("json.tmp");
            while renewing.load(std::sync::atomic::Ordering::SeqCst) {
                let mut l = lease(Utc::now() + TimeDelta::seconds(60));
                l["renewed_at"] = serde_json::json!(Utc::now().to_rfc3339());
                std::fs::write(&staged, l.to_string()).expect("lease");
                std::fs::rename(&staged, &path).expect("rename");
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let refused = run_bin(&config, &["run", "--once"]);
    renewing.store(false, std::sync::atomic::Ordering::SeqCst);
    renewer.join().expect("renewer");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pid 7 on host gone-host"), "{stderr}");

    std::fs::write(&path, lease(Utc::now() - TimeDelta::seconds(1)).to_string()).expect("lease");
    assert_success(&run_bin(&config, &["run", "--once"]));
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("lease")).expect("json");
    assert_eq!(after["command"], "run --once", "taken over, then released");
    let expires: chrono::DateTime<Utc> = after["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("time");
    assert!(expires <= Utc::now(), "released at exit");
    rt.block_on(sim.shutdown());
}
