//! Sessions History (`getSessions`): decoding of one page (`{total, moreAvailable,
//! sessions: [...]}`) into sessions and rejects, and the sessions of a unit into a batch of
//! [`bot_sessions_schema`]. Keys are matched case-insensitively. `start_time`/`end_time` are
//! ISO UTC instants (`start_time` required: it names the row's day); `isDeveloper` is a
//! boolean or 1/0 (documented as 1/0, boolean in the samples; `"true"`/`"1"` text too);
//! `tags.userTags` and `tags.sessionTags` are kept as their exact JSON text (tag values have
//! mixed types); every other key, and every key of `tags` besides those two, is kept in
//! `extra` (the documented ones, [`DOCUMENTED_EXTRA`], not counted as unmapped); `botId` is
//! kept only to compare with the unit's bot. A record that breaks one of these rules is a
//! reject; a body that is not such an object is a [`DecodeError`] (the request is retried).

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, ListBuilder, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::schema::bot_sessions_schema;
use crate::datasets::history::{place, Placed};
use crate::schema::{constant_timestamp, constant_utf8, timestamp_builder};
use crate::sources::extra::Unmapped;
use crate::sources::tape::Tape;
use crate::sources::wire::{opt_text, parse_instant};
use crate::sources::{DecodeError, Reject};
use wire::{page_of_tape, Envelope, Fields, PageFields, SessionFields, TagsFields};

const API: &str = "getSessions";

/// Keys the reference documents that no column maps: kept in `extra` as sent, but not counted
/// as unmapped (they are expected on every session, not a change of the API).
pub const DOCUMENTED_EXTRA: &[&str] = &["tags.altText"];

/// One page of the answer.
#[derive(Debug)]
pub struct SessionsPage {
    /// `total`: sessions the server holds for the request's filters (absent: `None`).
    pub total: Option<u64>,
    pub more_available: bool,
    /// Each record: a session, or a reject with the record's `sessionId` when it had one (so
    /// a record served again on a later page is rejected once).
    pub sessions: Vec<Result<BotSession, (Option<String>, Reject)>>,
    /// The JSON text of each record of `sessions`, as sent (the walk compares a session
    /// listed again with its first listing).
    pub raw: Vec<Box<str>>,
    /// The latest `start_time` of the page's records, rejects included; `None` when a record
    /// has none that can be read (or the page is empty): what the walk pins its range to, so
    /// it must not leave out any record listed.
    pub newest: Option<DateTime<Utc>>,
    /// Ids of the sessions rejected because they start outside the requested range (see
    /// [`decode_page_in`]).
    pub outside: Vec<String>,
}

/// One session, as the row it becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct BotSession {
    pub session_id: String,
    /// `botId` as echoed by the server (not a column: the row's bot is the unit's; the export
    /// warns when they differ).
    pub bot_id: Option<String>,
    pub user_id: Option<String>,
    pub channel: Option<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub session_lang: Option<Vec<String>>,
    pub session_type: Option<String>,
    pub containment_type: Option<String>,
    pub is_developer: Option<bool>,
    pub session_status: Option<String>,
    /// `tags.userTags` as sent (JSON text).
    pub user_tags: Option<String>,
    /// `tags.sessionTags` as sent (JSON text).
    pub session_tags: Option<String>,
    pub messages_exchanged: Option<i64>,
    pub tasks_executed: Option<i64>,
    /// The record's unmapped fields (see [`crate::sources::extra`]).
    pub unmapped: Unmapped<'static>,
}

impl BotSession {
    /// The session's id.
    pub fn id(&self) -> &str {
        &self.session_id
    }

    /// Still running: no `end_time`, or `sessionStatus` `active` (its row will still change).
    pub fn is_active(&self) -> bool {
        self.end_time.is_none()
            || self
                .session_status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("active"))
    }
}

/// Decodes one response body.
pub fn decode_page(body: &[u8]) -> Result<SessionsPage, DecodeError> {
    decode_page_in(body, None)
}

