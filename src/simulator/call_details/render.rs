//! Call Details response bodies, rendered from [`GeneratedCall`]s at the request's offset. The
//! documented variants are chosen per session, deterministically, and never change the values
//! an exporter must produce: `Direction`/`direction` (v1: inside `customerinfo`), `Reason` on
//! agent-routed sessions before 2025 and `reason` otherwise, `isVoicemail` as `"YES"`/`"NO"` or
//! a boolean, `attempt` as `""` on inbound campaigns, `T` or a space (and an unpadded hour) in
//! zone-less times, absent or `null` for missing values, and unknown extra fields. v1 records
//! lack `smartStatus`, `reason`, `errorDetails`, `isVoicemail` and `automationBotIDs`.

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::{json, Map, Value};

use super::build::variant;
use super::{GeneratedCall, GeneratedDestination, GeneratedLeg, GeneratedQueue, Malformation};
use crate::simulator::unknown;

const V_DIRECTION_UPPER: u64 = 1;
const V_VOICEMAIL_BOOL: u64 = 2;
const V_SPACE_TIME: u64 = 3;
const V_NULL_NOT_ABSENT: u64 = 4;
const V_UNPADDED_HOUR: u64 = 5;

/// The optional blocks a request selected (`selectedFields`); all of them when the request
/// sent none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Selected {
    pub skills: bool,
    pub customerinfo: bool,
    pub userleveltags: bool,
    pub sessionleveltags: bool,
    pub campaigninfo: bool,
}

impl Selected {
    pub(crate) const ALL: Selected = Selected {
        skills: true,
        customerinfo: true,
        userleveltags: true,
        sessionleveltags: true,
        campaigninfo: true,
    };

    pub(crate) fn from_names<'a>(names: impl Iterator<Item = &'a str>) -> Selected {
        let mut s = Selected {
            skills: false,
            customerinfo: false,
            userleveltags: false,
            sessionleveltags: false,
            campaigninfo: false,
        };
        for n in names {
            match n.to_ascii_lowercase().as_str() {
                "skills" => s.skills = true,
                "customerinfo" => s.customerinfo = true,
                "userleveltags" => s.userleveltags = true,
                "sessionleveltags" => s.sessionleveltags = true,
                "campaigninfo" => s.campaigninfo = true,
                _ => {}
            }
        }
        s
    }
}

/// How to render one response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenderOpts {
    pub seed: u64,
    /// JavaScript convention: local = UTC − offset.
    pub offset_minutes: i64,
    pub v1: bool,
    pub selected: Selected,
    /// Add [`unknown::fields`] to every session, its `customerinfo` and `campaigninfo`, every
    /// queue entry and every agent leg.
    pub unknown_fields: bool,
}

/// Fields the API sends on every session that no column maps.
pub(crate) const SESSION_UNTYPED: [(&str, &str); 1] = [("holdDuration", "0")];
/// Fields the API sends on an agent leg with a status that no column maps.
pub(crate) const LEG_UNTYPED: [(&str, &str); 3] = [
    ("JoinedUsers", "[]"),
    ("snoozeinfo", "[]"),
    ("agentChoseTranslate", "false"),
];

/// The identity [`unknown::fields`] of a queue entry carry: its session and its position in
/// `destinations`.
pub(crate) fn destination_ref(session_id: &str, index: usize) -> String {
    format!("{session_id}|{index}")
}

/// The identity [`unknown::fields`] of an agent leg carry.
pub(crate) fn leg_ref(session_id: &str, agent_id: &str) -> String {
    format!("{session_id}|{agent_id}")
}

/// `{"numResults": n, "data": [...]}` (no `numResults` when `None`).
pub(crate) fn page(calls: &[GeneratedCall], num_results: Option<u64>, o: &RenderOpts) -> String {
    let data: Vec<Value> = calls.iter().map(|c| record(c, o)).collect();
    let body = match num_results {
        Some(n) => json!({"numResults": n, "data": data}),
        None => json!({"data": data}),
    };
    if o.unknown_fields {
        unknown::splice(body.to_string())
    } else {
        body.to_string()
    }
}

