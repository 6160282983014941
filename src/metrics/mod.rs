//! Every metric the product exposes, as a per-instance [`Metrics`] handle built on the
//! `prometheus-client` crate and rendered in the Prometheus text exposition format 0.0.4
//! (serve it with [`CONTENT_TYPE`]).
//!
//! One handle per process instance: the caller creates it with [`Metrics::new`] (which registers
//! `smartassist_build_info` and the standard `process_*` metrics), registers every configured
//! dataset and endpoint at startup ([`Metrics::register_dataset`],
//! [`Metrics::register_endpoint`], and [`Metrics::register_store`] for S3 output), declares the
//! families the datasets define for themselves and creates their entities' series
//! ([`Metrics::declare`], [`Metrics::register_entity`]; see `dataset.rs`), so that the series
//! the alerts and dashboards use exist with their zero value before anything happens, and
//! passes clones of the handle to the code that emits. Labels are low-cardinality (dataset,
//! outcome, endpoint name, status class, retry reason, a dataset's entity such as a bot id,
//! version) and never carry secrets. Callers use the typed methods, never raw names; the name
//! constants below exist for tests and health checks ([`Metrics::value`]).
//!
//! Submodules: `budget.rs` (the account's request budget) and `bot_budget.rs` (the per-bot
//! budgets of the XO runtime APIs), both read at each scrape through `reading.rs` (a reader
//! slot and its collector), `dataset.rs` (families a dataset declares), `lag.rs` (the
//! watermark lag computed at render), `process.rs` (`process_*`), `exposition.rs` (reading the
//! text format back).

mod bot_budget;
mod budget;
mod dataset;
mod exposition;
mod lag;
mod process;
mod reading;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub use bot_budget::{
    BotBudgetReader, BotBudgetReading, BOT_BUDGET_QUEUED, BOT_BUDGET_REQUESTS, BOT_BUDGET_USED,
    BOT_BUDGET_WAIT,
};
pub use budget::{
    BudgetReader, BudgetReading, BUDGET_QUEUED, BUDGET_REQUESTS, BUDGET_USED, BUDGET_WAIT,
};
pub use dataset::{DatasetCounter, DatasetGauge, DatasetMetric, MetricKind};

/// `Content-Type` of [`Metrics::render`]'s output: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

pub const HTTP_REQUESTS: &str = "smartassist_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "smartassist_http_request_duration_seconds";
pub const HTTP_RETRIES: &str = "smartassist_http_retries_total";
pub const HTTP_THROTTLED: &str = "smartassist_http_throttled_total";
pub const RATE_LIMIT_WAIT: &str = "smartassist_rate_limit_wait_seconds_total";
pub const REJECTS: &str = "smartassist_rejects_total";
pub const UNMAPPED_FIELDS: &str = "smartassist_unmapped_fields_total";
pub const ROWS_WRITTEN: &str = "smartassist_rows_written_total";
pub const BYTES_WRITTEN: &str = "smartassist_bytes_written_total";
pub const FILES_WRITTEN: &str = "smartassist_files_written_total";
pub const RUNS: &str = "smartassist_runs_total";
pub const RUN_DURATION: &str = "smartassist_run_duration_seconds";
pub const SKIPPED_TICKS: &str = "smartassist_skipped_ticks_total";
pub const LAST_SUCCESS: &str = "smartassist_last_success_timestamp_seconds";
pub const WATERMARK_LAG: &str = "smartassist_watermark_lag_seconds";
pub const BUILD_INFO: &str = "smartassist_build_info";
pub const API_REQUESTS: &str = "smartassist_api_requests_total";
pub const API_REQUESTS_MINIMUM: &str = "smartassist_api_requests_minimum_total";
pub const STORE_REQUESTS: &str = "smartassist_store_requests_total";

