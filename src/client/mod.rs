//! HTTP access to the report APIs. [`ApiClient::post_json`] owns one logical request: for each
//! attempt it waits for a grant of the account's shared request [`Budget`] at the priority of
//! the client's work ([`ApiClient::for_work`]; see [`budget`]), mints a token (fresh per attempt
//! when JTI is enforced), sends the request with the `auth`, `IId` and `accountId` headers,
//! reads the body under a size cap and hands it to the caller's decoder. Connect errors,
//! timeouts, 408, 5xx and undecodable bodies are retried with jittered exponential backoff;
//! 429 and "rate limit" 4xx bodies are throttling (honouring a capped `Retry-After`, and pausing
//! the whole budget as long); a 401 for
//! a replayed or over-long JTI token is retried once with a new token; any other 4xx fails fast
//! with the API's `errors[].msg`. Every attempt is counted (and timed) through the
//! [`Metrics`] handle the client is built with, and so is its wait for the budget, by dataset
//! and priority. Clones are cheap and share the budget, connections and token cache; each
//! carries its own work label and an optional stop token ([`ApiClient::with_stop`]). The XO
//! runtime APIs (getSessions, getMessages) are limited per bot, not per account: a client made
//! with [`ApiClient::for_bot`] takes its grants from that bot's [`BotBudget`] instead of the
//! account's budget.
//!
//! This module builds the client and its requests; `send.rs` sends one with its retries.

pub mod budget;
mod decode;
pub mod gate;
#[cfg(test)]
mod gate_tests;
pub mod retry;
mod send;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::auth::{AuthError, TokenMinter};
use crate::config::{ApiConfig, RetryPolicy};
use crate::metrics::Metrics;
use crate::sources::DecodeError;
pub use budget::{BotBudget, BotBudgets, Budget, BudgetSnapshot, LimiterUsage, Priority};
use decode::{Blocking, Inline};
pub use gate::MemoryGate;

/// Why one attempt failed (kept for the final error when retries run out).
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("transport error")]
    Transport(#[source] reqwest::Error),
    #[error("undecodable response")]
    Decode(#[source] DecodeError),
    #[error("response body larger than the {limit}-byte cap")]
    TooLarge { limit: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{endpoint}: HTTP {status}: {message}")]
    Rejected {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error("{endpoint}: gave up after {attempts} attempts")]
    RetriesExhausted {
        endpoint: String,
        attempts: u32,
        #[source]
        last: AttemptError,
    },
    #[error("{endpoint}: response body larger than the {limit}-byte cap (api.max_response_bytes)")]
    TooLarge { endpoint: String, limit: u64 },
    #[error("cannot build the request URL from {base} and {path}")]
    Url {
        base: String,
        path: String,
        #[source]
        source: url::ParseError,
    },
    #[error("{endpoint}: cannot serialize the request body")]
    Body {
        endpoint: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{endpoint}: header value for {header} is not valid")]
    Header {
        endpoint: String,
        header: &'static str,
    },
    #[error("{endpoint}: cancelled by shutdown")]
    Cancelled { endpoint: String },
}

impl ClientError {
    /// Whether a later run could succeed without a config change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::RetriesExhausted { .. } | ClientError::Cancelled { .. }
        )
    }
}

/// Client of one account's report APIs.
#[derive(Clone, Debug)]
pub struct ApiClient {
    inner: Arc<Inner>,
    work: Work,
    /// The bot whose per-bot budget this client's requests use instead of the account's.
    bot: Option<Arc<BotBudget>>,
    /// Cancels this client's requests (a handed-over job's), besides the process-wide token.
    stop: Option<CancellationToken>,
}

/// Whose requests a client sends: the metric label and the budget priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Work {
    dataset: &'static str,
    priority: Priority,
}

/// The work label of a client nobody labelled (see [`ApiClient::for_work`]).
pub const UNLABELLED: &str = "unlabelled";

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: Url,
    account_id: String,
    iid: String,
    minter: TokenMinter,
    budget: Arc<Budget>,
    /// Per-bot budgets of the XO runtime APIs (`api.bot_requests_per_minute`, `_per_hour`).
    bots: Arc<BotBudgets>,
    retry: RetryPolicy,
    max_body: u64,
    cancel: CancellationToken,
    metrics: Metrics,
}