fn local(t: DateTime<Utc>, o: &RenderOpts, fmt: &str) -> String {
    (t - TimeDelta::minutes(o.offset_minutes))
        .format(fmt)
        .to_string()
}

fn iso_ms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

struct Rec<'a> {
    c: &'a GeneratedCall,
    o: &'a RenderOpts,
    m: Map<String, Value>,
}

impl Rec<'_> {
    fn vary(&self, what: u64, one_in: u64) -> bool {
        variant(self.o.seed, &self.c.session_id, what, one_in)
    }
    fn put(&mut self, k: &str, v: Value) {
        self.m.insert(k.to_string(), v);
    }
    /// A value that may be missing: absent or `null`, by session.
    fn opt(&mut self, k: &str, v: Option<Value>) {
        match v {
            Some(v) => self.put(k, v),
            None if self.vary(V_NULL_NOT_ABSENT, 4) => self.put(k, Value::Null),
            None => {}
        }
    }
    fn time(&self, t: DateTime<Utc>) -> Value {
        Value::String(local(t, self.o, "%Y-%m-%dT%H:%M:%S"))
    }
    fn time_opt(&self, t: Option<DateTime<Utc>>) -> Option<Value> {
        t.map(|t| self.time(t))
    }
    /// Adds the unknown fields of `level` to `map` when they are on.
    fn unknown(&self, map: &mut Map<String, Value>, level: &str, id: &str) {
        if self.o.unknown_fields {
            unknown::insert(map, &unknown::fields(level, id));
        }
    }
}

fn record(c: &GeneratedCall, o: &RenderOpts) -> Value {
    if c.malformed == Some(Malformation::NotAnObject) {
        return json!([c.session_id]);
    }
    let mut r = Rec {
        c,
        o,
        m: Map::new(),
    };
    let id_key = if c.malformed == Some(Malformation::NoSessionId) {
        "session_id"
    } else {
        "sessionId"
    };
    r.put(id_key, json!(c.session_id));
    r.put("channel", json!(c.channel));
    let start = if c.malformed == Some(Malformation::BadStartTime) {
        json!("2025-13-45T99:00:00")
    } else {
        r.time(c.start)
    };
    r.put("sessionStartTime", start);
    let end_fmt = if r.vary(V_UNPADDED_HOUR, 7) {
        "%Y-%m-%d %-H:%M:%S"
    } else if r.vary(V_SPACE_TIME, 5) {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%dT%H:%M:%S"
    };
    r.put("sessionEndTime", json!(local(c.end, o, end_fmt)));
    r.put("botId", json!(c.bot_id));
    r.put("userId", json!(c.user_id));
    r.put("channelSpecificUserId", json!(c.channel_specific_user_id));
    r.put("orgId", json!(c.org_id));
    r.put("finalStatus", json!(c.final_status));
    r.put("disconnectingEvent", json!(c.disconnecting_event));
    if !o.v1 {
        v2_fields(&mut r);
    }
    if c.malformed == Some(Malformation::BadVoicemail) {
        r.put("isVoicemail", json!("MAYBE"));
    }
    r.opt(
        "conversationId",
        c.conversation_id.as_ref().map(|v| json!(v)),
    );
    if o.selected.skills {
        r.opt("skills", c.skills.clone());
    }
    r.opt("dispositions", c.dispositions.as_ref().map(|v| json!(v)));
    r.opt(
        "dispositionRemarks",
        c.disposition_remarks.as_ref().map(|v| json!(v)),
    );
    r.opt("metaInfo", c.meta_info.clone());
    survey(&mut r);
    blocks(&mut r);
    let dest = if c.malformed == Some(Malformation::DestinationsNotArray) {
        Some(json!("none"))
    } else if c.conversation_id.is_some() {
        let d: Vec<Value> = c
            .destinations
            .iter()
            .enumerate()
            .map(|(i, d)| destination(&r, i, d))
            .collect();
        Some(Value::Array(d))
    } else {
        None
    };
    r.opt("destinations", dest);
    for (key, json) in SESSION_UNTYPED {
        r.put(key, serde_json::from_str(json).unwrap_or(Value::Null));
    }
    let mut m = std::mem::take(&mut r.m);
    r.unknown(&mut m, "session", &c.session_id);
    Value::Object(m)
}

