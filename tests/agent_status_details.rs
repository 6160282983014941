//! End to end for the `agent_status_details` dataset: the built binary backfills, runs once and
//! probes against the in-process simulator (or the built-in one); the Parquet output is read back
//! with the parquet crate and compared row by row, field by field, with the spans the
//! simulator's generator produced (`tests/common/agent_status_details.rs`), never with what the
//! exporter's decoder produced.

mod common;

use std::collections::{BTreeMap, HashSet};

use arrow::array::AsArray;
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use common::agent_status_details::*;
use common::*;
use smartassist_export::simulator::agent_status_details::ENDPOINT;
use smartassist_export::simulator::SimulatorConfig;

const NY: Tz = chrono_tz::America::New_York;
const PATH: &str = "/agentassist/api/public/analytics/account/{account_id}";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// A simulator that refuses any `limit` above the documented 50 with a 400.
fn sim_config(agents: usize, now: &str) -> SimulatorConfig {
    SimulatorConfig {
        seed: 13,
        agents,
        max_page_size: 50,
        strict_page_size: true,
        frozen_now: Some(utc(now)),
        ..SimulatorConfig::default()
    }
}

/// Only `agent_status_details` enabled, with `extra` keys in its section.
fn section(extra: &str) -> String {
    format!("[user_status]\nenabled = false\n[agent_status_details]\nenabled = true\n{extra}\n")
}

fn backfill(config: &std::path::Path, from: &str, to: &str) {
    assert_success(&run_bin(
        config,
        &[
            "backfill",
            "--from",
            from,
            "--to",
            to,
            "--dataset",
            "agent_status_details",
        ],
    ));
}

/// Rows equal the expectation one by one (a readable first difference), then as a whole.
fn assert_rows_equal(got: &[SpanRow], want: &[SpanRow]) {
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len(), "row count");
}

/// Each span once, in the partition of its local start date.
fn assert_each_span_once_in_its_start_day(rows: &[SpanRow], tz: Tz) {
    let keys: HashSet<(&str, i64)> = rows.iter().map(|r| (&*r.user_id, r.start_ms)).collect();
    assert_eq!(keys.len(), rows.len(), "a span was exported twice");
    for r in rows {
        let local = tz
            .timestamp_millis_opt(r.start_ms)
            .single()
            .expect("ts")
            .date_naive();
        assert_eq!(local.to_string(), r.dt, "{r:?}");
    }
}

/// Spans ending on a later local day than they start: the API serves them to both days.
fn crossing_midnight(rows: &[SpanRow], tz: Tz) -> usize {
    rows.iter()
        .filter(|r| {
            r.end_ms.is_some_and(|e| {
                tz.timestamp_millis_opt(e - 1)
                    .single()
                    .expect("ts")
                    .date_naive()
                    .to_string()
                    != r.dt
            })
        })
        .count()
}

/// New York's 25-hour day through the `/v3` path with the default page size (50, the cap) and
/// 60 agents: two pages per request window, two windows on the fall-back day, every generated
/// span exactly once with every field (`agent_id` included), the duration sums per day, no
/// refused request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fall_back_backfill_exports_every_generated_span_once_v3() {
    let cfg = sim_config(60, "2026-11-02T18:00:00Z");
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let keys = format!("timezone = \"America/New_York\"\npath = \"{PATH}/v3/agentstatusdetails\"");
    let config = write_config(tmp.path(), &sim.base_url(), &out, &section(&keys));
    backfill(&config, "2026-10-31", "2026-11-02");

    let days = [date("2026-10-31"), date("2026-11-01"), date("2026-11-02")];
    let all: Vec<usize> = (0..cfg.agents).collect();
    let want = expected_spans(&cfg, NY, &days, &all, true);
    let got = span_rows(&out);
    assert_rows_equal(&got, &want.rows);
    assert_eq!(spans_per_day(&got), spans_per_day(&want.rows));
    assert_eq!(spans_per_day(&got).len(), 3);
    assert_each_span_once_in_its_start_day(&got, NY);

    // The fixture exercises what the test claims: spans crossing local midnight, open spans,
    // and spans in the repeated hour, claimed by the day's second (EST) request.
    assert!(crossing_midnight(&want.rows, NY) > 0);
    assert!(want.rows.iter().any(|r| r.end_ms.is_none()), "no open span");
    let (_, fall_back_end) = day_bounds(NY, date("2026-11-01"));
    let last_hour = (fall_back_end - Duration::hours(1)).timestamp_millis();
    let late = got
        .iter()
        .filter(|r| r.dt == "2026-11-01" && r.start_ms >= last_hour)
        .collect::<Vec<_>>();
    assert!(!late.is_empty(), "no span starts in the 25th hour");
    assert!(late.iter().all(|r| r.offset == 300), "{late:?}");

    // 1 + 2 + 1 request windows of two pages each; nothing refused, nothing over the cap.
    let stats = sim.stats();
    assert_eq!(stats.count(ENDPOINT, 400), 0);
    assert_eq!(stats.count(ENDPOINT, 200), 8);
    assert_eq!(stats.requests(ENDPOINT), 8);
    sim.shutdown().await;
}