/// Decodes one response body of a request for `range`: a session that starts before
/// `range.start` or after `range.end` is a reject (the server answered outside what was asked),
/// its id listed in [`SessionsPage::outside`] (the placement rule of [`place`]). A session starting exactly at `range.end` is
/// kept: it belongs to the next range, and the caller skips it.
///
/// A valid body is indexed once, validated in the same pass ([`Tape::index_valid_levels`]),
/// and its envelope, records and `tags` objects are read from that index. Before, serde_json
/// walked a record's bytes three times (the page, the record, its `tags`): a third of the
/// dataset's decoding in a profile of `cargo bench --bench datasets`.
pub fn decode_page_in(
    body: &[u8],
    range: Option<&Range<DateTime<Utc>>>,
) -> Result<SessionsPage, DecodeError> {
    let bad = |reason: String| DecodeError { api: API, reason };
    let text = std::str::from_utf8(body).map_err(|e| bad(format!("body is not UTF-8: {e}")))?;
    let tape = Tape::index_valid_levels(text, wire::LEVELS);
    let page = match tape.as_ref().and_then(page_of_tape) {
        Some(page) => page,
        // Anything else is read again the general way, which says what is wrong.
        None => general_page(text).map_err(bad)?,
    };
    let more_available = match page.more_available {
        None | Some("false" | "null") => false,
        Some("true") => true,
        Some(other) => return Err(bad(format!("moreAvailable is {other}, expected a boolean"))),
    };
    let total = match page.total {
        None | Some("null") => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| bad(format!("total is {text}, expected a count")))?,
        ),
    };
    let mut outside = Vec::new();
    let raw = page.records.iter().map(|(r, _)| Box::from(*r)).collect();
    // The latest start of the records: `None` as soon as one has none that can be read. A
    // session decoded whole has its start already; a failed one's is read from its fields.
    let mut newest = Some(None);
    let mut starts = |start: Option<DateTime<Utc>>| {
        newest = match (newest, start) {
            (Some(max), Some(t)) => Some(max.max(Some(t))),
            _ => None,
        };
    };
    let sessions = page
        .records
        .into_iter()
        .enumerate()
        .map(|(i, (raw, node))| {
            let reject = |id, reason| {
                (
                    id,
                    Reject {
                        reason: format!("sessions[{i}]: {reason}"),
                        raw_json: raw.to_owned(),
                    },
                )
            };
            let fields = node
                .zip(tape.as_ref())
                .and_then(|(n, tape)| SessionFields::of_node(tape, n))
                .map_or_else(|| SessionFields::of_raw(raw), Ok);
            let s = match decode_session(raw, fields) {
                Ok(s) => s,
                Err(((id, reason), start)) => {
                    starts(start);
                    return Err(reject(id, reason));
                }
            };
            starts(Some(s.start_time));
            match range {
                Some(r) if place(s.start_time, r) == Placed::Outside => {
                    outside.push(s.session_id.clone());
                    Err(reject(
                        Some(s.session_id),
                        format!(
                            "start_time {} is outside the requested range {} .. {}",
                            s.start_time.to_rfc3339(),
                            r.start.to_rfc3339(),
                            r.end.to_rfc3339()
                        ),
                    ))
                }
                _ => Ok(s),
            }
        })
        .collect();
    Ok(SessionsPage {
        total,
        more_available,
        sessions,
        raw,
        newest: newest.flatten(),
        outside,
    })
}

/// A body [`page_of_tape`] does not read, read by serde_json; `Err` says why it is not a page.
fn general_page(text: &str) -> Result<PageFields<'_>, String> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Some(items) = envelope.sessions else {
        return Err("no sessions array".into());
    };
    let items: Vec<&RawValue> =
        serde_json::from_str(items.raw()).map_err(|e| format!("sessions is not an array: {e}"))?;
    Ok(PageFields {
        total: envelope.total.map(|s| s.raw()),
        more_available: envelope.more_available.map(|s| s.raw()),
        records: items.into_iter().map(|r| (r.get(), None)).collect(),
    })
}

/// Why a record is a reject, with its `sessionId` when it has one.
type Failed = (Option<String>, String);

