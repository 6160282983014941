//! The simulator's HTTP side: one axum fallback handler, generic over the API models in
//! [`Shared::models`]. It normalizes the path (so the documented `//userstatus` and
//! `//intentrealtimedata` spellings route like the single-slash ones), answers the admin
//! routes, finds the model whose `route` matches (none: a 404 under
//! [`UNKNOWN_ENDPOINT`](super::stats::UNKNOWN_ENDPOINT)), then applies, in order: latency, the
//! fault plan, the model's method check, JWT auth and the per-account rate limit (for gated
//! models), and the model's handler (on the blocking pool when it says so); last, a
//! `TruncatedJson` fault cuts the body and the outcome is counted under the model's endpoint
//! label. With [`SimulatorConfig::cache_responses`](super::SimulatorConfig::cache_responses),
//! a gated request whose answer is kept ([`super::cache`]) gets those bytes instead of the
//! handler. `/_sim/faults` (POST, a `FaultPlan` as JSON) and `/_sim/stats` (GET) are
//! unauthenticated admin endpoints for tests that drive the built binary.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::cache::CacheKey;
use super::faults::{FaultKind, FaultPlan};
use super::jwt::JwtRejection;
use super::model::{ApiModel, ApiRequest, Handler, Reply};
use super::render;
use super::shared::{lock, Shared};
use super::stats::{STATUS_DROPPED, UNKNOWN_ENDPOINT};

/// The documented per-minute rate-limit message.
pub const RATE_LIMIT_MSG: &str =
    "You've exceeded the per-minute rate limit. Please wait for sometime before retrying.";

/// A reply as it goes on the wire: a model's [`Reply`], or an injected fault's, which may
/// carry a `Retry-After` or drop the connection.
struct Sent {
    reply: Reply,
    retry_after: Option<String>,
    drop_connection: bool,
}

impl From<Reply> for Sent {
    fn from(reply: Reply) -> Self {
        Sent {
            reply,
            retry_after: None,
            drop_connection: false,
        }
    }
}

impl Sent {
    fn into_response(self) -> Response {
        if self.drop_connection {
            // A body that fails before its first byte makes hyper abort the connection.
            let failing = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("simulated connection drop"))
            });
            return Response::new(Body::from_stream(failing));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Some(v) = self
            .retry_after
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        (self.reply.status, headers, self.reply.body).into_response()
    }
}

/// The single handler behind every path.
pub(crate) async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Empty segments are dropped: `a//b` and `a/b/` route like `a/b`.
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["_sim", "faults"] => return admin_faults(&shared, &method, &body),
        ["_sim", "stats"] => return admin_stats(&shared, &method),
        _ => {}
    }
    let routed = shared
        .models
        .iter()
        .find_map(|&model| (model.route)(&segments).map(|handler| (model, handler)));

    if !shared.cfg.latency.is_zero() {
        tokio::time::sleep(shared.cfg.latency).await;
    }
    let Some((model, handler)) = routed else {
        let reply = Reply::error(StatusCode::NOT_FOUND, "Resource not found");
        return finish(&shared, UNKNOWN_ENDPOINT, reply.into());
    };

    let fault = lock(&shared.faults).take();
    if fault.is_some() {
        shared.stats.fault();
    }
    let mut truncate = false;
    match fault {
        None => {}
        Some(FaultKind::Slow(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::TruncatedJson) => truncate = true,
        Some(other) => return finish(&shared, model.endpoint, fault_reply(other)),
    }

    let request = ApiRequest {
        query: uri.query().map(str::to_string),
        headers,
        body,
    };
    let mut reply = if !model.methods.contains(&method) {
        Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
    } else {
        match gate(&shared, model, &request.headers) {
            Err(refused) => refused,
            // A truncated answer is never cached.
            Ok(()) if truncate => answer(&shared, model, handler, request).await,
            Ok(()) => match answer_through_cache(&shared, model, handler, request, &segments).await
            {
                Ok(reply) => reply,
                Err(cached) => return cached,
            },
        }
    };
    if truncate {
        truncate_half(&mut reply);
    }
    finish(&shared, model.endpoint, reply.into())
}

/// The answer from the response cache, when there is one (`Err`: the cached response, sent as
/// it is), or from the handler, kept in the cache when it is a 200.
async fn answer_through_cache(
    shared: &Arc<Shared>,
    model: &ApiModel,
    handler: Handler,
    request: ApiRequest,
    segments: &[&str],
) -> Result<Reply, Response> {
    let Some(cache) = shared.cache.as_ref() else {
        return Ok(answer(shared, model, handler, request).await);
    };
    let key = CacheKey::new(
        model.endpoint,
        segments,
        request.query(),
        &request.headers,
        &request.body,
    );
    if let Some(body) = cache.get(&key) {
        shared.stats.cache(true);
        shared.stats.record(model.endpoint, 200, body.len());
        return Err(cached_response(body));
    }
    let reply = answer(shared, model, handler, request).await;
    if reply.status == StatusCode::OK {
        shared.stats.cache(false);
        cache.put(key, Bytes::from(reply.body.clone()));
    }
    Ok(reply)
}