/// New York's 23-hour day through the unversioned path in pages of 7: one request window a day,
/// three pages each, every span once at the offset of the day's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_forward_backfill_exports_every_generated_span_once() {
    let cfg = sim_config(16, "2026-03-09T20:00:00Z");
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let keys = "timezone = \"America/New_York\"\npage_size = 7";
    let config = write_config(tmp.path(), &sim.base_url(), &out, &section(keys));
    backfill(&config, "2026-03-07", "2026-03-09");

    let days = [date("2026-03-07"), date("2026-03-08"), date("2026-03-09")];
    let all: Vec<usize> = (0..cfg.agents).collect();
    let want = expected_spans(&cfg, NY, &days, &all, false);
    let got = span_rows(&out);
    assert_rows_equal(&got, &want.rows);
    assert_eq!(spans_per_day(&got), spans_per_day(&want.rows));
    assert_each_span_once_in_its_start_day(&got, NY);
    assert!(crossing_midnight(&want.rows, NY) > 0);
    let (s, e) = day_bounds(NY, date("2026-03-08"));
    assert_eq!((e - s).num_hours(), 23);
    assert!(got
        .iter()
        .filter(|r| r.dt == "2026-03-08")
        .all(|r| r.offset == 300));

    let stats = sim.stats();
    assert_eq!(stats.count(ENDPOINT, 400), 0);
    assert_eq!(stats.count(ENDPOINT, 200), 9);
    sim.shutdown().await;
}

/// Hostile spans (bad end time, bad duration, a number where a string belongs) through the
/// `/v2` path (date-time bounds) in a zone east of UTC: each is one reject, in the partition of
/// its day, with raw JSON naming its user; every other span is exported exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_spans_go_to_rejects_with_their_raw_json_and_the_rest_exports() {
    let kolkata: Tz = chrono_tz::Asia::Kolkata;
    let cfg = SimulatorConfig {
        malformed_every: Some(5),
        ..sim_config(12, "2026-06-03T00:00:00Z")
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let keys = format!("timezone = \"Asia/Kolkata\"\npath = \"{PATH}/v2/agentstatusdetails\"");
    let config = write_config(tmp.path(), &sim.base_url(), &out, &section(&keys));
    backfill(&config, "2026-06-01", "2026-06-02");

    let days = [date("2026-06-01"), date("2026-06-02")];
    let all: Vec<usize> = (0..cfg.agents).collect();
    let want = expected_spans(&cfg, kolkata, &days, &all, false);
    assert!(want.malformed() > 0, "the fixture must hold hostile spans");
    let got = span_rows(&out);
    assert_rows_equal(&got, &want.rows);
    assert!(got.iter().all(|r| r.offset == -330));

    let mut by_day: BTreeMap<String, usize> = BTreeMap::new();
    for (file, batches) in read_dataset(&out, "_rejects/agent_status_details") {
        assert!(file.starts_with("account_id=demo-account/dt="), "{file}");
        assert!(file.ends_with("/part-00000.parquet"), "{file}");
        let dt = file
            .split('/')
            .find_map(|s| s.strip_prefix("dt="))
            .expect("dt")
            .to_string();
        for b in batches {
            let col = |n: &str| b.column_by_name(n).expect(n).as_string::<i32>().clone();
            let (dataset, endpoint, raw) = (col("dataset"), col("endpoint"), col("raw_json"));
            for i in 0..b.num_rows() {
                assert_eq!(dataset.value(i), "agent_status_details");
                assert_eq!(endpoint.value(i), "agent_status_details");
                let json: serde_json::Value =
                    serde_json::from_str(raw.value(i)).expect("raw_json is JSON");
                assert!(json["userId"].as_str().is_some_and(|u| u.starts_with("u-")));
                assert_eq!(json["status"].as_array().map(Vec::len), Some(1), "{json}");
                *by_day.entry(dt.clone()).or_default() += 1;
            }
        }
    }
    assert_eq!(by_day, want.malformed_by_day);
    assert_eq!(sim.stats().count(ENDPOINT, 400), 0);
    sim.shutdown().await;
}

