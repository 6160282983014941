//! Tests of [`Metrics`]: expected names, labels and types are written out here by hand (they
//! are the public contract the alerts and dashboards depend on), and rendered text is read back
//! with the exposition reader, not compared with strings made by the encoder.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeDelta, Utc};

use super::exposition::{samples, Sample};
use super::*;

const DS: &str = "user_status";
const BOT: &str = "bot-1";
const EP: &str = "intent_realtime";

/// The families every registered dataset declares for itself, as the composition root
/// declares them.
fn declared_by_datasets() -> impl Iterator<Item = &'static DatasetMetric> {
    crate::datasets::REGISTRY
        .iter()
        .flat_map(|d| d.metrics.iter().copied())
}

fn registered() -> Metrics {
    let m = Metrics::new();
    m.register_dataset(DS);
    for family in declared_by_datasets() {
        m.register_entity(family, BOT);
    }
    m.register_endpoint(EP);
    m
}

/// `# TYPE` lines: family name to type.
fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

fn sample<'a>(all: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    all.iter().find(|s| s.name == name && s.has_labels(labels))
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp literal")
}

#[test]
fn every_alerted_series_renders_at_zero_right_after_registration() {
    let text = registered().render();
    let all: Vec<Sample> = samples(&text).collect();
    let d = ("dataset", DS);
    let mut expected: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("smartassist_rejects_total", vec![d]),
        ("smartassist_unmapped_fields_total", vec![d]),
        ("smartassist_rows_written_total", vec![d]),
        ("smartassist_bytes_written_total", vec![d]),
        ("smartassist_files_written_total", vec![d]),
        ("smartassist_skipped_ticks_total", vec![d]),
        ("smartassist_api_requests_total", vec![d]),
        ("smartassist_api_requests_minimum_total", vec![d]),
        ("smartassist_last_success_timestamp_seconds", vec![d]),
        ("smartassist_run_duration_seconds_count", vec![d]),
        ("smartassist_run_duration_seconds_sum", vec![d]),
        (
            "smartassist_run_duration_seconds_bucket",
            vec![d, ("le", "0.1")],
        ),
        (
            "smartassist_run_duration_seconds_bucket",
            vec![d, ("le", "3600")],
        ),
        (
            "smartassist_run_duration_seconds_bucket",
            vec![d, ("le", "+Inf")],
        ),
        ("smartassist_intent_gaps_total", vec![("bot_id", BOT)]),
        (
            "smartassist_intent_new_sessions_total",
            vec![("bot_id", BOT)],
        ),
        ("smartassist_http_throttled_total", vec![("endpoint", EP)]),
        (
            "smartassist_http_request_duration_seconds_count",
            vec![("endpoint", EP)],
        ),
        (
            "smartassist_http_request_duration_seconds_sum",
            vec![("endpoint", EP)],
        ),
        (
            "smartassist_http_request_duration_seconds_bucket",
            vec![("endpoint", EP), ("le", "0.005")],
        ),
        (
            "smartassist_http_request_duration_seconds_bucket",
            vec![("endpoint", EP), ("le", "60")],
        ),
        (
            "smartassist_http_request_duration_seconds_bucket",
            vec![("endpoint", EP), ("le", "+Inf")],
        ),
        ("smartassist_rate_limit_wait_seconds_total", vec![]),
    ];
    for outcome in ["success", "partial", "failure", "cancelled"] {
        expected.push(("smartassist_runs_total", vec![d, ("outcome", outcome)]));
    }
    for reason in ["reauthenticate", "throttled", "transient"] {
        expected.push((
            "smartassist_http_retries_total",
            vec![("endpoint", EP), ("reason", reason)],
        ));
    }
    for class in ["2xx", "3xx", "4xx", "5xx", "error"] {
        expected.push((
            "smartassist_http_requests_total",
            vec![("endpoint", EP), ("status_class", class)],
        ));
    }
    for (name, labels) in &expected {
        let s = sample(&all, name, labels);
        assert_eq!(
            s.map(|s| s.value),
            Some(0.0),
            "{name} {labels:?} in\n{text}"
        );
    }
}

