//! The Call Details endpoint of the simulator, after the server's auth and rate limit: header
//! and body validation, the documented caps (7-day range, `limit` ≤ 100, `offset` ≤ 10
//! counting **pages**) answered with 400 and a Kore-style `{"errors":[{msg,code}]}` body, and a
//! page of the sessions whose start lies in `[startDate, endDate]` (both inclusive) at the
//! request's `timeZoneOffset`. `startDate`/`endDate` may be bare dates (whole local days) or
//! `yyyy-mm-dd HH:MM:SS` (a `T` is accepted too).

use crate::simulator::shared::limit_offset;
use std::ops::Range;

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use serde_json::Value;

use super::super::render::error_body;
use super::super::SimulatorConfig;
use super::render::{self, RenderOpts, Selected};
use super::{
    build, session_index, CallDetailsSim, GeneratedCall, GeneratedDestination, NumResults,
};

/// Which path was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallApi {
    V1,
    V2CallDetails,
    V2InteractionDetails,
}

/// The documented caps.
const MAX_LIMIT: usize = 100;
const MAX_OFFSET: usize = 10;
const MAX_RANGE_DAYS: i64 = 7;

type Answer = (StatusCode, String);

fn bad(msg: &str) -> Answer {
    (StatusCode::BAD_REQUEST, error_body(msg, 400))
}

/// Answers one authorized, rate-limited POST.
pub(crate) fn respond(
    cfg: &SimulatorConfig,
    api: CallApi,
    path_account: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    match serve(cfg, api, path_account, query, headers, body) {
        Ok(a) | Err(a) => a,
    }
}