/// The session of record `raw` with its `fields`; a reject's reason with the record's
/// `start_time` when it has one that can be read (whatever else is wrong with it).
fn decode_session(
    raw: &str,
    fields: Result<Fields<'_>, String>,
) -> Result<BotSession, (Failed, Option<DateTime<Utc>>)> {
    if !raw.starts_with('{') {
        return Err(((None, "session record is not an object".into()), None));
    }
    let (mut w, tags) = fields.map_err(|e| ((None, e), None))?;
    session_of(&mut w, tags).map_err(|failed| {
        let start = opt_text("start_time", w.start_time).ok().flatten();
        (failed, start.and_then(|text| instant(text.trim()).ok()))
    })
}

/// The session of a record's fields (its unmapped keys are taken out of `w`).
fn session_of(
    w: &mut SessionFields<'_>,
    tags: Option<Result<TagsFields<'_>, String>>,
) -> Result<BotSession, Failed> {
    // The reference's ids are strings (24 hex digits); a number or another type is named as
    // such, not as a missing id.
    let id = match opt_text("sessionId", w.session_id) {
        Ok(id) => id.filter(|s| !s.is_empty()).map(|s| s.into_owned()),
        Err(reason) => return Err((None, reason)),
    };
    let fail = |reason: String| (id.clone(), reason);
    let session_id = id
        .clone()
        .ok_or_else(|| fail("session has no sessionId".into()))?;
    let owned = |field: &str, v: Option<&str>| -> Result<Option<String>, Failed> {
        Ok(opt_text(field, v).map_err(fail)?.map(|c| c.into_owned()))
    };
    let start_raw = opt_text("start_time", w.start_time)
        .map_err(fail)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| fail("session has no start_time".into()))?;
    let start_time = instant(&start_raw).map_err(|e| fail(e.describe("start_time", &start_raw)))?;
    let end_time = match opt_text("end_time", w.end_time)
        .map_err(fail)?
        .filter(|s| !s.trim().is_empty())
    {
        None => None,
        Some(s) => Some(instant(&s).map_err(|e| fail(e.describe("end_time", &s)))?),
    };
    let (user_tags, session_tags, tags_extra) = match (w.tags, tags) {
        (None, _) => (None, None, Unmapped::default()),
        (Some(_), Some(Ok(t))) => (
            t.user_tags.map(str::to_owned),
            t.session_tags.map(str::to_owned),
            t.extra,
        ),
        (Some(_), Some(Err(reason))) => return Err(fail(reason)),
        (Some(raw), None) => return Err(fail(format!("tags is {raw}, expected an object"))),
    };
    let mut unmapped = std::mem::take(&mut w.extra);
    unmapped.push_nested("tags".into(), tags_extra);
    Ok(BotSession {
        bot_id: owned("botId", w.bot_id)?,
        user_id: owned("userId", w.user_id)?,
        channel: owned("channel", w.channel)?,
        start_time,
        end_time,
        session_lang: langs(w.session_lang).map_err(fail)?,
        session_type: owned("sessionType", w.session_type)?,
        containment_type: owned("containmentType", w.containment_type)?,
        is_developer: is_developer(w.is_developer).map_err(fail)?,
        session_status: owned("sessionStatus", w.session_status)?,
        user_tags,
        session_tags,
        messages_exchanged: count("noOfMessagesExchanged", w.messages).map_err(fail)?,
        tasks_executed: count("noOfTasksExecuted", w.tasks).map_err(fail)?,
        unmapped: unmapped.into_owned(),
        session_id,
    })
}

/// An instant stored in milliseconds.
fn instant(s: &str) -> Result<DateTime<Utc>, crate::sources::wire::InstantError> {
    let t = parse_instant(s)?;
    Ok(DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t))
}

