//! "Is my lake complete?" end to end, with the built binary against the simulator behind a
//! fake that acts by day (`tests/common/day_faults.rs`): ten days of May 2024 where some are
//! exported, two fail on purpose (the fake answers 500), one is never fetched and one is empty
//! on the server. `status --json` must classify every day and print the commands that fill the
//! holes; `backfill --missing` must fetch exactly the holes (counted at the fake) and leave
//! the lake exact (rows per day from the simulator's generator); `status --rebuild` must
//! restore the record from the Parquet files.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use common::day_faults::DayFaults;
use common::*;
use serde_json::Value;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::SimulatorConfig;

const DAYS: [&str; 10] = [
    "2024-05-01",
    "2024-05-02",
    "2024-05-03",
    "2024-05-04",
    "2024-05-05",
    "2024-05-06",
    "2024-05-07",
    "2024-05-08",
    "2024-05-09",
    "2024-05-10",
];
const FAILING: [&str; 2] = ["2024-05-03", "2024-05-04"];
const NEVER_FETCHED: &str = "2024-05-07";
const EMPTY: &str = "2024-05-09";
const SEED: u64 = 7;
const AGENTS: usize = 5;

fn sim_config() -> SimulatorConfig {
    SimulatorConfig {
        seed: SEED,
        agents: AGENTS,
        ..SimulatorConfig::default()
    }
}

/// `status --json` of user_status over the ten days.
fn status_json(config: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "status",
        "--json",
        "--dataset",
        "user_status",
        "--from",
        DAYS[0],
        "--to",
        DAYS[9],
    ];
    args.extend_from_slice(extra);
    let out = run_bin(config, &args);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Day → status label of the report's one dataset.
