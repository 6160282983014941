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
use crate::datasets::call_details::tests::{cols, utc};
use crate::datasets::call_details::{
    decode_page, fetch_day, request_body, request_query, CallBatches, CallDetailsApi,
    CallDetailsNormalizer, CallWindow, DayFetch, Density, RequestFilter,
};
use crate::simulator::{start, ModelSettings, RunningSimulator};
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
        models: ModelSettings::default().with(call_details),
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
        models: ModelSettings::default().with(CallDetailsSim {
            sessions_per_hour: 130,
            bursts: vec![CallBurst {
                start: utc("2026-06-01T10:00:00Z"),
                seconds: 60,
                sessions: 1200,
            }],
            ..CallDetailsSim::default()
        }),
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
    assert_eq!(st.count(ENDPOINT, 400), 7);
    assert_eq!(st.count(ENDPOINT, 200), 2);
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
            decode_page(&bytes, offset)
                .map(|p| p.into_owned())
                .map_err(FetchError::Decode)
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

fn json(text: &Option<String>) -> Option<Value> {
    text.as_deref()
        .map(|t| serde_json::from_str(t).expect("JSON text"))
}

/// The compared columns of one `call_details` row.
#[derive(Debug, PartialEq)]
struct DetailsRow {
    conversation_id: Option<String>,
    channel: Option<String>,
    times: (Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<i32>),
    statuses: (Option<String>, Option<String>, Option<String>),
    direction: Option<String>,
    is_voicemail: Option<bool>,
    lists: (Option<Vec<String>>, Option<Vec<String>>),
    json: (Option<Value>, Option<Value>, Option<Value>),
    survey: (Option<String>, Option<i64>, Option<i64>, Option<i64>),
    campaign: (Option<i64>, Option<String>, Option<DateTime<Utc>>),
    customer_phone: Option<String>,
    segment_count: Option<i32>,
}

fn details_rows(b: &CallBatches) -> HashMap<String, DetailsRow> {
    let d = &b.details;
    let (s, t, i, l) = (
        |n| cols::strs(d, n),
        |n| cols::times(d, n),
        |n| cols::ints(d, n),
        |n| cols::lists(d, n),
    );
    let (ids, conv, chan, start, end) = (
        s("session_id"),
        s("conversation_id"),
        s("channel"),
        t("session_start_time"),
        t("session_end_time"),
    );
    let (off, fin, smart, reason, dir) = (
        cols::int32s(d, "time_zone_offset"),
        s("final_status"),
        s("smart_status"),
        s("reason"),
        s("direction"),
    );
    let (vm, disp, bots, meta, skills, tags) = (
        cols::bools(d, "is_voicemail"),
        l("dispositions"),
        l("automation_bot_ids"),
        s("meta_info"),
        s("skills"),
        s("user_level_tags"),
    );
    let (stype, csat, nps, like) = (
        s("survey_type"),
        i("csat_score"),
        i("nps_score"),
        i("like_dislike_score"),
    );
    let (attempt, cstatus, run, phone, nseg) = (
        i("campaign_attempt"),
        s("campaign_contact_status"),
        t("campaign_run_date"),
        s("customer_phone"),
        cols::int32s(d, "segment_count"),
    );
    (0..d.num_rows())
        .map(|k| {
            let row = DetailsRow {
                conversation_id: conv[k].clone(),
                channel: chan[k].clone(),
                times: (start[k], end[k], off[k]),
                statuses: (fin[k].clone(), smart[k].clone(), reason[k].clone()),
                direction: dir[k].clone(),
                is_voicemail: vm[k],
                lists: (disp[k].clone(), bots[k].clone()),
                json: (json(&meta[k]), json(&skills[k]), json(&tags[k])),
                survey: (stype[k].clone(), csat[k], nps[k], like[k]),
                campaign: (attempt[k], cstatus[k].clone(), run[k]),
                customer_phone: phone[k].clone(),
                segment_count: nseg[k],
            };
            (ids[k].clone().expect("session id"), row)
        })
        .collect()
}

fn expected_details(c: &GeneratedCall, offset: i32) -> DetailsRow {
    let sv = c.survey.as_ref();
    let k = c.campaign.as_ref();
    DetailsRow {
        conversation_id: c.conversation_id.clone(),
        channel: Some(c.channel.clone()),
        times: (Some(c.start), Some(c.end), Some(offset)),
        statuses: (
            Some(c.final_status.clone()),
            Some(c.smart_status.clone()),
            Some(c.reason.clone()),
        ),
        direction: c.direction.clone(),
        is_voicemail: c.is_voicemail,
        lists: (c.dispositions.clone(), Some(c.automation_bot_ids.clone())),
        json: (
            c.meta_info.clone(),
            c.skills.clone(),
            c.user_level_tags.clone(),
        ),
        survey: (
            sv.map(|s| s.survey_type.clone()),
            sv.and_then(|s| s.csat_score),
            sv.and_then(|s| s.nps_score),
            sv.and_then(|s| s.like_dislike_score),
        ),
        campaign: (
            k.and_then(|k| k.attempt),
            k.map(|k| k.contact_status.clone()),
            k.and_then(|k| k.run_date),
        ),
        customer_phone: c.customer.as_ref().map(|k| k.phone.clone()),
        segment_count: Some(segments(c).len() as i32),
    }
}

/// Every `call_details` row equals its generated session; sessions are the expected set.
fn check_details(
    b: &CallBatches,
    truth: &[&GeneratedCall],
    offset_at: impl Fn(DateTime<Utc>) -> i32,
) {
    let rows = details_rows(b);
    assert_eq!(rows.len(), truth.len());
    assert_eq!(b.details.num_rows(), truth.len());
    for c in truth {
        let got = rows
            .get(&c.session_id)
            .unwrap_or_else(|| panic!("{} missing", c.session_id));
        assert_eq!(
            got,
            &expected_details(c, offset_at(c.start)),
            "{}",
            c.session_id
        );
    }
}

