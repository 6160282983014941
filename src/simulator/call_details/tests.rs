//! Generator and HTTP tests of the Call Details simulator, and the end-to-end export of busy
//! and DST days through it: every exported row is compared with the generator's ground truth,
//! never with what the decoder produced.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::simulator::{start, RunningSimulator, SimEndpoint};
use crate::sources::call_details::tests::{cols, utc};
use crate::sources::call_details::{
    decode_page, fetch_day, request_body, request_query, CallBatches, CallDetailsApi,
    CallDetailsNormalizer, CallWindow, DayFetch, Density, RequestFilter,
};
use crate::sources::window::{local_day_bounds, plan_day};
use crate::sources::Reject;

fn token() -> String {
    let now = Utc::now().timestamp();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"appId": "cs-demo-client", "iat": now, "exp": now + 300}),
        &EncodingKey::from_secret(b"demo-simulator-secret"),
    )
    .expect("sign")
}

async fn sim(call_details: CallDetailsSim, malformed_every: Option<u64>) -> RunningSimulator {
    let cfg = SimulatorConfig {
        call_details,
        malformed_every,
        ..SimulatorConfig::default()
    };
    start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts")
}

struct Resp {
    status: u16,
    body: String,
}

async fn post(s: &RunningSimulator, path: &str, query: &str, body: &Value) -> Resp {
    let r = reqwest::Client::new()
        .post(format!("{}{path}?{query}", s.base_url()))
        .header("auth", token())
        .header("IId", "st-demo-stream")
        .header("accountId", "demo-account")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    Resp {
        status: r.status().as_u16(),
        body: r.text().await.expect("body"),
    }
}

const V2: &str = "/agentassist/api/public/analytics/account/demo-account/v2/interactionDetails";
const V1: &str = "/agentassist/api/public/analytics/account/demo-account/calldetails";

#[test]
fn density_and_bursts_shape_the_generated_day() {
    let cfg = SimulatorConfig {
        call_details: CallDetailsSim {
            sessions_per_hour: 130,
            bursts: vec![CallBurst {
                start: utc("2026-06-01T10:00:00Z"),
                seconds: 60,
                sessions: 1200,
            }],
            ..CallDetailsSim::default()
        },
        ..SimulatorConfig::default()
    };
    let day = utc("2026-06-01T00:00:00Z")..utc("2026-06-02T00:00:00Z");
    let calls = calls_in(&cfg, day.clone());
    let base = calls.len() - 1200;
    assert!(
        (130 * 24 * 8 / 10..=130 * 24 * 12 / 10).contains(&base),
        "{base}"
    );
    assert!(calls
        .windows(2)
        .all(|w| (w[0].start, &w[0].session_id) < (w[1].start, &w[1].session_id)));
    assert!(calls
        .iter()
        .all(|c| day.contains(&c.start) && c.end > c.start));
    let ids: HashSet<&str> = calls.iter().map(|c| c.session_id.as_str()).collect();
    assert_eq!(ids.len(), calls.len());
    assert!(calls
        .iter()
        .all(|c| c.session_id.len() == 24 && c.session_id.bytes().all(|b| b.is_ascii_hexdigit())));
    let in_burst = calls
        .iter()
        .filter(|c| matches!(c.key, SessionKey::Burst { .. }))
        .filter(|c| (utc("2026-06-01T10:00:00Z")..utc("2026-06-01T10:01:00Z")).contains(&c.start))
        .count();
    assert_eq!(in_burst, 1200);
    assert_eq!(calls, calls_in(&cfg, day), "deterministic");
    // Every documented shape occurs in a day.
    let routed: Vec<_> = calls
        .iter()
        .filter(|c| c.conversation_id.is_some())
        .collect();
    assert!(routed.len() > calls.len() / 3 && routed.len() < calls.len());
    let queues = || {
        routed
            .iter()
            .flat_map(|c| &c.destinations)
            .filter_map(|d| match d {
                GeneratedDestination::Queue(q) => Some(q),
                GeneratedDestination::Agent(_) => None,
            })
    };
    assert!(queues().any(|q| q.responding.is_none() && q.non_responding.is_empty()));
    assert!(queues().any(|q| !q.non_responding.is_empty()));
    assert!(queues().any(|q| q.queue_name.is_none() && q.enter_time.is_none()));
    assert!(queues().any(|q| q.callback_opted == Some(true)));
    assert!(routed
        .iter()
        .any(|c| matches!(c.destinations.last(), Some(GeneratedDestination::Agent(_)))));
    assert!(routed
        .iter()
        .any(|c| c.campaign.as_ref().is_some_and(|k| k.attempt.is_none())));
    assert!(routed
        .iter()
        .any(|c| c.campaign.as_ref().is_some_and(|k| k.attempt.is_some())));
    assert!(calls.iter().any(|c| c.is_voicemail.is_some()));
}

