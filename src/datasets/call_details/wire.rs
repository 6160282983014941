//! Decoding of Call Details response pages into [`CallRecord`]s that borrow their text from the
//! body (see `record`). Every documented variant
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

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::fields::{parse_int, Obj};
use super::keys::{A, C, K, Q, S};
use super::record::{AgentLeg, CallRecord, Campaign, Customer, Page, Segment, SegmentKind};
use crate::sources::extra::Unmapped;
use crate::sources::tape::Tape;
use crate::sources::timestamp::{parse_local, scan, Zone};
use crate::sources::wire::{parse_instant, InstantError, Key};
use crate::sources::{DecodeError, Reject};

const API: &str = "CallDetails";

/// Decodes one response body; zone-less times are read at `offset_minutes` (the request's
/// `timeZoneOffset`). A body that is not a JSON object with a `data` array (truncated, an
/// `errors` body, not UTF-8) is a [`DecodeError`]; a bad record is an `Err(Reject)` entry.
///
/// The body is validated and indexed in one pass ([`Tape::index_valid`]) and every level of
/// every record read from that index. A body that pass refuses, or whose envelope is not the
/// usual one, is decoded again the way it was before that pass existed
/// (`decode_checked`): validated by serde_json, whose messages its errors keep.
pub fn decode_page(body: &[u8], offset_minutes: i32) -> Result<Page<CallRecord<'_>>, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError {
        api: API,
        reason: format!("body is not UTF-8: {e}"),
    })?;
    match decode_indexed(text, offset_minutes) {
        Some(page) => Ok(page),
        None => decode_checked(text, offset_minutes),
    }
}

/// The one-pass decoding of [`decode_page`]: `None` unless the body is valid JSON, an object
/// whose keys have no invalid escape, with no error member and an array (or null) `data`.
pub(super) fn decode_indexed(body: &str, offset_minutes: i32) -> Option<Page<CallRecord<'_>>> {
    let tape = Tape::index_valid(body)?;
    let members = tape.children(tape.root());
    let top = Top(members
        .clone()
        .map(|node| Some((Key(tape.key(node)?), tape.text(node))))
        .collect::<Option<_>>()?);
    let (num_results, data) = read_envelope(&top).ok()?;
    let records = match data {
        None => Vec::new(),
        Some(at) if top.0[at].1.starts_with('[') => {
            decode_records(&tape, members.clone().nth(at)?, offset_minutes)
        }
        Some(_) => return None,
    };
    Some(Page {
        num_results,
        records,
    })
}

/// [`decode_page`] as it was before the one-pass index: the body validated and its envelope
/// parsed by serde_json, then the `data` array indexed. Every error message comes from here.
pub(super) fn decode_checked(
    body: &str,
    offset_minutes: i32,
) -> Result<Page<CallRecord<'_>>, DecodeError> {
    let fail = |reason: String| DecodeError { api: API, reason };
    let top: Top<'_> = serde_json::from_str(body).map_err(|e| fail(e.to_string()))?;
    let (num_results, data) = read_envelope(&top).map_err(fail)?;
    let Some(at) = data else {
        return Ok(Page {
            num_results,
            records: Vec::new(),
        });
    };
    let raw = top.0[at].1;
    let not_array = |e: String| fail(format!("\"data\" is not an array: {e}"));
    if !raw.starts_with('[') {
        // serde_json's own message, as before the index existed.
        let e = serde_json::from_str::<Vec<&RawValue>>(raw).err();
        return Err(not_array(
            e.map_or_else(|| "not an array".into(), |e| e.to_string()),
        ));
    }
    // Cannot be `None`: serde_json validated the text above.
    let tape = Tape::index(raw).ok_or_else(|| not_array("it could not be indexed".into()))?;
    Ok(Page {
        num_results,
        records: decode_records(&tape, tape.root(), offset_minutes),
    })
}

/// What the envelope says: `numResults`, and which member holds the records (`None`: `data`
/// is sent but null, an empty page). `Err` for an error body or one without `data`.
fn read_envelope(top: &Top<'_>) -> Result<(Option<u64>, Option<usize>), String> {
    if let Some(err) = top.get("errors").or_else(|| top.get("error")) {
        return Err(format!("body is an error response: {}", top.0[err].1));
    }
    let num_results = top
        .get("numResults")
        .and_then(|at| parse_int(top.0[at].1).ok().flatten())
        .and_then(|n| u64::try_from(n).ok());
    match top.get("data") {
        None if top.has("data") => Ok((num_results, None)),
        None => Err("response has no \"data\" array".into()),
        Some(at) => Ok((num_results, Some(at))),
    }
}

/// Every element of the array at node `data`: a record, or a reject with its exact JSON.
fn decode_records<'a>(
    tape: &Tape<'a>,
    data: usize,
    offset_minutes: i32,
) -> Vec<Result<CallRecord<'a>, Reject>> {
    tape.children(data)
        .enumerate()
        .map(|(i, node)| {
            decode_record(tape, node, offset_minutes).map_err(|reason| Reject {
                reason: format!("data[{i}]: {reason}"),
                raw_json: tape.text(node).to_owned(),
            })
        })
        .collect()
}