/// The `/v2` generation (date-time bounds in the date filter) across London's fall-back day,
/// with hostile spans and pages of 7: every generated span exactly once with every field, in
/// the partition of its start; spans crossing local midnight, which the API serves to both
/// days, written once; each hostile span one reject of its own day with its raw JSON; the open
/// span at "now" written without an end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_date_time_bounds_across_london_fall_back_export_every_field_and_reject_hostile_spans_once(
) {
    let london: Tz = chrono_tz::Europe::London;
    let cfg = SimulatorConfig {
        malformed_every: Some(11),
        ..sim_config(16, "2024-10-28T12:00:00Z")
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let keys = format!(
        "timezone = \"Europe/London\"\npage_size = 7\npath = \"{PATH}/v2/agentstatusdetails\""
    );
    let config = write_config(tmp.path(), &sim.base_url(), &out, &section(&keys));
    backfill(&config, "2024-10-26", "2024-10-28");

    let days = [date("2024-10-26"), date("2024-10-27"), date("2024-10-28")];
    let (s, e) = day_bounds(london, days[1]);
    assert_eq!((e - s).num_hours(), 25);
    let all: Vec<usize> = (0..cfg.agents).collect();
    let want = expected_spans(&cfg, london, &days, &all, false);
    let got = span_rows(&out);
    assert_rows_equal(&got, &want.rows);
    assert_each_span_once_in_its_start_day(&got, london);
    assert_eq!(spans_per_day(&got).len(), 3);
    assert!(
        crossing_midnight(&want.rows, london) > 0,
        "no span crosses local midnight"
    );
    assert!(want.rows.iter().any(|r| r.end_ms.is_none()), "no open span");

    assert!(want.malformed() > 0, "the fixture must hold hostile spans");
    let mut by_day: BTreeMap<String, usize> = BTreeMap::new();
    for (file, batches) in read_dataset(&out, "_rejects/agent_status_details") {
        let dt = file
            .split('/')
            .find_map(|s| s.strip_prefix("dt="))
            .expect("dt")
            .to_string();
        for b in batches {
            let raw = b
                .column_by_name("raw_json")
                .expect("raw_json")
                .as_string::<i32>()
                .clone();
            for i in 0..b.num_rows() {
                serde_json::from_str::<serde_json::Value>(raw.value(i)).expect("raw_json is JSON");
                *by_day.entry(dt.clone()).or_default() += 1;
            }
        }
    }
    assert_eq!(
        by_day, want.malformed_by_day,
        "one reject per hostile span, in its day"
    );
    assert_eq!(sim.stats().count(ENDPOINT, 400), 0);
    sim.shutdown().await;
}

/// A span still open when its day is exported has no end; exporting the day again later writes
/// it with its end (and `agents` selects only the listed agents).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_span_is_rewritten_with_its_end_when_its_day_is_exported_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let day = [date("2026-05-04")];
    let chosen = [1usize, 2, 3];
    let emails: Vec<String> = chosen
        .iter()
        .map(|&i| {
            format!(
                "{:?}",
                smartassist_export::simulator::generator::agent(13, i).email
            )
        })
        .collect();
    let keys = format!("timezone = \"UTC\"\nagents = [{}]", emails.join(", "));
    let mut exports = Vec::new();
    for now in ["2026-05-04T12:00:00Z", "2026-05-05T12:00:00Z"] {
        let cfg = sim_config(8, now);
        let sim = start_sim(cfg.clone()).await;
        let dir = tmp.path().join(&now[..10]);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let config = write_config(&dir, &sim.base_url(), &out, &section(&keys));
        backfill(&config, "2026-05-04", "2026-05-04");
        let want = expected_spans(&cfg, chrono_tz::UTC, &day, &chosen, false);
        let got = span_rows(&out);
        assert_rows_equal(&got, &want.rows);
        exports.push(got);
        sim.shutdown().await;
    }
    let open_before: Vec<&SpanRow> = exports[0].iter().filter(|r| r.end_ms.is_none()).collect();
    assert!(!open_before.is_empty(), "the fixture must have open spans");
    let closed_after = open_before
        .iter()
        .filter(|open| {
            exports[1].iter().any(|r| {
                r.user_id == open.user_id && r.start_ms == open.start_ms && r.end_ms.is_some()
            })
        })
        .count();
    assert!(
        closed_after > 0,
        "no open span got its end: {open_before:?}"
    );
}