#[test]
fn segments_follow_the_documented_walk() {
    let leg = |id: &str| GeneratedLeg {
        agent_id: id.into(),
        email: String::new(),
        name: String::new(),
        status: None,
        non_response_event: None,
        assigned_at: utc("2026-01-01T00:00:00Z"),
        accepted_time: None,
        first_response_time: None,
        first_response_seconds: None,
        interaction_end_time: None,
        interaction_seconds: None,
        after_call_work_end_time: None,
        after_call_work_seconds: None,
        notes: vec![],
        consulting: vec![],
    };
    let queue = |id: &str, responding: Option<GeneratedLeg>, others: Vec<GeneratedLeg>| {
        GeneratedDestination::Queue(GeneratedQueue {
            queue_id: id.into(),
            queue_name: None,
            enter_time: None,
            callback_opted: None,
            callback_opted_time: None,
            user_callback_accept_time: None,
            responding,
            non_responding: others,
        })
    };
    let mut call = calls_in(
        &SimulatorConfig::default(),
        utc("2026-01-01T00:00:00Z")..utc("2026-01-02T00:00:00Z"),
    )
    .remove(0);
    call.destinations = vec![
        queue("q1", Some(leg("a")), vec![leg("b"), leg("c")]),
        GeneratedDestination::Agent(leg("d")),
        queue("q2", None, vec![]),
        queue("q3", None, vec![leg("e")]),
    ];
    let got: Vec<_> = segments(&call)
        .into_iter()
        .map(|s| {
            (
                s.index,
                s.destination_type,
                s.queue.map(|q| q.queue_id),
                s.leg.map(|l| l.agent_id),
                s.responding,
            )
        })
        .collect();
    let q = |s: &str| Some(s.to_string());
    assert_eq!(
        got,
        vec![
            (0, "QueueEntry", q("q1"), q("a"), Some(true)),
            (1, "QueueEntry", q("q1"), q("b"), Some(false)),
            (2, "QueueEntry", q("q1"), q("c"), Some(false)),
            (3, "AgentSegment", None, q("d"), Some(true)),
            (4, "QueueEntry", q("q2"), None, None),
            (5, "QueueEntry", q("q3"), q("e"), Some(false)),
        ]
    );
}

fn body(start: &str, end: &str, offset: i64) -> Value {
    json!({"startDate": start, "endDate": end, "timeZoneOffset": offset,
           "channels": [], "queues": []})
}