fn decode_record<'a>(tape: &Tape<'a>, node: usize, offset: i32) -> Result<CallRecord<'a>, String> {
    let o = Obj::<S>::view(tape, node)
        .map_err(|kind| format!("record is {kind}, expected an object"))?;
    let session_id = o
        .string(S::SessionId)?
        .filter(|s| !s.trim().is_empty())
        .ok_or("record has no sessionId")?;
    decode_session(&o, session_id.clone(), offset).map_err(|e| format!("session {session_id}: {e}"))
}

fn decode_session<'a>(
    o: &Obj<'_, 'a, S>,
    session_id: Cow<'a, str>,
    offset: i32,
) -> Result<CallRecord<'a>, String> {
    let start = o
        .time(S::SessionStartTime, offset)?
        .ok_or("record has no sessionStartTime")?;
    let customer_obj = o.object::<C>(S::Customerinfo)?;
    let direction = match o.string(S::Direction)? {
        Some(d) => Some(d),
        None => match &customer_obj {
            Some(c) => c.string(C::Direction)?,
            None => None,
        },
    };
    let customer = match &customer_obj {
        None => Customer::default(),
        Some(c) => Customer {
            phone: c.string(C::CustomerPhone)?,
            center_phone: c.string(C::CenterPhone)?,
            first_name: c.string(C::CustomerFirstName)?,
            last_name: c.string(C::CustomerLastName)?,
            email: c.string(C::CustomerEmail)?,
        },
    };
    let campaign_obj = o.object::<K>(S::Campaigninfo)?;
    let campaign = match &campaign_obj {
        None => Campaign::default(),
        Some(c) => decode_campaign(c, offset).map_err(|e| format!("campaigninfo.{e}"))?,
    };
    let mut extra = o.unmapped();
    if let (Some(c), Some(key)) = (&customer_obj, o.key_of(S::Customerinfo)) {
        extra.push_nested(key, c.unmapped());
    }
    if let (Some(c), Some(key)) = (&campaign_obj, o.key_of(S::Campaigninfo)) {
        extra.push_nested(key, c.unmapped());
    }
    let segments = decode_segments(o, offset)?;
    Ok(CallRecord {
        conversation_id: o.string(S::ConversationId)?,
        channel: o.string(S::Channel)?,
        bot_id: o.string(S::BotId)?,
        user_id: o.string(S::UserId)?,
        channel_specific_user_id: o.string(S::ChannelSpecificUserId)?,
        org_id: o.string(S::OrgId)?,
        session_start_time: start,
        session_end_time: o.time(S::SessionEndTime, offset)?,
        time_zone_offset: offset,
        final_status: o.string(S::FinalStatus)?,
        smart_status: o.string(S::SmartStatus)?,
        reason: o.first_nonempty_string(S::Reason)?,
        disconnecting_event: o.string(S::DisconnectingEvent)?,
        error_details: o.string(S::ErrorDetails)?,
        direction,
        is_voicemail: o.boolish(S::IsVoicemail)?,
        skills: o.json_text(S::Skills),
        dispositions: o.string_list(S::Dispositions)?,
        disposition_remarks: o.string_list(S::DispositionRemarks)?,
        survey_type: o.string(S::SurveyType)?,
        csat_score: o.int(S::CsatScore)?,
        csat_feedback: o.string(S::CsatFeedback)?,
        nps_score: o.int(S::NpsScore)?,
        like_dislike_score: o.int(S::LikeDislikeScore)?,
        customer,
        user_level_tags: o.json_text(S::Userleveltags),
        session_level_tags: o.json_text(S::Sessionleveltags),
        campaign,
        automation_bot_ids: o.string_list(S::AutomationBotIds)?,
        meta_info: o.json_text(S::MetaInfo),
        segments,
        session_id,
        extra,
    })
}

fn decode_campaign<'a>(c: &Obj<'_, 'a, K>, offset: i32) -> Result<Campaign<'a>, String> {
    let contact_list_names = match c.raw(K::ContactListName) {
        Some(raw) if raw.starts_with('"') => c.string_as_list(K::ContactListName)?,
        _ => c.string_list(K::ContactListName)?,
    };
    Ok(Campaign {
        name: c.string(K::CampaignName)?,
        id: c.string(K::CampaignId)?,
        instance_id: c.string(K::CampaignInstanceId)?,
        dialing_list_id: c.string(K::CampaignDialingListId)?,
        attempt: c.int(K::Attempt)?,
        contact_status: c.string(K::ContactStatus)?,
        run_date: c.time(K::CampaignRunDate, offset)?,
        contact_list_names,
    })
}

fn decode_segments<'a>(o: &Obj<'_, 'a, S>, offset: i32) -> Result<Vec<Segment<'a>>, String> {
    let Some(items) = o.array(S::Destinations)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, node) in items.enumerate() {
        push_destination(o.tape(), node, offset, &mut out)
            .map_err(|e| format!("destinations[{i}]: {e}"))?;
    }
    Ok(out)
}

