//! The daemon's status page (`/`, `/status`, `/status.json`) against a running daemon with the
//! simulator behind the day-faults fake: a backfill of four days where one fails on purpose
//! with a hostile API error text, then a daemon whose user_status run fails today the same way
//! and whose intent_realtime poll succeeds. The page must show every job with its last run,
//! the coverage of the last 30 days (the failed day FAILED, days nobody fetched MISSING), the
//! unmapped field the simulator adds, the budget and the errors: in the JSON exactly, in the
//! HTML only escaped. `status` (lines and JSON) lists the same unmapped field.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use common::day_faults::DayFaults;
use common::*;
use serde_json::Value;
use smartassist_export::simulator::unknown::SHARED_KEY;
use smartassist_export::simulator::SimulatorConfig;

const BOT: &str = "st-bot-1";
/// What the fake's API says when a day fails: markup, quotes and an ampersand.
const HOSTILE: &str = r#"<script>alert("page")</script> & 'quoted' <img src=x onerror=alert(1)>"#;
const HOSTILE_ESCAPED: &str = "&lt;script&gt;alert(&quot;page&quot;)&lt;/script&gt; &amp; \
     &#39;quoted&#39; &lt;img src=x onerror=alert(1)&gt;";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn days_ago(today: NaiveDate, n: u64) -> NaiveDate {
    today.checked_sub_days(Days::new(n)).expect("a day")
}