fn classes(report: &Value) -> BTreeMap<String, String> {
    report["datasets"][0]["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| {
            (
                u["day"].as_str().expect("day").to_string(),
                u["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

fn expected_classes(overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut want: BTreeMap<String, String> = DAYS
        .iter()
        .map(|d| (d.to_string(), "ok".to_string()))
        .collect();
    want.insert(EMPTY.into(), "empty".into());
    for (day, class) in overrides {
        want.insert(day.to_string(), class.to_string());
    }
    want
}

/// Rows per day in the lake, and what the simulator's generator says each day holds (the
/// empty day: nothing).
fn lake_and_truth(out: &Path) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let got = actual_per_day(&user_status_rows(out))
        .into_iter()
        .map(|(day, (rows, _))| (day, rows))
        .collect();
    let days: Vec<NaiveDate> = DAYS.iter().map(|d| date(d)).collect();
    let want = expected_user_status(
        SEED,
        AGENTS,
        chrono_tz::UTC,
        &days,
        Granularity::PT30M,
        None,
    )
    .into_iter()
    .filter(|(day, _)| day != EMPTY)
    .map(|(day, (rows, _, _))| (day, rows))
    .collect();
    (got, want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_classifies_ten_days_and_backfill_missing_fetches_exactly_the_holes() {
    let sim = start_sim(sim_config()).await;
    let fake = DayFaults::start(&sim.base_url()).await;
    fake.fail_days(&FAILING);
    fake.empty_days(&[EMPTY]);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_config(
        tmp.path(),
        fake.base_url(),
        &out,
        "[user_status]\ntimezone = \"UTC\"\n",
    );

    // Every day but one is fetched; two of them fail on purpose.
    let first = run_bin(
        &config,
        &["backfill", "--from", DAYS[0], "--to", "2024-05-06"],
    );
    assert_eq!(
        first.status.code(),
        Some(1),
        "the failing days fail the run"
    );
    assert_success(&run_bin(
        &config,
        &["backfill", "--from", "2024-05-08", "--to", DAYS[9]],
    ));
    let requests = fake.take_requests();
    assert!(
        !requests.contains_key(NEVER_FETCHED),
        "{NEVER_FETCHED} was never asked for: {requests:?}"
    );

    let report = status_json(&config, &[]);
    assert_eq!(report["version"], 1);
    assert_eq!(
        classes(&report),
        expected_classes(&[
            (FAILING[0], "failed"),
            (FAILING[1], "failed"),
            (NEVER_FETCHED, "missing"),
        ])
    );
    let d = &report["datasets"][0];
    for unit in d["units"].as_array().expect("units") {
        let day = unit["day"].as_str().expect("day");
        if FAILING.contains(&day) {
            let error = unit["error"]
                .as_str()
                .expect("a failed day keeps its error");
            assert!(error.contains("500"), "{day}: {error}");
        }
    }
    let cfg = config.display().to_string();
    assert_eq!(
        d["backfill"],
        serde_json::json!([
            format!("smartassist-export -c {cfg} backfill --missing --dataset user_status --from 2024-05-03 --to 2024-05-04"),
            format!("smartassist-export -c {cfg} backfill --missing --dataset user_status --from 2024-05-07 --to 2024-05-07"),
        ])
    );
    assert_eq!(
        d["counts"],
        serde_json::json!({"ok": 6, "empty": 1, "missing": 1, "failed": 2, "provisional": 0})
    );
    // The text form shows the same, with the commands.
    let text = run_bin(
        &config,
        &[
            "status",
            "--dataset",
            "user_status",
            "--from",
            DAYS[0],
            "--to",
            DAYS[9],
        ],
    );
    assert_success(&text);
    let text = String::from_utf8_lossy(&text.stdout);
    for line in d["backfill"].as_array().expect("commands") {
        assert!(text.contains(line.as_str().expect("command")), "{text}");
    }
    assert!(text.contains("2024-05-07  MISSING"), "{text}");

    // The holes, and nothing else, once the server answers again.
    fake.fail_days(&[]);
    assert_success(&run_bin(
        &config,
        &["backfill", "--missing", "--from", DAYS[0], "--to", DAYS[9]],
    ));
    let fetched = fake.take_requests();
    assert_eq!(
        fetched,
        BTreeMap::from([
            ("2024-05-03".to_string(), 1),
            ("2024-05-04".to_string(), 1),
            ("2024-05-07".to_string(), 1),
        ]),
        "requests per day at the fake"
    );
    let (got, want) = lake_and_truth(&out);
    assert_eq!(got, want, "rows per day after filling the holes");
    assert!(
        files_under(&out)
            .iter()
            .any(|f| f.starts_with("user_status/")
                && f.ends_with(&format!("dt={EMPTY}/part-00000.parquet"))),
        "the empty day is a file without rows"
    );
    let report = status_json(&config, &[]);
    assert_eq!(classes(&report), expected_classes(&[]));
    assert_eq!(report["datasets"][0]["backfill"], serde_json::json!([]));

    // Nothing left to fetch.
    assert_success(&run_bin(
        &config,
        &["backfill", "--missing", "--from", DAYS[0], "--to", DAYS[9]],
    ));
    assert_eq!(fake.take_requests(), BTreeMap::new());

    // The record rebuilt from the files: deleted, then corrupt.
    let month = files_under(&out)
        .into_iter()
        .find(|f| f.contains("_state/user_status/") && f.ends_with("coverage/2024-05.json"))
        .expect("the month's coverage object");
    let month = out.join(month);
    let rows_before = rows_by_day(&report);
    std::fs::remove_file(&month).expect("delete the record");
    let gone = status_json(&config, &[]);
    assert!(
        classes(&gone).values().all(|c| c == "missing"),
        "{:?}",
        classes(&gone)
    );
    let rebuilt = status_json(&config, &["--rebuild"]);
    assert_eq!(classes(&rebuilt), expected_classes(&[]));
    assert_eq!(rows_by_day(&rebuilt), rows_before, "rows from the footers");
    assert!(rebuilt["datasets"][0]["units"]
        .as_array()
        .expect("units")
        .iter()
        .all(|u| u["by"] == "rebuild"));
    std::fs::write(&month, b"{ corrupt").expect("corrupt the record");
    let corrupt = status_json(&config, &[]);
    let problems = corrupt["datasets"][0]["problems"].to_string();
    assert!(problems.contains("--rebuild"), "{problems}");
    let refused = run_bin(
        &config,
        &["backfill", "--missing", "--from", DAYS[0], "--to", DAYS[9]],
    );
    assert_eq!(refused.status.code(), Some(2), "holes unknown: refused");
    let rebuilt = status_json(&config, &["--rebuild"]);
    assert_eq!(classes(&rebuilt), expected_classes(&[]));
    assert_eq!(rebuilt["datasets"][0]["problems"], serde_json::json!([]));
    assert_eq!(
        fake.take_requests(),
        BTreeMap::new(),
        "status sends nothing"
    );
    sim.shutdown().await;
}

fn rows_by_day(report: &Value) -> BTreeMap<String, u64> {
    report["datasets"][0]["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| {
            (
                u["day"].as_str().expect("day").to_string(),
                u["rows"].as_u64().expect("rows"),
            )
        })
        .collect()
}