#[tokio::test]
async fn the_caps_are_enforced_with_kore_style_errors() {
    let s = sim(CallDetailsSim::default(), None).await;
    let ok = body("2026-02-23", "2026-03-01", -330);
    for (query, b, msg) in [
        (
            "limit=101&offset=0",
            ok.clone(),
            "limit must not be greater than 100",
        ),
        (
            "limit=100&offset=11",
            ok.clone(),
            "offset must not be greater than 10",
        ),
        (
            "limit=100&offset=0",
            body("2026-02-23", "2026-03-02", -330),
            "date range must not exceed 7 days",
        ),
        (
            "limit=100&offset=0",
            body("2026-02-23 00:00:00", "2026-03-02 00:00:01", 0),
            "date range must not exceed 7 days",
        ),
        (
            "limit=100&offset=0",
            body("2026-02-23", "2026-02-22", 0),
            "endDate must not be before startDate",
        ),
        (
            "limit=100&offset=0",
            body("23/02/2026", "2026-02-24", 0),
            "startDate must be",
        ),
        (
            "limit=100&offset=0",
            json!({"startDate": "2026-02-23", "endDate": "2026-02-23"}),
            "timeZoneOffset is required",
        ),
    ] {
        let r = post(&s, V2, query, &b).await;
        assert_eq!(r.status, 400, "{query} {b}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(v["errors"][0]["code"], 400);
        assert!(
            v["errors"][0]["msg"]
                .as_str()
                .expect("msg")
                .starts_with(msg),
            "{}",
            r.body
        );
    }
    // 7 whole days (bare dates) and exactly 7 days of times are within the cap.
    assert_eq!(post(&s, V2, "limit=100&offset=10", &ok).await.status, 200);
    let seven = body("2026-02-23 00:00:00", "2026-03-02 00:00:00", 0);
    assert_eq!(post(&s, V2, "limit=100&offset=0", &seven).await.status, 200);
    let st = s.stats();
    assert_eq!(st.count(SimEndpoint::CallDetails, 400), 7);
    assert_eq!(st.count(SimEndpoint::CallDetails, 200), 2);
    s.shutdown().await;
}

#[tokio::test]
async fn paths_headers_and_methods() {
    let s = sim(CallDetailsSim::default(), None).await;
    let b = body("2026-02-23", "2026-02-23", 0);
    for path in [
        V1,
        V2,
        "/agentassist/api/public/analytics/account/demo-account/v2/calldetails",
        "/agentassist/api/public/analytics/account/demo-account/callDetails",
    ] {
        assert_eq!(post(&s, path, "limit=5", &b).await.status, 200, "{path}");
    }
    let other = "/agentassist/api/public/analytics/account/other/calldetails";
    assert_eq!(post(&s, other, "", &b).await.status, 403);
    let client = reqwest::Client::new();
    let url = format!("{}{V2}", s.base_url());
    let get = client
        .get(&url)
        .header("auth", token())
        .send()
        .await
        .expect("get");
    assert_eq!(get.status().as_u16(), 405);
    let no_iid = client
        .post(&url)
        .header("auth", token())
        .header("accountId", "demo-account")
        .body(b.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(no_iid.status().as_u16(), 400);
    let no_auth = client
        .post(&url)
        .body(b.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(no_auth.status().as_u16(), 401);
    s.shutdown().await;
}

#[tokio::test]
async fn offset_counts_pages_and_times_are_local_at_the_request_offset() {
    let s = sim(
        CallDetailsSim {
            sessions_per_hour: 60,
            ..CallDetailsSim::default()
        },
        None,
    )
    .await;
    let cfg = s.config().clone();
    // The local day 2026-02-23 at IST is [2026-02-22T18:30Z, 2026-02-23T18:30Z].
    let truth = calls_in(
        &cfg,
        utc("2026-02-22T18:30:00Z")..utc("2026-02-23T18:30:01Z"),
    );
    let r = post(
        &s,
        V2,
        "limit=10&offset=3",
        &body("2026-02-23", "2026-02-24 00:00:00", -330),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(v["numResults"], json!(truth.len()));
    let data = v["data"].as_array().expect("data");
    let want: Vec<&str> = truth[30..40]
        .iter()
        .map(|c| c.session_id.as_str())
        .collect();
    let got: Vec<&str> = data
        .iter()
        .map(|d| d["sessionId"].as_str().expect("id"))
        .collect();
    assert_eq!(got, want);
    let local = (truth[30].start + Duration::minutes(330))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    assert_eq!(data[0]["sessionStartTime"], json!(local));
    s.shutdown().await;
}

#[tokio::test]
async fn v1_and_num_results_variants() {
    for (mode, expect) in [(NumResults::PageCount, Some(7)), (NumResults::Absent, None)] {
        let s = sim(
            CallDetailsSim {
                sessions_per_hour: 60,
                num_results: mode,
                ..CallDetailsSim::default()
            },
            None,
        )
        .await;
        let mut b = body("2026-02-23", "2026-02-23", 0);
        b["selectedFields"] = json!(["customerinfo"]);
        let r = post(&s, V1, "limit=7", &b).await;
        let v: Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(v.get("numResults").and_then(Value::as_u64), expect);
        for rec in v["data"].as_array().expect("data") {
            for absent in [
                "smartStatus",
                "reason",
                "Reason",
                "errorDetails",
                "isVoicemail",
                "automationBotIDs",
                "Direction",
                "direction",
                "campaigninfo",
                "skills",
            ] {
                assert!(rec.get(absent).is_none(), "v1 record has {absent}: {rec}");
            }
            if rec.get("conversationId").is_some_and(|c| !c.is_null()) {
                assert!(rec["customerinfo"]["Direction"].is_string(), "{rec}");
            }
        }
        s.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// End to end: fetch_day through HTTP, normalize, compare with the generator.
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum FetchError {
    Http(reqwest::Error),
    Status(u16, String),
    Decode(crate::sources::DecodeError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Http(e) => write!(f, "{e}"),
            FetchError::Status(s, b) => write!(f, "HTTP {s}: {b}"),
            FetchError::Decode(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FetchError {}

struct Export {
    batches: CallBatches,
    rejects: Vec<Reject>,
    fetch: DayFetch,
}

async fn export_day(
    s: &RunningSimulator,
    tz: Tz,
    day: NaiveDate,
    expected: Option<&Density>,
) -> Export {
    let client = reqwest::Client::new();
    let segments = plan_day(tz, day);
    let url = format!(
        "{}{}",
        s.base_url(),
        CallDetailsApi::default().path("demo-account")
    );
    let fetch = |w: &CallWindow, page: u32| {
        let mut u = url::Url::parse(&url).expect("url");
        for (k, v) in request_query(100, page) {
            u.query_pairs_mut().append_pair(k, &v);
        }
        let body = request_body(w, &RequestFilter::default(), CallDetailsApi::default());
        let req = client
            .post(u)
            .header("auth", token())
            .header("IId", "st-demo-stream")
            .header("accountId", "demo-account")
            .header("content-type", "application/json")
            .body(body.to_string());
        let offset = w.offset_minutes;
        async move {
            let resp = req.send().await.map_err(FetchError::Http)?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(FetchError::Http)?;
            if status != 200 {
                return Err(FetchError::Status(
                    status,
                    String::from_utf8_lossy(&bytes).into(),
                ));
            }
            decode_page(&bytes, offset).map_err(FetchError::Decode)
        }
    };
    let fetched = fetch_day(&segments, expected, 100, fetch)
        .await
        .expect("day fetched");
    let mut n = CallDetailsNormalizer::new("demo-account", utc("2026-01-01T00:00:00Z"));
    let claim = local_day_bounds(tz, day);
    for r in &fetched.records {
        assert!(n.push(r, &claim), "{} outside the day", r.session_id);
    }
    for r in &fetched.rejects {
        n.push_reject(r.clone());
    }
    let (batches, rejects) = n.finish();
    Export {
        batches,
        rejects,
        fetch: fetched,
    }
}

fn json_eq(text: &Option<String>, want: &Option<Value>) -> bool {
    let got: Option<Value> = text
        .as_deref()
        .map(|t| serde_json::from_str(t).expect("JSON text"));
    &got == want
}

/// Every `call_details` row equals its generated session; sessions are the expected set.
fn check_details(
    b: &CallBatches,
    truth: &[&GeneratedCall],
    offset_at: impl Fn(DateTime<Utc>) -> i32,
) {
    let d = &b.details;
    let ids = cols::strs(d, "session_id");
    assert_eq!(d.num_rows(), truth.len());
    let row: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_deref().expect("id"), i))
        .collect();
    let (conv, chan, start, end, off) = (
        cols::strs(d, "conversation_id"),
        cols::strs(d, "channel"),
        cols::times(d, "session_start_time"),
        cols::times(d, "session_end_time"),
        cols::int32s(d, "time_zone_offset"),
    );
    let (reason, smart, dir, vm) = (
        cols::strs(d, "reason"),
        cols::strs(d, "smart_status"),
        cols::strs(d, "direction"),
        cols::bools(d, "is_voicemail"),
    );
    let (disp, bots, meta, skills) = (
        cols::lists(d, "dispositions"),
        cols::lists(d, "automation_bot_ids"),
        cols::strs(d, "meta_info"),
        cols::strs(d, "skills"),
    );
    let (stype, csat, nps, like) = (
        cols::strs(d, "survey_type"),
        cols::ints(d, "csat_score"),
        cols::ints(d, "nps_score"),
        cols::ints(d, "like_dislike_score"),
    );
    let (attempt, cstatus, run, phone, utags, nseg) = (
        cols::ints(d, "campaign_attempt"),
        cols::strs(d, "campaign_contact_status"),
        cols::times(d, "campaign_run_date"),
        cols::strs(d, "customer_phone"),
        cols::strs(d, "user_level_tags"),
        cols::int32s(d, "segment_count"),
    );
    for c in truth {
        let i = *row
            .get(c.session_id.as_str())
            .unwrap_or_else(|| panic!("{} missing", c.session_id));
        let id = &c.session_id;
        assert_eq!(conv[i], c.conversation_id, "{id}");
        assert_eq!(chan[i].as_deref(), Some(c.channel.as_str()), "{id}");
        assert_eq!((start[i], end[i]), (Some(c.start), Some(c.end)), "{id}");
        assert_eq!(off[i], Some(offset_at(c.start)), "{id}");
        assert_eq!(reason[i].as_deref(), Some(c.reason.as_str()), "{id}");
        assert_eq!(smart[i].as_deref(), Some(c.smart_status.as_str()), "{id}");
        assert_eq!(dir[i], c.direction, "{id}");
        assert_eq!(vm[i], c.is_voicemail, "{id}");
        assert_eq!(disp[i], c.dispositions, "{id}");
        assert_eq!(bots[i].as_ref(), Some(&c.automation_bot_ids), "{id}");
        assert!(json_eq(&meta[i], &c.meta_info), "{id}: {:?}", meta[i]);
        assert!(json_eq(&skills[i], &c.skills), "{id}");
        assert!(json_eq(&utags[i], &c.user_level_tags), "{id}");
        let sv = c.survey.as_ref();
        assert_eq!(stype[i], sv.map(|s| s.survey_type.clone()), "{id}");
        assert_eq!(
            (csat[i], nps[i], like[i]),
            (
                sv.and_then(|s| s.csat_score),
                sv.and_then(|s| s.nps_score),
                sv.and_then(|s| s.like_dislike_score)
            ),
            "{id}"
        );
        let k = c.campaign.as_ref();
        assert_eq!(
            (attempt[i], cstatus[i].clone(), run[i]),
            (
                k.and_then(|k| k.attempt),
                k.map(|k| k.contact_status.clone()),
                k.and_then(|k| k.run_date)
            ),
            "{id}"
        );
        assert_eq!(
            phone[i],
            c.customer.as_ref().map(|k| k.phone.clone()),
            "{id}"
        );
        assert_eq!(nseg[i], Some(segments(c).len() as i32), "{id}");
    }
}

/// Every `call_segments` row equals its generated leg.
fn check_segments(b: &CallBatches, truth: &[&GeneratedCall]) {
    let g = &b.segments;
    let expected: Vec<(String, GeneratedSegment)> = truth
        .iter()
        .flat_map(|c| segments(c).into_iter().map(|s| (c.session_id.clone(), s)))
        .collect();
    assert_eq!(g.num_rows(), expected.len());
    let (sid, idx, kind, qid, qname, enter) = (
        cols::strs(g, "session_id"),
        cols::int32s(g, "segment_index"),
        cols::strs(g, "destination_type"),
        cols::strs(g, "queue_id"),
        cols::strs(g, "queue_name"),
        cols::times(g, "enter_time"),
    );
    let (cb, cbt, agent, resp, status, nre) = (
        cols::bools(g, "callback_opted"),
        cols::times(g, "callback_opted_time"),
        cols::strs(g, "agent_id"),
        cols::bools(g, "responding"),
        cols::strs(g, "status"),
        cols::strs(g, "non_response_event"),
    );
    let (assigned, accepted, frs, is, acw, acw_end, notes, consult) = (
        cols::times(g, "assigned_at"),
        cols::times(g, "accepted_time"),
        cols::ints(g, "first_response_seconds"),
        cols::ints(g, "interaction_seconds"),
        cols::ints(g, "after_call_work_seconds"),
        cols::times(g, "after_call_work_end_time"),
        cols::lists(g, "agent_notes"),
        cols::strs(g, "consulting_agents"),
    );
    let row: HashMap<(String, i32), usize> = (0..g.num_rows())
        .map(|i| ((sid[i].clone().expect("id"), idx[i].expect("index")), i))
        .collect();
    for (session, s) in &expected {
        let i = row[&(session.clone(), s.index as i32)];
        let ctx = format!("{session}#{}", s.index);
        let q = s.queue.as_ref();
        assert_eq!(kind[i].as_deref(), Some(s.destination_type), "{ctx}");
        assert_eq!(
            (qid[i].clone(), qname[i].clone()),
            (
                q.map(|q| q.queue_id.clone()),
                q.and_then(|q| q.queue_name.clone())
            ),
            "{ctx}"
        );
        assert_eq!(
            (enter[i], cb[i], cbt[i]),
            (
                q.and_then(|q| q.enter_time),
                q.and_then(|q| q.callback_opted),
                q.and_then(|q| q.callback_opted_time)
            ),
            "{ctx}"
        );
        assert_eq!(resp[i], s.responding, "{ctx}");
        let l = s.leg.as_ref();
        assert_eq!(agent[i], l.map(|l| l.agent_id.clone()), "{ctx}");
        assert_eq!(
            (status[i].clone(), nre[i].clone()),
            (
                l.and_then(|l| l.status.clone()),
                l.and_then(|l| l.non_response_event.clone())
            ),
            "{ctx}"
        );
        assert_eq!(
            (assigned[i], accepted[i]),
            (l.map(|l| l.assigned_at), l.and_then(|l| l.accepted_time)),
            "{ctx}"
        );
        assert_eq!(
            (frs[i], is[i], acw[i]),
            (
                l.and_then(|l| l.first_response_seconds),
                l.and_then(|l| l.interaction_seconds),
                l.and_then(|l| l.after_call_work_seconds)
            ),
            "{ctx}"
        );
        assert_eq!(
            acw_end[i],
            l.and_then(|l| l.after_call_work_end_time),
            "{ctx}"
        );
        assert_eq!(notes[i], l.map(|l| l.notes.clone()), "{ctx}");
        let names: Vec<String> = consult[i]
            .as_deref()
            .map(|t| {
                let v: Value = serde_json::from_str(t).expect("json");
                v.as_array()
                    .expect("array")
                    .iter()
                    .map(|c| c["name"].as_str().expect("name").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<String> = l
            .map(|l| l.consulting.iter().map(|c| c.0.clone()).collect())
            .unwrap_or_default();
        assert_eq!(names, want, "{ctx}");
    }
}

/// The rejects are exactly the hostile sessions of the day, each with its raw JSON.
fn check_rejects(rejects: &[Reject], hostile: &[&GeneratedCall]) {
    assert_eq!(rejects.len(), hostile.len(), "{rejects:?}");
    for c in hostile {
        assert!(
            rejects.iter().any(|r| r.raw_json.contains(&c.session_id)),
            "{} not rejected",
            c.session_id
        );
    }
}

fn truth_of(cfg: &SimulatorConfig, tz: Tz, day: NaiveDate) -> Vec<GeneratedCall> {
    calls_in(cfg, local_day_bounds(tz, day))
}

/// A 25 h day of over 3,000 sessions with a busy hour and hostile records, exported twice:
/// first with nothing known, then planned from the first run's profile.
async fn busy_fall_back_day(num_results: NumResults) {
    let tz = Tz::America__New_York;
    let day = NaiveDate::from_ymd_opt(2024, 11, 3).expect("date");
    let sim_cfg = CallDetailsSim {
        sessions_per_hour: 110,
        bursts: vec![CallBurst {
            start: utc("2024-11-03T15:00:00Z"),
            seconds: 3600,
            sessions: 500,
        }],
        num_results,
        ..CallDetailsSim::default()
    };
    let s = sim(sim_cfg, Some(97)).await;
    let truth = truth_of(s.config(), tz, day);
    assert!(truth.len() > 3000, "{}", truth.len());
    let (good, hostile): (Vec<&GeneratedCall>, Vec<&GeneratedCall>) =
        truth.iter().partition(|c| c.malformed.is_none());
    assert!(!hostile.is_empty());
    // The first 24 h are served at EDT (240), the repeated hour at EST (300).
    let offset_at = |t: DateTime<Utc>| {
        if t < utc("2024-11-04T04:00:00Z") {
            240
        } else {
            300
        }
    };

    let first = export_day(&s, tz, day, None).await;
    check_details(&first.batches, &good, offset_at);
    check_segments(&first.batches, &good);
    check_rejects(&first.rejects, &hostile);
    let st = s.stats();
    assert_eq!(
        st.count(SimEndpoint::CallDetails, 400),
        0,
        "a request broke a cap"
    );
    assert_eq!(
        st.requests(SimEndpoint::CallDetails),
        first.fetch.stats.requests
    );

    let next = export_day(&s, tz, day, Some(&first.fetch.density)).await;
    check_details(&next.batches, &good, offset_at);
    check_rejects(&next.rejects, &hostile);
    assert_eq!(s.stats().count(SimEndpoint::CallDetails, 400), 0);
    for (run, f) in [("first", &first.fetch.stats), ("next", &next.fetch.stats)] {
        println!(
            "numResults {num_results:?}, {run} run: {} sessions, {} requests, minimum for its \
             {} windows {}, lower bound {} ({:.2}×), {} overflows, {} early splits",
            f.sessions,
            f.requests,
            f.windows,
            f.minimum_requests(),
            f.lower_bound_requests(),
            f.ratio(),
            f.overflows,
            f.early_splits
        );
    }
    let (f, n) = (&first.fetch.stats, &next.fetch.stats);
    assert!(n.ratio() <= 1.15, "{n:?}");
    if num_results == NumResults::WindowTotal {
        let limit = 1.15 * f.lower_bound_requests() as f64 + 11.0;
        assert!(f.requests as f64 <= limit, "{f:?}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_busy_fall_back_day_is_exported_completely_within_the_caps() {
    busy_fall_back_day(NumResults::WindowTotal).await;
}

#[tokio::test]
async fn a_busy_day_is_exported_completely_without_num_results() {
    busy_fall_back_day(NumResults::Absent).await;
}

#[tokio::test]
async fn a_spring_forward_day_exports_exactly_its_23_hours() {
    let tz = Tz::America__New_York;
    let day = NaiveDate::from_ymd_opt(2024, 3, 10).expect("date");
    let s = sim(
        CallDetailsSim {
            sessions_per_hour: 20,
            ..CallDetailsSim::default()
        },
        None,
    )
    .await;
    let truth = truth_of(s.config(), tz, day);
    let all: Vec<&GeneratedCall> = truth.iter().collect();
    let out = export_day(&s, tz, day, None).await;
    check_details(&out.batches, &all, |_| 300);
    check_segments(&out.batches, &all);
    assert!(out.rejects.is_empty());
    // Sessions just outside the day exist and were not exported.
    let cfg = s.config();
    assert!(!calls_in(
        cfg,
        utc("2024-03-10T04:00:00Z")..utc("2024-03-10T05:00:00Z")
    )
    .is_empty());
    assert!(!calls_in(
        cfg,
        utc("2024-03-11T04:00:00Z")..utc("2024-03-11T05:00:00Z")
    )
    .is_empty());
    s.shutdown().await;
}
