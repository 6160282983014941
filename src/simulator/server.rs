//! The simulator's HTTP side: one axum fallback handler that normalizes the path (so the
//! documented `//userstatus` and `//intentrealtimedata` spellings route like the single-slash
//! ones), then applies, in order: latency, the fault plan, the method check, JWT auth, the
//! per-account rate limit, and finally the endpoint's header/body validation and response.
//! `/_sim/faults` (POST, a `FaultPlan` as JSON) and `/_sim/stats` (GET) are unauthenticated
//! admin endpoints for tests that drive the built binary.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::agent_status_details::{handler as asd, Generation};
use super::call_details::http::CallApi;
use super::faults::{FaultKind, FaultPlan};
use super::generator::{self, IntentFeed};
use super::jwt::JwtRejection;
use super::render::{self, BucketGrid, UserStatusRender};
use super::shared::{limit_offset, lock, Shared, MAX_RANGE_DAYS};
use super::stats::{SimEndpoint, STATUS_DROPPED};
use crate::model::Granularity;

/// The documented per-minute rate-limit message.
pub const RATE_LIMIT_MSG: &str =
    "You've exceeded the per-minute rate limit. Please wait for sometime before retrying.";
const DEFAULT_LIMIT: usize = 50;

/// A response before it becomes HTTP.
struct Reply {
    status: StatusCode,
    body: String,
    retry_after: Option<String>,
    drop_connection: bool,
}

impl Reply {
    fn json(status: StatusCode, body: String) -> Self {
        Reply {
            status,
            body,
            retry_after: None,
            drop_connection: false,
        }
    }

    fn error(status: StatusCode, msg: &str) -> Self {
        Reply::json(status, render::error_body(msg, u32::from(status.as_u16())))
    }

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
        (self.status, headers, self.body).into_response()
    }
}