/// `/status.json` once every job has a finished run.
fn page_after_first_runs(addr: std::net::SocketAddr, child: &mut std::process::Child) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "daemon exited"
        );
        if let Some((200, body)) = http_get(addr, "/status.json") {
            let page: Value = serde_json::from_str(&body).expect("status.json is JSON");
            let jobs = page["jobs"].as_array().expect("jobs");
            if jobs.iter().all(|j| !j["last_run"].is_null()) {
                return page;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no run of every job within 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Day → status of one dataset's units in a page or report.
fn statuses(dataset: &Value) -> BTreeMap<String, String> {
    dataset["units"]
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

fn dataset<'a>(page: &'a Value, name: &str) -> &'a Value {
    page["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .find(|d| d["dataset"] == name)
        .unwrap_or_else(|| panic!("{name} on the page"))
}

#[test]
fn status_page_shows_every_job_and_its_coverage_and_escapes_api_error_text() {
    let rt = runtime();
    let sim = rt.block_on(start_sim(SimulatorConfig {
        agents: 3,
        bots: vec![BOT.into()],
        unknown_fields: true,
        ..SimulatorConfig::default()
    }));
    let fake = rt.block_on(DayFaults::start(&sim.base_url()));
    let today = Utc::now().date_naive();
    let (first, failing, last) = (days_ago(today, 12), days_ago(today, 10), days_ago(today, 9));
    fake.fail_days(&[&failing.to_string(), &today.to_string()]);
    fake.fail_with_message(HOSTILE);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr: std::net::SocketAddr| {
        let sections = format!(
            "[user_status]\ntimezone = \"UTC\"\nschedule = \"0 0 0 * * *\"\nlookback_days = 0\n\n\
             [intent_realtime]\nschedule = \"0 0 0 * * *\"\nbot_ids = [\"{BOT}\"]\n\n\
             [server]\nlisten = \"{addr}\"\n"
        );
        write_config(tmp.path(), fake.base_url(), &out, &sections)
    };
    // The backfill's config (no daemon listens yet; spawning one writes it again).
    let config = config_for("127.0.0.1:1".parse().expect("addr"));
    let backfill = run_bin(
        &config,
        &[
            "backfill",
            "--dataset",
            "user_status",
            "--from",
            &first.to_string(),
            "--to",
            &last.to_string(),
        ],
    );
    assert_eq!(backfill.status.code(), Some(1), "the failing day fails it");

    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    let page = page_after_first_runs(addr, &mut child);
    let html = ["/", "/status"].map(|path| {
        let (status, body) = http_get(addr, path).expect("the page answers");
        assert_eq!(status, 200, "{path}");
        body
    });
    let status = sigterm_and_wait(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));

    check_json(&page, (first, failing, last, today));
    for body in &html {
        check_html(body, &page, failing);
    }
    check_status_command(&config, first, today);
}

fn check_json(
    page: &Value,
    (first, failing, last, today): (NaiveDate, NaiveDate, NaiveDate, NaiveDate),
) {
    assert_eq!(page["version"], 1);
    let jobs: BTreeMap<&str, &Value> = page["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| (j["name"].as_str().expect("name"), j))
        .collect();
    let names: Vec<&str> = jobs.keys().copied().collect();
    let poll_job = format!("intent_realtime/{BOT}");
    assert_eq!(names, ["intent_realtime/st-bot-1", "user_status"]);
    let us = jobs["user_status"];
    assert_eq!(us["schedule"], "0 0 0 * * *");
    assert!(!us["next_tick"].is_null());
    assert_eq!(us["last_run"]["outcome"], "failure");
    let error = us["last_run"]["error"].as_str().expect("its error");
    assert!(error.contains(HOSTILE), "the API's text, as sent: {error}");
    let poll = jobs[poll_job.as_str()];
    assert_eq!(poll["last_run"]["outcome"], "success", "{poll}");
    assert!(poll["last_run"]["rows"].as_u64().is_some());
    let errors = page["recent_errors"].as_array().expect("recent errors");
    assert!(
        errors.iter().any(|e| e["job"] == "user_status"
            && e["error"].as_str().is_some_and(|t| t.contains(HOSTILE))),
        "{errors:?}"
    );
    assert_eq!(page["budget"]["requests_per_minute"], 100_000);
    assert_eq!(
        page["budget"]["priorities"].as_array().map(Vec::len),
        Some(3)
    );

    let d = dataset(page, "user_status");
    let got = statuses(d);
    assert_eq!(got.len(), 30, "the last 30 days");
    assert_eq!(d["from"], days_ago(today, 29).to_string());
    for (day, status) in &got {
        let day: NaiveDate = day.parse().expect("day");
        let want: &[&str] = if day == failing || day == today {
            &["failed"]
        } else if day < first || (day > last && day < today) {
            // Nobody fetched it (the daemon's run plans only today without a watermark).
            &["missing"]
        } else {
            &["ok", "provisional"]
        };
        assert!(
            want.contains(&status.as_str()),
            "{day}: {status}, want {want:?}"
        );
    }
    let failed = d["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["day"] == failing.to_string())
        .expect("the failed day");
    assert!(failed["error"]
        .as_str()
        .is_some_and(|e| e.contains(HOSTILE)));
    assert!(
        d["unmapped_fields"][SHARED_KEY].as_u64().unwrap_or(0) > 0,
        "the simulator's new field is listed: {}",
        d["unmapped_fields"]
    );
    assert!(!d["backfill"].as_array().expect("commands").is_empty());
    assert!(dataset(page, "intent_realtime")["units"].is_array());
}

fn check_html(html: &str, page: &Value, failing: NaiveDate) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        !html.contains("<script"),
        "no script, least of all the API's"
    );
    assert!(!html.contains(HOSTILE));
    assert!(!html.contains("<img"));
    assert!(
        html.contains(HOSTILE_ESCAPED),
        "the error, escaped:\n{html}"
    );
    for job in page["jobs"].as_array().expect("jobs") {
        let name = job["name"].as_str().expect("name");
        assert!(
            html.contains(&format!("<tr class=\"job\" data-job=\"{name}\">")),
            "{name}"
        );
    }
    for d in ["user_status", "intent_realtime"] {
        assert!(html.contains(&format!("data-dataset=\"{d}\"")), "{d}");
    }
    let cells = html.matches("<td class=\"unit ").count();
    assert!(cells >= 30, "a cell per day of user_status: {cells}");
    assert!(
        html.contains(&format!("data-status=\"FAILED\" title=\"{failing} FAILED")),
        "the failed day's cell"
    );
    assert!(html.contains(&format!("<code>{SHARED_KEY}</code>")));
}

fn check_status_command(config: &std::path::Path, from: NaiveDate, to: NaiveDate) {
    let range = [
        "--dataset",
        "user_status",
        "--from",
        &from.to_string(),
        "--to",
        &to.to_string(),
    ];
    let json = run_bin(config, &[&["status", "--json"][..], &range[..]].concat());
    assert_success(&json);
    let report: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert!(
        report["datasets"][0]["unmapped_fields"][SHARED_KEY]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    let text = run_bin(config, &[&["status"][..], &range[..]].concat());
    assert_success(&text);
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("unmapped API fields:"))
        .unwrap_or_else(|| panic!("no unmapped line:\n{text}"));
    assert!(line.contains(SHARED_KEY), "{line}");
}
