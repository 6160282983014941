//! The HTTP side of the Agent Status Details model, called by the server's dispatcher after
//! latency, faults, JWT auth and the rate limit: checks the identity headers of the path's
//! generation, the `limit`/`offset` query (`limit` at most [`MAX_LIMIT`], refused with a 400
//! when the config is strict, clamped otherwise), and the body's `filter.dateFilter` in every
//! documented form (`date`, or `startDate`/`endDate` as dates or date-times, with a required
//! `timeZoneOffSet`), then renders one page. `offset` counts agent records.

use std::ops::Range;

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::{AsdRender, Generation, MAX_LIMIT};
use crate::simulator::render::error_body;
use crate::simulator::shared::{capped_limit_offset, offset_minutes, Shared, MAX_RANGE_DAYS};

/// A reply before it becomes HTTP: status and JSON body.
pub(crate) type AsdReply = (StatusCode, String);

fn fail(status: StatusCode, msg: &str) -> AsdReply {
    (status, error_body(msg, u32::from(status.as_u16())))
}

fn bad_request(msg: &str) -> AsdReply {
    fail(StatusCode::BAD_REQUEST, msg)
}

/// Answers one authorized POST to the `generation`'s path for `path_account`.
pub(crate) fn handle(
    shared: &Shared,
    path_account: &str,
    generation: Generation,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> AsdReply {
    respond(shared, path_account, generation, query, headers, body).unwrap_or_else(|e| e)
}

fn respond(
    shared: &Shared,
    path_account: &str,
    generation: Generation,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AsdReply, AsdReply> {
    let cfg = &shared.cfg;
    // The unversioned and /v3 pages require `iId`; the /v2 page sends `accountId` instead.
    let v2 = generation == Generation::V2;
    check_header(headers, "iId", &cfg.iid, !v2)?;
    check_header(headers, "accountId", &cfg.account_id, v2)?;
    if path_account != cfg.account_id {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "accountId in the path does not match the credentials",
        ));
    }
    let cap = MAX_LIMIT.min(cfg.max_page_size);
    let (limit, offset) = parse_query(query, cap, cfg.strict_page_size)?;
    let req: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request(&format!("invalid request body: {e}")))?;
    let filter = req
        .get("filter")
        .and_then(Value::as_object)
        .ok_or_else(|| bad_request("filter is required"))?;
    let date_filter = filter
        .get("dateFilter")
        .and_then(Value::as_object)
        .ok_or_else(|| bad_request("filter.dateFilter is required"))?;
    let offset_minutes = time_zone_offset(date_filter)?;
    let served = served_range(date_filter, offset_minutes)?;
    let selected = select_agents(shared, filter.get("agents"))?;

    let render = AsdRender {
        seed: cfg.seed,
        generation,
        offset_minutes,
        served,
        now: cfg.frozen_now.unwrap_or_else(Utc::now),
        malformed_every: cfg.malformed_every,
        unknown_fields: cfg.unknown_fields,
    };
    let from = offset.min(selected.len());
    let to = offset.saturating_add(limit).min(selected.len());
    let page = render.page(
        &shared.agents,
        &selected[from..to],
        to < selected.len(),
        limit,
        offset,
    );
    Ok((StatusCode::OK, page))
}

/// A required (or, when `required` is false, optional) identity header that must match.
fn check_header(
    headers: &HeaderMap,
    name: &str,
    expected: &str,
    required: bool,
) -> Result<(), AsdReply> {
    match headers.get(name).map(|v| v.to_str()) {
        None if required => Err(bad_request(&format!("{name} header is required"))),
        None => Ok(()),
        Some(Ok(v)) if v == expected => Ok(()),
        Some(_) => Err(fail(
            StatusCode::FORBIDDEN,
            &format!("{name} does not match the credentials"),
        )),
    }
}

fn parse_query(query: Option<&str>, cap: usize, strict: bool) -> Result<(usize, usize), AsdReply> {
    capped_limit_offset(query, MAX_LIMIT, cap, strict).map_err(|m| bad_request(&m))
}

