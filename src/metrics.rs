//! Metric names and typed emit functions, plus a small process-wide registry rendered in the
//! Prometheus text exposition format. Every metric the product emits is declared here; labels
//! are low-cardinality (dataset, outcome, endpoint path template, status class, bot id) and never
//! carry secrets. Callers use the typed functions, never raw names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Vec<(&'static str, String)>, f64>,
}

/// Registry of metric families.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Registry {
    fn update(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&'static str, &str)],
        f: impl FnOnce(&mut f64),
    ) {
        // A poisoned registry still holds consistent numbers (updates are single assignments).
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        let key = labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        f(family.series.entry(key).or_insert(0.0));
    }

    fn add(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)], v: f64) {
        self.update(name, help, Kind::Counter, labels, |x| *x += v);
    }

    fn set(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)], v: f64) {
        self.update(name, help, Kind::Gauge, labels, |x| *x = v);
    }

    /// Current value of a series (tests and health checks).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let family = families.get(name)?;
        family
            .series
            .iter()
            .find(|(k, _)| {
                k.len() == labels.len()
                    && k.iter()
                        .zip(labels)
                        .all(|((a, b), (c, d))| a == c && b == d)
            })
            .map(|(_, v)| *v)
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let escaped = v
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        let _ = write!(out, "{k}=\"{escaped}\"");
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        out
    }
}

/// The process-wide registry.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

pub const HTTP_REQUESTS: &str = "smartassist_http_requests_total";
pub const HTTP_RETRIES: &str = "smartassist_http_retries_total";
pub const HTTP_THROTTLED: &str = "smartassist_http_throttled_total";
pub const RATE_LIMIT_WAIT: &str = "smartassist_rate_limit_wait_seconds_total";
pub const REJECTS: &str = "smartassist_rejects_total";
pub const ROWS_WRITTEN: &str = "smartassist_rows_written_total";
pub const BYTES_WRITTEN: &str = "smartassist_bytes_written_total";
pub const FILES_WRITTEN: &str = "smartassist_files_written_total";
pub const RUNS: &str = "smartassist_runs_total";
pub const SKIPPED_TICKS: &str = "smartassist_skipped_ticks_total";
pub const INTENT_GAPS: &str = "smartassist_intent_gaps_total";
pub const INTENT_NEW_SESSIONS: &str = "smartassist_intent_new_sessions_total";
pub const LAST_SUCCESS: &str = "smartassist_last_success_timestamp_seconds";
pub const WATERMARK_LAG: &str = "smartassist_watermark_lag_seconds";

/// Status class label of an HTTP outcome: `2xx`, `4xx`, `5xx`, or `error` (no response).
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => "error",
    }
}

pub fn http_request(endpoint: &str, status: Option<u16>) {
    global().add(
        HTTP_REQUESTS,
        "HTTP requests to the report APIs by endpoint and status class.",
        &[
            ("endpoint", endpoint),
            ("status_class", status_class(status)),
        ],
        1.0,
    );
}

pub fn http_retry(endpoint: &str, reason: &str) {
    global().add(
        HTTP_RETRIES,
        "Retried HTTP attempts by endpoint and reason.",
        &[("endpoint", endpoint), ("reason", reason)],
        1.0,
    );
}

pub fn http_throttled(endpoint: &str) {
    global().add(
        HTTP_THROTTLED,
        "Responses that signalled throttling (429 or a rate-limit message).",
        &[("endpoint", endpoint)],
        1.0,
    );
}

pub fn rate_limit_wait(seconds: f64) {
    global().add(
        RATE_LIMIT_WAIT,
        "Seconds spent waiting for the client-side rate limiter.",
        &[],
        seconds,
    );
}

pub fn rejects(dataset: &str, n: usize) {
    global().add(
        REJECTS,
        "Records that could not be normalized and were written to the rejects dataset.",
        &[("dataset", dataset)],
        n as f64,
    );
}

pub fn written(dataset: &str, files: usize, rows: usize, bytes: u64) {
    let l = [("dataset", dataset)];
    global().add(ROWS_WRITTEN, "Rows written to Parquet.", &l, rows as f64);
    global().add(BYTES_WRITTEN, "Parquet bytes written.", &l, bytes as f64);
    global().add(FILES_WRITTEN, "Parquet files written.", &l, files as f64);
}

pub fn run(dataset: &str, outcome: &str) {
    global().add(
        RUNS,
        "Export runs by dataset and outcome (success, failure, partial).",
        &[("dataset", dataset), ("outcome", outcome)],
        1.0,
    );
}

