//! How the sink talks to S3: the retry policy and timeouts ([`StoreTuning`]), the `[output]`
//! overrides applied on top of the `AWS_*` environment, and per-sink counters of HTTP request
//! attempts and of the failed ones object_store retried ([`StoreRequestCounts`]), for metrics.
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

/// Default for [`StoreTuning::max_retries`].
pub const DEFAULT_MAX_RETRIES: usize = 8;
/// Default for [`StoreTuning::retry_timeout`].
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`StoreTuning::backoff_initial`].
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Default for [`StoreTuning::backoff_max`].
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Default for [`StoreTuning::backoff_base`].
pub const DEFAULT_BACKOFF_BASE: f64 = 2.0;
/// Default for [`StoreTuning::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`StoreTuning::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Retry policy and timeouts of the S3 client (ignored for local output).
///
/// The defaults aim at two things at once. A transient fault (a 500 or 503 SlowDown, a dropped
/// connection, a slow answer) must not fail a run: with 8 retries a request fails only after 9
/// failed attempts in a row, which at a 20 % fault rate happens to about one request in two
/// million. A dead endpoint must fail the run in bounded time instead of hanging a daemon
/// cycle: backoff grows from 100 ms by up to ×2 per retry (object_store's decorrelated jitter)
/// and is capped at 5 s, so 8 retries sleep at most about 16 s in total; no retry starts after
/// 60 s; a connection attempt gives up after 5 s and a whole request (connect, upload, answer)
/// after 30 s. So a refused connection fails after about 16 s, an endpoint that swallows
/// packets after about 60 s (+ one connect timeout), and a server that accepts but never
/// answers after at most about 90 s (timeouts are retried only for idempotent requests).
///
/// The 30 s request timeout also bounds one upload part ([`super::UPLOAD_PART_BYTES`], 8 MiB):
/// links slower than about 300 KB/s need a longer one. The retry timeout stays well below the
/// 5 minutes after which a signed request (retried as is) can expire.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreTuning {
    /// Retries per request after the first attempt (0 disables retries).
    pub max_retries: usize,
    /// No retry is started this long after a request's first attempt.
    pub retry_timeout: Duration,
    /// The first backoff; later ones are drawn between this and `backoff_base` × the previous.
    pub backoff_initial: Duration,
    /// Upper bound of one backoff.
    pub backoff_max: Duration,
    /// Growth factor of the backoff.
    pub backoff_base: f64,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request: connect, send the body, receive the full answer.
    pub request_timeout: Duration,
}

impl Default for StoreTuning {
    fn default() -> Self {
        StoreTuning {
            max_retries: DEFAULT_MAX_RETRIES,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            backoff_base: DEFAULT_BACKOFF_BASE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl StoreTuning {
    /// object_store's retry configuration for these settings.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.backoff_initial,
                max_backoff: self.backoff_max,
                base: self.backoff_base,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }

    /// Applies the settings to a builder. Timeouts go through the builder's config keys rather
    /// than `with_client_options`, which would replace the client options already read from
    /// the environment (`AWS_ALLOW_HTTP`, proxy settings, ...).
    fn apply(&self, builder: AmazonS3Builder) -> AmazonS3Builder {
        let client = |key| AmazonS3ConfigKey::Client(key);
        builder
            .with_retry(self.retry_config())
            .with_config(
                client(ClientConfigKey::Timeout),
                duration_value(self.request_timeout),
            )
            .with_config(
                client(ClientConfigKey::ConnectTimeout),
                duration_value(self.connect_timeout),
            )
    }
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
    tuning
        .apply(builder)
        .with_http_connector(CountingConnector(Arc::clone(stats)))
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

/// What a sink's S3 client has sent so far (all zero for local output and for
/// [`super::Sink::with_store`]).
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

impl StoreRequestCounts {
    /// Attempts that failed in a way object_store may retry. Each one was followed by a retry
    /// unless it was the last attempt of a request that then failed.
    pub fn failed_attempts(&self) -> u64 {
        self.throttled + self.server_errors + self.transport_errors
    }
}

/// Shared counters behind [`StoreRequestCounts`].
#[derive(Debug, Default)]
pub(super) struct RequestStats {
    attempts: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
}

impl RequestStats {
    pub(super) fn snapshot(&self) -> StoreRequestCounts {
        StoreRequestCounts {
            attempts: self.attempts.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
        }
    }

    fn record(&self, outcome: &Result<HttpResponse, HttpError>) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let counter = match outcome {
            Ok(response) => match response.status().as_u16() {
                429 | 503 => &self.throttled,
                408 | 500..=599 => &self.server_errors,
                _ => return,
            },
            Err(_) => &self.transport_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
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