/// `session_lang`: an array of strings, or one string, or null.
fn langs(v: Option<&str>) -> Result<Option<Vec<String>>, String> {
    let Some(raw) = v else { return Ok(None) };
    match raw.as_bytes().first() {
        Some(b'n') => Ok(None),
        Some(b'"') => Ok(opt_text("session_lang", Some(raw))?.map(|s| vec![s.into_owned()])),
        Some(b'[') => {
            let items: Vec<&RawValue> =
                serde_json::from_str(raw).map_err(|e| format!("session_lang: {e}"))?;
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    opt_text(&format!("session_lang[{i}]"), Some(item.get()))?
                        .map(|c| c.into_owned())
                        .ok_or_else(|| format!("session_lang[{i}] is null"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        _ => Err(format!(
            "session_lang is {raw}, expected an array of strings"
        )),
    }
}

/// `isDeveloper`: `true`/`false`, `1`/`0`, the same as text, or null.
fn is_developer(v: Option<&str>) -> Result<Option<bool>, String> {
    match v {
        None | Some("null") => Ok(None),
        Some("true" | "1" | "\"true\"" | "\"1\"") => Ok(Some(true)),
        Some("false" | "0" | "\"false\"" | "\"0\"") => Ok(Some(false)),
        Some(other) => Err(format!("isDeveloper is {other}, expected a boolean or 1/0")),
    }
}

/// A count: a non-negative integer (an integral float too), or null.
fn count(field: &str, v: Option<&str>) -> Result<Option<i64>, String> {
    let Some(text) = v else { return Ok(None) };
    if text == "null" {
        return Ok(None);
    }
    let parsed = text.parse::<i64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    });
    parsed
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| format!("{field} is {text}, expected a non-negative integer"))
}

/// The sessions of one `(account, bot)` as a batch with exactly [`bot_sessions_schema`].
pub fn sessions_to_batch(
    account_id: &str,
    bot_id: &str,
    sessions: &[BotSession],
    exported_at: DateTime<Utc>,
) -> RecordBatch {
    let n = sessions.len();
    let strings = |f: fn(&BotSession) -> Option<&str>| -> ArrayRef {
        Arc::new(sessions.iter().map(f).collect::<StringArray>())
    };
    let mut starts = timestamp_builder(n);
    let mut ends = timestamp_builder(n);
    let mut langs = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        true,
    )));
    let mut developer = BooleanBuilder::with_capacity(n);
    let mut messages = Int64Builder::with_capacity(n);
    let mut tasks = Int64Builder::with_capacity(n);
    let mut extra = StringBuilder::new();
    for s in sessions {
        starts.append_value(s.start_time.timestamp_millis());
        ends.append_option(s.end_time.map(|t| t.timestamp_millis()));
        match &s.session_lang {
            Some(list) => {
                for l in list {
                    langs.values().append_value(l);
                }
                langs.append(true);
            }
            None => langs.append(false),
        }
        developer.append_option(s.is_developer);
        messages.append_option(s.messages_exchanged);
        tasks.append_option(s.tasks_executed);
        extra.append_option(s.unmapped.cell());
    }
    let columns: Vec<ArrayRef> = vec![
        constant_utf8(account_id, n),
        constant_utf8(bot_id, n),
        strings(|s| Some(s.session_id.as_str())),
        strings(|s| s.user_id.as_deref()),
        strings(|s| s.channel.as_deref()),
        Arc::new(starts.finish()),
        Arc::new(ends.finish()),
        Arc::new(langs.finish()),
        strings(|s| s.session_type.as_deref()),
        strings(|s| s.containment_type.as_deref()),
        Arc::new(developer.finish()),
        strings(|s| s.session_status.as_deref()),
        strings(|s| s.user_tags.as_deref()),
        strings(|s| s.session_tags.as_deref()),
        Arc::new(messages.finish()),
        Arc::new(tasks.finish()),
        constant_timestamp(exported_at.timestamp_millis(), n),
        Arc::new(extra.finish()),
    ];
    // Cannot fail: every column has `n` values of the schema's type (timestamps carry the "UTC"
    // zone, the list item field is the schema's), and non-nullable columns get no nulls.
    RecordBatch::try_new(bot_sessions_schema(), columns)
        .expect("columns match bot_sessions_schema by construction")
}

