//! End-to-end: the built binary backfills against the in-process simulator; the Parquet output
//! is read back with the parquet crate and compared with figures computed from the simulator's
//! generator (never from the exporter's own output).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeZone;
use chrono_tz::Tz;
use common::*;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::faults::{EveryNth, FaultKind, FaultPlan};
use smartassist_export::simulator::user_status::UserStatusSim;
use smartassist_export::simulator::{intent_realtime, ModelSettings, SimulatorConfig};

const NY: Tz = chrono_tz::America::New_York;

fn sim_config(agents: usize) -> SimulatorConfig {
    SimulatorConfig {
        seed: 7,
        agents,
        max_page_size: 4,
        ..SimulatorConfig::default()
    }
}

const US_SECTION: &str = r#"
[user_status]
granularity = "PT30M"
timezone = "America/New_York"
page_size = 3
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_across_fall_back_is_exact_and_rerun_is_identical() {
    let cfg = sim_config(7);
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(tmp.path(), &sim.base_url(), &out, US_SECTION);

    // 2026-11-01 is the 25-hour fall-back day in New York.
    let days = [date("2026-10-31"), date("2026-11-01"), date("2026-11-02")];
    let run = run_bin(
        &config,
        &["backfill", "--from", "2026-10-31", "--to", "2026-11-02"],
    );
    assert_success(&run);

    let expected = expected_user_status(cfg.seed, cfg.agents, NY, &days, Granularity::PT30M, None);
    let rows = user_status_rows(&out);
    let actual = actual_per_day(&rows);
    for (day, (exp_rows, exp_sum, _)) in &expected {
        assert_eq!(actual.get(day), Some(&(*exp_rows, *exp_sum)), "day {day}");
    }
    assert_eq!(actual.len(), 3);

    // No duplicates; every bucket in the partition of its local start date; 50 buckets of
    // 30 minutes on the 25-hour day.
    let keys: HashSet<_> = rows
        .iter()
        .map(|r| (&r.user_id, r.bucket_start, &r.metric, &r.value))
        .collect();
    assert_eq!(keys.len(), rows.len(), "duplicate rows");
    for r in &rows {
        let local = NY
            .timestamp_millis_opt(r.bucket_start)
            .single()
            .expect("ts")
            .date_naive();
        assert_eq!(local.to_string(), r.dt);
        assert_eq!(r.bucket_end - r.bucket_start, 30 * 60 * 1000);
    }
    let fall_back_starts: HashSet<i64> = rows
        .iter()
        .filter(|r| r.dt == "2026-11-01")
        .map(|r| r.bucket_start)
        .collect();
    let (s, e) = day_bounds(NY, date("2026-11-01"));
    assert_eq!((e - s).num_hours(), 25);
    assert!(fall_back_starts
        .iter()
        .all(|t| *t >= s.timestamp_millis() && *t < e.timestamp_millis()));
    assert!(
        fall_back_starts
            .iter()
            .any(|t| *t >= (e - chrono::Duration::hours(1)).timestamp_millis()),
        "the extra hour was fetched"
    );

    // Only complete Parquet files and hidden files in the dataset tree.
    for f in files_under(&out.join("user_status")) {
        let name = f.rsplit('/').next().expect("name");
        assert!(
            name.ends_with(".parquet") || name.starts_with('.') || name.starts_with('_'),
            "stray file {f}"
        );
        assert!(!name.starts_with('.'), "staging file left behind: {f}");
    }

    // A second run of the same range yields identical rows and the same files.
    let files_before = files_under(&out);
    let rerun = run_bin(
        &config,
        &["backfill", "--from", "2026-10-31", "--to", "2026-11-02"],
    );
    assert_success(&rerun);
    assert_eq!(user_status_rows(&out), rows);
    assert_eq!(files_under(&out), files_before);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_forward_day_has_23_hours_and_no_overlap() {
    let cfg = sim_config(5);
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let section = US_SECTION.replace("PT30M", "PT15M");
    let config = write_config(tmp.path(), &sim.base_url(), &out, &section);
    let days = [date("2026-03-07"), date("2026-03-08"), date("2026-03-09")];
    assert_success(&run_bin(
        &config,
        &["backfill", "--from", "2026-03-07", "--to", "2026-03-09"],
    ));
    let expected = expected_user_status(cfg.seed, cfg.agents, NY, &days, Granularity::PT15M, None);
    let rows = user_status_rows(&out);
    let actual = actual_per_day(&rows);
    for (day, (exp_rows, exp_sum, _)) in &expected {
        assert_eq!(actual.get(day), Some(&(*exp_rows, *exp_sum)), "day {day}");
    }
    let keys: HashSet<_> = rows
        .iter()
        .map(|r| (&r.user_id, r.bucket_start, &r.metric, &r.value))
        .collect();
    assert_eq!(keys.len(), rows.len(), "a bucket was exported twice");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_give_exactly_the_same_data() {
    let cfg = sim_config(6);
    let clean_sim = start_sim(cfg.clone()).await;
    let faulty_sim = start_sim(cfg.clone()).await;
    faulty_sim.set_faults(FaultPlan {
        next: vec![
            FaultKind::Status429 {
                retry_after: Some("1".into()),
            },
            FaultKind::Status5xx(503),
            FaultKind::TruncatedJson,
            FaultKind::DropConnection,
            FaultKind::RateLimitBody400,
            FaultKind::Status429 { retry_after: None },
            FaultKind::Slow(Duration::from_millis(300)),
            FaultKind::Status5xx(500),
        ],
        every_nth: Some(EveryNth {
            n: 4,
            kind: FaultKind::Status5xx(502),
        }),
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let dir_a = tmp.path().join("cfg-a");
    let dir_b = tmp.path().join("cfg-b");
    std::fs::create_dir_all(&dir_a).expect("mkdir");
    std::fs::create_dir_all(&dir_b).expect("mkdir");
    let config_a = write_config(&dir_a, &clean_sim.base_url(), &out_a, US_SECTION);
    let config_b = write_config(&dir_b, &faulty_sim.base_url(), &out_b, US_SECTION);
    let args = ["backfill", "--from", "2026-06-01", "--to", "2026-06-03"];
    assert_success(&run_bin(&config_a, &args));
    let faulty = run_bin(&config_b, &args);
    assert_success(&faulty);
    let stats = faulty_sim.stats();
    assert!(
        stats.faults_injected >= 8,
        "faults were injected: {stats:?}"
    );
    let a = user_status_rows(&out_a);
    assert!(!a.is_empty());
    assert_eq!(user_status_rows(&out_b), a);
    clean_sim.shutdown().await;
    faulty_sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_go_to_rejects_and_the_rest_exports() {
    let cfg = SimulatorConfig {
        malformed_every: Some(40),
        ..sim_config(5)
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let section = US_SECTION.replace("America/New_York", "UTC");
    let config = write_config(tmp.path(), &sim.base_url(), &out, &section);
    let days = [date("2026-06-01"), date("2026-06-02")];
    assert_success(&run_bin(
        &config,
        &["backfill", "--from", "2026-06-01", "--to", "2026-06-02"],
    ));
    let expected = expected_user_status(
        cfg.seed,
        cfg.agents,
        chrono_tz::UTC,
        &days,
        Granularity::PT30M,
        Some(40),
    );
    let actual = actual_per_day(&user_status_rows(&out));
    let mut expected_bad = 0;
    for (day, (rows, sum, bad)) in &expected {
        assert_eq!(actual.get(day), Some(&(*rows, *sum)), "day {day}");
        expected_bad += bad;
    }
    assert!(
        expected_bad > 0,
        "the fixture must contain malformed entries"
    );
    let rejects: usize = read_dataset(&out, "_rejects/user_status")
        .iter()
        .flat_map(|(_, b)| b.iter().map(|b| b.num_rows()))
        .sum();
    assert_eq!(rejects, expected_bad);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intent_snapshot_is_merged_exactly_once() {
    let now = chrono::Utc::now();
    let cfg = SimulatorConfig {
        bots: vec!["st-bot-1".into()],
        intent_interval: Duration::from_secs(600),
        intent_epoch: now - chrono::Duration::days(2),
        frozen_now: Some(now),
        ..sim_config(2)
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let section = "[user_status]\nenabled = false\n[intent_realtime]\nbot_ids = [\"st-bot-1\"]\ntimezone = \"Asia/Kolkata\"\n";
    let config = write_config(tmp.path(), &sim.base_url(), &out, section);
    let args = [
        "backfill",
        "--from",
        "2026-06-01",
        "--to",
        "2026-06-01",
        "--dataset",
        "intent_realtime",
    ];
    assert_success(&run_bin(&config, &args));
    assert_success(&run_bin(&config, &args));

    let feed = intent_realtime::feed(&cfg, "st-bot-1");
    let expected: Vec<intent_realtime::GeneratedSession> =
        intent_realtime::latest_sessions(&feed, now);
    assert_eq!(expected.len(), 25);
    let mut ids = Vec::new();
    let mut handled = 0i64;
    for (file, batches) in read_dataset(&out, "intent_realtime") {
        assert!(
            file.starts_with("account_id=demo-account/bot_id=st-bot-1/dt="),
            "{file}"
        );
        for b in batches {
            use arrow::array::AsArray;
            let sid = b
                .column_by_name("session_id")
                .expect("sid")
                .as_string::<i32>()
                .clone();
            let th = b
                .column_by_name("time_handled_seconds")
                .expect("th")
                .as_primitive::<arrow::datatypes::Int64Type>()
                .clone();
            for i in 0..b.num_rows() {
                ids.push(sid.value(i).to_string());
                handled += th.value(i);
            }
        }
    }
    let mut want: Vec<String> = expected.iter().map(|s| s.session_id.clone()).collect();
    want.sort();
    ids.sort();
    assert_eq!(ids, want, "every session exactly once");
    assert_eq!(
        handled,
        expected.iter().map(|s| s.time_handled_seconds).sum::<i64>()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_response_shape_exports_the_same_rows() {
    let current = start_sim(sim_config(5)).await;
    let legacy = start_sim(SimulatorConfig {
        models: ModelSettings::default().with(UserStatusSim { legacy_shape: true }),
        ..sim_config(5)
    })
    .await;
    let tmp = tempfile::tempdir().expect("tmp");
    let mut outs = Vec::new();
    for (name, sim) in [("current", &current), ("legacy", &legacy)] {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let out = dir.join("out");
        let config = write_config(&dir, &sim.base_url(), &out, US_SECTION);
        assert_success(&run_bin(
            &config,
            &["backfill", "--from", "2026-06-10", "--to", "2026-06-11"],
        ));
        outs.push(user_status_rows(&out));
    }
    assert!(!outs[0].is_empty());
    assert_eq!(outs[0], outs[1]);
    current.shutdown().await;
    legacy.shutdown().await;
}

/// A server that refuses a `limit` above its maximum (HTTP 400) instead of clamping it: the
/// first request is retried once at the documented default of 50, every later request of the
/// run uses 50 directly, and the rows are exactly the generator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_page_size_falls_back_to_the_documented_default() {
    use smartassist_export::simulator::user_status;
    let cfg = SimulatorConfig {
        seed: 11,
        agents: 120,
        max_page_size: 50,
        strict_page_size: true,
        ..SimulatorConfig::default()
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let section = "[user_status]\ngranularity = \"PT1H\"\ntimezone = \"UTC\"\npage_size = 500\n";
    let config = write_config(tmp.path(), &sim.base_url(), &out, section);
    let run = run_bin(
        &config,
        &[
            "backfill",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-03",
            "--concurrency",
            "1",
        ],
    );
    assert_success(&run);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("refused user_status.page_size"), "{stderr}");

    let days = [date("2024-01-01"), date("2024-01-02"), date("2024-01-03")];
    let expected = expected_user_status(
        cfg.seed,
        cfg.agents,
        chrono_tz::UTC,
        &days,
        Granularity::PT1H,
        None,
    );
    let actual = actual_per_day(&user_status_rows(&out));
    for (day, (exp_rows, exp_sum, _)) in &expected {
        assert_eq!(actual.get(day), Some(&(*exp_rows, *exp_sum)), "day {day}");
    }
    // 120 agents in pages of 50 = 3 pages a day; one refused request in the whole run.
    let stats = sim.stats();
    assert_eq!(stats.count(user_status::ENDPOINT, 400), 1);
    assert_eq!(stats.count(user_status::ENDPOINT, 200), 9);
}