/// The fields v1 records lack, with their casing and type variants.
fn v2_fields(r: &mut Rec<'_>) {
    let c = r.c;
    r.put("smartStatus", json!(c.smart_status));
    let reason_key = if c.conversation_id.is_some() && c.start.year() <= 2024 {
        "Reason"
    } else {
        "reason"
    };
    r.put(reason_key, json!(c.reason));
    r.put("errorDetails", json!(c.error_details));
    r.put("automationBotIDs", json!(c.automation_bot_ids));
    if let Some(d) = &c.direction {
        let key = if r.vary(V_DIRECTION_UPPER, 2) {
            "Direction"
        } else {
            "direction"
        };
        r.put(key, json!(d));
    }
    let vm = c
        .is_voicemail
        .map(|v| match (r.vary(V_VOICEMAIL_BOOL, 3), v) {
            (true, v) => json!(v),
            (false, true) => json!("YES"),
            (false, false) => json!("NO"),
        });
    r.opt("isVoicemail", vm);
}

fn survey(r: &mut Rec<'_>) {
    if r.c.malformed == Some(Malformation::BadCsatScore) {
        r.put("csatScore", json!("five"));
    }
    let Some(s) = &r.c.survey else {
        return;
    };
    r.put("surveyType", json!(s.survey_type));
    if r.c.malformed != Some(Malformation::BadCsatScore) {
        r.opt("csatScore", s.csat_score.map(|v| json!(v)));
    }
    r.opt("csatFeedback", s.csat_feedback.as_ref().map(|v| json!(v)));
    if let Some(v) = s.nps_score {
        r.put("npsScore", json!(v));
    }
    if let Some(v) = s.like_dislike_score {
        r.put("likeDislikeScore", json!(v));
    }
}

/// The `selectedFields` blocks: `customerinfo` (with v1's `Direction`), tags, `campaigninfo`.
fn blocks(r: &mut Rec<'_>) {
    let (c, o) = (r.c, r.o);
    if o.selected.customerinfo {
        let mut info = Map::new();
        if let Some(k) = &c.customer {
            info.insert("CustomerPhone".into(), json!(k.phone));
            info.insert("CenterPhone".into(), json!(k.center_phone));
            info.insert("CustomerFirstName".into(), json!(k.first_name));
            info.insert("CustomerLastName".into(), json!(k.last_name));
            info.insert("CustomerEmail".into(), json!(k.email));
        }
        if let (true, Some(d)) = (o.v1, &c.direction) {
            info.insert("Direction".into(), json!(d));
        }
        if !info.is_empty() {
            r.unknown(&mut info, "customerinfo", &c.session_id);
            r.put("customerinfo", Value::Object(info));
        }
    }
    if o.selected.userleveltags {
        r.opt("userleveltags", c.user_level_tags.clone());
    }
    if o.selected.sessionleveltags {
        r.opt("sessionleveltags", c.session_level_tags.clone());
    }
    if let (true, Some(k)) = (o.selected.campaigninfo, &c.campaign) {
        let mut m = Map::new();
        let mut opt = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(key.to_string(), json!(v));
            }
        };
        opt("campaignName", &k.name);
        opt("campaignId", &k.id);
        opt("campaignInstanceId", &k.instance_id);
        opt("campaignDialingListId", &k.dialing_list_id);
        m.insert(
            "attempt".into(),
            k.attempt.map_or_else(|| json!(""), |a| json!(a)),
        );
        m.insert("contactStatus".into(), json!(k.contact_status));
        if let Some(t) = k.run_date {
            m.insert("campaignRunDate".into(), json!(iso_ms(t)));
        }
        if let Some(l) = &k.contact_list_names {
            m.insert("contactListName".into(), json!(l));
        }
        r.unknown(&mut m, "campaigninfo", &c.session_id);
        r.put("campaigninfo", Value::Object(m));
    }
}