enum Route<'a> {
    UserStatus { account: &'a str },
    Intent { bot: &'a str },
    AgentStatusDetails(&'a str, Generation),
    CallDetails { account: &'a str, api: CallApi },
    AdminFaults,
    AdminStats,
    Unknown,
}

fn route<'a>(segments: &[&'a str]) -> Route<'a> {
    match segments {
        ["agentassist", "api", "public", "analytics", "account", account, "userstatus"]
        | ["agentassist", "api", "public", "analytics", "1.1", "account", account, "userstatus"] => {
            Route::UserStatus { account }
        }
        ["api", "public", "bot", bot, "intentrealtimedata"] => Route::Intent { bot },
        ["agentassist", "api", "public", "analytics", "account", account, "agentstatusdetails"] => {
            Route::AgentStatusDetails(account, Generation::Unversioned)
        }
        ["agentassist", "api", "public", "analytics", "account", account, "v2", "agentstatusdetails"] => {
            Route::AgentStatusDetails(account, Generation::V2)
        }
        ["agentassist", "api", "public", "analytics", "account", account, "v3", "agentstatusdetails"] => {
            Route::AgentStatusDetails(account, Generation::V3)
        }
        ["agentassist", "api", "public", "analytics", "account", account, tail @ ..]
            if CallApi::from_path(tail).is_some() =>
        {
            CallApi::from_path(tail)
                .map_or(Route::Unknown, |api| Route::CallDetails { account, api })
        }
        ["_sim", "faults"] => Route::AdminFaults,
        ["_sim", "stats"] => Route::AdminStats,
        _ => Route::Unknown,
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
    let route = route(&segments);
    let endpoint = match route {
        Route::AdminFaults => return admin_faults(&shared, &method, &body),
        Route::AdminStats => return admin_stats(&shared, &method),
        Route::UserStatus { .. } => SimEndpoint::UserStatus,
        Route::Intent { .. } => SimEndpoint::IntentRealtime,
        Route::AgentStatusDetails(..) => SimEndpoint::AgentStatusDetails,
        Route::CallDetails { .. } => SimEndpoint::CallDetails,
        Route::Unknown => SimEndpoint::Unknown,
    };

    if !shared.cfg.latency.is_zero() {
        tokio::time::sleep(shared.cfg.latency).await;
    }

    let fault = match endpoint {
        SimEndpoint::Unknown => None,
        _ => lock(&shared.faults).take(),
    };
    if fault.is_some() {
        shared.stats.fault();
    }
    let mut truncate = false;
    match fault {
        None => {}
        Some(FaultKind::Slow(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::TruncatedJson) => truncate = true,
        Some(other) => return finish(&shared, endpoint, fault_reply(other)),
    }

    let mut reply = match route {
        Route::UserStatus { account } => {
            if method != Method::POST {
                Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            } else if let Err(r) = authorize(&shared, &headers) {
                r
            } else {
                let shared2 = Arc::clone(&shared);
                let account = account.to_string();
                let query = uri.query().map(str::to_string);
                let job = move || {
                    user_status(&shared2, &account, query.as_deref(), &headers, &body)
                        .unwrap_or_else(|e| e)
                };
                tokio::task::spawn_blocking(job).await.unwrap_or_else(|_| {
                    Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                })
            }
        }
        Route::Intent { bot } => {
            if method != Method::POST && method != Method::GET {
                Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            } else if let Err(r) = authorize(&shared, &headers) {
                r
            } else {
                intent(&shared, bot, &headers).unwrap_or_else(|e| e)
            }
        }
        Route::AgentStatusDetails(account, generation) => {
            if method != Method::POST {
                Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            } else if let Err(r) = authorize(&shared, &headers) {
                r
            } else {
                let (status, body) =
                    asd::handle(&shared, account, generation, uri.query(), &headers, &body);
                Reply::json(status, body)
            }
        }
        Route::CallDetails { account, api } => {
            if method != Method::POST {
                Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            } else if let Err(r) = authorize(&shared, &headers) {
                r
            } else {
                let (status, body) = super::call_details::http::respond(
                    &shared.cfg,
                    api,
                    account,
                    uri.query(),
                    &headers,
                    &body,
                );
                Reply::json(status, body)
            }
        }
        _ => Reply::error(StatusCode::NOT_FOUND, "Resource not found"),
    };
    if truncate {
        let mut cut = reply.body.len() / 2;
        while !reply.body.is_char_boundary(cut) {
            cut -= 1;
        }
        reply.body.truncate(cut);
    }
    finish(&shared, endpoint, reply)
}

fn finish(shared: &Shared, endpoint: SimEndpoint, reply: Reply) -> Response {
    let status = if reply.drop_connection {
        STATUS_DROPPED
    } else {
        reply.status.as_u16()
    };
    shared.stats.record(endpoint, status);
    reply.into_response()
}

fn fault_reply(kind: FaultKind) -> Reply {
    match kind {
        FaultKind::Status429 { retry_after } => Reply {
            retry_after,
            ..Reply::json(
                StatusCode::TOO_MANY_REQUESTS,
                render::error_body(RATE_LIMIT_MSG, 429),
            )
        },
        FaultKind::Status5xx(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Reply::error(status, "Internal server error")
        }
        FaultKind::RateLimitBody400 => Reply::json(
            StatusCode::BAD_REQUEST,
            render::error_body(
                "Rate limit for this API has been reached. Please try again later",
                400,
            ),
        ),
        FaultKind::DropConnection => Reply {
            drop_connection: true,
            ..Reply::json(StatusCode::OK, String::new())
        },
        // Handled in `dispatch`; answering normally is the safe fallback.
        FaultKind::Slow(_) | FaultKind::TruncatedJson => {
            Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
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

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a required (or, when `required` is false, optional) identity header.
fn check_header(
    headers: &HeaderMap,
    name: &str,
    expected: &str,
    required: bool,
) -> Result<(), Reply> {
    match header(headers, name) {
        None if required => Err(Reply::error(
            StatusCode::BAD_REQUEST,
            &format!("{name} header is required"),
        )),
        None => Ok(()),
        Some(v) if v == expected => Ok(()),
        Some(_) => Err(Reply::error(
            StatusCode::FORBIDDEN,
            &format!("{name} does not match the credentials"),
        )),
    }
}

#[derive(Deserialize)]
struct UserStatusBody {
    filter: Filter,
    granularity: serde_json::Value,
}

#[derive(Deserialize)]
struct Filter {
    agents: Option<Vec<String>>,
    #[serde(rename = "dateFilter")]
    date_filter: DateFilter,
}

#[derive(Deserialize)]
struct DateFilter {
    #[serde(rename = "startDate")]
    start_date: String,
    #[serde(rename = "endDate")]
    end_date: String,
    #[serde(rename = "timeZoneOffSet")]
    time_zone_offset: Option<serde_json::Number>,
}

fn bad_request(msg: &str) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, msg)
}

fn parse_granularity(v: &serde_json::Value) -> Result<Granularity, Reply> {
    let parsed = match v {
        serde_json::Value::String(s) => s.parse().ok(),
        // Gen A sent a number of minutes; accept the ones that match an ISO value.
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|m| Granularity::ALL.into_iter().find(|g| g.minutes() == m)),
        _ => None,
    };
    parsed.ok_or_else(|| {
        bad_request("granularity must be one of PT15M, PT30M, PT1H, PT2H, PT4H, PT8H, PT12H, PT24H")
    })
}

fn parse_offset_minutes(n: Option<&serde_json::Number>) -> Result<i64, Reply> {
    let Some(n) = n else { return Ok(0) };
    let minutes = n
        .as_i64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .filter(|m| m.abs() <= 16 * 60);
    minutes.ok_or_else(|| bad_request("timeZoneOffSet must be whole minutes within ±960"))
}

fn parse_query(
    query: Option<&str>,
    max_page_size: usize,
    strict: bool,
) -> Result<(usize, usize), Reply> {
    let (limit, offset) = limit_offset(query, DEFAULT_LIMIT).map_err(bad_request)?;
    if strict && limit > max_page_size {
        return Err(bad_request(&format!(
            "limit must not be greater than {max_page_size}"
        )));
    }
    Ok((limit.min(max_page_size), offset))
}

fn user_status(
    shared: &Shared,
    path_account: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Reply> {
    let cfg = &shared.cfg;
    // Gen A documented neither header; the legacy shape only checks them when sent.
    let required = !cfg.legacy_shape;
    check_header(headers, "IId", &cfg.iid, required)?;
    check_header(headers, "accountId", &cfg.account_id, required)?;
    if path_account != cfg.account_id {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            "accountId in the path does not match the credentials",
        ));
    }
    let (limit, offset) = parse_query(query, cfg.max_page_size, cfg.strict_page_size)?;
    let req: UserStatusBody = serde_json::from_slice(body)
        .map_err(|e| bad_request(&format!("invalid request body: {e}")))?;
    let granularity = parse_granularity(&req.granularity)?;
    let date = |s: &str, field: &str| {
        // chrono accepts unpadded fields; the API documents exactly yyyy-mm-dd.
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 10)
            .ok_or_else(|| bad_request(&format!("{field} must be yyyy-mm-dd")))
    };
    let start = date(&req.filter.date_filter.start_date, "startDate")?;
    let end = date(&req.filter.date_filter.end_date, "endDate")?;
    if end < start {
        return Err(bad_request("endDate must not be before startDate"));
    }
    if (end - start).num_days() >= MAX_RANGE_DAYS {
        return Err(bad_request("date range is too long"));
    }
    let tz = parse_offset_minutes(req.filter.date_filter.time_zone_offset.as_ref())?;
    let window = generator::request_window(start, end, tz)
        .ok_or_else(|| bad_request("dates out of range"))?;

    let selected: Vec<usize> = match req.filter.agents.as_deref() {
        Some(emails) if !emails.is_empty() => {
            let mut idx: Vec<usize> = emails
                .iter()
                .filter_map(|e| shared.by_email.get(e).copied())
                .collect();
            idx.sort_unstable();
            idx.dedup();
            idx
        }
        _ => (0..shared.agents.len()).collect(),
    };

    let grid = BucketGrid::new(window, granularity);
    let r = UserStatusRender {
        seed: cfg.seed,
        granularity,
        malformed_every: cfg.malformed_every,
        grid: &grid,
    };
    let body = if cfg.legacy_shape {
        r.legacy(&shared.agents, &selected)
    } else {
        let from = offset.min(selected.len());
        let to = offset.saturating_add(limit).min(selected.len());
        let has_more = to < selected.len();
        r.page(&shared.agents, &selected[from..to], has_more, limit, offset)
    };
    Ok(Reply::json(StatusCode::OK, body))
}

