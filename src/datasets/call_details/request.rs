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

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};

use super::CallWindow;

/// The documented maximum of `limit`.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The documented maximum of `offset` (a page index).
pub const MAX_PAGE_OFFSET: u32 = 10;
/// The documented maximum range of one request.
pub const MAX_RANGE: Duration = Duration::days(7);
/// Low-cardinality endpoint label for logs, errors and metrics.
pub const ENDPOINT: &str = "call_details";

/// Which documented endpoint to call. They share the body, paging and record shape; v1 records
/// carry `Direction` inside `customerinfo` and lack `smartStatus`, `reason`, `errorDetails`,
/// `isVoicemail` and `automationBotIDs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallDetailsApi {
    /// `…/v2/interactionDetails` (the default).
    #[default]
    V2InteractionDetails,
    /// `…/v2/calldetails`.
    V2CallDetails,
    /// `…/calldetails` (v1).
    V1CallDetails,
}

impl CallDetailsApi {
    pub const ALL: [CallDetailsApi; 3] = [
        CallDetailsApi::V2InteractionDetails,
        CallDetailsApi::V2CallDetails,
        CallDetailsApi::V1CallDetails,
    ];

    /// The config spelling, which is also the path tail.
    pub fn as_str(self) -> &'static str {
        match self {
            CallDetailsApi::V2InteractionDetails => "v2/interactionDetails",
            CallDetailsApi::V2CallDetails => "v2/calldetails",
            CallDetailsApi::V1CallDetails => "calldetails",
        }
    }

    /// The request path for `account_id` (no query string).
    pub fn path(self, account_id: &str) -> String {
        format!(
            "/agentassist/api/public/analytics/account/{account_id}/{}",
            self.as_str()
        )
    }

    /// `selectedFields` sent when the config names none: every documented value of this
    /// endpoint (`campaigninfo` is documented for v2 only; `snoozeinfo` is not requested because
    /// no column holds it).
    pub fn default_selected_fields(self) -> &'static [&'static str] {
        match self {
            CallDetailsApi::V1CallDetails => &[
                "skills",
                "customerinfo",
                "userleveltags",
                "sessionleveltags",
            ],
            _ => &[
                "skills",
                "customerinfo",
                "userleveltags",
                "sessionleveltags",
                "campaigninfo",
            ],
        }
    }
}

impl fmt::Display for CallDetailsApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown call_details path {0:?} (expected v2/interactionDetails, v2/calldetails or calldetails)")]
pub struct UnknownCallDetailsApi(pub String);

impl FromStr for CallDetailsApi {
    type Err = UnknownCallDetailsApi;
    /// Case-insensitive; a leading `/` is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('/');
        CallDetailsApi::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownCallDetailsApi(s.to_string()))
    }
}

/// The optional body filters, from the `[call_details]` config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// `channels`, e.g. `voice`, `rtm`; empty selects every channel.
    pub channels: Vec<String>,
    /// `queues` (queue ids); empty selects every queue.
    pub queues: Vec<String>,
    /// `direction` (`Inbound`, `Outbound`, `Both`); sent only when set (documented for v2).
    pub direction: Option<String>,
    /// `selectedFields`; `None` sends [`CallDetailsApi::default_selected_fields`].
    pub selected_fields: Option<Vec<String>>,
}

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
