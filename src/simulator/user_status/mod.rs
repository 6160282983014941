//! The simulator's UserStatus model: `POST …/account/{accountId}/userstatus` (also under
//! `…/analytics/1.1/…`, and with the documented `//userstatus` spelling, which the server's
//! path normalization routes the same). After the server's checks it validates the `IId` and
//! `accountId` headers, the `limit`/`offset` query (clamped to `max_page_size`, or refused over
//! it when `strict_page_size`) and the body's `dateFilter` and `granularity`, then renders one
//! page of agents. With [`UserStatusSim::legacy_shape`] it answers the legacy (Gen A) object
//! keyed by userId instead, unpaginated.
//!
//! The data come from the pure generator in `generator.rs` (its items re-exported here): tests
//! compare exported rows with [`bucket_statuses`] and [`agent_window`]. [`pages::user_status_pages`] renders the exact
//! bodies without a server, for benchmarks.

mod generator;
pub mod pages;
mod render;
mod truth;

use axum::http::{Method, StatusCode};
use chrono::NaiveDate;
use serde::Deserialize;

pub use generator::{
    agent_window, bucket_starts, bucket_statuses, bucket_statuses_with_malformed, request_window,
    GeneratedBucket, GeneratedStatus, RequestWindow, METRIC_STATE, METRIC_STATUS,
};

use crate::model::Granularity;
use crate::simulator::model::{check_header, ApiModel, ApiRequest, Handler, Reply};
use crate::simulator::shared::{capped_limit_offset, offset_minutes, Shared, MAX_RANGE_DAYS};
use render::{BucketGrid, UserStatusRender};

/// The `/_sim/stats` label of UserStatus requests.
pub const ENDPOINT: &str = "userstatus";

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::POST],
    gated: true,
    // A page of many agents over a long window is CPU work: it runs on the blocking pool so
    // that other requests keep being served.
    blocking: true,
    state: None,
    truth: Some(truth::TRUTH),
};

/// UserStatus behaviour of the simulator (in [`crate::simulator::SimulatorConfig::models`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserStatusSim {
    /// Answer with the legacy (Gen A) object keyed by userId, unpaginated; `IId` and
    /// `accountId` are then checked only when sent.
    pub legacy_shape: bool,
}

/// `limit` when the query has none (then clamped to `max_page_size`).
const DEFAULT_LIMIT: usize = 50;

fn route(segments: &[&str]) -> Option<Handler> {
    match segments {
        ["agentassist", "api", "public", "analytics", "account", account, "userstatus"]
        | ["agentassist", "api", "public", "analytics", "1.1", "account", account, "userstatus"] => {
            let account = account.to_string();
            Some(Handler::new(move |shared, req| {
                user_status(shared, &account, req).unwrap_or_else(|e| e)
            }))
        }
        _ => None,
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
        Reply::bad_request(
            "granularity must be one of PT15M, PT30M, PT1H, PT2H, PT4H, PT8H, PT12H, PT24H",
        )
    })
}

fn parse_offset_minutes(n: Option<&serde_json::Number>) -> Result<i64, Reply> {
    n.map_or(Ok(0), |n| {
        offset_minutes(n, "timeZoneOffSet").map_err(|m| Reply::bad_request(&m))
    })
}

fn parse_query(
    query: Option<&str>,
    max_page_size: usize,
    strict: bool,
) -> Result<(usize, usize), Reply> {
    capped_limit_offset(query, DEFAULT_LIMIT, max_page_size, strict)
        .map_err(|m| Reply::bad_request(&m))
}

fn user_status(shared: &Shared, path_account: &str, req: &ApiRequest) -> Result<Reply, Reply> {
    let cfg = &shared.cfg;
    let legacy_shape = cfg.models.get::<UserStatusSim>().legacy_shape;
    // Gen A documented neither header; the legacy shape only checks them when sent.
    let required = !legacy_shape;
    check_header(&req.headers, "IId", &cfg.iid, required)?;
    check_header(&req.headers, "accountId", &cfg.account_id, required)?;
    if path_account != cfg.account_id {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            "accountId in the path does not match the credentials",
        ));
    }
    let (limit, offset) = parse_query(req.query(), cfg.max_page_size, cfg.strict_page_size)?;
    let body: UserStatusBody = serde_json::from_slice(&req.body)
        .map_err(|e| Reply::bad_request(&format!("invalid request body: {e}")))?;
    let granularity = parse_granularity(&body.granularity)?;
    let date = |s: &str, field: &str| {
        // chrono accepts unpadded fields; the API documents exactly yyyy-mm-dd.
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 10)
            .ok_or_else(|| Reply::bad_request(&format!("{field} must be yyyy-mm-dd")))
    };
    let start = date(&body.filter.date_filter.start_date, "startDate")?;
    let end = date(&body.filter.date_filter.end_date, "endDate")?;
    if end < start {
        return Err(Reply::bad_request("endDate must not be before startDate"));
    }
    if (end - start).num_days() >= MAX_RANGE_DAYS {
        return Err(Reply::bad_request("date range is too long"));
    }
    let tz = parse_offset_minutes(body.filter.date_filter.time_zone_offset.as_ref())?;
    let window =
        request_window(start, end, tz).ok_or_else(|| Reply::bad_request("dates out of range"))?;

    let selected: Vec<usize> = match body.filter.agents.as_deref() {
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
        unknown_fields: cfg.unknown_fields,
        grid: &grid,
    };
    let page = if legacy_shape {
        r.legacy(&shared.agents, &selected)
    } else {
        let from = offset.min(selected.len());
        let to = offset.saturating_add(limit).min(selected.len());
        let has_more = to < selected.len();
        r.page(&shared.agents, &selected[from..to], has_more, limit, offset)
    };
    Ok(Reply::json(StatusCode::OK, page))
}

#[cfg(test)]
mod tests;