/// A counter's exposition name without the `_total` the encoder appends.
fn counter_name(name: &'static str) -> &'static str {
    name.strip_suffix("_total").unwrap_or(name)
}

/// Values of the `outcome` label of `smartassist_runs_total` (registered at zero per dataset).
pub const RUN_OUTCOMES: [&str; 4] = ["success", "partial", "failure", "cancelled"];

/// Values of the `reason` label of `smartassist_http_retries_total` that the API client uses
/// (registered at zero per endpoint).
pub const RETRY_REASONS: [&str; 3] = ["reauthenticate", "throttled", "transient"];

/// Values of the `outcome` label of `smartassist_store_requests_total` (registered at zero by
/// [`Metrics::register_store`]): an answer the S3 client does not retry, or a failed attempt it
/// retries (throttled: 503 SlowDown or 429; server_error: another 5xx or 408; transport_error:
/// no answer).
pub const STORE_OUTCOMES: [&str; 4] = ["answered", "throttled", "server_error", "transport_error"];

/// Every value [`status_class`] returns (registered at zero per endpoint).
pub const STATUS_CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];

/// Upper bounds of `smartassist_http_request_duration_seconds`: 5 ms to 60 s.
const HTTP_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Upper bounds of `smartassist_run_duration_seconds`: 100 ms to 1 h.
const RUN_BUCKETS: [f64; 14] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// Status class label of an HTTP outcome: `2xx`, `3xx`, `4xx`, `5xx`, or `error` (no response).
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => "error",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatasetLabel {
    dataset: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    dataset: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    endpoint: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

fn dataset_label(dataset: &str) -> DatasetLabel {
    DatasetLabel {
        dataset: dataset.to_string(),
    }
}

fn endpoint_label(endpoint: &str) -> EndpointLabel {
    EndpointLabel {
        endpoint: endpoint.to_string(),
    }
}

fn outcome_label(outcome: &str) -> OutcomeLabel {
    OutcomeLabel {
        outcome: outcome.to_string(),
    }
}

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

fn run_histogram() -> Histogram {
    Histogram::new(RUN_BUCKETS)
}

/// Create the series `labels` of `family` at its zero value if it does not exist yet.
fn create<S, M, C>(family: &Family<S, M, C>, labels: &S)
where
    S: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    // The guard only proves the series exists; release the family's lock at once.
    drop(family.get_or_create(labels));
}

type F64Counter = Counter<f64, AtomicU64>;
type F64Gauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A metric that keeps its `# HELP`/`# TYPE` lines in the output while it has no series yet
/// (`prometheus-client` omits empty families, which would hide a family whose label values are
/// not known at startup).
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        false
    }
}

/// The metric handles; clones of these are registered in the registry (they share state).
#[derive(Debug)]
struct Families {
    http_requests: Family<RequestLabels, Counter>,
    http_request_duration: HistogramFamily<EndpointLabel>,
    http_retries: Family<RetryLabels, Counter>,
    http_throttled: Family<EndpointLabel, Counter>,
    rate_limit_wait: F64Counter,
    rejects: Family<DatasetLabel, Counter>,
    unmapped_fields: Family<DatasetLabel, Counter>,
    rows_written: Family<DatasetLabel, Counter>,
    bytes_written: Family<DatasetLabel, Counter>,
    files_written: Family<DatasetLabel, Counter>,
    runs: Family<RunLabels, Counter>,
    run_duration: HistogramFamily<DatasetLabel>,
    skipped_ticks: Family<DatasetLabel, Counter>,
    last_success: Family<DatasetLabel, F64Gauge>,
    api_requests: Family<DatasetLabel, Counter>,
    api_requests_minimum: Family<DatasetLabel, Counter>,
    store_requests: Family<OutcomeLabel, Counter>,
}

impl Families {
    fn new() -> Families {
        Families {
            http_requests: Family::default(),
            http_request_duration: Family::new_with_constructor(http_histogram),
            http_retries: Family::default(),
            http_throttled: Family::default(),
            rate_limit_wait: F64Counter::default(),
            rejects: Family::default(),
            unmapped_fields: Family::default(),
            rows_written: Family::default(),
            bytes_written: Family::default(),
            files_written: Family::default(),
            runs: Family::default(),
            run_duration: Family::new_with_constructor(run_histogram),
            skipped_ticks: Family::default(),
            last_success: Family::default(),
            api_requests: Family::default(),
            api_requests_minimum: Family::default(),
            store_requests: Family::default(),
        }
    }