/// The compared columns of one `call_segments` row.
#[derive(Debug, PartialEq)]
struct SegmentRow {
    destination_type: Option<String>,
    queue: (Option<String>, Option<String>, Option<DateTime<Utc>>),
    callback: (Option<bool>, Option<DateTime<Utc>>),
    agent_id: Option<String>,
    responding: Option<bool>,
    status: (Option<String>, Option<String>),
    times: [Option<DateTime<Utc>>; 3],
    seconds: (Option<i64>, Option<i64>, Option<i64>),
    notes: Option<Vec<String>>,
    consulting_names: Vec<String>,
}

fn segment_rows(b: &CallBatches) -> HashMap<(String, i32), SegmentRow> {
    let g = &b.segments;
    let (s, t, i) = (
        |n| cols::strs(g, n),
        |n| cols::times(g, n),
        |n| cols::ints(g, n),
    );
    let (sid, idx, kind, qid, qname, enter) = (
        s("session_id"),
        cols::int32s(g, "segment_index"),
        s("destination_type"),
        s("queue_id"),
        s("queue_name"),
        t("enter_time"),
    );
    let (cb, cbt, agent, resp, status, nre) = (
        cols::bools(g, "callback_opted"),
        t("callback_opted_time"),
        s("agent_id"),
        cols::bools(g, "responding"),
        s("status"),
        s("non_response_event"),
    );
    let (assigned, accepted, acw_end, frs, is, acw) = (
        t("assigned_at"),
        t("accepted_time"),
        t("after_call_work_end_time"),
        i("first_response_seconds"),
        i("interaction_seconds"),
        i("after_call_work_seconds"),
    );
    let (notes, consult) = (cols::lists(g, "agent_notes"), s("consulting_agents"));
    (0..g.num_rows())
        .map(|k| {
            let names = json(&consult[k]).map_or_else(Vec::new, |v| {
                let list = v.as_array().cloned().unwrap_or_default();
                list.iter()
                    .map(|c| c["name"].as_str().unwrap_or("").to_string())
                    .collect()
            });
            let row = SegmentRow {
                destination_type: kind[k].clone(),
                queue: (qid[k].clone(), qname[k].clone(), enter[k]),
                callback: (cb[k], cbt[k]),
                agent_id: agent[k].clone(),
                responding: resp[k],
                status: (status[k].clone(), nre[k].clone()),
                times: [assigned[k], accepted[k], acw_end[k]],
                seconds: (frs[k], is[k], acw[k]),
                notes: notes[k].clone(),
                consulting_names: names,
            };
            ((sid[k].clone().expect("id"), idx[k].expect("index")), row)
        })
        .collect()
}

fn expected_segment(s: &GeneratedSegment) -> SegmentRow {
    let q = s.queue.as_ref();
    let l = s.leg.as_ref();
    SegmentRow {
        destination_type: Some(s.destination_type.to_string()),
        queue: (
            q.map(|q| q.queue_id.clone()),
            q.and_then(|q| q.queue_name.clone()),
            q.and_then(|q| q.enter_time),
        ),
        callback: (
            q.and_then(|q| q.callback_opted),
            q.and_then(|q| q.callback_opted_time),
        ),
        agent_id: l.map(|l| l.agent_id.clone()),
        responding: s.responding,
        status: (
            l.and_then(|l| l.status.clone()),
            l.and_then(|l| l.non_response_event.clone()),
        ),
        times: [
            l.map(|l| l.assigned_at),
            l.and_then(|l| l.accepted_time),
            l.and_then(|l| l.after_call_work_end_time),
        ],
        seconds: (
            l.and_then(|l| l.first_response_seconds),
            l.and_then(|l| l.interaction_seconds),
            l.and_then(|l| l.after_call_work_seconds),
        ),
        notes: l.map(|l| l.notes.clone()),
        consulting_names: l.map_or_else(Vec::new, |l| {
            l.consulting.iter().map(|c| c.name.clone()).collect()
        }),
    }
}

/// Every `call_segments` row equals its generated leg.
fn check_segments(b: &CallBatches, truth: &[&GeneratedCall]) {
    let rows = segment_rows(b);
    let mut expected = 0;
    for c in truth {
        for s in segments(c) {
            expected += 1;
            let key = (c.session_id.clone(), s.index as i32);
            let got = rows.get(&key).unwrap_or_else(|| panic!("{key:?} missing"));
            assert_eq!(got, &expected_segment(&s), "{key:?}");
        }
    }
    assert_eq!((rows.len(), b.segments.num_rows()), (expected, expected));
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
    assert_eq!(st.count(ENDPOINT, 400), 0, "a request broke a cap");
    assert_eq!(st.requests(ENDPOINT), first.fetch.stats.requests);

    let next = export_day(&s, tz, day, Some(&first.fetch.density)).await;
    check_details(&next.batches, &good, offset_at);
    check_rejects(&next.rejects, &hostile);
    assert_eq!(s.stats().count(ENDPOINT, 400), 0);
    for (run, f) in [("first", &first.fetch.stats), ("next", &next.fetch.stats)] {
        println!(
            "numResults {num_results:?}, {run} run: {} sessions, {} rejects, {} requests, minimum for its \
             {} windows {}, lower bound {} ({:.2}×), {} overflows, {} early splits",
            f.sessions,
            f.rejects,
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