mod wire;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_sample_decodes_with_tags_as_text_and_alt_text_in_extra() {
        let body = r#"{ "total": 1, "moreAvailable": false,
  "sessions": [ { "sessionId": "67d97c8fd495b147d9c3xxxx", "botId": "st-1", "channel": "korevg",
      "userId": "u-1", "start_time": "2025-03-18T14:00:47.505Z", "end_time": "2025-03-18T14:01:37.518Z",
      "session_lang": ["en"], "sessionType": "interactive", "containmentType": "agent",
      "isDeveloper": false, "sessionStatus": "closed",
      "tags": { "userTags": [ { "value": "newuser", "name": "regular" } ],
                "sessionTags": [ { "value": 1, "name": "welcomeMessageTwilio" } ], "altText": [] },
      "noOfMessagesExchanged": 4, "noOfTasksExecuted": 1 } ],
  "invalidSessions": ["6465cf6e47Q9ed4e822bxxxx"] }"#;
        let page = decode_page(body.as_bytes()).expect("page");
        assert_eq!((page.total, page.more_available), (Some(1), false));
        let s = page.sessions[0].as_ref().expect("session");
        assert_eq!(s.session_id, "67d97c8fd495b147d9c3xxxx");
        assert_eq!(s.bot_id.as_deref(), Some("st-1"));
        assert_eq!(s.start_time.to_rfc3339(), "2025-03-18T14:00:47.505+00:00");
        assert_eq!(s.is_developer, Some(false));
        assert_eq!(
            s.user_tags.as_deref(),
            Some(r#"[ { "value": "newuser", "name": "regular" } ]"#)
        );
        assert_eq!(
            s.session_tags.as_deref(),
            Some(r#"[ { "value": 1, "name": "welcomeMessageTwilio" } ]"#)
        );
        assert_eq!(s.session_lang.as_deref(), Some(&["en".to_string()][..]));
        assert_eq!((s.messages_exchanged, s.tasks_executed), (Some(4), Some(1)));
        assert_eq!(
            s.unmapped.cell().as_deref(),
            Some(r#"{"tags":{"altText":[]}}"#)
        );
        // Documented, so not counted as unmapped (no warning every run).
        let mut counts = crate::sources::extra::UnmappedCounts::default();
        counts.add(&s.unmapped);
        counts.forget(DOCUMENTED_EXTRA);
        assert!(counts.is_empty(), "{counts:?}");
    }

    #[test]
    fn is_developer_as_boolean_or_one_zero_and_bad_records_are_rejects_with_their_id() {
        let body = r#"{"moreAvailable":true,"sessions":[
            {"sessionId":"a","start_time":"2025-03-18T14:00:47.505Z","isDeveloper":1},
            {"sessionId":"b","start_time":"2025-03-18T14:00:47.505Z","isDeveloper":0},
            {"sessionId":"c","start_time":"2025-03-18T14:00:47.505Z","isDeveloper":"maybe"},
            {"sessionId":"d","start_time":"yesterday"},
            {"start_time":"2025-03-18T14:00:47.505Z"},
            {"sessionId":"e","start_time":"2025-03-18T14:00:47.505Z","noOfMessagesExchanged":"four"}]}"#;
        let page = decode_page(body.as_bytes()).expect("page");
        assert_eq!((page.total, page.more_available), (None, true));
        let dev: Vec<Option<bool>> = page.sessions[..2]
            .iter()
            .map(|s| s.as_ref().expect("ok").is_developer)
            .collect();
        assert_eq!(dev, [Some(true), Some(false)]);
        let ids: Vec<Option<&str>> = page.sessions[2..]
            .iter()
            .map(|s| s.as_ref().expect_err("reject").0.as_deref())
            .collect();
        assert_eq!(ids, [Some("c"), Some("d"), None, Some("e")]);
    }

    #[test]
    fn a_session_id_that_is_not_text_is_named_as_such_and_a_missing_one_as_missing() {
        let body = br#"{"sessions":[
            {"sessionId":12345,"start_time":"2025-03-18T14:00:47.505Z"},
            {"sessionId":{"id":"x"},"start_time":"2025-03-18T14:00:47.505Z"},
            {"start_time":"2025-03-18T14:00:47.505Z"},
            {"sessionId":"","start_time":"2025-03-18T14:00:47.505Z"}]}"#;
        let page = decode_page(body).expect("decodes");
        let reasons: Vec<&str> = page
            .sessions
            .iter()
            .map(|s| s.as_ref().expect_err("reject").1.reason.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "sessions[0]: sessionId is a number (12345), expected a string",
                "sessions[1]: sessionId is an object ({\"id\":\"x\"}), expected a string",
                "sessions[2]: session has no sessionId",
                "sessions[3]: session has no sessionId",
            ]
        );
        assert_eq!(
            page.raw[0].as_ref(),
            r#"{"sessionId":12345,"start_time":"2025-03-18T14:00:47.505Z"}"#
        );
    }

    #[test]
    fn the_newest_start_counts_rejected_records_and_is_unknown_when_one_has_none() {
        let t = |s: &str| Some(s.parse::<DateTime<Utc>>().expect("t"));
        let broken = r#"{"sessionId":"m","start_time":"2025-03-18T15:00:00.000Z","noOfMessagesExchanged":"many"}"#;
        let ok = r#"{"sessionId":"a","start_time":"2025-03-18T14:00:00.000Z"}"#;
        let body = format!(r#"{{"sessions":[{broken},{ok}]}}"#);
        let page = decode_page(body.as_bytes()).expect("decodes");
        assert!(page.sessions[0].is_err());
        assert_eq!(page.newest, t("2025-03-18T15:00:00Z"));
        let body = format!(r#"{{"sessions":[{ok},{{"sessionId":"n","start_time":"soon"}}]}}"#);
        assert_eq!(decode_page(body.as_bytes()).expect("decodes").newest, None);
        assert_eq!(
            decode_page(br#"{"sessions":[]}"#).expect("decodes").newest,
            None
        );
    }

    #[test]
    fn of_two_casings_of_a_key_the_last_wins_and_unread_keys_stay_in_extra_in_order() {
        let body = r#"{"sessions":[{"sessionId":"a","SESSIONID":"b","start_time":"2025-03-18T14:00:47.505Z",
            "channel":"web","Channel":null,"zz":1,"tags":{"userTags":[1],"USERTAGS":[2],"altText":[],"sessionTags":null},
            "isDeveloper":true,"isdeveloper":"0","aa":{"b":[]}}]}"#;
        let page = decode_page(body.as_bytes()).expect("page");
        let s = page.sessions[0].as_ref().expect("session");
        assert_eq!(s.session_id, "b");
        assert_eq!(s.channel, None, "a later null clears an earlier value");
        assert_eq!(s.is_developer, Some(false));
        assert_eq!(s.user_tags.as_deref(), Some("[2]"));
        assert_eq!(s.session_tags, None);
        assert_eq!(
            s.unmapped.cell().as_deref(),
            Some(r#"{"zz":1,"aa":{"b":[]},"tags":{"altText":[]}}"#)
        );
    }

    #[test]
    fn a_record_whose_keys_the_index_cannot_read_is_read_by_serde_json_and_the_rest_from_the_index()
    {
        // A lone surrogate escape in a key: valid JSON text that serde_json cannot decode as a
        // string. The record is rejected with serde_json's reason; its neighbours decode.
        let lone = r#"{"sessionId":"x","start_time":"2025-03-18T14:00:47.505Z","\ud800":1}"#;
        let in_tags =
            r#"{"sessionId":"y","start_time":"2025-03-18T14:00:47.505Z","tags":{"\udc00":1}}"#;
        let ok =
            r#"{"sessionId":"z","start_time":"2025-03-18T14:00:47.505Z","tags":{"userTags":[]}}"#;
        let body = format!(r#"{{"sessions":[{lone},{in_tags},{ok}]}}"#);
        let page = decode_page(body.as_bytes()).expect("page");
        let (id, reject) = page.sessions[0].as_ref().expect_err("unreadable key");
        assert_eq!(id, &None);
        let serde_reason = serde_json::from_str::<serde_json::Value>(lone)
            .expect_err("serde_json refuses it")
            .to_string();
        assert_eq!(reject.reason, format!("sessions[0]: {serde_reason}"));
        assert_eq!(reject.raw_json, lone);
        // A record serde_json cannot read has no start that can be read: the page's newest
        // start is unknown.
        assert_eq!(page.newest, None);
        let (id, reject) = page.sessions[1].as_ref().expect_err("unreadable tags key");
        assert_eq!(id.as_deref(), Some("y"), "{}", reject.reason);
        assert!(reject.reason.contains("surrogate"), "{}", reject.reason);
        let s = page.sessions[2].as_ref().expect("session");
        assert_eq!((s.id(), s.user_tags.as_deref()), ("z", Some("[]")));
    }

    #[test]
    fn tags_that_are_not_an_object_and_records_that_are_not_objects_are_rejects() {
        let body = r#"{"sessions":[{"sessionId":"a","start_time":"2025-03-18T14:00:47.505Z","tags":[1]},
            [1,2],{"sessionId":"b","start_time":"2025-03-18T14:00:47.505Z","tags":null}]}"#;
        let page = decode_page(body.as_bytes()).expect("page");
        let reasons: Vec<String> = page.sessions[..2]
            .iter()
            .map(|s| s.as_ref().expect_err("reject").1.reason.clone())
            .collect();
        assert_eq!(
            reasons,
            [
                "sessions[0]: tags is [1], expected an object",
                "sessions[1]: session record is not an object"
            ]
        );
        assert_eq!(page.raw[1].as_ref(), "[1,2]");
        assert!(page.sessions[2]
            .as_ref()
            .expect("null tags")
            .user_tags
            .is_none());
    }

    #[test]
    fn a_body_without_sessions_is_a_decode_error() {
        assert!(decode_page(b"{\"total\":3}").is_err());
        assert!(decode_page(b"[]").is_err());
        assert!(decode_page(b"{\"sessions\":[],\"moreAvailable\":\"yes\"}").is_err());
    }

    #[test]
    fn sessions_outside_the_requested_range_are_rejects_and_one_at_its_end_is_kept() {
        let before = r#"{"sessionId":"early","start_time":"2025-03-18T03:59:59.999Z"}"#;
        let body = format!(
            r#"{{"moreAvailable":false,"sessions":[
            {{"sessionId":"in","start_time":"2025-03-18T04:00:00.000Z"}},
            {{"sessionId":"next-day","start_time":"2025-03-19T04:00:00.000Z"}},
            {before},
            {{"sessionId":"late","start_time":"2025-03-19T04:00:00.001Z"}}]}}"#
        );
        let range: Range<DateTime<Utc>> = "2025-03-18T04:00:00Z".parse().expect("t")
            ..("2025-03-19T04:00:00Z".parse().expect("t"));
        let page = decode_page_in(body.as_bytes(), Some(&range)).expect("page");
        assert_eq!(page.outside, ["early", "late"]);
        let kept: Vec<&str> = page.sessions[..2]
            .iter()
            .map(|s| s.as_ref().expect("kept").id())
            .collect();
        assert_eq!(kept, ["in", "next-day"]);
        let (id, reject) = page.sessions[2].as_ref().expect_err("outside");
        assert_eq!(id.as_deref(), Some("early"));
        assert_eq!(reject.raw_json, before);
        assert!(
            reject.reason.contains("outside the requested range"),
            "{}",
            reject.reason
        );
        assert!(page.sessions[3].is_err());
        // Without a range nothing is judged.
        let all = decode_page(body.as_bytes()).expect("page");
        assert!(all.outside.is_empty() && all.sessions.iter().all(Result::is_ok));
    }

    #[test]
    fn a_session_without_end_time_or_with_status_active_is_active() {
        let body = r#"{"sessions":[
            {"sessionId":"a","start_time":"2025-03-18T14:00:47.505Z","end_time":null,"sessionStatus":"active"},
            {"sessionId":"b","start_time":"2025-03-18T14:00:47.505Z"},
            {"sessionId":"c","start_time":"2025-03-18T14:00:47.505Z","end_time":"2025-03-18T14:05:00Z","sessionStatus":"Active"},
            {"sessionId":"d","start_time":"2025-03-18T14:00:47.505Z","end_time":"2025-03-18T14:05:00Z","sessionStatus":"closed"}]}"#;
        let page = decode_page(body.as_bytes()).expect("page");
        let active: Vec<bool> = page
            .sessions
            .iter()
            .map(|s| s.as_ref().expect("ok").is_active())
            .collect();
        assert_eq!(active, [true, true, true, false]);
    }
}
