//! Decoding of Call Details response pages into owned [`CallRecord`]s. Every documented variant
//! is accepted: bot-only and agent-routed records mixed in one array, mixed key casing
//! (`Direction`/`direction`, `Reason`/`reason`, `EnterTime`, `ConsultingAgents`; keys are
//! matched case-insensitively), v1's `Direction` inside `customerinfo`, `isVoicemail` as
//! `"YES"`/`"NO"` or a boolean, `campaigninfo.attempt` as `""` or an integer, numbers sent as
//! digit strings, `QueueEntry` objects without `queueName`/`EnterTime`/`CallbackOpted`, and any
//! optional field missing or null.
//!
//! Times without a zone are local at the request's `timeZoneOffset` (JavaScript convention:
//! UTC = local + offset minutes); times with a zone (`CallbackOptedTime`, `campaignRunDate`)
//! are taken as given. A record whose `sessionId` or `sessionStartTime` is missing or unusable,
//! or any field of which has the wrong type or an unparsable value, becomes a [`Reject`]
//! carrying the record's exact JSON: a session is exported with all its legs or not at all.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::keys::{CAMPAIGN_KEYS, CUSTOMER_KEYS, LEG_KEYS, QUEUE_KEYS, SESSION_KEYS};
use crate::sources::extra::{Unmapped, UnmappedCounts};
use crate::sources::timestamp::{parse_local, scan, Zone};
use crate::sources::wire::{parse_instant, InstantError, Key, Scalar};
use crate::sources::{DecodeError, Reject};

const API: &str = "CallDetails";

/// A decoded response page.
#[derive(Debug, Clone)]
pub struct Page {
    /// `numResults` as received: undefined by the docs (a window total in some samples, not in
    /// others), so only a hint. `None` when absent or not a non-negative integer.
    pub num_results: Option<u64>,
    /// Every element of `data`, in order: counted for paging whether decoded or rejected.
    pub records: Vec<Result<CallRecord, Reject>>,
}

/// One session (one element of `data`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallRecord {
    /// `sessionId`; never empty. The key of the session.
    pub session_id: String,
    /// `conversationId` (`c-…`); only on agent-routed records.
    pub conversation_id: Option<String>,
    pub channel: Option<String>,
    pub bot_id: Option<String>,
    pub user_id: Option<String>,
    pub channel_specific_user_id: Option<String>,
    pub org_id: Option<String>,
    pub session_start_time: DateTime<Utc>,
    pub session_end_time: Option<DateTime<Utc>>,
    /// The `timeZoneOffset` of the request the record came from (JavaScript convention).
    pub time_zone_offset: i32,
    pub final_status: Option<String>,
    pub smart_status: Option<String>,
    /// `reason` or `Reason` (the first non-empty one when both are sent).
    pub reason: Option<String>,
    pub disconnecting_event: Option<String>,
    pub error_details: Option<String>,
    /// `Direction`/`direction`, or v1's `customerinfo.Direction`.
    pub direction: Option<String>,
    pub is_voicemail: Option<bool>,
    /// `skills` as JSON text (element type undocumented).
    pub skills: Option<String>,
    pub dispositions: Option<Vec<String>>,
    pub disposition_remarks: Option<Vec<String>>,
    pub survey_type: Option<String>,
    pub csat_score: Option<i64>,
    pub csat_feedback: Option<String>,
    pub nps_score: Option<i64>,
    pub like_dislike_score: Option<i64>,
    pub customer: Customer,
    /// `userleveltags` as JSON text (`[{name, value}]`, value type undocumented).
    pub user_level_tags: Option<String>,
    /// `sessionleveltags` as JSON text.
    pub session_level_tags: Option<String>,
    pub campaign: Campaign,
    pub automation_bot_ids: Option<Vec<String>>,
    /// `metaInfo` exactly as received (free-form JSON).
    pub meta_info: Option<String>,
    /// The legs, in the documented walk order (see [`Segment`]).
    pub segments: Vec<Segment>,
    /// The session's fields no column maps (`customerinfo`'s and `campaigninfo`'s nested).
    pub extra: Unmapped<'static>,
    /// Occurrences of unmapped fields over the session and every destination and leg.
    pub unmapped: UnmappedCounts,
}

