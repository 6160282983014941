//! Tests of the Agent Status Details model: properties of the generator, the rendered JSON
//! against the generator, and the HTTP handler's caps, headers and date-filter variants. The
//! dataset's export from this model is tested in `tests/agent_status_details.rs` and the
//! compliance suite (`tests/compliance/`).

use std::collections::HashSet;

use chrono::Duration as TimeSpan;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::simulator::generator;
use crate::simulator::{start, RunningSimulator, SimulatorConfig};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

#[test]
fn spans_are_ordered_disjoint_and_never_start_after_now() {
    let range = utc("2024-05-01T00:00:00Z")..utc("2024-05-08T00:00:00Z");
    let now = utc("2024-05-06T12:00:00Z");
    for idx in 0..40 {
        let spans = agent_spans(42, idx, range.clone(), now, None);
        assert_eq!(spans, agent_spans(42, idx, range.clone(), now, None));
        for pair in spans.windows(2) {
            let end = pair[0].end.expect("only the last span can be open");
            assert!(pair[0].start < end && end <= pair[1].start, "{pair:?}");
        }
        for s in &spans {
            assert!(s.start <= now && s.start < range.end, "{s:?}");
            assert!(s.end.is_none_or(|e| e > range.start && e <= now), "{s:?}");
            assert!(s.malformed.is_none());
        }
        if let Some(last) = spans.last() {
            if last.end.is_none() {
                assert!(last.start <= now);
            }
        }
    }
}

#[test]
fn long_open_midnight_crossing_spans_and_inactive_agents_all_occur() {
    let range = utc("2024-05-01T00:00:00Z")..utc("2024-05-15T00:00:00Z");
    let now = utc("2024-05-14T12:00:00Z");
    let (mut long, mut open, mut crossing, mut inactive, mut total) = (0, 0, 0, 0, 0);
    for idx in 0..60 {
        let spans = agent_spans(42, idx, range.clone(), now, None);
        if is_inactive(42, idx) {
            inactive += 1;
            assert!(spans.is_empty());
        }
        for s in &spans {
            total += 1;
            match s.end {
                None => open += 1,
                Some(e) => {
                    if e - s.start > TimeSpan::hours(24) {
                        long += 1;
                    }
                    if e.date_naive() != s.start.date_naive() {
                        crossing += 1;
                    }
                }
            }
        }
    }
    assert!(
        long > 0 && open > 0 && crossing > 0 && inactive > 0,
        "{long} {open} {crossing} {inactive}"
    );
    assert!(total > 60 * 14 * 4, "{total} spans");
}

#[test]
fn a_range_split_in_two_yields_the_same_spans() {
    let now = utc("2024-06-01T00:00:00Z");
    let (a, b, c) = (
        utc("2024-05-01T00:00:00Z"),
        utc("2024-05-02T13:17:00Z"),
        utc("2024-05-04T00:00:00Z"),
    );
    for idx in 0..20 {
        let whole = agent_spans(7, idx, a..c, now, None);
        let mut parts = agent_spans(7, idx, a..b, now, None);
        for s in agent_spans(7, idx, b..c, now, None) {
            if !parts.contains(&s) {
                parts.push(s);
            }
        }
        assert_eq!(whole, parts, "agent {idx}");
    }
}