#[test]
fn a_further_table_gets_its_written_series_at_zero_and_nothing_else() {
    let m = Metrics::new();
    m.register_table("call_segments");
    let l = [("dataset", "call_segments")];
    for name in [
        "smartassist_rows_written_total",
        "smartassist_bytes_written_total",
        "smartassist_files_written_total",
    ] {
        assert_eq!(m.value(name, &l), Some(0.0), "{name}");
    }
    assert_eq!(m.value("smartassist_rejects_total", &l), None);
    assert_eq!(
        m.value("smartassist_runs_total", &[l[0], ("outcome", "success")]),
        None
    );
}

#[test]
fn every_family_renders_help_and_type_even_without_series() {
    let m = Metrics::new();
    for family in declared_by_datasets() {
        m.declare(family);
    }
    let text = m.render();
    let expected = [
        ("smartassist_http_requests_total", "counter"),
        ("smartassist_http_request_duration_seconds", "histogram"),
        ("smartassist_http_retries_total", "counter"),
        ("smartassist_http_throttled_total", "counter"),
        ("smartassist_rate_limit_wait_seconds_total", "counter"),
        ("smartassist_rejects_total", "counter"),
        ("smartassist_unmapped_fields_total", "counter"),
        ("smartassist_rows_written_total", "counter"),
        ("smartassist_bytes_written_total", "counter"),
        ("smartassist_files_written_total", "counter"),
        ("smartassist_runs_total", "counter"),
        ("smartassist_run_duration_seconds", "histogram"),
        ("smartassist_skipped_ticks_total", "counter"),
        ("smartassist_intent_gaps_total", "counter"),
        ("smartassist_intent_new_sessions_total", "counter"),
        ("smartassist_last_success_timestamp_seconds", "gauge"),
        ("smartassist_watermark_lag_seconds", "gauge"),
        ("smartassist_build_info", "gauge"),
        ("smartassist_api_requests_total", "counter"),
        ("smartassist_api_requests_minimum_total", "counter"),
        ("smartassist_store_requests_total", "counter"),
    ];
    let found = types(&text);
    for (name, kind) in expected {
        assert_eq!(
            found.get(name).map(String::as_str),
            Some(kind),
            "{name} in\n{text}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name} help");
    }
    // Prometheus text 0.0.4, not OpenMetrics.
    assert!(!text.contains("# EOF"));
    assert!(!text.contains("# UNIT"));
}

#[test]
fn every_sample_belongs_to_a_typed_family() {
    let m = registered();
    m.http_request(EP, Some(200), Duration::from_millis(12));
    m.set_covered(DS, "2030-01-01", t("2030-01-01T00:00:00Z"));
    let text = m.render_at(t("2030-01-01T00:01:00Z"));
    let families = types(&text);
    for s in samples(&text) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| s.name.strip_suffix(suffix))
            .find(|base| families.get(*base).map(String::as_str) == Some("histogram"))
            .unwrap_or(&s.name);
        assert!(families.contains_key(family), "{} has no # TYPE", s.name);
        assert!(s.value.is_finite(), "{} = {}", s.name, s.value);
    }
}

#[test]
fn two_handles_in_one_process_are_independent() {
    let a = Metrics::new();
    let b = Metrics::new();
    a.register_dataset(DS);
    a.skipped_tick(DS);
    a.skipped_tick(DS);
    b.skipped_tick(DS);
    let labels = [("dataset", DS)];
    assert_eq!(
        a.value("smartassist_skipped_ticks_total", &labels),
        Some(2.0)
    );
    assert_eq!(
        b.value("smartassist_skipped_ticks_total", &labels),
        Some(1.0)
    );
    // Registration on one handle creates nothing on the other.
    let rejects = "smartassist_rejects_total";
    assert_eq!(a.value(rejects, &labels), Some(0.0));
    assert_eq!(b.value(rejects, &labels), None);
    // Clones share.
    let a2 = a.clone();
    a2.skipped_tick(DS);
    assert_eq!(
        a.value("smartassist_skipped_ticks_total", &labels),
        Some(3.0)
    );
}