/// `customerinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    pub phone: Option<String>,
    pub center_phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
}

/// `campaigninfo`; every field `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign {
    pub name: Option<String>,
    pub id: Option<String>,
    pub instance_id: Option<String>,
    pub dialing_list_id: Option<String>,
    /// Integer on campaign calls; `""` on inbound records becomes `None`.
    pub attempt: Option<i64>,
    pub contact_status: Option<String>,
    pub run_date: Option<DateTime<Utc>>,
    pub contact_list_names: Option<Vec<String>>,
}

/// Which kind of `destinations[]` element a leg came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    QueueEntry,
    AgentSegment,
}

impl SegmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::QueueEntry => "QueueEntry",
            SegmentKind::AgentSegment => "AgentSegment",
        }
    }
}

/// One row of `call_segments`. Walking `destinations` in order: a `QueueEntry` gives its
/// `respondingAgent` (if any, `responding = Some(true)`), then each of `nonRespondingAgents`
/// (`Some(false)`), or one leg with `agent = None` and `responding = None` when it has
/// neither; a bare `AgentSegment` gives one leg (`Some(true)`, no queue fields). The position in
/// [`CallRecord::segments`] is the `segment_index`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub kind: SegmentKind,
    pub queue_id: Option<String>,
    pub queue_name: Option<String>,
    pub enter_time: Option<DateTime<Utc>>,
    pub callback_opted: Option<bool>,
    pub callback_opted_time: Option<DateTime<Utc>>,
    pub user_callback_accept_time: Option<DateTime<Utc>>,
    pub responding: Option<bool>,
    pub agent: Option<AgentLeg>,
    /// The `QueueEntry`'s fields no column maps (empty for an `AgentSegment`, whose fields are
    /// its agent's).
    pub queue_extra: Unmapped<'static>,
}

/// An agent's part of a leg (`respondingAgent`, a `nonRespondingAgents[]` element or a bare
/// `AgentSegment`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentLeg {
    /// A `u-…` user id.
    pub agent_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub non_response_event: Option<String>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_time: Option<DateTime<Utc>>,
    pub first_response_time: Option<DateTime<Utc>>,
    pub first_response_seconds: Option<i64>,
    pub interaction_end_time: Option<DateTime<Utc>>,
    pub interaction_seconds: Option<i64>,
    pub after_call_work_end_time: Option<DateTime<Utc>>,
    pub after_call_work_seconds: Option<i64>,
    pub agent_notes: Option<Vec<String>>,
    /// `ConsultingAgents` as JSON text.
    pub consulting_agents: Option<String>,
    /// The leg's fields no column maps.
    pub extra: Unmapped<'static>,
}

/// Decodes one response body; zone-less times are read at `offset_minutes` (the request's
/// `timeZoneOffset`). A body that is not a JSON object with a `data` array (truncated, an
/// `errors` body, not UTF-8) is a [`DecodeError`]; a bad record is an `Err(Reject)` entry.
pub fn decode_page(body: &[u8], offset_minutes: i32) -> Result<Page, DecodeError> {
    let fail = |reason: String| DecodeError { api: API, reason };
    let body = std::str::from_utf8(body).map_err(|e| fail(format!("body is not UTF-8: {e}")))?;
    let top: Obj<'_> = serde_json::from_str(body).map_err(|e| fail(e.to_string()))?;
    if let Some(err) = top.get("errors").or_else(|| top.get("error")) {
        return Err(fail(format!("body is an error response: {}", err.get())));
    }
    let data = match top.get("data") {
        None if top.has("data") => Vec::new(),
        None => return Err(fail("response has no \"data\" array".into())),
        Some(raw) => serde_json::from_str::<Vec<&RawValue>>(raw.get())
            .map_err(|e| fail(format!("\"data\" is not an array: {e}")))?,
    };
    let num_results = top
        .get("numResults")
        .and_then(|raw| parse_int(raw).ok().flatten())
        .and_then(|n| u64::try_from(n).ok());
    let records = data
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            decode_record(raw, offset_minutes).map_err(|reason| Reject {
                reason: format!("data[{i}]: {reason}"),
                raw_json: raw.get().to_owned(),
            })
        })
        .collect();
    Ok(Page {
        num_results,
        records,
    })
}