    /// Register the families rendered before the datasets' own ([`Families::register_tail`]
    /// the rest) under their exposition names. Counter names are given without `_total`
    /// ([`counter_name`]): the encoder appends it. Help texts get their final full stop from
    /// the registry.
    fn register_head(&self, r: &mut Registry) {
        r.register(
            counter_name(HTTP_REQUESTS),
            "HTTP requests to the report APIs by endpoint and status class",
            Listed(self.http_requests.clone()),
        );
        r.register(
            HTTP_REQUEST_DURATION,
            "Duration of HTTP requests to the report APIs by endpoint, retries counted apart",
            Listed(self.http_request_duration.clone()),
        );
        r.register(
            counter_name(HTTP_RETRIES),
            "Retried HTTP attempts by endpoint and reason",
            Listed(self.http_retries.clone()),
        );
        r.register(
            counter_name(HTTP_THROTTLED),
            "Responses that signalled throttling (429 or a rate-limit message)",
            Listed(self.http_throttled.clone()),
        );
        r.register(
            counter_name(RATE_LIMIT_WAIT),
            "Seconds spent waiting for the request budget (every priority)",
            self.rate_limit_wait.clone(),
        );
        r.register(
            counter_name(REJECTS),
            "Records that could not be normalized, counted when first kept in the rejects dataset (seen again: not counted)",
            Listed(self.rejects.clone()),
        );
        r.register(
            counter_name(UNMAPPED_FIELDS),
            "Fields of exported API records that no column maps, one per field and record; kept in the extra column",
            Listed(self.unmapped_fields.clone()),
        );
        r.register(
            counter_name(ROWS_WRITTEN),
            "Rows written to Parquet",
            Listed(self.rows_written.clone()),
        );
        r.register(
            counter_name(BYTES_WRITTEN),
            "Parquet bytes written",
            Listed(self.bytes_written.clone()),
        );
        r.register(
            counter_name(FILES_WRITTEN),
            "Parquet files written",
            Listed(self.files_written.clone()),
        );
        r.register(
            counter_name(RUNS),
            "Export runs by dataset and outcome (success, partial, failure, cancelled)",
            Listed(self.runs.clone()),
        );
        r.register(
            RUN_DURATION,
            "Duration of export runs by dataset",
            Listed(self.run_duration.clone()),
        );
        r.register(
            counter_name(SKIPPED_TICKS),
            "Scheduler ticks skipped because the previous run of the job was still busy",
            Listed(self.skipped_ticks.clone()),
        );
    }

    /// Register the families rendered after the datasets' own.
    fn register_tail(&self, r: &mut Registry) {
        r.register(
            LAST_SUCCESS,
            "Unix time of the last successful run per dataset (0: none since startup)",
            Listed(self.last_success.clone()),
        );
        r.register(
            counter_name(API_REQUESTS),
            "Report API requests the exported units of a dataset made (retries not counted)",
            Listed(self.api_requests.clone()),
        );
        r.register(
            counter_name(API_REQUESTS_MINIMUM),
            "Requests the same units needed at the least: one per page of records plus one per request window",
            Listed(self.api_requests_minimum.clone()),
        );
        r.register(
            counter_name(STORE_REQUESTS),
            "HTTP request attempts of the S3 client by outcome (answered, or a failure it \
             retries: throttled, server_error, transport_error)",
            Listed(self.store_requests.clone()),
        );
    }
}

/// What a render encodes, in this order: `head` (build info, requests, writes, runs), the
/// families datasets declared, `tail` (last success, API budget, S3 requests, `process_*`),
/// then the watermark lag computed at render time.
struct Inner {
    head: Registry,
    declared: Mutex<dataset::DeclaredFamilies>,
    tail: Registry,
    families: Families,
    budget: budget::BudgetFamilies,
    coverage: Mutex<lag::Coverage>,
}