/// `run --once` with both history datasets: agent_status_details catches up from its stored
/// watermark (plus `lookback_days`) to today, user_status starts at today, and both watermarks
/// end at today.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_catches_up_from_the_watermark_and_keeps_both_datasets_current() {
    let now = now_clear_of_midnight(NY, Duration::minutes(5)).await;
    let cfg = SimulatorConfig {
        frozen_now: Some(now),
        ..sim_config(5, "2026-01-01T00:00:00Z")
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let sections = "[user_status]\ntimezone = \"America/New_York\"\n\
                    [agent_status_details]\nenabled = true\n";
    let config = write_config(tmp.path(), &sim.base_url(), &out, sections);
    let today = now.with_timezone(&NY).date_naive();
    let day = |back: u64| {
        today
            .checked_sub_days(chrono::Days::new(back))
            .expect("date")
    };
    let state = out.join("_state/agent_status_details/account_id=demo-account.json");
    std::fs::create_dir_all(state.parent().expect("dir")).expect("mkdir");
    let seeded = serde_json::json!({
        "version": smartassist_export::state::STATE_VERSION,
        "through_day": day(4).to_string(),
        "covered_until": day(3).and_hms_opt(4, 0, 0).expect("t").and_utc(),
        "updated_at": now,
    });
    std::fs::write(&state, seeded.to_string()).expect("seed watermark");

    assert_success(&run_bin(&config, &["run", "--once"]));

    let through = |dataset: &str| {
        let path = out.join(format!("_state/{dataset}/account_id=demo-account.json"));
        let mark: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("watermark")).expect("json");
        mark["through_day"]
            .as_str()
            .expect("through_day")
            .to_string()
    };
    assert_eq!(through("agent_status_details"), today.to_string());
    assert_eq!(through("user_status"), today.to_string());

    // The watermark day minus one lookback day, up to today: six days, exactly the generator's.
    let days: Vec<_> = (0..=5).rev().map(day).collect();
    let all: Vec<usize> = (0..cfg.agents).collect();
    let want = expected_spans(&cfg, NY, &days, &all, false);
    let got = span_rows(&out);
    assert_rows_equal(&got, &want.rows);
    // One partition per day the generator has spans for (today has none in its first minutes).
    let partitions: HashSet<String> = got.iter().map(|r| r.dt.clone()).collect();
    let want_days: HashSet<String> = want.rows.iter().map(|r| r.dt.clone()).collect();
    assert!(want_days.len() >= 5, "{want_days:?}");
    assert_eq!(partitions, want_days);
    let user_status_days: HashSet<String> =
        user_status_rows(&out).into_iter().map(|r| r.dt).collect();
    assert_eq!(
        user_status_days,
        HashSet::from([day(1).to_string(), today.to_string()])
    );
    assert_eq!(sim.stats().count(ENDPOINT, 200), 6);
    sim.shutdown().await;
}

