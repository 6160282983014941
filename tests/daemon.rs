//! The `run` daemon end to end: the built binary against the in-process simulator with
//! one-second schedules. Waits for runs by polling `/metrics` (no fixed sleeps), stops with
//! SIGTERM, and checks the exit code, the output and the exactly-once intent capture across a
//! restart, with expected sessions computed from the simulator's generator; and the metrics
//! a scrape sees before any run has finished, parsed from the exposition text by the test.
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::*;
use smartassist_export::simulator::intent_realtime::{self, IntentFeed};
use smartassist_export::simulator::SimulatorConfig;

const BOT: &str = "st-bot-1";
const NY: chrono_tz::Tz = chrono_tz::America::New_York;
const RUNS_INTENT: &str = "smartassist_runs_total{dataset=\"intent_realtime\",outcome=\"success\"}";
const RUNS_US: &str = "smartassist_runs_total{dataset=\"user_status\",outcome=\"success\"}";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn sim_config(interval: Duration) -> SimulatorConfig {
    let now = Utc::now();
    let epoch = now - TimeDelta::hours(1);
    SimulatorConfig {
        seed: 11,
        agents: 3,
        bots: vec![BOT.into()],
        intent_interval: interval,
        intent_epoch: epoch.duration_trunc(TimeDelta::seconds(1)).unwrap_or(epoch),
        ..SimulatorConfig::default()
    }
}

/// Session number of each exported id (every id must be one the generator produced for k in
/// `0..=max_k`), asserting there are no duplicates.
fn exported_ks(out: &Path, feed: &IntentFeed, max_k: u64) -> Vec<u64> {
    let ids = intent_session_ids(out);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an intent session was exported twice"
    );
    let lo = max_k.saturating_sub(20_000);
    let by_id: BTreeMap<String, u64> = (lo..=max_k)
        .map(|k| (intent_realtime::session(feed, k).session_id, k))
        .collect();
    let mut ks: Vec<u64> = ids
        .iter()
        .map(|id| {
            *by_id
                .get(id)
                .unwrap_or_else(|| panic!("unknown session {id}"))
        })
        .collect();
    ks.sort_unstable();
    ks
}

fn assert_contiguous(ks: &[u64]) {
    for w in ks.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "sessions missing between k={} and k={}",
            w[0],
            w[1]
        );
    }
}