pub fn skipped_tick(dataset: &str) {
    global().add(
        SKIPPED_TICKS,
        "Scheduler ticks skipped because the previous run of the job was still busy.",
        &[("dataset", dataset)],
        1.0,
    );
}

pub fn intent_gap(bot_id: &str) {
    global().add(
        INTENT_GAPS,
        "Polls that returned a full page of unseen sessions: sessions were probably missed.",
        &[("bot_id", bot_id)],
        1.0,
    );
}

pub fn intent_new_sessions(bot_id: &str, n: usize) {
    global().add(
        INTENT_NEW_SESSIONS,
        "Sessions exported for the first time.",
        &[("bot_id", bot_id)],
        n as f64,
    );
}

pub fn last_success(dataset: &str, unix_seconds: f64) {
    global().set(
        LAST_SUCCESS,
        "Unix time of the last successful run per dataset.",
        &[("dataset", dataset)],
        unix_seconds,
    );
}

pub fn watermark_lag(dataset: &str, seconds: f64) {
    global().set(
        WATERMARK_LAG,
        "Seconds between now and the dataset's watermark.",
        &[("dataset", dataset)],
        seconds,
    );
}

/// Handle through which the crate emits metrics. TEMPORARY shape: it forwards to the process
/// registry until the per-instance registry lands.
type CoverageMap = BTreeMap<(String, String), chrono::DateTime<chrono::Utc>>;

#[derive(Clone, Debug, Default)]
pub struct Metrics {
    covered: std::sync::Arc<Mutex<CoverageMap>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }
    pub fn register_dataset(&self, _dataset: &str) {}
    pub fn register_bot(&self, _bot_id: &str) {}
    pub fn register_endpoint(&self, _endpoint: &str) {}
    pub fn http_request(&self, endpoint: &str, status: Option<u16>, _elapsed: std::time::Duration) {
        http_request(endpoint, status)
    }
    pub fn http_retry(&self, endpoint: &str, reason: &str) {
        http_retry(endpoint, reason)
    }
    pub fn http_throttled(&self, endpoint: &str) {
        http_throttled(endpoint)
    }
    pub fn rate_limit_wait(&self, seconds: f64) {
        rate_limit_wait(seconds)
    }
    pub fn rejects(&self, dataset: &str, n: usize) {
        rejects(dataset, n)
    }
    pub fn written(&self, dataset: &str, files: usize, rows: usize, bytes: u64) {
        written(dataset, files, rows, bytes)
    }
    pub fn run(&self, dataset: &str, outcome: &str, _duration: std::time::Duration) {
        run(dataset, outcome)
    }
    pub fn skipped_tick(&self, dataset: &str) {
        skipped_tick(dataset)
    }
    pub fn intent_gap(&self, bot_id: &str) {
        intent_gap(bot_id)
    }
    pub fn intent_new_sessions(&self, bot_id: &str, n: usize) {
        intent_new_sessions(bot_id, n)
    }
    pub fn last_success(&self, dataset: &str, unix_seconds: f64) {
        last_success(dataset, unix_seconds)
    }
    pub fn set_covered(&self, dataset: &str, unit: &str, until: chrono::DateTime<chrono::Utc>) {
        self.covered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((dataset.to_string(), unit.to_string()), until);
    }
    pub fn render(&self) -> String {
        let now = chrono::Utc::now();
        let map = self.covered.lock().unwrap_or_else(|e| e.into_inner());
        let mut oldest: BTreeMap<&str, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
        for ((d, _), t) in map.iter() {
            let e = oldest.entry(d.as_str()).or_insert(*t);
            *e = (*e).min(*t);
        }
        for (d, t) in oldest {
            watermark_lag(d, (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        }
        global().render()
    }
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        global().value(name, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_help_type_and_labels() {
        let r = Registry::default();
        r.add("x_total", "Things.", &[("dataset", "user_status")], 2.0);
        r.add("x_total", "Things.", &[("dataset", "user_status")], 1.0);
        r.set("y", "A gauge.", &[], 5.0);
        let text = r.render();
        assert!(text.contains("# HELP x_total Things.\n# TYPE x_total counter\n"));
        assert!(text.contains("x_total{dataset=\"user_status\"} 3\n"));
        assert!(text.contains("# TYPE y gauge\ny 5\n"));
        assert_eq!(r.value("x_total", &[("dataset", "user_status")]), Some(3.0));
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(429)), "4xx");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(None), "error");
    }
}