impl ApiClient {
    /// Build a client for `base` (the resolved base URL: the configured one, or the
    /// simulator's) whose every attempt waits for a grant of `budget`. It sends scheduled
    /// requests labelled [`UNLABELLED`] until [`ApiClient::for_work`] says otherwise.
    pub fn new(
        api: &ApiConfig,
        base: Url,
        minter: TokenMinter,
        budget: Arc<Budget>,
        cancel: CancellationToken,
        metrics: Metrics,
    ) -> Result<ApiClient, ClientError> {
        // Proxies come from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY (reqwest's default;
        // never disable it). Extra roots from api.ca_bundle_file are added to the system ones.
        // HTTP/1.1 only. Over HTTP/2 the days in flight would share one connection and its
        // flow-control window (5 MB), and a response waiting at the page gate
        // (`post_json_gated`) keeps its received bytes in that window: three 2 MB pages waiting
        // would stall the page holding the permit until the timeout. Over HTTP/1.1 each
        // waiting body sits in its own socket. (object_store enables reqwest's http2 feature.)
        let http = reqwest::Client::builder()
            .http1_only()
            .tls_certs_merge(api.extra_root_certs.iter().cloned())
            .timeout(api.timeout)
            .connect_timeout(api.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("smartassist-export/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(ApiClient {
            inner: Arc::new(Inner {
                http,
                base,
                account_id: api.account_id.clone(),
                iid: api.iid.clone(),
                minter,
                budget,
                bots: Arc::new(BotBudgets::new(
                    api.bot_requests_per_minute,
                    api.bot_requests_per_hour,
                )),
                retry: api.retry.clone(),
                max_body: api.max_response_bytes,
                cancel,
                metrics,
            }),
            work: Work {
                dataset: UNLABELLED,
                priority: Priority::Scheduled,
            },
            bot: None,
            stop: None,
        })
    }

    /// The same client whose requests count against `bot_id`'s per-bot budget (the XO runtime
    /// APIs' limits, see [`BotBudgets`]) instead of the account's.
    pub fn for_bot(&self, bot_id: &str) -> ApiClient {
        ApiClient {
            bot: Some(self.inner.bots.of(bot_id)),
            ..self.clone()
        }
    }

    /// The per-bot budgets of the XO runtime APIs (for metrics and the status page).
    pub fn bot_budgets(&self) -> &Arc<BotBudgets> {
        &self.inner.bots
    }

    /// The same client sending the requests of `dataset` at `priority` (the label of its
    /// budget metrics and its place in the budget's queue).
    pub fn for_work(&self, dataset: &'static str, priority: Priority) -> ApiClient {
        ApiClient {
            work: Work { dataset, priority },
            ..self.clone()
        }
    }

    /// The same client, whose requests also stop (as on shutdown) when `stop` is cancelled:
    /// one waiting for the budget leaves the queue, one in backoff gives up.
    pub fn with_stop(&self, stop: CancellationToken) -> ApiClient {
        ApiClient {
            stop: Some(stop),
            ..self.clone()
        }
    }

    /// The budget priority of this client's requests.
    pub fn priority(&self) -> Priority {
        self.work.priority
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    pub fn minter(&self) -> &TokenMinter {
        &self.inner.minter
    }

    /// The account's shared request budget (its [`Budget::usage`] feeds progress reports).
    pub fn budget(&self) -> &Arc<Budget> {
        &self.inner.budget
    }

    fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled() || self.stop.as_ref().is_some_and(|s| s.is_cancelled())
    }