fn last_poll_at(out: &Path) -> DateTime<Utc> {
    let path = out.join("_state/intent_realtime/account_id=demo-account/bot_id=st-bot-1.json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("intent state")).expect("json");
    v["last_poll_at"]
        .as_str()
        .expect("last_poll_at")
        .parse()
        .expect("ts")
}

fn assert_no_staging_files(out: &Path) {
    for f in files_under(out) {
        let name = f.rsplit('/').next().unwrap_or(&f);
        assert!(!name.starts_with('.'), "staging file left behind: {f}");
    }
}

#[test]
fn daemon_runs_on_schedule_stops_on_sigterm_and_restarts_without_duplicates() {
    let rt = runtime();
    let cfg = sim_config(Duration::from_millis(200));
    let sim = rt.block_on(start_sim(cfg.clone()));
    let feed = intent_realtime::feed(&cfg, BOT);
    let started = Utc::now();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr: std::net::SocketAddr| {
        let section = format!(
            r#"
[user_status]
schedule = "* * * * * *"
timezone = "America/New_York"
granularity = "PT30M"
lookback_days = 1

[intent_realtime]
schedule = "* * * * * *"
bot_ids = ["{BOT}"]

[server]
listen = "{addr}"
"#
        );
        write_config(tmp.path(), &sim.base_url(), &out, &section)
    };

    // Phase 1: several runs of each job, /healthz answering, then SIGTERM.
    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run1.log"));
    wait_for_metrics(addr, &mut child, Duration::from_secs(60), |m| {
        metric(m, RUNS_INTENT) >= 4.0 && metric(m, RUNS_US) >= 2.0
    });
    let (status, body) = http_get(addr, "/healthz").expect("healthz answers");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let status = sigterm_and_wait(&mut child, Duration::from_secs(15));
    let log = std::fs::read_to_string(tmp.path().join("run1.log")).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(
        log.contains("\"message\":\"Run finished.\""),
        "summary line missing:\n{log}"
    );
    assert_no_staging_files(&out);

    // Every session from the first poll's page up to the last poll, exactly once.
    let first_newest = intent_realtime::latest_session_index(&feed, started).expect("sessions");
    let polled_until = intent_realtime::latest_session_index(&feed, last_poll_at(&out)).expect("k");
    let max_k = intent_realtime::latest_session_index(&feed, Utc::now()).expect("k");
    let ks = exported_ks(&out, &feed, max_k);
    assert_contiguous(&ks);
    let (lo, hi) = (ks[0], *ks.last().expect("sessions"));
    assert!(
        lo <= first_newest,
        "first page not exported: lo={lo} newest at start={first_newest}"
    );
    assert!(
        hi >= polled_until,
        "sessions up to the last poll missing: hi={hi} < {polled_until}"
    );

    // UserStatus: yesterday (complete) equals the generator; the watermark is today.
    let today = Utc::now().with_timezone(&NY).date_naive();
    let yesterday = today.pred_opt().expect("date");
    let rows = user_status_rows(&out);
    let actual = actual_per_day(&rows);
    let want = expected_user_status(
        cfg.seed,
        cfg.agents,
        NY,
        &[yesterday],
        smartassist_export::model::Granularity::PT30M,
        None,
    );
    let (w_rows, w_sum, _) = want[&yesterday.to_string()];
    assert_eq!(actual.get(&yesterday.to_string()), Some(&(w_rows, w_sum)));
    let mark: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("_state/user_status/account_id=demo-account.json"))
            .expect("watermark"),
    )
    .expect("json");
    assert_eq!(mark["through_day"], today.to_string());

    // Phase 2: a restart continues from the output with no duplicates and no gap.
    // (The port may have gone to another process meanwhile: a fresh one is fine, the state
    // lives in the output.)
    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run2.log"));
    wait_for_metrics(addr, &mut child, Duration::from_secs(60), |m| {
        metric(m, RUNS_INTENT) >= 3.0
    });
    let status = sigterm_and_wait(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    assert_no_staging_files(&out);
    let polled_until2 =
        intent_realtime::latest_session_index(&feed, last_poll_at(&out)).expect("k");
    let max_k = intent_realtime::latest_session_index(&feed, Utc::now()).expect("k");
    let ks2 = exported_ks(&out, &feed, max_k);
    assert_contiguous(&ks2);
    assert_eq!(ks2[0], lo, "the restart rewrote older sessions");
    assert!(*ks2.last().expect("k") >= polled_until2);
    assert!(polled_until2 > hi, "the restart exported nothing new");
    rt.block_on(sim.shutdown());
}