fn push_destination<'a>(
    tape: &Tape<'a>,
    node: usize,
    offset: i32,
    out: &mut Vec<Segment<'a>>,
) -> Result<(), String> {
    let d = Obj::<Q>::view(tape, node).map_err(|kind| format!("is {kind}, expected an object"))?;
    let as_leg =
        || Obj::<A>::view(tape, node).map_err(|kind| format!("is {kind}, expected an object"));
    let kind = match d.string(Q::DestinationType)? {
        Some(t) if t.eq_ignore_ascii_case("QueueEntry") => SegmentKind::QueueEntry,
        Some(t) if t.eq_ignore_ascii_case("AgentSegment") => SegmentKind::AgentSegment,
        Some(t) => return Err(format!("unknown destinationType {t:?}")),
        None if d.has(Q::QueueId) => SegmentKind::QueueEntry,
        None if as_leg()?.has(A::AgentId) => SegmentKind::AgentSegment,
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
            opens_destination: true,
            agent: Some(decode_leg(&as_leg()?, offset)?),
            queue_extra: Unmapped::default(),
        });
        return Ok(());
    }
    let queue_extra = d.unmapped();
    let queue = Segment {
        kind,
        queue_id: d.string(Q::QueueId)?,
        queue_name: d.string(Q::QueueName)?,
        enter_time: d.time(Q::EnterTime, offset)?,
        callback_opted: d.boolish(Q::CallbackOpted)?,
        callback_opted_time: d.time(Q::CallbackOptedTime, offset)?,
        user_callback_accept_time: d.time(Q::UserCallbackAcceptTime, offset)?,
        responding: None,
        opens_destination: true,
        agent: None,
        queue_extra,
    };
    let responding = d.object::<A>(Q::RespondingAgent)?;
    let others = d.array(Q::NonRespondingAgents)?;
    let no_others = others.clone().is_none_or(|mut o| o.next().is_none());
    if responding.is_none() && no_others {
        out.push(queue);
        return Ok(());
    }
    let opened = responding.is_some();
    if let Some(r) = responding {
        let leg = decode_leg(&r, offset).map_err(|e| format!("respondingAgent.{e}"))?;
        out.push(Segment {
            responding: Some(true),
            agent: Some(leg),
            ..queue.clone()
        });
    }
    for (j, node) in others.into_iter().flatten().enumerate() {
        let a = Obj::<A>::view(tape, node)
            .map_err(|kind| format!("nonRespondingAgents[{j}] is {kind}, expected an object"))?;
        let leg = decode_leg(&a, offset).map_err(|e| format!("nonRespondingAgents[{j}].{e}"))?;
        out.push(Segment {
            responding: Some(false),
            opens_destination: j == 0 && !opened,
            agent: Some(leg),
            ..queue.clone()
        });
    }
    Ok(())
}

fn decode_leg<'a>(a: &Obj<'_, 'a, A>, offset: i32) -> Result<AgentLeg<'a>, String> {
    let extra = a.unmapped();
    Ok(AgentLeg {
        agent_id: a.string(A::AgentId)?,
        email: a.string(A::Email)?,
        name: a.string(A::Name)?,
        status: a.string(A::Status)?,
        non_response_event: a.string(A::NonResponseEvent)?,
        assigned_at: a.time(A::AssignedAt, offset)?,
        accepted_time: a.time(A::AcceptedTime, offset)?,
        first_response_time: a.time(A::FirstResponseTime, offset)?,
        first_response_seconds: a.seconds(A::FirstResponseDuration)?,
        interaction_end_time: a.time(A::InteractionEndTime, offset)?,
        interaction_seconds: a.seconds(A::InteractionDuration)?,
        after_call_work_end_time: a.time(A::AfterCallWorkEndTime, offset)?,
        after_call_work_seconds: a.seconds(A::AfterCallWorkDuration)?,
        agent_notes: a.string_list(A::AgentNotes)?,
        consulting_agents: a.json_text(A::ConsultingAgents),
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

/// The top level of a response: its (key, exact value text) pairs in received order.
struct Top<'a>(Vec<(Key<'a>, &'a str)>);

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    fields.push((key, map.next_value::<&'de RawValue>()?.get()));
                }
                Ok(Top(fields))
            }
        }
        d.deserialize_map(V)
    }
}

impl Top<'_> {
    /// Whether the key is present (any casing, any value).
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k.is(name))
    }

    /// The position of `name`'s value: the exact spelling if present and not null, else the
    /// first non-null value whose key matches case-insensitively. `null` counts as absent.
    fn get(&self, name: &str) -> Option<usize> {
        let non_null = |text: &str| text != "null";
        self.0
            .iter()
            .position(|(k, v)| k.0 == name && non_null(v))
            .or_else(|| self.0.iter().position(|(k, v)| k.is(name) && non_null(v)))
    }
}