#[test]
fn malformed_spans_are_about_one_in_n_and_keep_their_bounds() {
    let range = utc("2024-05-01T00:00:00Z")..utc("2024-05-08T00:00:00Z");
    let now = utc("2024-06-01T00:00:00Z");
    let (mut bad, mut total) = (0, 0);
    let mut kinds = HashSet::new();
    for idx in 0..30 {
        let clean = agent_spans(42, idx, range.clone(), now, None);
        let flagged = agent_spans(42, idx, range.clone(), now, Some(5));
        assert_eq!(clean.len(), flagged.len());
        for (c, f) in clean.iter().zip(&flagged) {
            assert_eq!((c.start, c.end, c.primary), (f.start, f.end, f.primary));
            total += 1;
            if let Some(k) = f.malformed {
                bad += 1;
                kinds.insert(format!("{k:?}"));
            }
        }
    }
    assert!(bad * 10 > total && bad * 3 < total, "{bad}/{total}");
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

#[test]
fn wire_texts_are_local_at_the_offset_and_truncated() {
    assert_eq!(
        local_text(utc("2023-03-10T16:08:52.999Z"), -330),
        "2023-03-10T21:38:52"
    );
    assert_eq!(
        local_text(utc("2024-11-04T04:30:00Z"), 300),
        "2024-11-03T23:30:00"
    );
    assert_eq!(hms_text(116_224), "32:17:04");
    assert_eq!(hms_text(55), "00:00:55");
    assert_eq!(hms_text(450_000), "125:00:00");
}

/// Parses a rendered page and checks it field by field against the generator.
#[test]
fn rendered_pages_follow_the_generator_and_the_generation() {
    let seed = 42;
    let agents: Vec<_> = (0..30).map(|i| generator::agent(seed, i)).collect();
    let page: Vec<usize> = (0..30).collect();
    let served = utc("2024-05-01T04:00:00Z")..utc("2024-05-02T04:00:00Z");
    let now = utc("2024-05-01T20:00:00Z");
    for generation in [Generation::Unversioned, Generation::V2, Generation::V3] {
        let r = AsdRender {
            seed,
            generation,
            offset_minutes: 240,
            served: served.clone(),
            now,
            malformed_every: None,
            unknown_fields: false,
        };
        let v: Value = serde_json::from_str(&r.page(&agents, &page, true, 50, 100)).expect("JSON");
        assert_eq!(
            (&v["hasMore"], &v["limit"], &v["offset"]),
            (&json!(true), &json!(50), &json!(100))
        );
        let data = v["data"].as_array().expect("data");
        assert_eq!(data.len(), 30);
        for (idx, rec) in data.iter().enumerate() {
            let a = &agents[idx];
            assert_eq!(rec["userId"], json!(a.user_id));
            assert_eq!(rec["email"], json!(a.email));
            let v3 = generation == Generation::V3;
            assert_eq!(rec.get("aId").is_some(), v3);
            if v3 {
                assert_eq!(rec["aId"], json!(agent_id(seed, idx)));
            }
            let spans = agent_spans(seed, idx, served.clone(), now, None);
            if spans.is_empty() {
                assert!(
                    rec.get("status").is_none() && rec.get("customId").is_none(),
                    "{rec}"
                );
                continue;
            }
            assert_eq!(rec["customId"], json!(a.custom_id));
            assert_eq!(rec.get("events").is_some(), v3);
            let status = rec["status"].as_array().expect("status");
            assert_eq!(status.len(), spans.len());
            for (w, s) in status.iter().zip(&spans) {
                let local = |t: DateTime<Utc>| {
                    (t - TimeSpan::hours(4))
                        .format("%Y-%m-%dT%H:%M:%S")
                        .to_string()
                };
                assert_eq!(w["primaryStatus"], json!(s.primary));
                assert_eq!(w["secondaryStatus"], json!(s.secondary));
                assert_eq!(w["startTime"], json!(local(s.start)));
                match s.end {
                    Some(e) => {
                        assert_eq!(w["endTime"], json!(local(e)));
                        let secs = (e - s.start).num_seconds();
                        let hms =
                            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
                        assert_eq!(w["duration"], json!(hms));
                    }
                    None => {
                        assert_eq!((&w["endTime"], &w["duration"]), (&json!("-"), &json!("-")));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

const BASE: &str = "/agentassist/api/public/analytics/account/demo-account";

fn token() -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"appId": "cs-demo-client"}),
        &EncodingKey::from_secret(b"demo-simulator-secret"),
    )
    .expect("token")
}

async fn sim(cfg: SimulatorConfig) -> RunningSimulator {
    start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts")
}

fn suffix(generation: Generation) -> &'static str {
    match generation {
        Generation::Unversioned => "/agentstatusdetails",
        Generation::V2 => "/v2/agentstatusdetails",
        Generation::V3 => "/v3/agentstatusdetails",
    }
}

/// POSTs `body` with the headers every generation accepts, minus those named in `without`.
async fn post(
    s: &RunningSimulator,
    generation: Generation,
    query: &str,
    body: &Value,
    without: &[&str],
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!(
            "{}{BASE}{}{query}",
            s.base_url(),
            suffix(generation)
        ))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in [
        ("auth", token()),
        ("iId", "st-demo-stream".into()),
        ("accountId", "demo-account".into()),
    ] {
        if !without.contains(&k) {
            req = req.header(k, v);
        }
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

fn date_body(date: &str, offset: i64) -> Value {
    json!({"filter": {"dateFilter": {"date": date, "timeZoneOffSet": offset}}})
}

fn error_msg(text: &str) -> String {
    let v: Value = serde_json::from_str(text).expect("error body is JSON");
    v["errors"][0]["msg"]
        .as_str()
        .expect("errors[0].msg")
        .to_owned()
}

#[tokio::test]
async fn limit_above_50_is_refused_when_strict_and_clamped_otherwise() {
    let strict = sim(SimulatorConfig {
        strict_page_size: true,
        ..SimulatorConfig::default()
    })
    .await;
    let body = date_body("2024-05-01", 0);
    let (status, text) = post(&strict, Generation::V3, "?limit=51&offset=0", &body, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("JSON"),
        json!({"errors": [{"msg": "limit must not be greater than 50", "code": 400}]})
    );
    let (status, _) = post(&strict, Generation::V3, "?limit=50", &body, &[]).await;
    assert_eq!(status, 200);

    let lenient = sim(SimulatorConfig::default()).await;
    let (status, text) = post(&lenient, Generation::Unversioned, "?limit=500", &body, &[]).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["limit"], json!(50));
    assert_eq!(v["data"].as_array().map(Vec::len), Some(20));
    assert_eq!(v["hasMore"], json!(false));
    let stats = lenient.stats();
    assert_eq!(stats.count(ENDPOINT, 200), 1);
    assert_eq!(strict.stats().count(ENDPOINT, 400), 1);
}

#[tokio::test]
async fn offset_counts_agent_records_and_has_more_chains() {
    let s = sim(SimulatorConfig::default()).await;
    let body = date_body("2024-05-01", -330);
    let mut users = Vec::new();
    for (offset, more) in [(0, true), (8, true), (16, false)] {
        let (status, text) = post(
            &s,
            Generation::V3,
            &format!("?limit=8&offset={offset}"),
            &body,
            &[],
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            (&v["hasMore"], &v["offset"]),
            (&json!(more), &json!(offset))
        );
        for a in v["data"].as_array().expect("data") {
            users.push(a["userId"].as_str().expect("userId").to_owned());
        }
    }
    let expected: Vec<_> = (0..20).map(|i| generator::agent(42, i).user_id).collect();
    assert_eq!(users, expected);
}

#[tokio::test]
async fn headers_follow_the_generation() {
    let s = sim(SimulatorConfig::default()).await;
    let body = date_body("2024-05-01", 0);
    for (generation, missing, status) in [
        (Generation::Unversioned, "iId", 400),
        (Generation::V3, "iId", 400),
        (Generation::V2, "accountId", 400),
        (Generation::Unversioned, "accountId", 200),
        (Generation::V2, "iId", 200),
        (Generation::V3, "auth", 401),
    ] {
        let (got, text) = post(&s, generation, "", &body, &[missing]).await;
        assert_eq!(got, status, "{generation:?} without {missing}: {text}");
    }
    let url = format!("{}{BASE}/v3/agentstatusdetails", s.base_url());
    let get = reqwest::Client::new()
        .get(url)
        .header("auth", token())
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status().as_u16(), 405);
}

#[tokio::test]
async fn every_documented_date_filter_form_serves_the_same_day() {
    let s = sim(SimulatorConfig {
        frozen_now: Some(utc("2024-06-01T00:00:00Z")),
        ..SimulatorConfig::default()
    })
    .await;
    let forms = [
        json!({"date": "2024-05-01", "timeZoneOffSet": -330}),
        json!({"startDate": "2024-05-01", "endDate": "2024-05-01", "timeZoneOffSet": -330}),
        json!({"startDate": "2024-05-01T00:00:00", "endDate": "2024-05-02T00:00:00", "timeZoneOffSet": -330}),
        json!({"date": "2024-05-01", "startDate": "2024-05-01", "endDate": "2024-05-01", "timeZoneOffSet": -330}),
    ];
    let mut bodies = Vec::new();
    for form in forms {
        let body = json!({"filter": {"agents": ["nobody@example.com", generator::agent(42, 3).email], "dateFilter": form}});
        let (status, text) = post(&s, Generation::V2, "", &body, &[]).await;
        assert_eq!(status, 200, "{text}");
        bodies.push(text);
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]));
    let v: Value = serde_json::from_str(&bodies[0]).expect("JSON");
    let data = v["data"].as_array().expect("data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["userId"], json!(generator::agent(42, 3).user_id));
    let served = utc("2024-04-30T18:30:00Z")..utc("2024-05-01T18:30:00Z");
    let spans = agent_spans(42, 3, served, utc("2024-06-01T00:00:00Z"), None);
    let listed = data[0]
        .get("status")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    assert_eq!(listed, spans.len());
}

