//! One logical request of an [`ApiClient`], sent with retries (the policy is in the parent
//! module's docs): each attempt waits for its budget grant, mints a token, sends the request,
//! reads the body under the size cap (weighed by the page gate) and decodes it; a failed
//! attempt's verdict decides whether to wait and try again, and how long. The request builders
//! in `mod.rs` call [`ApiClient::send_gated`].

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, warn};

use super::decode::BodyDecoder;
use super::retry::{self, Verdict};
use super::{ApiClient, AttemptError, ClientError, MemoryGate, Request};

/// What one attempt gave: the decoded value, or why it failed and what the failure calls for.
enum Attempt<T> {
    Done(T),
    Failed {
        verdict: Verdict,
        retry_after: Option<Duration>,
        error: AttemptError,
    },
}

/// A decoded response: the value, the gate's permit for its page, when its attempt started.
type Sent<T> = (T, Option<OwnedSemaphorePermit>, Instant);

impl ApiClient {
    /// Sends `request` with retries (see the module docs) and decodes the response.
    pub(super) async fn send_gated<T>(
        &self,
        endpoint: &str,
        request: &Request,
        gate: Option<&MemoryGate>,
        decode: &mut impl BodyDecoder<T>,
    ) -> Result<Sent<T>, ClientError> {
        let mut reauthenticated = false;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            self.wait_for_grant(endpoint).await?;
            let (verdict, retry_after, error) =
                match self.attempt(endpoint, request, gate, decode).await? {
                    Attempt::Done(value) => return Ok(value),
                    Attempt::Failed {
                        verdict,
                        retry_after,
                        error,
                    } => (verdict, retry_after, error),
                };
            let wait = match verdict {
                Verdict::Fatal => return Err(final_error(endpoint, attempt, error)),
                Verdict::Reauthenticate if reauthenticated || !self.inner.minter.enforce_jti() => {
                    return Err(final_error(endpoint, attempt, error));
                }
                Verdict::Reauthenticate => {
                    reauthenticated = true;
                    self.inner.minter.invalidate();
                    self.inner.metrics.http_retry(endpoint, "reauthenticate");
                    Duration::ZERO
                }
                Verdict::Throttled => self.throttled(endpoint, retry_after, attempt),
                Verdict::Retry => {
                    self.inner.metrics.http_retry(endpoint, "transient");
                    retry::backoff(&self.inner.retry, attempt, fastrand::f64())
                }
            };
            if attempt > self.inner.retry.max_retries {
                return Err(ClientError::RetriesExhausted {
                    endpoint: endpoint.to_string(),
                    attempts: attempt,
                    last: error,
                });
            }
            warn!(
                endpoint,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %error,
                "Request failed; retrying."
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancelled() => {
                    return Err(ClientError::Cancelled { endpoint: endpoint.to_string() });
                }
            }
        }
    }

    /// Waits for the attempt's grant of the client's budget (its bot's, or the account's) and
    /// counts the wait; `Cancelled` when the client is stopped before or meanwhile.
    async fn wait_for_grant(&self, endpoint: &str) -> Result<(), ClientError> {
        let metrics = &self.inner.metrics;
        if self.is_cancelled() {
            return Err(ClientError::Cancelled {
                endpoint: endpoint.to_string(),
            });
        }
        let grant = async {
            match &self.bot {
                Some(bot) => bot.acquire(self.work.priority).await,
                None => self.inner.budget.acquire(self.work.priority).await,
            }
        };
        let waited = tokio::select! {
            waited = grant => waited,
            _ = self.cancelled() => {
                return Err(ClientError::Cancelled { endpoint: endpoint.to_string() });
            }
        };
        match &self.bot {
            Some(bot) => metrics.bot_budget_grant(&bot.bot_id, waited),
            None => metrics.budget_grant(self.work.dataset, self.work.priority.label(), waited),
        }
        if !waited.is_zero() {
            metrics.rate_limit_wait(waited.as_secs_f64());
        }
        Ok(())
    }

    /// A throttled answer: pauses the client's budget and returns how long this request waits.
    fn throttled(&self, endpoint: &str, retry_after: Option<Duration>, attempt: u32) -> Duration {
        let policy = &self.inner.retry;
        let pause = retry::throttle_pause(policy, retry_after);
        match &self.bot {
            Some(bot) => bot.throttled(self.work.priority, pause),
            None => self.inner.budget.throttled(self.work.priority, pause),
        }
        self.inner.metrics.http_throttled(endpoint);
        self.inner.metrics.http_retry(endpoint, "throttled");
        retry::throttle_wait(policy, retry_after, attempt, fastrand::f64())
    }

    fn headers(&self, endpoint: &str, token: &str) -> Result<HeaderMap, ClientError> {
        let mut h = HeaderMap::new();
        let value = |v: &str, header: &'static str| {
            HeaderValue::from_str(v).map_err(|_| ClientError::Header {
                endpoint: endpoint.to_string(),
                header,
            })
        };
        let mut auth = value(token, "auth")?;
        auth.set_sensitive(true);
        h.insert(HeaderName::from_static("auth"), auth);
        h.insert(
            HeaderName::from_static("iid"),
            value(&self.inner.iid, "IId")?,
        );
        h.insert(
            HeaderName::from_static("accountid"),
            value(&self.inner.account_id, "accountId")?,
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(h)
    }

    /// One attempt: a token, the request, its answer (see [`ApiClient::read_answer`]).
    async fn attempt<T>(
        &self,
        endpoint: &str,
        request: &Request,
        gate: Option<&MemoryGate>,
        decode: &mut impl BodyDecoder<T>,
    ) -> Result<Attempt<Sent<T>>, ClientError> {
        let token = self.inner.minter.mint()?;
        let headers = self.headers(endpoint, token.expose())?;
        let started = Instant::now();
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), request.url.clone())
            .headers(headers);
        if let Some(payload) = &request.payload {
            builder = builder.body(payload.clone());
        }
        match builder.send().await {
            Ok(response) => Ok(self
                .read_answer(endpoint, response, started, gate, decode)
                .await),
            Err(e) => {
                self.inner
                    .metrics
                    .http_request(endpoint, None, started.elapsed());
                Ok(Attempt::Failed {
                    verdict: Verdict::Retry,
                    retry_after: None,
                    error: AttemptError::Transport(e.without_url()),
                })
            }
        }
    }

    /// Counts the answer of an attempt started at `started`, reads its body under the cap
    /// (a success's weighed by `gate`) and decodes a success; any other status is classified.
    async fn read_answer<T>(
        &self,
        endpoint: &str,
        response: reqwest::Response,
        started: Instant,
        gate: Option<&MemoryGate>,
        decode: &mut impl BodyDecoder<T>,
    ) -> Attempt<Sent<T>> {
        let status = response.status().as_u16();
        self.inner
            .metrics
            .http_request(endpoint, Some(status), started.elapsed());
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, chrono::Utc::now()));
        let success = (200..300).contains(&status);
        // Weighted by the body's size: its Content-Length, or (unknown) the whole gate until it
        // has been read, then the bytes read (see [`gate`]).
        let mut permit = match gate {
            Some(gate) if success => gate.acquire_body(response.content_length()).await,
            _ => None,
        };
        let body = match read_capped(response, self.inner.max_body).await {
            Ok(b) => b,
            Err(error) => {
                let verdict = match error {
                    AttemptError::TooLarge { .. } => Verdict::Fatal,
                    _ => Verdict::Retry,
                };
                return Attempt::Failed {
                    verdict,
                    retry_after,
                    error,
                };
            }
        };
        if !success {
            return Attempt::Failed {
                verdict: retry::classify(status, &body),
                retry_after,
                error: AttemptError::Status {
                    status,
                    message: retry::error_message(&body),
                },
            };
        }
        let bytes = body.len();
        if let (Some(gate), Some(permit)) = (gate, permit.as_mut()) {
            gate.shrink(permit, bytes as u64);
        }
        match decode.decode(body, permit).await {
            (Ok(v), permit) => {
                debug!(endpoint, status, bytes, "Response decoded.");
                Attempt::Done((v, permit, started))
            }
            (Err(e), _) => Attempt::Failed {
                verdict: Verdict::Retry,
                retry_after: None,
                error: AttemptError::Decode(e),
            },
        }
    }
}

/// The error of a request that is not tried again after `attempts`: the API's rejection (its
/// status and message), a body over the cap, or the last failure otherwise.
fn final_error(endpoint: &str, attempts: u32, error: AttemptError) -> ClientError {
    match error {
        AttemptError::Status { status, message } => ClientError::Rejected {
            endpoint: endpoint.to_string(),
            status,
            message,
        },
        AttemptError::TooLarge { limit } => ClientError::TooLarge {
            endpoint: endpoint.to_string(),
            limit,
        },
        other => ClientError::RetriesExhausted {
            endpoint: endpoint.to_string(),
            attempts,
            last: other,
        },
    }
}

async fn read_capped(mut response: reqwest::Response, cap: u64) -> Result<Vec<u8>, AttemptError> {
    if response.content_length().is_some_and(|n| n > cap) {
        return Err(AttemptError::TooLarge { limit: cap });
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0).min(cap) as usize);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AttemptError::Transport(e.without_url()))?
    {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(AttemptError::TooLarge { limit: cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