/// Cuts the reply's body in half (at a character boundary): the truncated-JSON fault.
fn truncate_half(reply: &mut Reply) {
    let mut cut = reply.body.len() / 2;
    while !reply.body.is_char_boundary(cut) {
        cut -= 1;
    }
    reply.body.truncate(cut);
}

/// Auth and the rate limit, for the models that apply them.
fn gate(shared: &Shared, model: &ApiModel, headers: &HeaderMap) -> Result<(), Reply> {
    if model.gated {
        authorize(shared, headers)
    } else {
        Ok(())
    }
}

/// Runs the model's handler, on the blocking pool when the model asks for it.
async fn answer(
    shared: &Arc<Shared>,
    model: &ApiModel,
    handler: Handler,
    request: ApiRequest,
) -> Reply {
    if !model.blocking {
        return handler.call(shared, &request);
    }
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || handler.call(&shared, &request))
        .await
        .unwrap_or_else(|_| {
            Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        })
}

fn finish(shared: &Shared, endpoint: &'static str, sent: Sent) -> Response {
    let status = if sent.drop_connection {
        STATUS_DROPPED
    } else {
        sent.reply.status.as_u16()
    };
    shared.stats.record(endpoint, status, sent.reply.body.len());
    sent.into_response()
}

/// A `200` with a kept body, as [`Sent::into_response`] would send it.
fn cached_response(body: Bytes) -> Response {
    let content_type = HeaderValue::from_static("application/json; charset=utf-8");
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn fault_reply(kind: FaultKind) -> Sent {
    match kind {
        FaultKind::Status429 { retry_after } => Sent {
            retry_after,
            ..Reply::json(
                StatusCode::TOO_MANY_REQUESTS,
                render::error_body(RATE_LIMIT_MSG, 429),
            )
            .into()
        },
        FaultKind::Status5xx(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Reply::error(status, "Internal server error").into()
        }
        FaultKind::RateLimitBody400 => Reply::json(
            StatusCode::BAD_REQUEST,
            render::error_body(
                "Rate limit for this API has been reached. Please try again later",
                400,
            ),
        )
        .into(),
        FaultKind::DropConnection => Sent {
            drop_connection: true,
            ..Reply::json(StatusCode::OK, String::new()).into()
        },
        // Handled in `dispatch`; answering normally is the safe fallback.
        FaultKind::Slow(_) | FaultKind::TruncatedJson => {
            Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").into()
        }
    }
}

/// JWT check, then the rate limit. `Err` is the reply to send.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Reply> {
    let mut token = headers.get("auth").and_then(|v| v.to_str().ok());
    let unwrapped;
    if let Some(jwe) = &shared.cfg.jwe {
        match jwe.unwrap_token(token) {
            Ok(inner) => {
                unwrapped = inner;
                token = Some(unwrapped.as_str());
            }
            Err(_) => {
                shared.stats.jwe_rejected();
                return Err(Reply::json(
                    StatusCode::UNAUTHORIZED,
                    JwtRejection::InvalidCredentials.body().to_string(),
                ));
            }
        }
    }
    let verdict = lock(&shared.jwt).verify(token, Utc::now().timestamp());
    if let Err(rejection) = verdict {
        match rejection {
            JwtRejection::Replay => shared.stats.jti_replay(),
            JwtRejection::ExpTooFar => shared.stats.jti_expiry(),
            _ => {}
        }
        return Err(Reply::json(
            StatusCode::UNAUTHORIZED,
            rejection.body().to_string(),
        ));
    }
    if !shared.admit() {
        shared.stats.rate_limited();
        return Err(Reply::json(
            StatusCode::TOO_MANY_REQUESTS,
            render::error_body(RATE_LIMIT_MSG, 429),
        ));
    }
    Ok(())
}

fn admin_faults(shared: &Shared, method: &Method, body: &[u8]) -> Response {
    if method != Method::POST {
        return Sent::from(Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
        ))
        .into_response();
    }
    match serde_json::from_slice::<FaultPlan>(body) {
        Ok(plan) => {
            lock(&shared.faults).set(plan);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            Sent::from(Reply::bad_request(&format!("invalid fault plan: {e}"))).into_response()
        }
    }
}

fn admin_stats(shared: &Shared, method: &Method) -> Response {
    if method != Method::GET {
        return Sent::from(Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
        ))
        .into_response();
    }
    match serde_json::to_string(&shared.stats.snapshot()) {
        Ok(body) => Sent::from(Reply::json(StatusCode::OK, body)).into_response(),
        Err(e) => Sent::from(Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
        ))
        .into_response(),
    }
}