fn decode_record(raw: &RawValue, offset: i32) -> Result<CallRecord, String> {
    let o = Obj::parse(raw).map_err(|kind| format!("record is {kind}, expected an object"))?;
    let session_id = o
        .string("sessionId")?
        .filter(|s| !s.trim().is_empty())
        .ok_or("record has no sessionId")?;
    decode_session(&o, session_id.clone(), offset).map_err(|e| format!("session {session_id}: {e}"))
}

fn decode_session(o: &Obj<'_>, session_id: String, offset: i32) -> Result<CallRecord, String> {
    let start = o
        .time("sessionStartTime", offset)?
        .ok_or("record has no sessionStartTime")?;
    let customer_obj = o.object("customerinfo")?;
    let direction = match o.string("direction")? {
        Some(d) => Some(d),
        None => match &customer_obj {
            Some(c) => c.string("direction")?,
            None => None,
        },
    };
    let customer = match &customer_obj {
        None => Customer::default(),
        Some(c) => Customer {
            phone: c.string("CustomerPhone")?,
            center_phone: c.string("CenterPhone")?,
            first_name: c.string("CustomerFirstName")?,
            last_name: c.string("CustomerLastName")?,
            email: c.string("CustomerEmail")?,
        },
    };
    let campaign_obj = o.object("campaigninfo")?;
    let campaign = match &campaign_obj {
        None => Campaign::default(),
        Some(c) => decode_campaign(c, offset).map_err(|e| format!("campaigninfo.{e}"))?,
    };
    let mut extra = o.unmapped(SESSION_KEYS);
    for (name, obj, known) in [
        ("customerinfo", &customer_obj, CUSTOMER_KEYS),
        ("campaigninfo", &campaign_obj, CAMPAIGN_KEYS),
    ] {
        if let (Some(obj), Some(key)) = (obj, o.key_of(name)) {
            extra.push_nested(key, obj.unmapped(known));
        }
    }
    let mut unmapped = UnmappedCounts::default();
    unmapped.add(&extra);
    let segments = decode_segments(o, offset, &mut unmapped)?;
    Ok(CallRecord {
        conversation_id: o.string("conversationId")?,
        channel: o.string("channel")?,
        bot_id: o.string("botId")?,
        user_id: o.string("userId")?,
        channel_specific_user_id: o.string("channelSpecificUserId")?,
        org_id: o.string("orgId")?,
        session_start_time: start,
        session_end_time: o.time("sessionEndTime", offset)?,
        time_zone_offset: offset,
        final_status: o.string("finalStatus")?,
        smart_status: o.string("smartStatus")?,
        reason: o.first_nonempty_string("reason")?,
        disconnecting_event: o.string("disconnectingEvent")?,
        error_details: o.string("errorDetails")?,
        direction,
        is_voicemail: o.boolish("isVoicemail")?,
        skills: o.json_text("skills"),
        dispositions: o.string_list("dispositions")?,
        disposition_remarks: o.string_list("dispositionRemarks")?,
        survey_type: o.string("surveyType")?,
        csat_score: o.int("csatScore")?,
        csat_feedback: o.string("csatFeedback")?,
        nps_score: o.int("npsScore")?,
        like_dislike_score: o.int("likeDislikeScore")?,
        customer,
        user_level_tags: o.json_text("userleveltags"),
        session_level_tags: o.json_text("sessionleveltags"),
        campaign,
        automation_bot_ids: o.string_list("automationBotIDs")?,
        meta_info: o.json_text("metaInfo"),
        segments,
        session_id,
        extra: extra.into_owned(),
        unmapped,
    })
}

fn decode_campaign(c: &Obj<'_>, offset: i32) -> Result<Campaign, String> {
    let contact_list_names = match c.get("contactListName") {
        Some(raw) if raw.get().starts_with('"') => c.string("contactListName")?.map(|s| vec![s]),
        _ => c.string_list("contactListName")?,
    };
    Ok(Campaign {
        name: c.string("campaignName")?,
        id: c.string("campaignId")?,
        instance_id: c.string("campaignInstanceId")?,
        dialing_list_id: c.string("campaignDialingListId")?,
        attempt: c.int("attempt")?,
        contact_status: c.string("contactStatus")?,
        run_date: c.time("campaignRunDate", offset)?,
        contact_list_names,
    })
}