#[tokio::test]
async fn bad_date_filters_are_refused_with_the_error_body() {
    let s = sim(SimulatorConfig::default()).await;
    let cases = [
        (json!({"date": "2024-05-01"}), "timeZoneOffSet is required"),
        (json!({"timeZoneOffSet": 0}), "needs date"),
        (
            json!({"startDate": "2024-05-01", "timeZoneOffSet": 0}),
            "go together",
        ),
        (
            json!({"date": "2024-5-1", "timeZoneOffSet": 0}),
            "yyyy-mm-dd",
        ),
        (
            json!({"date": "2024-05-01", "startDate": "2024-05-02", "endDate": "2024-05-02", "timeZoneOffSet": 0}),
            "different ranges",
        ),
        (
            json!({"startDate": "2024-05-02", "endDate": "2024-05-01", "timeZoneOffSet": 0}),
            "after startDate",
        ),
        (
            json!({"date": "2024-05-01", "timeZoneOffSet": 1000}),
            "±960",
        ),
    ];
    for (date_filter, msg) in cases {
        let body = json!({"filter": {"dateFilter": date_filter}});
        let (status, text) = post(&s, Generation::Unversioned, "", &body, &[]).await;
        assert_eq!(status, 400, "{body}");
        assert!(error_msg(&text).contains(msg), "{msg:?} not in {text}");
    }
    let (status, _) = post(
        &s,
        Generation::Unversioned,
        "",
        &json!({"dateFilter": {}}),
        &[],
    )
    .await;
    assert_eq!(status, 400);
}