#[test]
fn sessions_arriving_faster_than_a_page_per_poll_are_flagged_as_a_gap() {
    let rt = runtime();
    // 50 sessions per second, polled every second: every poll is a full page of unseen ones.
    let cfg = sim_config(Duration::from_millis(20));
    let sim = rt.block_on(start_sim(cfg.clone()));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_for = |addr: std::net::SocketAddr| {
        let section = format!(
            r#"
[user_status]
enabled = false

[intent_realtime]
schedule = "* * * * * *"
bot_ids = ["{BOT}"]
gap_poll_interval_seconds = 1

[server]
listen = "{addr}"
"#
        );
        write_config(tmp.path(), &sim.base_url(), &out, &section)
    };
    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    let gaps = format!("smartassist_intent_gaps_total{{bot_id=\"{BOT}\"}}");
    let body = wait_for_metrics(addr, &mut child, Duration::from_secs(60), |m| {
        metric(m, &gaps) >= 1.0
    });
    assert!(metric(&body, &gaps) >= 1.0);
    // Every poll, the fast re-polls after a gap included, went out at realtime priority.
    let realtime = metric(
        &body,
        "smartassist_budget_requests_total{dataset=\"intent_realtime\",priority=\"realtime\"}",
    );
    let sent: f64 = ["2xx", "3xx", "4xx", "5xx", "error"]
        .iter()
        .map(|class| {
            metric(
                &body,
                &format!(
                    "smartassist_http_requests_total{{endpoint=\"intent_realtime\",status_class=\"{class}\"}}"
                ),
            )
        })
        .sum();
    // (A poll granted but not answered yet when scraped counts in the first only.)
    assert!(
        realtime >= sent && realtime <= sent + 1.0 && sent >= 2.0,
        "realtime grants {realtime}, requests sent {sent}"
    );
    let status = sigterm_and_wait(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(tmp.path().join("run.log")).unwrap_or_default();
    assert!(
        log.contains("probably missed"),
        "no gap warning naming the bot:\n{log}"
    );
    // Even with a gap, nothing is exported twice.
    let ids = intent_session_ids(&out);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    rt.block_on(sim.shutdown());
}

/// One scrape parsed line by line, independently of the exporter's own formatting code.
struct Exposition {
    /// (metric name, label set) → value.
    samples: HashMap<(String, BTreeMap<String, String>), f64>,
    /// Family name → `# TYPE`.
    types: HashMap<String, String>,
    /// Family names with a `# HELP` line.
    helps: HashSet<String>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut e = Exposition {
            samples: HashMap::new(),
            types: HashMap::new(),
            helps: HashSet::new(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().expect("HELP name");
                e.helps.insert(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let name = it.next().expect("TYPE name");
                let kind = it.next().unwrap_or_else(|| panic!("no type in {line:?}"));
                e.types.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with('#') {
                let (key, value) = parse_sample(line);
                assert!(
                    e.samples.insert(key, value).is_none(),
                    "series listed twice: {line}"
                );
            }
        }
        e
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.get(&(name.to_string(), labels)).copied()
    }

    /// Asserts the series exists with value `want`.
    fn assert_value(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        assert_eq!(
            self.get(name, labels),
            Some(want),
            "{name}{labels:?} (series present: {:?})",
            self.names_like(name)
        );
    }

    /// Label sets of every sample of `name`.
    fn names_like(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, l)| l)
            .collect()
    }

    fn assert_family(&self, name: &str, kind: &str) {
        assert!(self.helps.contains(name), "no # HELP for {name}");
        assert_eq!(
            self.types.get(name).map(String::as_str),
            Some(kind),
            "# TYPE of {name}"
        );
    }
}

/// `name{k="v",...} value [timestamp]` → ((name, labels), value).
fn parse_sample(line: &str) -> ((String, BTreeMap<String, String>), f64) {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars
                .next()
                .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
            match c {
                '}' => {
                    rest = &body[i + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line:?}");
                    let mut value = String::new();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            Some('"') => break,
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(c) => value.push(c),
                                None => panic!("bad escape: {line:?}"),
                            },
                            Some(c) => value.push(c),
                            None => panic!("unclosed label value: {line:?}"),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        }
    }
    let value = rest
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let value = value
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("bad value in {line:?}"));
    ((name, labels), value)
}