fn decode_segments(
    o: &Obj<'_>,
    offset: i32,
    unmapped: &mut UnmappedCounts,
) -> Result<Vec<Segment>, String> {
    let Some(items) = o.array("destinations")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, raw) in items.iter().enumerate() {
        push_destination(raw, offset, &mut out, unmapped)
            .map_err(|e| format!("destinations[{i}]: {e}"))?;
    }
    Ok(out)
}

fn push_destination(
    raw: &RawValue,
    offset: i32,
    out: &mut Vec<Segment>,
    unmapped: &mut UnmappedCounts,
) -> Result<(), String> {
    let d = Obj::parse(raw).map_err(|kind| format!("is {kind}, expected an object"))?;
    let kind = match d.string("destinationType")? {
        Some(t) if t.eq_ignore_ascii_case("QueueEntry") => SegmentKind::QueueEntry,
        Some(t) if t.eq_ignore_ascii_case("AgentSegment") => SegmentKind::AgentSegment,
        Some(t) => return Err(format!("unknown destinationType {t:?}")),
        None if d.has("queueId") => SegmentKind::QueueEntry,
        None if d.has("agentId") => SegmentKind::AgentSegment,
        None => return Err("has no destinationType".into()),
    };
    if kind == SegmentKind::AgentSegment {
        out.push(Segment {
            kind,
            queue_id: None,
            queue_name: None,
            enter_time: None,
            callback_opted: None,
            callback_opted_time: None,
            user_callback_accept_time: None,
            responding: Some(true),
            agent: Some(decode_leg(&d, offset, unmapped)?),
            queue_extra: Unmapped::default(),
        });
        return Ok(());
    }
    let queue_extra = d.unmapped(QUEUE_KEYS).into_owned();
    unmapped.add(&queue_extra);
    let queue = Segment {
        kind,
        queue_id: d.string("queueId")?,
        queue_name: d.string("queueName")?,
        enter_time: d.time("EnterTime", offset)?,
        callback_opted: d.boolish("CallbackOpted")?,
        callback_opted_time: d.time("CallbackOptedTime", offset)?,
        user_callback_accept_time: d.time("userCallbackAcceptTime", offset)?,
        responding: None,
        agent: None,
        queue_extra,
    };
    let responding = d.object("respondingAgent")?;
    let others = d.array("nonRespondingAgents")?.unwrap_or_default();
    if responding.is_none() && others.is_empty() {
        out.push(queue);
        return Ok(());
    }
    if let Some(r) = responding {
        let leg = decode_leg(&r, offset, unmapped).map_err(|e| format!("respondingAgent.{e}"))?;
        out.push(Segment {
            responding: Some(true),
            agent: Some(leg),
            ..queue.clone()
        });
    }
    for (j, raw) in others.iter().enumerate() {
        let a = Obj::parse(raw)
            .map_err(|kind| format!("nonRespondingAgents[{j}] is {kind}, expected an object"))?;
        let leg = decode_leg(&a, offset, unmapped)
            .map_err(|e| format!("nonRespondingAgents[{j}].{e}"))?;
        out.push(Segment {
            responding: Some(false),
            agent: Some(leg),
            ..queue.clone()
        });
    }
    Ok(())
}

fn decode_leg(a: &Obj<'_>, offset: i32, unmapped: &mut UnmappedCounts) -> Result<AgentLeg, String> {
    let extra = a.unmapped(LEG_KEYS).into_owned();
    unmapped.add(&extra);
    Ok(AgentLeg {
        agent_id: a.string("agentId")?,
        email: a.string("email")?,
        name: a.string("name")?,
        status: a.string("status")?,
        non_response_event: a.string("nonResponseEvent")?,
        assigned_at: a.time("assignedAt", offset)?,
        accepted_time: a.time("acceptedTime", offset)?,
        first_response_time: a.time("firstResponseTime", offset)?,
        first_response_seconds: a.seconds("firstResponseDuration")?,
        interaction_end_time: a.time("interactionEndTime", offset)?,
        interaction_seconds: a.seconds("interactionDuration")?,
        after_call_work_end_time: a.time("afterCallWorkEndTime", offset)?,
        after_call_work_seconds: a.seconds("afterCallWorkDuration")?,
        agent_notes: a.string_list("agentNotes")?,
        consulting_agents: a.json_text("ConsultingAgents"),
        extra,
    })
}

