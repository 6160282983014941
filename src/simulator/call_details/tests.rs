//! Generator and HTTP tests of the Call Details simulator: the shape of a generated day, the
//! documented segment walk, the caps and Kore-style errors, paths, headers and paging. The
//! end-to-end export through it is in `export_tests`, which shares [`token`] and [`sim`].

use std::collections::HashSet;

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::datasets::call_details::tests::utc;
use crate::simulator::{start, ModelSettings, RunningSimulator};

pub(super) fn token() -> String {
    let now = Utc::now().timestamp();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"appId": "cs-demo-client", "iat": now, "exp": now + 300}),
        &EncodingKey::from_secret(b"demo-simulator-secret"),
    )
    .expect("sign")
}

pub(super) async fn sim(
    call_details: CallDetailsSim,
    malformed_every: Option<u64>,
) -> RunningSimulator {
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
