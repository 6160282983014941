//! How the output talks to S3: the retry policy and timeouts of `[output]` ([`StoreTuning`],
//! whose docs explain the defaults) and its overrides, applied on top of the `AWS_*`
//! environment, and a connector that classifies every HTTP attempt ([`AttemptOutcome`]):
//! counted per opened output, sink and state store together ([`StoreRequestCounts`]) and,
//! when it was opened with a metrics handle, reported as `smartassist_store_requests_total`.
//! An attempt is classified by its HTTP status, so the rare S3 answer "200 with an error body"
//! that object_store also retries counts as answered.
//!
//! object_store retries 5xx, 429 and 408 answers (also S3's 200-with-`InternalError`/`SlowDown`
//! bodies) and connection errors; a timeout or a connection cut after the request was sent is
//! retried only for idempotent requests. Every request object_store issues for our writes is
//! idempotent (plain PutObject, UploadPart, Create/Complete/AbortMultipartUpload, GET, HEAD,
//! LIST, DELETE) except conditional puts (`PutMode::Create` / `PutMode::Update`): their callers
//! must themselves retry an interrupted attempt, re-reading to learn whether it landed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, RetryConfig};

use crate::config::StoreTuning;
use crate::metrics::Metrics;

/// object_store's retry configuration for `tuning`.
pub(super) fn retry_config(tuning: &StoreTuning) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: tuning.backoff_initial,
            max_backoff: tuning.backoff_max,
            base: tuning.backoff_base,
        },
        max_retries: tuning.max_retries,
        retry_timeout: tuning.retry_timeout,
    }
}

/// Applies `tuning` to a builder. Timeouts go through the builder's config keys rather than
/// `with_client_options`, which would replace the client options already read from the
/// environment (`AWS_ALLOW_HTTP`, proxy settings, ...).
fn apply(tuning: &StoreTuning, builder: AmazonS3Builder) -> AmazonS3Builder {
    let client = |key| AmazonS3ConfigKey::Client(key);
    builder
        .with_retry(retry_config(tuning))
        .with_config(
            client(ClientConfigKey::Timeout),
            duration_value(tuning.request_timeout),
        )
        .with_config(
            client(ClientConfigKey::ConnectTimeout),
            duration_value(tuning.connect_timeout),
        )
}

/// A duration as object_store's config parser reads it (whole nanoseconds, no rounding to 0).
fn duration_value(d: Duration) -> String {
    format!("{}ns", d.as_nanos())
}

/// The builder for `[output]` S3 settings: `base` (normally `AmazonS3Builder::from_env()`)
/// with the bucket and overrides ([`with_output_overrides`]), then `tuning`, then the request
/// counters.
pub(super) fn s3_builder(
    base: AmazonS3Builder,
    bucket: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    allow_http: bool,
    tuning: &StoreTuning,
    stats: &Arc<RequestStats>,
) -> AmazonS3Builder {
    let builder = with_output_overrides(base, bucket, endpoint, region, allow_http);
    apply(tuning, builder).with_http_connector(CountingConnector(Arc::clone(stats)))
}

/// Applies the `[output]` S3 settings on top of a builder configured from the `AWS_*`
/// environment, so they win: an endpoint is set both as the generic endpoint and as the
/// S3-specific one (object_store prefers `AWS_ENDPOINT_URL_S3` over any generic endpoint, which
/// would otherwise silently override the config), with path-style requests.
pub(super) fn with_output_overrides(
    builder: AmazonS3Builder,
    bucket: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    allow_http: bool,
) -> AmazonS3Builder {
    let mut builder = builder.with_bucket_name(bucket);
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(region) = region {
        builder = builder.with_region(region);
    }
    if allow_http {
        builder = builder.with_allow_http(true);
    }
    builder
}

/// What an output's S3 client has sent so far (all zero for local output and for
/// [`super::Output::with_store`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreRequestCounts {
    /// HTTP request attempts, retries included.
    pub attempts: u64,
    /// Attempts answered 503 (S3's SlowDown) or 429.
    pub throttled: u64,
    /// Attempts answered with another 5xx, or 408.
    pub server_errors: u64,
    /// Attempts that got no answer: connection refused, reset or cut, timeout.
    pub transport_errors: u64,
}

/// What one HTTP attempt came to; its [`label`](AttemptOutcome::label) is the `outcome` of
/// `smartassist_store_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AttemptOutcome {
    /// An answer object_store does not retry: 2xx, 3xx, or a 4xx other than 408 and 429 (such
    /// as the 404 of a state object that does not exist yet).
    Answered,
    /// 503 (S3's SlowDown) or 429.
    Throttled,
    /// Another 5xx, or 408.
    ServerError,
    /// No answer: connection refused, reset or cut, timeout.
    TransportError,
}

impl AttemptOutcome {
    #[cfg(test)]
    pub(super) const ALL: [AttemptOutcome; 4] = [
        AttemptOutcome::Answered,
        AttemptOutcome::Throttled,
        AttemptOutcome::ServerError,
        AttemptOutcome::TransportError,
    ];

    pub(super) fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Answered => "answered",
            AttemptOutcome::Throttled => "throttled",
            AttemptOutcome::ServerError => "server_error",
            AttemptOutcome::TransportError => "transport_error",
        }
    }

    fn of(outcome: &Result<HttpResponse, HttpError>) -> AttemptOutcome {
        match outcome {
            Ok(response) => match response.status().as_u16() {
                429 | 503 => AttemptOutcome::Throttled,
                408 | 500..=599 => AttemptOutcome::ServerError,
                _ => AttemptOutcome::Answered,
            },
            Err(_) => AttemptOutcome::TransportError,
        }
    }
}