#[test]
fn counters_add() {
    let m = registered();
    let d = [("dataset", DS)];
    m.rejects(DS, 3);
    m.rejects(DS, 4);
    m.unmapped_fields(DS, 5);
    m.unmapped_fields(DS, 1);
    m.written(DS, 1, 100, 2048);
    m.written(DS, 2, 50, 1024);
    m.run(DS, "success", Duration::from_secs(1));
    m.run(DS, "partial", Duration::from_secs(1));
    m.run(DS, "success", Duration::from_secs(1));
    m.http_request(EP, Some(200), Duration::ZERO);
    m.http_request(EP, Some(503), Duration::ZERO);
    m.http_request(EP, None, Duration::ZERO);
    m.http_request(EP, Some(204), Duration::ZERO);
    m.http_retry(EP, "throttled");
    m.http_throttled(EP);
    m.rate_limit_wait(0.5);
    m.rate_limit_wait(0.25);
    let gaps = &crate::datasets::intent_realtime::series::GAPS;
    let new_sessions = &crate::datasets::intent_realtime::series::NEW_SESSIONS;
    m.dataset_counter(gaps, BOT).inc();
    m.dataset_counter(new_sessions, BOT).inc_by(7);
    m.dataset_counter(new_sessions, BOT).inc_by(5);
    m.last_success(DS, 1_700_000_000.5);
    m.api_requests(DS, 12, 10);
    m.api_requests(DS, 3, 3);
    let v = |name: &str, labels: &[(&str, &str)]| m.value(name, labels);
    assert_eq!(v("smartassist_api_requests_total", &d), Some(15.0));
    assert_eq!(v("smartassist_api_requests_minimum_total", &d), Some(13.0));
    assert_eq!(v("smartassist_rejects_total", &d), Some(7.0));
    assert_eq!(v("smartassist_unmapped_fields_total", &d), Some(6.0));
    assert_eq!(v("smartassist_files_written_total", &d), Some(3.0));
    assert_eq!(v("smartassist_rows_written_total", &d), Some(150.0));
    assert_eq!(v("smartassist_bytes_written_total", &d), Some(3072.0));
    let runs = |outcome| v("smartassist_runs_total", &[d[0], ("outcome", outcome)]);
    assert_eq!(
        (runs("success"), runs("partial"), runs("failure")),
        (Some(2.0), Some(1.0), Some(0.0))
    );
    let requests = |class| {
        v(
            "smartassist_http_requests_total",
            &[("endpoint", EP), ("status_class", class)],
        )
    };
    assert_eq!(requests("2xx"), Some(2.0));
    assert_eq!(requests("5xx"), Some(1.0));
    assert_eq!(requests("error"), Some(1.0));
    assert_eq!(requests("4xx"), Some(0.0));
    let retries = |reason| {
        v(
            "smartassist_http_retries_total",
            &[("endpoint", EP), ("reason", reason)],
        )
    };
    assert_eq!(
        (retries("throttled"), retries("transient")),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(
        v("smartassist_http_throttled_total", &[("endpoint", EP)]),
        Some(1.0)
    );
    assert_eq!(
        v("smartassist_rate_limit_wait_seconds_total", &[]),
        Some(0.75)
    );
    assert_eq!(
        v("smartassist_intent_gaps_total", &[("bot_id", BOT)]),
        Some(1.0)
    );
    let new_sessions = v("smartassist_intent_new_sessions_total", &[("bot_id", BOT)]);
    assert_eq!(new_sessions, Some(12.0));
    let last = v("smartassist_last_success_timestamp_seconds", &d);
    assert_eq!(last, Some(1_700_000_000.5));
}

#[test]
fn histograms_count_observations_into_cumulative_buckets() {
    let m = registered();
    m.http_request(EP, Some(200), Duration::from_millis(3));
    m.http_request(EP, Some(200), Duration::from_millis(2000));
    m.http_request(EP, Some(200), Duration::from_secs(90));
    let h = "smartassist_http_request_duration_seconds";
    let bucket = |le| m.value(&format!("{h}_bucket"), &[("endpoint", EP), ("le", le)]);
    assert_eq!(
        m.value(&format!("{h}_count"), &[("endpoint", EP)]),
        Some(3.0)
    );
    let sum = m
        .value(&format!("{h}_sum"), &[("endpoint", EP)])
        .expect("sum");
    assert!((sum - 92.003).abs() < 1e-9, "{sum}");
    assert_eq!(bucket("0.005"), Some(1.0));
    assert_eq!(bucket("1"), Some(1.0));
    assert_eq!(bucket("2.5"), Some(2.0));
    assert_eq!(bucket("60"), Some(2.0));
    assert_eq!(bucket("+Inf"), Some(3.0));

    m.run(DS, "success", Duration::from_millis(50));
    m.run(DS, "failure", Duration::from_secs(400));
    let r = "smartassist_run_duration_seconds";
    let run_bucket = |le| m.value(&format!("{r}_bucket"), &[("dataset", DS), ("le", le)]);
    assert_eq!(
        m.value(&format!("{r}_count"), &[("dataset", DS)]),
        Some(2.0)
    );
    assert_eq!(run_bucket("0.1"), Some(1.0));
    assert_eq!(run_bucket("300"), Some(1.0));
    assert_eq!(run_bucket("600"), Some(2.0));
}

#[test]
fn build_info_carries_the_package_version() {
    // The version as written in Cargo.toml's [package] table, read independently of env!().
    let manifest = include_str!("../../Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("package version in Cargo.toml");
    let m = Metrics::new();
    assert_eq!(
        m.value("smartassist_build_info", &[("version", version)]),
        Some(1.0)
    );
    let text = m.render();
    let build_samples = samples(&text).filter(|s| s.name == "smartassist_build_info");
    assert_eq!(build_samples.count(), 1);
}

#[test]
fn process_metrics_are_present_and_plausible() {
    let m = Metrics::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let start = m
        .value("process_start_time_seconds", &[])
        .expect("start time");
    // The test binary started before this test, and not more than an hour ago; one second of
    // slack for the kernel's clock-tick rounding of the start time.
    assert!(
        start <= now + 1.0 && start > now - 3600.0,
        "{start} vs {now}"
    );
    if cfg!(target_os = "linux") {
        let rss = m.value("process_resident_memory_bytes", &[]).expect("rss");
        let vsz = m.value("process_virtual_memory_bytes", &[]).expect("vsz");
        let fds = m.value("process_open_fds", &[]).expect("fds");
        let cpu = m.value("process_cpu_seconds_total", &[]).expect("cpu");
        assert!(rss > 0.0 && vsz >= rss, "rss {rss} vsz {vsz}");
        assert!(fds > 0.0, "{fds}");
        assert!(cpu >= 0.0, "{cpu}");
        if let Some(max) = m.value("process_max_fds", &[]) {
            assert!(max >= fds, "max {max} open {fds}");
        }
    }
}

#[test]
fn watermark_lag_is_computed_at_render_time_from_the_oldest_unit() {
    let m = registered();
    let t0 = t("2030-01-01T00:00:00Z");
    let lag = |now: DateTime<Utc>, dataset: &str| {
        super::exposition::find(
            &m.render_at(now),
            "smartassist_watermark_lag_seconds",
            &[("dataset", dataset)],
        )
    };
    assert_eq!(lag(t0, DS), None, "no coverage, no lag series");
    m.set_covered(DS, "a", t0);
    m.set_covered(DS, "b", t0 + TimeDelta::seconds(30));
    m.set_covered("intent_realtime", "bot-1", t0 + TimeDelta::seconds(80));
    assert_eq!(lag(t0 + TimeDelta::seconds(90), DS), Some(90.0));
    // It keeps growing while nothing succeeds.
    assert_eq!(lag(t0 + TimeDelta::seconds(150), DS), Some(150.0));
    assert_eq!(
        lag(t0 + TimeDelta::seconds(150), "intent_realtime"),
        Some(70.0)
    );
    // Unit `a` catches up: `b` is now the oldest.
    m.set_covered(DS, "a", t0 + TimeDelta::seconds(100));
    assert_eq!(lag(t0 + TimeDelta::milliseconds(150_500), DS), Some(120.5));
    // Coverage ahead of the clock is no negative lag.
    assert_eq!(lag(t0, "intent_realtime"), Some(0.0));
}

#[test]
fn status_classes() {
    assert_eq!(status_class(Some(204)), "2xx");
    assert_eq!(status_class(Some(301)), "3xx");
    assert_eq!(status_class(Some(429)), "4xx");
    assert_eq!(status_class(Some(503)), "5xx");
    assert_eq!(status_class(Some(99)), "error");
    assert_eq!(status_class(None), "error");
}

#[test]
fn debug_output_names_no_series() {
    let m = registered();
    m.set_covered(DS, "secret-looking-unit", t("2030-01-01T00:00:00Z"));
    let debug = format!("{m:?}");
    assert!(debug.starts_with("Metrics"), "{debug}");
    assert!(!debug.contains("secret-looking-unit"), "{debug}");
}

#[test]
fn store_requests_register_at_zero_and_count_by_outcome() {
    let m = Metrics::new();
    let name = "smartassist_store_requests_total";
    assert_eq!(m.value(name, &[("outcome", "answered")]), None);
    m.register_store();
    for outcome in ["answered", "throttled", "server_error", "transport_error"] {
        assert_eq!(
            m.value(name, &[("outcome", outcome)]),
            Some(0.0),
            "{outcome}"
        );
    }
    m.store_request("throttled");
    m.store_request("throttled");
    m.store_request("answered");
    m.register_store();
    assert_eq!(m.value(name, &[("outcome", "throttled")]), Some(2.0));
    assert_eq!(m.value(name, &[("outcome", "answered")]), Some(1.0));
    assert_eq!(m.value(name, &[("outcome", "server_error")]), Some(0.0));
}

/// `# HELP` lines: family names in the order they render.
fn family_order(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn families_render_in_a_fixed_order_with_the_datasets_own_after_the_run_families() {
    let m = Metrics::new();
    for family in declared_by_datasets() {
        m.declare(family);
    }
    let order = family_order(&m.render());
    let expected = [
        "smartassist_build_info",
        "smartassist_http_requests_total",
        "smartassist_http_request_duration_seconds",
        "smartassist_http_retries_total",
        "smartassist_http_throttled_total",
        "smartassist_rate_limit_wait_seconds_total",
        "smartassist_rejects_total",
        "smartassist_unmapped_fields_total",
        "smartassist_rows_written_total",
        "smartassist_bytes_written_total",
        "smartassist_files_written_total",
        "smartassist_runs_total",
        "smartassist_run_duration_seconds",
        "smartassist_skipped_ticks_total",
    ]
    .into_iter()
    // The datasets' own families, in registry order (IntentRealtimeData's gap and new-session
    // counters first).
    .chain(declared_by_datasets().map(|f| f.name))
    .chain([
        "smartassist_last_success_timestamp_seconds",
        "smartassist_api_requests_total",
        "smartassist_api_requests_minimum_total",
        "smartassist_store_requests_total",
        "smartassist_budget_requests_total",
        "smartassist_budget_wait_seconds",
        "smartassist_bot_budget_requests_total",
        "smartassist_bot_budget_wait_seconds",
        "smartassist_bot_budget_used_ratio",
        "smartassist_bot_budget_queued_requests",
    ])
    .collect::<Vec<_>>();
    let own: Vec<&str> = declared_by_datasets().map(|f| f.name).take(2).collect();
    assert_eq!(
        own,
        [
            "smartassist_intent_gaps_total",
            "smartassist_intent_new_sessions_total"
        ]
    );
    assert_eq!(&order[..expected.len()], expected);
    assert!(order[expected.len()..]
        .iter()
        .all(|n| n.starts_with("process_") || n == "smartassist_watermark_lag_seconds"));
    assert_eq!(
        order.last().map(String::as_str),
        Some("smartassist_watermark_lag_seconds")
    );
}

static TEST_COUNTER: DatasetMetric = DatasetMetric {
    name: "smartassist_test_things_total",
    help: "Things counted by a test dataset",
    kind: MetricKind::Counter,
    label: "thing_id",
};

static TEST_GAUGE: DatasetMetric = DatasetMetric {
    name: "smartassist_test_level",
    help: "A level a test dataset reports",
    kind: MetricKind::Gauge,
    label: "thing_id",
};

#[test]
fn a_declared_family_is_listed_before_any_series_and_once_however_often_declared() {
    let m = Metrics::new();
    m.declare(&TEST_COUNTER);
    m.declare(&TEST_COUNTER);
    m.declare(&TEST_GAUGE);
    let text = m.render();
    let found = types(&text);
    assert_eq!(
        found
            .get("smartassist_test_things_total")
            .map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        found.get("smartassist_test_level").map(String::as_str),
        Some("gauge")
    );
    assert_eq!(
        text.matches("# HELP smartassist_test_things_total Things counted by a test dataset.\n")
            .count(),
        1,
        "{text}"
    );
    assert!(!samples(&text).any(|s| s.name.starts_with("smartassist_test_")));
    assert!(
        !Metrics::new().render().contains("smartassist_test_"),
        "per handle"
    );
}

#[test]
fn entity_series_start_at_zero_keep_their_value_and_carry_the_declared_label() {
    let m = Metrics::new();
    m.register_entity(&TEST_COUNTER, "a");
    m.register_entity(&TEST_GAUGE, "a");
    let a = [("thing_id", "a")];
    assert_eq!(m.value("smartassist_test_things_total", &a), Some(0.0));
    assert_eq!(m.value("smartassist_test_level", &a), Some(0.0));
    m.dataset_counter(&TEST_COUNTER, "a").inc_by(3);
    m.dataset_counter(&TEST_COUNTER, "a").inc();
    m.dataset_gauge(&TEST_GAUGE, "a").set(2.5);
    m.register_entity(&TEST_COUNTER, "a");
    assert_eq!(m.value("smartassist_test_things_total", &a), Some(4.0));
    assert_eq!(m.value("smartassist_test_level", &a), Some(2.5));
    // An entity not registered at startup gets its series when first emitted.
    m.dataset_counter(&TEST_COUNTER, "b").inc();
    assert_eq!(
        m.value("smartassist_test_things_total", &[("thing_id", "b")]),
        Some(1.0)
    );
}

#[test]
fn a_family_used_as_the_other_kind_exports_nothing() {
    let m = Metrics::new();
    m.dataset_gauge(&TEST_COUNTER, "a").set(7.0);
    m.dataset_counter(&TEST_GAUGE, "a").inc();
    let text = m.render();
    assert!(
        !samples(&text).any(|s| s.name.starts_with("smartassist_test_")),
        "{text}"
    );
    // Both families are still declared with their own kind.
    let found = types(&text);
    assert_eq!(
        found
            .get("smartassist_test_things_total")
            .map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        found.get("smartassist_test_level").map(String::as_str),
        Some("gauge")
    );
}

#[test]
fn bot_budgets_report_grants_waits_and_each_windows_share_per_configured_bot() {
    let m = Metrics::new();
    m.register_bot_budget("st-a");
    m.register_bot_budget("st-b");
    let requests = |bot| m.value("smartassist_bot_budget_requests_total", &[("bot_id", bot)]);
    assert_eq!((requests("st-a"), requests("st-b")), (Some(0.0), Some(0.0)));
    m.bot_budget_grant("st-a", Duration::from_millis(300));
    m.bot_budget_grant("st-a", Duration::ZERO);
    assert_eq!(requests("st-a"), Some(2.0));
    assert_eq!(
        m.value(
            "smartassist_bot_budget_wait_seconds_sum",
            &[("bot_id", "st-a")]
        ),
        Some(0.3)
    );
    assert_eq!(
        m.value(
            "smartassist_bot_budget_used_ratio",
            &[("bot_id", "st-a"), ("window", "hour")]
        ),
        None,
        "no reader yet"
    );
    m.watch_bot_budgets(Arc::new(|| {
        vec![BotBudgetReading {
            bot_id: "st-a".into(),
            minute_share: 0.25,
            hour_share: 0.5,
            queued: 3,
        }]
    }));
    let used = |window| {
        m.value(
            "smartassist_bot_budget_used_ratio",
            &[("bot_id", "st-a"), ("window", window)],
        )
    };
    assert_eq!((used("minute"), used("hour")), (Some(0.25), Some(0.5)));
    assert_eq!(
        m.value(
            "smartassist_bot_budget_queued_requests",
            &[("bot_id", "st-a")]
        ),
        Some(3.0)
    );
    assert_eq!(
        m.value(
            "smartassist_budget_requests_total",
            &[("dataset", "bot_sessions"), ("priority", "scheduled")]
        ),
        None,
        "the account budget's series are apart"
    );
}