/// The built-in simulator serves the dataset: `check` probes it, `demo` exports it; a page size
/// above the API's maximum is a config error naming its key; `schema` lists the table in every
/// format (Athena with the `dt` projection, DuckDB with pinned `hive_types`, Arrow).
#[test]
fn check_demo_config_and_schema_include_the_dataset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(tmp.path(), "simulator", &out, &section(""));
    let check = run_bin(&config, &["check"]);
    assert_success(&check);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("agent_status_details: OK (1 agent record(s)"),
        "{stdout}"
    );

    let bad = write_config(tmp.path(), "simulator", &out, &section("page_size = 51"));
    let refused = run_bin(&bad, &["check"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("agent_status_details.page_size"),
        "{stderr}"
    );

    let demo_out = tmp.path().join("demo");
    let demo = std::process::Command::new(BIN)
        .args(["demo", "--days", "1", "--out"])
        .arg(&demo_out)
        .env_remove("RUST_LOG")
        .output()
        .expect("runs");
    assert_success(&demo);
    let printed = String::from_utf8_lossy(&demo.stdout);
    assert!(printed.contains("agent_status_details"), "{printed}");
    let files = files_under(&demo_out.join("agent_status_details"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("account_id=demo-account/dt="));
    assert!(!span_rows(&demo_out).is_empty());

    let schema = |format: &str| {
        let out = std::process::Command::new(BIN)
            .args([
                "-c",
                "/nonexistent/config.toml",
                "schema",
                "--format",
                format,
            ])
            .output()
            .expect("runs");
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let athena = schema("athena");
    let table = athena
        .split("CREATE EXTERNAL TABLE IF NOT EXISTS `agent_status_details`")
        .nth(1)
        .expect("the Athena DDL has the table");
    let table = table.split(";\n").next().expect("statement");
    for needle in [
        "`start_time` timestamp,",
        "`duration_seconds` bigint,",
        "`timezone_offset_minutes` int,",
        "PARTITIONED BY (`account_id` string, `dt` string)",
        "'projection.dt.range' = '2020-01-01,NOW+1DAYS'",
        "/agent_status_details/account_id=${account_id}/dt=${dt}/'",
    ] {
        assert!(table.contains(needle), "{needle} not in {table}");
    }
    assert!(schema("duckdb").contains(
        "CREATE OR REPLACE VIEW agent_status_details AS\n  SELECT * FROM read_parquet('out/agent_status_details/*/*/*.parquet', hive_partitioning = true,\n    union_by_name = true, hive_types = {'account_id': VARCHAR, 'dt': DATE});"
    ));
    assert!(schema("arrow").contains("agent_status_details (partitioned by account_id, dt)"));
}

/// The daemon schedules both history datasets: each runs on its own cron job, both watermarks
/// reach today, and `/metrics` reports agent_status_details' runs, rows and requests under its
/// own labels.
#[cfg(unix)]
#[test]
fn the_daemon_keeps_both_history_datasets_current_with_metrics_per_dataset() {
    const RUNS: &str =
        "smartassist_runs_total{dataset=\"agent_status_details\",outcome=\"success\"}";
    const RUNS_US: &str = "smartassist_runs_total{dataset=\"user_status\",outcome=\"success\"}";
    const ROWS: &str = "smartassist_rows_written_total{dataset=\"agent_status_details\"}";
    const OK_REQUESTS: &str =
        "smartassist_http_requests_total{endpoint=\"agent_status_details\",status_class=\"2xx\"}";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let now = rt.block_on(now_clear_of_midnight(NY, Duration::minutes(5)));
    let cfg = SimulatorConfig {
        frozen_now: Some(now),
        ..sim_config(4, "2026-01-01T00:00:00Z")
    };
    let sim = rt.block_on(start_sim(cfg.clone()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr: std::net::SocketAddr| {
        let sections = format!(
            "[user_status]\nschedule = \"* * * * * *\"\ntimezone = \"America/New_York\"\n\
             [agent_status_details]\nenabled = true\nschedule = \"* * * * * *\"\n\
             [server]\nlisten = \"{addr}\"\nshutdown_timeout_seconds = 2\n"
        );
        write_config(tmp.path(), &sim.base_url(), &out, &sections)
    };
    let log = tmp.path().join("run.log");
    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &log);
    let body = wait_for_metrics(addr, &mut child, std::time::Duration::from_secs(60), |m| {
        metric(m, RUNS) >= 2.0 && metric(m, RUNS_US) >= 2.0
    });
    assert!(metric(&body, ROWS) > 0.0, "{body}");
    assert!(metric(&body, OK_REQUESTS) >= 2.0, "{body}");
    let status = sigterm_and_wait(&mut child, std::time::Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));

    let today = now.with_timezone(&NY).date_naive().to_string();
    for dataset in ["agent_status_details", "user_status"] {
        let path = out.join(format!("_state/{dataset}/account_id=demo-account.json"));
        let mark: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("watermark")).expect("json");
        assert_eq!(mark["through_day"], today.as_str(), "{dataset}");
    }
    // Today's partition holds exactly the generator's spans of today (none in its first minutes).
    let all: Vec<usize> = (0..cfg.agents).collect();
    let want = expected_spans(
        &cfg,
        NY,
        &[now.with_timezone(&NY).date_naive()],
        &all,
        false,
    );
    let got: Vec<SpanRow> = span_rows(&out)
        .into_iter()
        .filter(|r| r.dt == today)
        .collect();
    assert_rows_equal(&got, &want.rows);
    rt.block_on(sim.shutdown());
}