fn serve(
    cfg: &SimulatorConfig,
    api: CallApi,
    path_account: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer, Answer> {
    for (name, expected) in [("IId", &cfg.iid), ("accountId", &cfg.account_id)] {
        match headers.get(name).and_then(|v| v.to_str().ok()) {
            None => return Err(bad(&format!("{name} header is required"))),
            Some(v) if v == expected.as_str() => {}
            Some(_) => {
                return Err((
                    StatusCode::FORBIDDEN,
                    error_body(&format!("{name} does not match the credentials"), 403),
                ))
            }
        }
    }
    if path_account != cfg.account_id {
        return Err((
            StatusCode::FORBIDDEN,
            error_body("accountId in the path does not match the credentials", 403),
        ));
    }
    let sim = cfg.models.get::<CallDetailsSim>();
    let (limit, page) = parse_query(query, sim.enforce_caps)?;
    let req: Value =
        serde_json::from_slice(body).map_err(|e| bad(&format!("invalid request body: {e}")))?;
    let range = parse_range(&req, sim.enforce_caps)?;
    let offset = req
        .get("timeZoneOffset")
        .and_then(Value::as_i64)
        .filter(|m| m.abs() <= 16 * 60)
        .ok_or_else(|| bad("timeZoneOffset is required: whole minutes within ±960"))?;
    let utc = |t: NaiveDateTime| (t + TimeDelta::minutes(offset)).and_utc();
    let range = utc(range.start)..utc(range.end);
    let selected = match req.get("selectedFields").and_then(Value::as_array) {
        Some(names) => Selected::from_names(names.iter().filter_map(Value::as_str)),
        None => Selected::ALL,
    };
    let opts = RenderOpts {
        seed: cfg.seed,
        offset_minutes: offset,
        v1: api == CallApi::V1,
        selected,
        unknown_fields: cfg.unknown_fields,
    };
    let index = session_index(cfg.seed, &sim, &range);
    let skip = page.saturating_mul(limit);
    let build = |&(t, _, key): &(DateTime<Utc>, String, super::SessionKey)| {
        build::call_at(cfg.seed, key, t, cfg.malformed_every)
    };
    // Only filtered requests need every session built; otherwise only the page's.
    let (total, on_page) = if has_filters(&req) {
        let matching: Vec<_> = index
            .iter()
            .map(build)
            .filter(|c| passes_filters(&req, c))
            .collect();
        let on_page: Vec<_> = matching.iter().skip(skip).take(limit).cloned().collect();
        (matching.len(), on_page)
    } else {
        let on_page: Vec<_> = index.iter().skip(skip).take(limit).map(build).collect();
        (index.len(), on_page)
    };
    let num_results = match sim.num_results {
        NumResults::WindowTotal => Some(total as u64),
        NumResults::PageCount => Some(on_page.len() as u64),
        NumResults::Absent => None,
    };
    Ok((StatusCode::OK, render::page(&on_page, num_results, &opts)))
}

fn strings(req: &Value, k: &str) -> Vec<String> {
    req.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `direction`, unless absent or `Both`.
fn direction(req: &Value) -> Option<&str> {
    req.get("direction")
        .and_then(Value::as_str)
        .filter(|d| !d.eq_ignore_ascii_case("both"))
}

fn has_filters(req: &Value) -> bool {
    !strings(req, "channels").is_empty()
        || !strings(req, "queues").is_empty()
        || direction(req).is_some()
}

/// Whether a session passes the body's `channels`, `queues` and `direction` filters.
pub(super) fn passes_filters(req: &Value, c: &GeneratedCall) -> bool {
    let channels = strings(req, "channels");
    let queues = strings(req, "queues");
    let channel_ok = channels.is_empty()
        || channels
            .iter()
            .any(|ch| ch.eq_ignore_ascii_case(&c.channel));
    let queue_ok = queues.is_empty()
        || c.destinations.iter().any(|d| match d {
            GeneratedDestination::Queue(q) => queues.contains(&q.queue_id),
            GeneratedDestination::Agent(_) => false,
        });
    let direction_ok = direction(req).is_none_or(|d| {
        c.direction
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(d))
    });
    channel_ok && queue_ok && direction_ok
}

/// `(limit, page)`; `limit` defaults to 100 and `offset` (a page index) to 0.
fn parse_query(query: Option<&str>, enforce: bool) -> Result<(usize, usize), Answer> {
    let (limit, page) = limit_offset(query, MAX_LIMIT).map_err(bad)?;
    if enforce && limit > MAX_LIMIT {
        return Err(bad(&format!("limit must not be greater than {MAX_LIMIT}")));
    }
    if enforce && page > MAX_OFFSET {
        return Err(bad(&format!(
            "offset must not be greater than {MAX_OFFSET}"
        )));
    }
    Ok((limit.min(MAX_LIMIT), page))
}

/// The local `[startDate, endDate]` of the body; a bare `endDate` covers its whole day.
fn parse_range(req: &Value, enforce: bool) -> Result<Range<NaiveDateTime>, Answer> {
    let field = |k: &str, end: bool| -> Result<NaiveDateTime, Answer> {
        let s = req
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("{k} is required")))?;
        parse_local(s, end)
            .ok_or_else(|| bad(&format!("{k} must be yyyy-mm-dd or yyyy-mm-dd HH:MM:SS")))
    };
    let start = field("startDate", false)?;
    let end = field("endDate", true)?;
    if end < start {
        return Err(bad("endDate must not be before startDate"));
    }
    if enforce && end - start > TimeDelta::days(MAX_RANGE_DAYS) {
        return Err(bad(&format!(
            "date range must not exceed {MAX_RANGE_DAYS} days"
        )));
    }
    Ok(start..end)
}

fn parse_local(s: &str, end_of_day: bool) -> Option<NaiveDateTime> {
    if s.len() == 10 {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        let t = if end_of_day {
            NaiveTime::from_hms_opt(23, 59, 59)?
        } else {
            NaiveTime::MIN
        };
        return Some(d.and_time(t));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
}

impl CallApi {
    /// The path segments after the account id: `calldetails` (the samples' `callDetails` too),
    /// `v2/calldetails`, `v2/interactionDetails`; matched case-insensitively.
    pub(crate) fn from_path(tail: &[&str]) -> Option<CallApi> {
        match tail {
            [t] if t.eq_ignore_ascii_case("calldetails") => Some(CallApi::V1),
            [v, t] if v.eq_ignore_ascii_case("v2") && t.eq_ignore_ascii_case("calldetails") => {
                Some(CallApi::V2CallDetails)
            }
            [v, t]
                if v.eq_ignore_ascii_case("v2") && t.eq_ignore_ascii_case("interactionDetails") =>
            {
                Some(CallApi::V2InteractionDetails)
            }
            _ => None,
        }
    }
}