/// Parses a time: with a zone as given, without one as local at the JavaScript-convention
/// `offset_minutes`. `""` and `"-"` are `None`. Accepts `T` or a space between date and time,
/// an optional fraction, and the one-digit hour of the docs' own example (`2023-01-10 2:25:54`).
pub(crate) fn parse_wire_time(
    s: &str,
    offset_minutes: i32,
) -> Result<Option<DateTime<Utc>>, String> {
    let t = s.trim();
    if t.is_empty() || t == "-" {
        return Ok(None);
    }
    // The usual zone-less form skips the zoned parsers, which cannot read it anyway.
    let local = scan(t.as_bytes()).filter(|t| t.zone == Zone::Local);
    if local.is_none() {
        match parse_instant(t) {
            Ok(at) => return Ok(Some(at)),
            Err(InstantError::Implausible) => {
                return Err(format!("{t:?} is outside the plausible range"))
            }
            Err(InstantError::Unparsable) => {}
        }
    }
    let naive = match local {
        Some(l) => l.naive,
        None => parse_local(t, true).ok_or_else(|| format!("{t:?} is not a date and time"))?,
    };
    if !(2000..2100).contains(&naive.year()) {
        return Err(format!("{t:?} is outside the plausible range"));
    }
    Ok(Some(
        (naive + Duration::minutes(i64::from(offset_minutes))).and_utc(),
    ))
}

/// An integer leaf: a JSON integer (or a float with no fraction), or a string of digits;
/// `""` and `null` are `None`.
fn parse_int(raw: &RawValue) -> Result<Option<i64>, &'static str> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let s = Scalar(raw).as_opt_str()?.unwrap_or_default();
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<i64>()
                .map(Some)
                .map_err(|_| "a non-numeric string")
        }
        Some(b'n') => Ok(None),
        Some(b'-' | b'0'..=b'9') => {
            let n: serde_json::Number = serde_json::from_str(text).map_err(|_| "a bad number")?;
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err("not an integer"),
            }
        }
        _ => Err(kind_of(text)),
    }
}

fn kind_of(json: &str) -> &'static str {
    match json.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        _ => "a number",
    }
}