#[test]
fn metrics_scraped_before_any_run_finishes_list_every_alerting_series_at_zero() {
    const BOTS: [&str; 2] = ["st-bot-1", "st-bot-2"];
    const DATASETS: [&str; 2] = ["user_status", "intent_realtime"];
    let rt = runtime();
    // Every API answer takes ten minutes, so no run can finish while the test looks.
    let sim = rt.block_on(start_sim(SimulatorConfig {
        bots: BOTS.iter().map(|b| b.to_string()).collect(),
        latency: Duration::from_secs(600),
        ..sim_config(Duration::from_secs(1))
    }));
    let tmp = tempfile::tempdir().expect("tmp");
    let config_for = |addr: std::net::SocketAddr| {
        let section = format!(
            r#"
[user_status]
timezone = "America/New_York"

[intent_realtime]
bot_ids = ["{}", "{}"]

[server]
listen = "{addr}"
shutdown_timeout_seconds = 2
"#,
            BOTS[0], BOTS[1]
        );
        let config = write_config(
            tmp.path(),
            &sim.base_url(),
            &tmp.path().join("out"),
            &section,
        );
        // The client must keep waiting too (no timeout, so no retry can end a run as a failure).
        let text = std::fs::read_to_string(&config).expect("config");
        assert!(text.contains("\ntimeout_seconds = 5\n"), "{text}");
        std::fs::write(
            &config,
            text.replace("\ntimeout_seconds = 5\n", "\ntimeout_seconds = 3600\n"),
        )
        .expect("write config");
        config
    };

    let spawned_at = Utc::now().timestamp() as f64;
    let (mut child, addr) = spawn_daemon_on_free_port(config_for, &tmp.path().join("run.log"));
    // The first scrape that answers at all.
    let body = wait_for_metrics(addr, &mut child, Duration::from_secs(60), |_| true);
    let m = Exposition::parse(&body);

    for dataset in DATASETS {
        for outcome in ["success", "partial", "failure", "cancelled"] {
            m.assert_value(
                "smartassist_runs_total",
                &[("dataset", dataset), ("outcome", outcome)],
                0.0,
            );
        }
        m.assert_value("smartassist_rejects_total", &[("dataset", dataset)], 0.0);
        m.assert_value(
            "smartassist_last_success_timestamp_seconds",
            &[("dataset", dataset)],
            0.0,
        );
        m.assert_value(
            "smartassist_run_duration_seconds_count",
            &[("dataset", dataset)],
            0.0,
        );
        // Each dataset has its own endpoint, named like the dataset.
        let endpoint = dataset;
        m.assert_value(
            "smartassist_http_throttled_total",
            &[("endpoint", endpoint)],
            0.0,
        );
        for reason in ["reauthenticate", "throttled", "transient"] {
            m.assert_value(
                "smartassist_http_retries_total",
                &[("endpoint", endpoint), ("reason", reason)],
                0.0,
            );
        }
        m.assert_value(
            "smartassist_http_request_duration_seconds_count",
            &[("endpoint", endpoint)],
            0.0,
        );
    }
    assert_eq!(
        m.names_like("smartassist_runs_total").len(),
        DATASETS.len() * 4,
        "runs series for datasets that are not configured"
    );
    for bot in BOTS {
        m.assert_value("smartassist_intent_gaps_total", &[("bot_id", bot)], 0.0);
        m.assert_value(
            "smartassist_intent_new_sessions_total",
            &[("bot_id", bot)],
            0.0,
        );
    }
    m.assert_value(
        "smartassist_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    m.assert_family("smartassist_http_request_duration_seconds", "histogram");
    m.assert_family("smartassist_run_duration_seconds", "histogram");
    // The request budget: requests per dataset and priority, waits per priority, and the
    // share used and waiters now (the runs may have been granted their first request).
    let budget_series = [
        ("user_status", "scheduled"),
        ("user_status", "catch_up"),
        ("intent_realtime", "realtime"),
    ];
    for (dataset, priority) in budget_series {
        let labels = [("dataset", dataset), ("priority", priority)];
        assert!(
            m.get("smartassist_budget_requests_total", &labels)
                .is_some(),
            "no budget series {labels:?}"
        );
    }
    for priority in ["realtime", "scheduled", "catch_up"] {
        for name in [
            "smartassist_budget_wait_seconds_count",
            "smartassist_budget_used_ratio",
            "smartassist_budget_queued_requests",
        ] {
            assert!(
                m.get(name, &[("priority", priority)]).is_some(),
                "no {name} for {priority}"
            );
        }
    }
    m.assert_family("smartassist_budget_wait_seconds", "histogram");
    m.assert_family("smartassist_budget_used_ratio", "gauge");
    m.assert_family("smartassist_budget_queued_requests", "gauge");

    let now = Utc::now().timestamp() as f64;
    let start = m
        .get("process_start_time_seconds", &[])
        .expect("process_start_time_seconds");
    // Whole seconds on both sides (the boot time in /proc/stat is one), hence the slack.
    assert!(
        start >= spawned_at - 2.0 && start <= now + 2.0,
        "start {start}, spawned at {spawned_at}, now {now}"
    );
    // The collector reads /proc, so these exist on Linux only.
    if cfg!(target_os = "linux") {
        for name in ["process_resident_memory_bytes", "process_open_fds"] {
            let v = m.get(name, &[]).unwrap_or_else(|| panic!("{name} missing"));
            assert!(v > 0.0, "{name} = {v}");
        }
        let cpu = m
            .get("process_cpu_seconds_total", &[])
            .expect("process_cpu_seconds_total");
        assert!(cpu >= 0.0, "cpu {cpu}");
        m.assert_family("process_cpu_seconds_total", "counter");
    }

    // The runs are still waiting for the simulator: SIGTERM abandons them within the deadline.
    let status = sigterm_and_wait(&mut child, Duration::from_secs(30));
    let log = std::fs::read_to_string(tmp.path().join("run.log")).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    rt.block_on(sim.shutdown());
}