fn destination(r: &Rec<'_>, index: usize, d: &GeneratedDestination) -> Value {
    match d {
        GeneratedDestination::Agent(leg) => agent(r, leg),
        GeneratedDestination::Queue(q) => queue(r, index, q),
    }
}

fn queue(r: &Rec<'_>, index: usize, q: &GeneratedQueue) -> Value {
    let mut m = Map::new();
    m.insert("destinationType".into(), json!("QueueEntry"));
    m.insert("queueId".into(), json!(q.queue_id));
    if let Some(n) = &q.queue_name {
        m.insert("queueName".into(), json!(n));
    }
    if let Some(b) = q.callback_opted {
        m.insert("CallbackOpted".into(), json!(b));
    }
    if let Some(t) = q.callback_opted_time {
        m.insert("CallbackOptedTime".into(), json!(iso_ms(t)));
    }
    if let Some(t) = q.user_callback_accept_time {
        m.insert("userCallbackAcceptTime".into(), json!(iso_ms(t)));
    }
    if let Some(t) = q.enter_time {
        m.insert("EnterTime".into(), r.time(t));
    }
    if let Some(leg) = &q.responding {
        m.insert("respondingAgent".into(), agent(r, leg));
    }
    if !q.non_responding.is_empty() || r.vary(V_NULL_NOT_ABSENT, 2) {
        let others: Vec<Value> = q.non_responding.iter().map(|l| agent(r, l)).collect();
        m.insert("nonRespondingAgents".into(), Value::Array(others));
    }
    r.unknown(
        &mut m,
        "destination",
        &destination_ref(&r.c.session_id, index),
    );
    Value::Object(m)
}

fn agent(r: &Rec<'_>, leg: &GeneratedLeg) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("agentId", Some(json!(leg.agent_id)));
    put("agentNotes", Some(json!(leg.notes)));
    put("destinationType", Some(json!("AgentSegment")));
    put("status", leg.status.as_ref().map(|v| json!(v)));
    put("firstResponseTime", r.time_opt(leg.first_response_time));
    put(
        "firstResponseDuration",
        leg.first_response_seconds.map(|v| json!(v)),
    );
    put("interactionEndTime", r.time_opt(leg.interaction_end_time));
    put(
        "interactionDuration",
        leg.interaction_seconds.map(|v| json!(v)),
    );
    put(
        "afterCallWorkDuration",
        leg.after_call_work_seconds.map(|v| json!(v)),
    );
    put(
        "afterCallWorkEndTime",
        r.time_opt(leg.after_call_work_end_time),
    );
    if leg.status.is_some() {
        let consulting: Vec<Value> = leg
            .consulting
            .iter()
            .map(|c| {
                json!({"name": c.name, "acceptedTime": r.time(c.accepted_time),
                       "assignedAt": r.time(c.assigned_at),
                       "consultingEndTime": r.time(c.consulting_end_time)})
            })
            .collect();
        put("ConsultingAgents", Some(Value::Array(consulting)));
        for (key, json) in LEG_UNTYPED {
            put(key, serde_json::from_str(json).ok());
        }
    }
    put("email", Some(json!(leg.email)));
    put("name", Some(json!(leg.name)));
    put("acceptedTime", r.time_opt(leg.accepted_time));
    put("assignedAt", Some(r.time(leg.assigned_at)));
    put(
        "nonResponseEvent",
        leg.non_response_event.as_ref().map(|v| json!(v)),
    );
    r.unknown(&mut m, "agent", &leg_ref(&r.c.session_id, &leg.agent_id));
    Value::Object(m)
}