/// One JSON object as its (key, raw value) pairs in received order.
struct Obj<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Obj<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Obj<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    fields.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Obj(fields))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Obj<'a> {
    /// `Err(kind)` when `raw` is not an object.
    fn parse(raw: &'a RawValue) -> Result<Obj<'a>, &'static str> {
        if !raw.get().starts_with('{') {
            return Err(kind_of(raw.get()));
        }
        serde_json::from_str(raw.get()).map_err(|_| "an invalid object")
    }

    /// Every field whose key is none of `known` (in any casing), in order.
    fn unmapped(&self, known: &[&str]) -> Unmapped<'a> {
        let mut out = Unmapped::default();
        for (k, v) in &self.0 {
            if !known.iter().any(|name| k.is(name)) {
                out.push(k.0.clone(), v);
            }
        }
        out
    }

    /// The spelling of the key [`Obj::get`] reads `name` from.
    fn key_of(&self, name: &str) -> Option<std::borrow::Cow<'a, str>> {
        let non_null = |raw: &&RawValue| raw.get() != "null";
        self.0
            .iter()
            .find(|(k, v)| k.0 == name && non_null(v))
            .or_else(|| self.0.iter().find(|(k, v)| k.is(name) && non_null(v)))
            .map(|(k, _)| k.0.clone())
    }

    /// Whether the key is present (any casing, any value).
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k.is(name))
    }

    /// The value of `name`: the exact spelling if present and not null, else the first
    /// non-null value whose key matches case-insensitively. `null` counts as absent.
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        let non_null = |raw: &&RawValue| raw.get() != "null";
        self.0
            .iter()
            .find(|(k, v)| k.0 == name && non_null(v))
            .or_else(|| self.0.iter().find(|(k, v)| k.is(name) && non_null(v)))
            .map(|(_, v)| *v)
    }

    fn string(&self, name: &str) -> Result<Option<String>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => Scalar(raw)
                .as_opt_str()
                .map(|o| o.map(|c| c.into_owned()))
                .map_err(|kind| format!("{name} is {kind} ({}), expected a string", raw.get())),
        }
    }

    /// For keys sent in two casings (`Reason`/`reason`): the first non-empty string among
    /// every spelling, else `""` if one was sent.
    fn first_nonempty_string(&self, name: &str) -> Result<Option<String>, String> {
        let mut empty = None;
        for (k, raw) in &self.0 {
            if !k.is(name) {
                continue;
            }
            match Scalar(raw).as_opt_str() {
                Ok(Some(s)) if !s.is_empty() => return Ok(Some(s.into_owned())),
                Ok(Some(_)) => empty = Some(String::new()),
                Ok(None) => {}
                Err(kind) => {
                    return Err(format!(
                        "{} is {kind} ({}), expected a string",
                        k.0,
                        raw.get()
                    ))
                }
            }
        }
        Ok(empty)
    }

    fn int(&self, name: &str) -> Result<Option<i64>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => parse_int(raw)
                .map_err(|kind| format!("{name} is {kind} ({}), expected an integer", raw.get())),
        }
    }

    /// A duration in whole seconds: an integer ≥ 0.
    fn seconds(&self, name: &str) -> Result<Option<i64>, String> {
        match self.int(name)? {
            Some(n) if n < 0 => Err(format!("{name} is negative ({n})")),
            other => Ok(other),
        }
    }

    /// A boolean sent as `true`/`false` or as `"YES"`/`"NO"`/`"true"`/`"false"` (any case);
    /// `""` is `None`.
    fn boolish(&self, name: &str) -> Result<Option<bool>, String> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let bad = || format!("{name} is {}, expected a boolean or YES/NO", raw.get());
        match raw.get() {
            "true" => return Ok(Some(true)),
            "false" => return Ok(Some(false)),
            _ => {}
        }
        let s = Scalar(raw).as_opt_str().map_err(|_| bad())?;
        match s.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v)
                if ["yes", "true", "y"]
                    .iter()
                    .any(|t| v.eq_ignore_ascii_case(t)) =>
            {
                Ok(Some(true))
            }
            Some(v)
                if ["no", "false", "n"]
                    .iter()
                    .any(|t| v.eq_ignore_ascii_case(t)) =>
            {
                Ok(Some(false))
            }
            Some(_) => Err(bad()),
        }
    }

    fn time(&self, name: &str, offset: i32) -> Result<Option<DateTime<Utc>>, String> {
        match self.string(name)? {
            None => Ok(None),
            Some(s) => parse_wire_time(&s, offset).map_err(|e| format!("{name} {e}")),
        }
    }

    fn array(&self, name: &str) -> Result<Option<Vec<&'a RawValue>>, String> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        if !raw.get().starts_with('[') {
            return Err(format!(
                "{name} is {} ({}), expected an array",
                kind_of(raw.get()),
                raw.get()
            ));
        }
        serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|e| format!("{name}: {e}"))
    }

    fn string_list(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        let Some(items) = self.array(name)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, raw)| match Scalar(raw).as_opt_str() {
                Ok(Some(s)) => Ok(s.into_owned()),
                Ok(None) => Err(format!("{name}[{i}] is null, expected a string")),
                Err(kind) => Err(format!("{name}[{i}] is {kind}, expected a string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn object(&self, name: &str) -> Result<Option<Obj<'a>>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => Obj::parse(raw)
                .map(Some)
                .map_err(|kind| format!("{name} is {kind}, expected an object")),
        }
    }

    /// The value's exact JSON text (any type); `None` when absent or null.
    fn json_text(&self, name: &str) -> Option<String> {
        self.get(name).map(|raw| raw.get().to_owned())
    }
}