    /// Completes when the process-wide token or this client's stop token is cancelled.
    async fn cancelled(&self) {
        match &self.stop {
            Some(stop) => tokio::select! {
                _ = self.inner.cancel.cancelled() => {}
                _ = stop.cancelled() => {}
            },
            None => self.inner.cancel.cancelled().await,
        }
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, ClientError> {
        // Join by string so double slashes in configured paths (`//userstatus`) survive.
        let base = self.inner.base.as_str().trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}{path}")).map_err(|source| ClientError::Url {
            base: base.to_string(),
            path: path.to_string(),
            source,
        })?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// POST `body` to `path` and decode the response, retrying as described in the module docs.
    /// `decode` sees each successful body; it may keep what it decoded (it is called again only
    /// after it returned an error, i.e. for an undecodable body).
    /// `endpoint` is the low-cardinality label used in logs, errors and metrics.
    pub async fn post_json<T>(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        body: &serde_json::Value,
        decode: impl FnMut(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, ClientError> {
        self.post_json_gated(endpoint, path, query, body, None, decode)
            .await
            .map(|(value, _)| value)
    }

    /// [`ApiClient::post_json`] under a memory gate: once a successful response's headers have
    /// arrived, a permit of `gate` weighted by the body's size ([`gate`]) is taken before the
    /// body is read, and it is returned with the decoded value so the caller can hold it until
    /// the page has left memory. Requests still
    /// overlap (waiting on the network costs no memory); only bodies and what is decoded from
    /// them are bounded. `None` behaves like `post_json` and returns no permit.
    pub async fn post_json_gated<T>(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        body: &serde_json::Value,
        gate: Option<&MemoryGate>,
        decode: impl FnMut(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<(T, Option<OwnedSemaphorePermit>), ClientError> {
        let request = self.post_request(endpoint, path, query, body)?;
        self.send_gated(endpoint, &request, gate, &mut Inline(decode))
            .await
            .map(|(value, permit, _)| (value, permit))
    }

    /// [`ApiClient::post_json_gated`] decoding on tokio's blocking pool (see [`decode`]): while
    /// one page is decoded there, the calling task goes on with the pages of other days, and
    /// pages whose permits fit the gate at once are decoded at once. The permit is held until
    /// decoding has finished.
    pub async fn post_json_gated_blocking<T, F>(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        body: &serde_json::Value,
        gate: Option<&MemoryGate>,
        decode: F,
    ) -> Result<(T, Option<OwnedSemaphorePermit>), ClientError>
    where
        F: Fn(&[u8]) -> Result<T, DecodeError> + Clone + Send + 'static,
        T: Send + 'static,
    {
        let request = self.post_request(endpoint, path, query, body)?;
        self.send_gated(endpoint, &request, gate, &mut Blocking(decode))
            .await
            .map(|(value, permit, _)| (value, permit))
    }

    /// [`ApiClient::post_json`] that also says when the answered request was sent: the
    /// monotonic instant its attempt (the successful one, after any retries) started sending,
    /// right after its budget grant and token. For snapshot APIs whose answer is the state at
    /// the moment of the request.
    pub async fn post_json_sent<T>(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        body: &serde_json::Value,
        decode: impl FnMut(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<(T, std::time::Instant), ClientError> {
        let request = self.post_request(endpoint, path, query, body)?;
        self.send_gated(endpoint, &request, None, &mut Inline(decode))
            .await
            .map(|(value, _, sent)| (value, sent))
    }

    /// [`ApiClient::post_json_gated`] for an API read with GET: the query carries every
    /// parameter, no body is sent. Same retries, budget, headers and gate.
    pub async fn get_json_gated<T>(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        gate: Option<&MemoryGate>,
        decode: impl FnMut(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<(T, Option<OwnedSemaphorePermit>), ClientError> {
        let request = Request {
            method: reqwest::Method::GET,
            url: self.url(path, query)?,
            payload: None,
        };
        self.send_gated(endpoint, &request, gate, &mut Inline(decode))
            .await
            .map(|(value, permit, _)| (value, permit))
    }

    /// The POST of `body` (as JSON) to `path` with `query`.
    fn post_request(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        body: &serde_json::Value,
    ) -> Result<Request, ClientError> {
        let payload = serde_json::to_vec(body).map_err(|source| ClientError::Body {
            endpoint: endpoint.to_string(),
            source,
        })?;
        Ok(Request {
            method: reqwest::Method::POST,
            url: self.url(path, query)?,
            payload: Some(payload),
        })
    }
}

/// One request as every attempt sends it.
struct Request {
    method: reqwest::Method,
    url: Url,
    /// The JSON body (POST); `None` sends none (GET).
    payload: Option<Vec<u8>>,
}