/// Shared counters behind [`StoreRequestCounts`], and the metrics handle every attempt is also
/// reported to (when the output was opened with one).
#[derive(Debug, Default)]
pub(super) struct RequestStats {
    attempts: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    metrics: Option<Metrics>,
}

impl RequestStats {
    pub(super) fn new(metrics: Option<Metrics>) -> RequestStats {
        RequestStats {
            metrics,
            ..RequestStats::default()
        }
    }

    pub(super) fn snapshot(&self) -> StoreRequestCounts {
        StoreRequestCounts {
            attempts: self.attempts.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
        }
    }

    fn record(&self, outcome: &Result<HttpResponse, HttpError>) {
        let outcome = AttemptOutcome::of(outcome);
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let failed = match outcome {
            AttemptOutcome::Answered => None,
            AttemptOutcome::Throttled => Some(&self.throttled),
            AttemptOutcome::ServerError => Some(&self.server_errors),
            AttemptOutcome::TransportError => Some(&self.transport_errors),
        };
        if let Some(counter) = failed {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(metrics) = &self.metrics {
            metrics.store_request(outcome.label());
        }
    }
}

/// object_store's default reqwest connector, with every attempt counted.
#[derive(Debug)]
struct CountingConnector(Arc<RequestStats>);

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CountingService {
            inner,
            stats: Arc::clone(&self.0),
        }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
    stats: Arc<RequestStats>,
}

type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

/// Written out by hand: `HttpService` is an `async_trait`, whose methods return boxed futures.
impl HttpService for CountingService {
    fn call<'life0, 'async_trait>(&'life0 self, req: HttpRequest) -> CallFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let outcome = self.inner.execute(req).await;
            self.stats.record(&outcome);
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bound_the_total_backoff_of_one_request() {
        let t = StoreTuning::default();
        // Worst case: every backoff at its upper bound, initial × base^n capped at the maximum.
        let mut total = Duration::ZERO;
        let mut next = t.backoff_initial;
        for _ in 0..t.max_retries {
            total += next;
            next = next.mul_f64(t.backoff_base).min(t.backoff_max);
        }
        assert!(total < t.retry_timeout, "{total:?}");
        assert!(t.request_timeout < t.retry_timeout);
    }

    #[test]
    fn attempt_outcome_labels_are_the_documented_metric_labels() {
        let labels: Vec<&str> = AttemptOutcome::ALL.iter().map(|o| o.label()).collect();
        assert_eq!(labels, crate::metrics::STORE_OUTCOMES);
        assert_eq!(
            labels,
            ["answered", "throttled", "server_error", "transport_error"]
        );
    }

    fn answer(status: u16) -> Result<HttpResponse, HttpError> {
        let mut response = HttpResponse::new(Vec::new().into());
        *response.status_mut() = reqwest::StatusCode::from_u16(status).expect("valid status");
        Ok(response)
    }

    #[test]
    fn attempts_are_classified_by_status_and_reach_the_metrics() {
        let metrics = Metrics::new();
        let stats = RequestStats::new(Some(metrics.clone()));
        for status in [200, 204, 404, 412, 503, 429, 500, 502, 408] {
            stats.record(&answer(status));
        }
        let cut = HttpError::new(
            object_store::client::HttpErrorKind::Request,
            std::io::Error::other("connection reset"),
        );
        stats.record(&Err(cut));
        assert_eq!(
            stats.snapshot(),
            StoreRequestCounts {
                attempts: 10,
                throttled: 2,
                server_errors: 3,
                transport_errors: 1,
            }
        );
        let value =
            |outcome| metrics.value(crate::metrics::STORE_REQUESTS, &[("outcome", outcome)]);
        assert_eq!(value("answered"), Some(4.0));
        assert_eq!(value("throttled"), Some(2.0));
        assert_eq!(value("server_error"), Some(3.0));
        assert_eq!(value("transport_error"), Some(1.0));
    }

    #[test]
    fn durations_are_written_so_object_store_parses_them_exactly() {
        assert_eq!(duration_value(Duration::from_millis(1500)), "1500000000ns");
        assert_eq!(duration_value(Duration::from_nanos(1)), "1ns");
    }

    #[test]
    fn tuning_reaches_the_builder_and_keeps_options_from_the_environment() {
        let tuning = StoreTuning {
            request_timeout: Duration::from_secs(7),
            connect_timeout: Duration::from_millis(250),
            ..StoreTuning::default()
        };
        let base = AmazonS3Builder::new().with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp),
            "true",
        );
        let stats = Arc::new(RequestStats::default());
        let b = s3_builder(base, "bkt", None, None, false, &tuning, &stats);
        let get = |key| b.get_config_value(&AmazonS3ConfigKey::Client(key));
        assert_eq!(get(ClientConfigKey::AllowHttp).as_deref(), Some("true"));
        assert_eq!(
            get(ClientConfigKey::Timeout).as_deref(),
            Some("7000000000ns")
        );
        assert_eq!(
            get(ClientConfigKey::ConnectTimeout).as_deref(),
            Some("250000000ns")
        );
    }
}