/// `timeZoneOffSet`: required, whole minutes within ±16 h.
fn time_zone_offset(date_filter: &Map<String, Value>) -> Result<i64, AsdReply> {
    let n = date_filter
        .get("timeZoneOffSet")
        .and_then(Value::as_number)
        .ok_or_else(|| bad_request("dateFilter.timeZoneOffSet is required (a number)"))?;
    offset_minutes(n, "timeZoneOffSet").map_err(|m| bad_request(&m))
}

/// A `yyyy-mm-dd` date or a `yyyy-mm-ddTHH:MM:SS` local date-time.
enum When {
    Day(NaiveDate),
    At(NaiveDateTime),
}

fn parse_when(field: &str, v: Option<&Value>) -> Result<Option<When>, AsdReply> {
    let Some(v) = v else { return Ok(None) };
    let bad = || {
        bad_request(&format!(
            "{field} must be yyyy-mm-dd or yyyy-mm-ddTHH:MM:SS"
        ))
    };
    let s = v.as_str().ok_or_else(bad)?;
    // chrono accepts unpadded fields; the API documents exactly these widths.
    match s.len() {
        10 => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|d| Some(When::Day(d)))
            .map_err(|_| bad()),
        19 => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
            .map(|t| Some(When::At(t)))
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn midnight_after(d: NaiveDate) -> Option<NaiveDateTime> {
    Some(d.succ_opt()?.and_time(NaiveTime::MIN))
}

/// The local range of the date filter, then in UTC: `date` is its whole day; a `startDate`
/// date starts at its midnight and an `endDate` date includes its whole day; date-times are
/// taken as they are (end exclusive). When both forms are sent they must agree.
fn served_range(
    date_filter: &Map<String, Value>,
    offset_minutes: i64,
) -> Result<Range<DateTime<Utc>>, AsdReply> {
    let out_of_range = || bad_request("dates out of range");
    let by_date = match parse_when("date", date_filter.get("date"))? {
        None => None,
        Some(When::Day(d)) => {
            Some(d.and_time(NaiveTime::MIN)..midnight_after(d).ok_or_else(out_of_range)?)
        }
        Some(When::At(_)) => return Err(bad_request("date must be yyyy-mm-dd")),
    };
    let start = parse_when("startDate", date_filter.get("startDate"))?;
    let end = parse_when("endDate", date_filter.get("endDate"))?;
    let by_bounds = match (start, end) {
        (None, None) => None,
        (Some(s), Some(e)) => {
            let s = match s {
                When::Day(d) => d.and_time(NaiveTime::MIN),
                When::At(t) => t,
            };
            let e = match e {
                When::Day(d) => midnight_after(d).ok_or_else(out_of_range)?,
                When::At(t) => t,
            };
            Some(s..e)
        }
        _ => return Err(bad_request("startDate and endDate go together")),
    };
    let local = match (by_date, by_bounds) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad_request(
                "dateFilter.date and startDate/endDate name different ranges",
            ))
        }
        (Some(r), _) | (None, Some(r)) => r,
        (None, None) => {
            return Err(bad_request(
                "dateFilter needs date, or startDate and endDate",
            ))
        }
    };
    if local.end <= local.start {
        return Err(bad_request("endDate must be after startDate"));
    }
    if (local.end - local.start) > TimeDelta::days(MAX_RANGE_DAYS) {
        return Err(bad_request("date range is too long"));
    }
    let shift = TimeDelta::minutes(offset_minutes);
    Ok((local.start + shift).and_utc()..(local.end + shift).and_utc())
}

/// Agent indexes selected by `filter.agents` (an array of emails, or one email as the tables'
/// "string" type suggests), in index order; all agents when absent, null or empty.
fn select_agents(shared: &Shared, agents: Option<&Value>) -> Result<Vec<usize>, AsdReply> {
    let emails: Vec<&str> = match agents {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| bad_request("filter.agents must hold email strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad_request("filter.agents must be an array of emails")),
    };
    if emails.is_empty() {
        return Ok((0..shared.agents.len()).collect());
    }
    let mut idx: Vec<usize> = emails
        .iter()
        .filter_map(|e| shared.by_email.get(*e).copied())
        .collect();
    idx.sort_unstable();
    idx.dedup();
    Ok(idx)
}