/// The metrics of one process instance. Cheap to clone (an `Arc` inside); clones share the
/// same series. Two handles made by [`Metrics::new`] are fully independent.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = self
            .lock_coverage()
            .values()
            .map(BTreeMap::len)
            .sum::<usize>();
        f.debug_struct("Metrics")
            .field("covered_units", &units)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every product family (empty families still render their
    /// `# HELP`/`# TYPE`), `smartassist_build_info{version="<crate version>"} 1` and the
    /// `process_*` collector (read at each render).
    pub fn new() -> Metrics {
        let families = Families::new();
        let mut head = Registry::default();
        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        head.register(
            BUILD_INFO,
            "Always 1; the version label is the running smartassist-export version",
            build_info,
        );
        families.register_head(&mut head);
        let mut tail = Registry::default();
        families.register_tail(&mut tail);
        let budget = budget::BudgetFamilies::new();
        budget.register(&mut tail);
        tail.register_collector(Box::new(process::ProcessCollector::new()));
        Metrics {
            inner: Arc::new(Inner {
                head,
                declared: Mutex::default(),
                tail,
                families,
                budget,
                coverage: Mutex::default(),
            }),
        }
    }

    /// Create the zero-valued series of one dataset: runs for every outcome in
    /// [`RUN_OUTCOMES`], rejects, unmapped fields, rows/bytes/files written, skipped ticks, the last-success
    /// timestamp (0), the run duration histogram and the API requests used and needed.
    /// Idempotent: existing values are kept.
    pub fn register_dataset(&self, dataset: &str) {
        let f = &self.inner.families;
        let l = dataset_label(dataset);
        for outcome in RUN_OUTCOMES {
            create(
                &f.runs,
                &RunLabels {
                    dataset: dataset.to_string(),
                    outcome: outcome.to_string(),
                },
            );
        }
        create(&f.rejects, &l);
        create(&f.unmapped_fields, &l);
        create(&f.rows_written, &l);
        create(&f.bytes_written, &l);
        create(&f.files_written, &l);
        create(&f.skipped_ticks, &l);
        create(&f.last_success, &l);
        create(&f.run_duration, &l);
        create(&f.api_requests, &l);
        create(&f.api_requests_minimum, &l);
    }

    /// Create the zero-valued rows/bytes/files written series of a further table a dataset
    /// writes (its `dataset` label is the table's name). Idempotent.
    pub fn register_table(&self, table: &str) {
        let f = &self.inner.families;
        let l = dataset_label(table);
        create(&f.rows_written, &l);
        create(&f.bytes_written, &l);
        create(&f.files_written, &l);
    }

    /// Create the zero-valued series of one API endpoint: requests for every status class in
    /// [`STATUS_CLASSES`], throttled, retries for every reason in [`RETRY_REASONS`] and the
    /// request duration histogram. Idempotent.
    pub fn register_endpoint(&self, endpoint: &str) {
        let f = &self.inner.families;
        for class in STATUS_CLASSES {
            create(
                &f.http_requests,
                &RequestLabels {
                    endpoint: endpoint.to_string(),
                    status_class: class.to_string(),
                },
            );
        }
        for reason in RETRY_REASONS {
            create(
                &f.http_retries,
                &RetryLabels {
                    endpoint: endpoint.to_string(),
                    reason: reason.to_string(),
                },
            );
        }
        let l = endpoint_label(endpoint);
        create(&f.http_throttled, &l);
        create(&f.http_request_duration, &l);
    }

    /// Create the zero-valued `smartassist_store_requests_total` series of every outcome in
    /// [`STORE_OUTCOMES`] (for S3 output). Idempotent.
    pub fn register_store(&self) {
        for outcome in STORE_OUTCOMES {
            create(&self.inner.families.store_requests, &outcome_label(outcome));
        }
    }

    /// One HTTP attempt of the S3 client ended with `outcome` (one of [`STORE_OUTCOMES`]).
    pub fn store_request(&self, outcome: &str) {
        self.inner
            .families
            .store_requests
            .get_or_create(&outcome_label(outcome))
            .inc();
    }

    /// One HTTP attempt finished: counts it under its [`status_class`] (`None`: no response)
    /// and observes `elapsed` in the endpoint's duration histogram.
    pub fn http_request(&self, endpoint: &str, status: Option<u16>, elapsed: Duration) {
        self.count_request(endpoint, status);
        self.inner
            .families
            .http_request_duration
            .get_or_create(&endpoint_label(endpoint))
            .observe(elapsed.as_secs_f64());
    }

    /// Count an HTTP attempt.
    fn count_request(&self, endpoint: &str, status: Option<u16>) {
        self.inner
            .families
            .http_requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_string(),
                status_class: status_class(status).to_string(),
            })
            .inc();
    }

    /// The client retries a request on `endpoint` for `reason` (one of [`RETRY_REASONS`]).
    pub fn http_retry(&self, endpoint: &str, reason: &str) {
        self.inner
            .families
            .http_retries
            .get_or_create(&RetryLabels {
                endpoint: endpoint.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// A response on `endpoint` signalled throttling.
    pub fn http_throttled(&self, endpoint: &str) {
        self.inner
            .families
            .http_throttled
            .get_or_create(&endpoint_label(endpoint))
            .inc();
    }

    /// A request waited `seconds` for the request budget.
    pub fn rate_limit_wait(&self, seconds: f64) {
        self.inner.families.rate_limit_wait.inc_by(seconds.max(0.0));
    }

    /// `n` records of `dataset` were newly kept in the rejects dataset (not already kept for
    /// their partition).
    pub fn rejects(&self, dataset: &str, n: usize) {
        self.inner
            .families
            .rejects
            .get_or_create(&dataset_label(dataset))
            .inc_by(n as u64);
    }

    /// The exported records of `dataset` carried `n` fields no column maps (kept in their
    /// rows' `extra`).
    pub fn unmapped_fields(&self, dataset: &str, n: u64) {
        self.inner
            .families
            .unmapped_fields
            .get_or_create(&dataset_label(dataset))
            .inc_by(n);
    }

    /// Parquet output of `dataset` was committed: `files` files, `rows` rows, `bytes` bytes.
    pub fn written(&self, dataset: &str, files: usize, rows: usize, bytes: u64) {
        let f = &self.inner.families;
        let l = dataset_label(dataset);
        f.files_written.get_or_create(&l).inc_by(files as u64);
        f.rows_written.get_or_create(&l).inc_by(rows as u64);
        f.bytes_written.get_or_create(&l).inc_by(bytes);
    }

    /// A unit of `dataset` made `used` API requests where `minimum` would have done.
    pub fn api_requests(&self, dataset: &str, used: u64, minimum: u64) {
        let f = &self.inner.families;
        let l = dataset_label(dataset);
        f.api_requests.get_or_create(&l).inc_by(used);
        f.api_requests_minimum.get_or_create(&l).inc_by(minimum);
    }

    /// A run of `dataset` ended with `outcome` (one of [`RUN_OUTCOMES`]) after `duration`.
    pub fn run(&self, dataset: &str, outcome: &str, duration: Duration) {
        self.count_run(dataset, outcome);
        self.inner
            .families
            .run_duration
            .get_or_create(&dataset_label(dataset))
            .observe(duration.as_secs_f64());
    }

    /// Count a run.
    fn count_run(&self, dataset: &str, outcome: &str) {
        self.inner
            .families
            .runs
            .get_or_create(&RunLabels {
                dataset: dataset.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The scheduler skipped a tick of `dataset` because its previous run was still busy.
    pub fn skipped_tick(&self, dataset: &str) {
        self.inner
            .families
            .skipped_ticks
            .get_or_create(&dataset_label(dataset))
            .inc();
    }

    /// A run of `dataset` succeeded at `unix_seconds`.
    pub fn last_success(&self, dataset: &str, unix_seconds: f64) {
        self.inner
            .families
            .last_success
            .get_or_create(&dataset_label(dataset))
            .set(unix_seconds);
    }

    /// The Prometheus text exposition (serve with [`CONTENT_TYPE`]), lag computed at `now`.
    pub fn render(&self) -> String {
        self.render_at(Utc::now())
    }

    /// [`Metrics::render`] with the watermark lag computed at `now` (tests pass a fixed time).
    pub fn render_at(&self, now: DateTime<Utc>) -> String {
        let at_render = self.lag_registry(now);
        let mut out = String::new();
        let declared = self.lock_declared();
        for registry in [
            &self.inner.head,
            &declared.registry,
            &self.inner.tail,
            &at_render,
        ] {
            // Writing to a String cannot fail and no metric or collector here returns an
            // error of its own, so an error would be a bug in the encoder: keep what was
            // written and say so.
            if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
            {
                tracing::error!(error = %e, "Encoding the metrics failed; the output is partial.");
            }
        }
        out
    }

    /// Current value of the series `name{labels}` as rendered now (label order does not
    /// matter; histogram series are addressed by their `_bucket`/`_sum`/`_count` names).
    /// `None` if no such series is rendered. For tests and health checks: it renders and
    /// parses the whole exposition.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        exposition::find(&self.render(), name, labels)
    }
}
