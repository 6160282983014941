//! The request of one Call Details window: which documented endpoint is called
//! ([`CallDetailsApi`]), the body ([`request_body`]: the window's local bounds at its
//! `timeZoneOffset`, the config's filters) and the query ([`request_query`]: `limit` and the
//! page index `offset`), plus the API's documented caps. Pure.
//!
//! # Window bounds on the wire
//! `startDate`/`endDate` are sent as `yyyy-mm-dd HH:MM:SS` at the window's offset (the
//! documented format; the samples' bare dates would only allow whole days). Whether `endDate`
//! is inclusive is not documented, so the window `[start, end)` is sent as
//! `startDate = start`, `endDate = end`: under an exclusive reading that is exact, under an
//! inclusive one it adds the first second of the next window. Sessions whose start is outside
//! `[start, end)` are dropped and sessions are deduplicated by `sessionId`, so the extra second
//! costs at most a few records and never loses one; the alternative (`endDate = end − 1 s`)
//! would silently lose the last second of every window if the API is exclusive. A one-second
//! window that is full is probed once with `endDate = startDate` before it is declared
//! saturated (see [`fetch_day`](super::fetch_day)).

use chrono::{DateTime, Duration, Utc};

use super::CallWindow;

pub use super::config::{CallDetailsApi, RequestFilter, UnknownCallDetailsApi, MAX_PAGE_SIZE};
/// The documented maximum of `offset` (a page index).
pub const MAX_PAGE_OFFSET: u32 = 10;
/// The documented maximum range of one request.
pub const MAX_RANGE: Duration = Duration::days(7);
/// Low-cardinality endpoint label for logs, errors and metrics.
pub const ENDPOINT: &str = "call_details";

/// `yyyy-mm-dd HH:MM:SS` of `at` at a JavaScript-convention offset (IST = −330): the local time
/// is `at − offset_minutes`.
pub fn local_wire_time(at: DateTime<Utc>, offset_minutes: i32) -> String {
    (at.naive_utc() - Duration::minutes(i64::from(offset_minutes)))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The JSON body of one request for `window`. `channels` and `queues` are always sent (as the
/// documented sample does, `[]` meaning all).
pub fn request_body(
    window: &CallWindow,
    filter: &RequestFilter,
    api: CallDetailsApi,
) -> serde_json::Value {
    let selected: Vec<String> = match &filter.selected_fields {
        Some(f) => f.clone(),
        None => api
            .default_selected_fields()
            .iter()
            .map(|s| (*s).to_string())
            .collect(),
    };
    let mut body = serde_json::json!({
        "startDate": local_wire_time(window.start, window.offset_minutes),
        "endDate": local_wire_time(window.send_end, window.offset_minutes),
        "timeZoneOffset": window.offset_minutes,
        "channels": filter.channels,
        "queues": filter.queues,
        "selectedFields": selected,
    });
    if let (Some(direction), Some(obj)) = (&filter.direction, body.as_object_mut()) {
        obj.insert("direction".into(), serde_json::json!(direction));
    }
    body
}

/// The query of one page: `limit` records per page and `offset` = the page index (0..=10).
pub fn request_query(page_size: u32, page: u32) -> Vec<(&'static str, String)> {
    vec![
        ("limit", page_size.to_string()),
        ("offset", page.to_string()),
    ]
}