fn intent(shared: &Shared, bot: &str, headers: &HeaderMap) -> Result<Reply, Reply> {
    let cfg = &shared.cfg;
    check_header(headers, "accountId", &cfg.account_id, true)?;
    if !cfg.bots.iter().any(|b| b == bot) {
        return Err(Reply::error(StatusCode::NOT_FOUND, "Bot not found"));
    }
    let feed = IntentFeed {
        seed: cfg.seed,
        bot_id: bot.to_string(),
        epoch: cfg.intent_epoch,
        interval: cfg.intent_interval,
        malformed_every: cfg.malformed_every,
    };
    let now = cfg.frozen_now.unwrap_or_else(Utc::now);
    let sessions = generator::latest_sessions(&feed, now);
    Ok(Reply::json(StatusCode::OK, render::sessions(&sessions)))
}

fn admin_faults(shared: &Shared, method: &Method, body: &[u8]) -> Response {
    if method != Method::POST {
        return Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").into_response();
    }
    match serde_json::from_slice::<FaultPlan>(body) {
        Ok(plan) => {
            lock(&shared.faults).set(plan);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(&format!("invalid fault plan: {e}")).into_response(),
    }
}

fn admin_stats(shared: &Shared, method: &Method) -> Response {
    if method != Method::GET {
        return Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").into_response();
    }
    match serde_json::to_string(&shared.stats.snapshot()) {
        Ok(body) => Reply::json(StatusCode::OK, body).into_response(),
        Err(e) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()).into_response(),
    }
}
