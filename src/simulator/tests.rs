//! HTTP-level tests: a real simulator on loopback driven with reqwest. Expected values are
//! hand-written or come from the pure generator, never from the server's own rendering.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::generator::{self, GeneratedStatus};
use super::*;
use crate::model::Granularity;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn sim(cfg: SimulatorConfig) -> RunningSimulator {
    start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn sign(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A fresh token for the default credentials, with a unique jti.
fn token() -> String {
    let now = Utc::now().timestamp();
    sign(
        json!({"appId": "cs-demo-client", "jti": uuid::Uuid::new_v4().to_string(),
               "iat": now, "exp": now + 300}),
        "demo-simulator-secret",
    )
}

fn us_body(start: &str, end: &str, offset: i64, granularity: &str) -> Value {
    json!({"filter": {"dateFilter": {"startDate": start, "endDate": end,
           "timeZoneOffSet": offset}}, "granularity": granularity})
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn send(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Resp {
        status,
        headers,
        text,
    }
}

const US_PATH: &str = "/agentassist/api/public/analytics/account/demo-account/userstatus";

fn user_status(
    client: &reqwest::Client,
    s: &RunningSimulator,
    query: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    user_status_with(client, s, query, body, &[])
}

/// A UserStatus request with valid headers, except those named in `overrides` (reqwest's
/// `header()` appends, so replaced headers must be set here).
fn user_status_with(
    client: &reqwest::Client,
    s: &RunningSimulator,
    query: &str,
    body: &Value,
    overrides: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let fresh = token();
    let mut headers = vec![
        ("auth", fresh.as_str()),
        ("iid", "st-demo-stream"),
        ("accountId", "demo-account"),
        ("content-type", "application/json"),
    ];
    for (k, v) in overrides {
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        headers.push((k, v));
    }
    let mut req = client
        .post(format!("{}{US_PATH}{query}", s.base_url()))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req
}

#[tokio::test]
async fn jwt_is_checked_on_every_request() {
    let s = sim(SimulatorConfig::default()).await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", 0, "PT1H");
    assert_eq!(send(user_status(&c, &s, "", &body)).await.status, 200);

    let plain = sign(json!({"appId": "cs-demo-client"}), "demo-simulator-secret");
    let wrong_secret = sign(json!({"appId": "cs-demo-client"}), "nope");
    let wrong_app = sign(json!({"appId": "cs-other"}), "demo-simulator-secret");
    let expired = sign(
        json!({"appId": "cs-demo-client", "exp": Utc::now().timestamp() - 10}),
        "demo-simulator-secret",
    );
    assert_eq!(
        send(user_status_with(&c, &s, "", &body, &[("auth", &plain)]))
            .await
            .status,
        200
    );
    for bad in [wrong_secret, wrong_app, expired] {
        let r = send(user_status_with(&c, &s, "", &body, &[("auth", &bad)])).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"errors":[{"msg":"Invalid SDK credentials","code":4002}]})
        );
    }
    let no_auth = c
        .post(format!("{}{US_PATH}", s.base_url()))
        .header("iid", "st-demo-stream")
        .header("accountId", "demo-account")
        .body(body.to_string());
    assert_eq!(send(no_auth).await.status, 401);
    s.shutdown().await;
}

#[tokio::test]
async fn enforce_jti_rejects_replays_and_long_tokens() {
    let s = sim(SimulatorConfig {
        enforce_jti: true,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", 0, "PT1H");
    let t = token();
    let first = send(user_status_with(&c, &s, "", &body, &[("auth", &t)])).await;
    assert_eq!(first.status, 200);
    let again = send(user_status_with(&c, &s, "", &body, &[("auth", &t)])).await;
    assert_eq!(again.status, 401);
    assert_eq!(
        again.json(),
        json!({"errors":[{"msg":"error verifying the jwt: possibly a replay","code":401}]})
    );
    let now = Utc::now().timestamp();
    let long = sign(
        json!({"appId":"cs-demo-client","jti":"x1","iat":now,"exp":now + 7200}),
        "demo-simulator-secret",
    );
    let r = send(user_status_with(&c, &s, "", &body, &[("auth", &long)])).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"errors":[{"msg":"error verifying the jwt: if \"jti\" claim \"exp\" must be <= 1 hour(s)","code":401}]})
    );
    let no_jti = sign(json!({"appId":"cs-demo-client"}), "demo-simulator-secret");
    let r = send(user_status_with(&c, &s, "", &body, &[("auth", &no_jti)])).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("jti"), "{}", r.text);
    let st = s.stats();
    assert_eq!(st.jti_replays_rejected, 1);
    assert_eq!(st.count(SimEndpoint::UserStatus, 401), 3);
    assert_eq!(st.count(SimEndpoint::UserStatus, 200), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn pagination_covers_every_agent_exactly_once() {
    let s = sim(SimulatorConfig {
        agents: 23,
        max_page_size: 10,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", -330, "PT30M");
    let mut seen = Vec::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        let r = send(user_status(
            &c,
            &s,
            &format!("?limit=4&offset={offset}"),
            &body,
        ))
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        assert_eq!(v["limit"], 4);
        assert_eq!(v["offset"], offset);
        for a in v["data"].as_array().unwrap() {
            seen.push(a["userId"].as_str().unwrap().to_string());
        }
        pages += 1;
        if !v["hasMore"].as_bool().unwrap() {
            break;
        }
        offset += 4;
    }
    assert_eq!(pages, 6);
    let want: Vec<String> = (0..23).map(|i| generator::agent(42, i).user_id).collect();
    assert_eq!(seen, want);

    // limit is clamped to max_page_size and defaults to 50 (clamped too).
    let v = send(user_status(&c, &s, "?limit=1000", &body)).await.json();
    assert_eq!(
        (v["limit"].as_u64(), v["data"].as_array().unwrap().len()),
        (Some(10), 10)
    );
    let v = send(user_status(&c, &s, "", &body)).await.json();
    assert_eq!(v["limit"], 10);
    assert_eq!(v["hasMore"], true);
    // Offset past the end: empty page.
    let v = send(user_status(&c, &s, "?offset=40", &body)).await.json();
    assert_eq!(v["data"], json!([]));
    assert_eq!(v["hasMore"], false);
    s.shutdown().await;
}

/// Listed bucket starts of every agent in a Gen C response, with their statuses decoded.
/// (metric, value, raw `stats.sum` JSON) of one status entry.
type WireStatus = (String, String, String);

fn buckets(v: &Value) -> HashMap<(String, String), Vec<WireStatus>> {
    let mut out = HashMap::new();
    for a in v["data"].as_array().unwrap() {
        let user = a["userId"].as_str().unwrap().to_string();
        for b in a["timeInterval"].as_array().unwrap() {
            let statuses = b["status"]
                .as_array()
                .unwrap()
                .iter()
                .map(|st| {
                    (
                        st["metric"].as_str().unwrap().to_string(),
                        st["value"].as_str().unwrap().to_string(),
                        st["stats"]["sum"].to_string(),
                    )
                })
                .collect();
            out.insert(
                (user.clone(), b["startTime"].as_str().unwrap().to_string()),
                statuses,
            );
            let (s, e) = (
                utc(b["startTime"].as_str().unwrap()),
                utc(b["endTime"].as_str().unwrap()),
            );
            assert_eq!((e - s).num_minutes(), 30);
        }
    }
    out
}

fn expected(statuses: &[GeneratedStatus]) -> Vec<WireStatus> {
    statuses
        .iter()
        .map(|s| (s.metric.to_string(), s.value.to_string(), s.sum_json()))
        .collect()
}

async fn check_window(offset: i64, first: &str, last: &str) {
    let s = sim(SimulatorConfig {
        agents: 40,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", offset, "PT30M");
    let v = send(user_status(&c, &s, "?limit=100", &body)).await.json();
    let got = buckets(&v);
    let (first, last) = (utc(first), utc(last));
    let starts: BTreeSet<DateTime<Utc>> = got.keys().map(|(_, t)| utc(t)).collect();
    assert_eq!(starts.first(), Some(&first), "offset {offset}");
    assert_eq!(starts.last(), Some(&last), "offset {offset}");
    assert!(starts.iter().all(|t| (*t - first).num_minutes() % 30 == 0));
    // Every listed bucket holds the generator's data for that UTC bucket start.
    for (i, a) in v["data"].as_array().unwrap().iter().enumerate() {
        for b in a["timeInterval"].as_array().unwrap() {
            let start = b["startTime"].as_str().unwrap();
            let want = generator::bucket_statuses(42, i, utc(start), Granularity::PT30M);
            assert_eq!(
                got[&(a["userId"].as_str().unwrap().to_string(), start.to_string())],
                expected(&want)
            );
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn window_is_the_local_day_at_an_ist_offset() {
    check_window(-330, "2024-03-09T18:30:00Z", "2024-03-10T18:00:00Z").await;
}

#[tokio::test]
async fn window_is_the_local_day_at_a_us_dst_offset() {
    // New York's spring-forward day, sent with the offset at local midnight (EST, 300): the
    // simulator keeps that one offset for the whole day.
    check_window(300, "2024-03-10T05:00:00Z", "2024-03-11T04:30:00Z").await;
}

#[tokio::test]
async fn buckets_agree_between_offsets() {
    let s = sim(SimulatorConfig {
        agents: 30,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let ist = buckets(
        &send(user_status(
            &c,
            &s,
            "?limit=100",
            &us_body("2024-03-10", "2024-03-10", -330, "PT30M"),
        ))
        .await
        .json(),
    );
    let gmt = buckets(
        &send(user_status(
            &c,
            &s,
            "?limit=100",
            &us_body("2024-03-10", "2024-03-10", 0, "PT30M"),
        ))
        .await
        .json(),
    );
    let overlap_end = utc("2024-03-10T18:30:00Z");
    let mut compared = 0;
    for ((user, start), statuses) in &gmt {
        if utc(start) >= overlap_end || statuses.is_empty() {
            continue;
        }
        assert_eq!(
            ist.get(&(user.clone(), start.clone())),
            Some(statuses),
            "{user} {start}"
        );
        compared += 1;
    }
    assert!(compared > 50, "only {compared} buckets compared");
    s.shutdown().await;
}

#[tokio::test]
async fn url_generations_and_double_slashes_route() {
    let s = sim(SimulatorConfig::default()).await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", 0, "PT1H").to_string();
    for path in [
        "/agentassist/api/public/analytics/account/demo-account/userstatus",
        "/agentassist/api/public/analytics/account/demo-account//userstatus",
        "/agentassist/api/public/analytics/1.1/account/demo-account/userstatus",
        "/agentassist/api/public/analytics/1.1/account/demo-account//userstatus",
    ] {
        let r = send(
            c.post(format!("{}{path}", s.base_url()))
                .header("auth", token())
                .header("IId", "st-demo-stream")
                .header("accountid", "demo-account")
                .body(body.clone()),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(r.json()["data"].is_array());
    }
    let r = send(c.post(format!("{}/agentassist/api/public/nothing", s.base_url()))).await;
    assert_eq!(r.status, 404);
    assert_eq!(s.stats().count(SimEndpoint::UserStatus, 200), 4);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_headers_and_bodies_are_client_errors() {
    let s = sim(SimulatorConfig::default()).await;
    let c = reqwest::Client::new();
    let good = us_body("2024-03-10", "2024-03-10", 0, "PT1H");
    let url = format!("{}{US_PATH}", s.base_url());
    let missing_iid = c
        .post(&url)
        .header("auth", token())
        .header("accountId", "demo-account")
        .body(good.to_string());
    assert_eq!(send(missing_iid).await.status, 400);
    let wrong_iid = user_status_with(&c, &s, "", &good, &[("IId", "st-other")]);
    assert_eq!(send(wrong_iid).await.status, 403);
    let wrong_account = user_status_with(&c, &s, "", &good, &[("accountid", "other")]);
    assert_eq!(send(wrong_account).await.status, 403);
    let other_path = c
        .post(format!(
            "{}/agentassist/api/public/analytics/account/other/userstatus",
            s.base_url()
        ))
        .header("auth", token())
        .header("iid", "st-demo-stream")
        .header("accountId", "demo-account")
        .body(good.to_string());
    assert_eq!(send(other_path).await.status, 403);
    for bad in [
        us_body("2024-03-10", "2024-03-10", 0, "PT5M"),
        us_body("2024-03-11", "2024-03-10", 0, "PT1H"),
        us_body("2024-3-10", "2024-03-10", 0, "PT1H"),
        us_body("2024-03-10", "2024-03-10", 5000, "PT1H"),
        json!({"granularity": "PT1H"}),
    ] {
        let r = send(user_status(&c, &s, "", &bad)).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["errors"][0]["msg"].is_string());
    }
    assert_eq!(
        send(user_status(&c, &s, "?limit=abc", &good)).await.status,
        400
    );
    s.shutdown().await;
}

#[tokio::test]
async fn agent_filter_restricts_the_page() {
    let s = sim(SimulatorConfig::default()).await;
    let c = reqwest::Client::new();
    let emails = [generator::agent(42, 7).email, generator::agent(42, 2).email];
    let body = json!({"filter": {"agents": [emails[0], emails[1], "nobody@example.com"],
        "dateFilter": {"startDate": "2024-03-10", "endDate": "2024-03-10"}},
        "granularity": "PT1H"});
    let v = send(user_status(&c, &s, "", &body)).await.json();
    let got: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![emails[1].as_str(), emails[0].as_str()]);
    s.shutdown().await;
}

#[tokio::test]
async fn legacy_shape_is_keyed_by_user_id() {
    let s = sim(SimulatorConfig {
        legacy_shape: true,
        agents: 7,
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    // Gen A documented no IId/accountId headers.
    let r = send(
        c.post(format!(
            "{}/agentassist/api/public/analytics/account/demo-account//userstatus?limit=2",
            s.base_url()
        ))
        .header("auth", token())
        .body(us_body("2024-03-10", "2024-03-10", -330, "PT30M").to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 7);
    let a3 = generator::agent(42, 3);
    assert_eq!(obj[&a3.user_id]["emailId"], a3.email.as_str());
    assert_eq!(obj[&a3.user_id]["firstName"], a3.first_name.as_str());
    assert!(obj[&a3.user_id]["timeInterval"].is_array());
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_sums_match_the_generator() {
    let s = sim(SimulatorConfig {
        agents: 10,
        malformed_every: Some(3),
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let v = send(user_status(
        &c,
        &s,
        "",
        &us_body("2024-03-10", "2024-03-10", 0, "PT1H"),
    ))
    .await
    .json();
    let mut wire_bad = 0;
    for a in v["data"].as_array().unwrap() {
        for b in a["timeInterval"].as_array().unwrap() {
            for st in b["status"].as_array().unwrap() {
                let sum = st["stats"]["sum"].as_str().unwrap();
                if !sum.starts_with(|c: char| c.is_ascii_digit()) {
                    wire_bad += 1;
                }
            }
        }
    }
    let window = generator::request_window(
        chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap(),
        0,
    )
    .unwrap();
    let want: usize = (0..10)
        .flat_map(|i| generator::agent_window(42, i, window, Granularity::PT1H, Some(3)))
        .flat_map(|b| b.statuses)
        .filter(|s| s.malformed)
        .count();
    assert!(want > 0);
    assert_eq!(wire_bad, want);
    s.shutdown().await;
}

#[tokio::test]
async fn rate_limit_is_a_sliding_minute_per_account() {
    let s = sim(SimulatorConfig {
        rate_limit_per_minute: Some(3),
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", 0, "PT24H");
    for _ in 0..2 {
        assert_eq!(send(user_status(&c, &s, "", &body)).await.status, 200);
    }
    // The intent endpoint shares the account's budget.
    let intent = c
        .post(format!(
            "{}/api/public/bot/st-demo-bot/intentrealtimedata",
            s.base_url()
        ))
        .header("auth", token())
        .header("accountId", "demo-account");
    assert_eq!(send(intent).await.status, 200);
    let r = send(user_status(&c, &s, "", &body)).await;
    assert_eq!(r.status, 429);
    assert!(r.headers.get("retry-after").is_none());
    assert_eq!(
        r.json(),
        json!({"errors":[{"msg":"You've exceeded the per-minute rate limit. Please wait for sometime before retrying.","code":429}]})
    );
    assert_eq!(s.stats().rate_limited, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn faults_are_consumed_in_order() {
    let s = sim(SimulatorConfig {
        faults: FaultPlan {
            next: vec![FaultKind::Status5xx(503)],
            every_nth: None,
        },
        ..SimulatorConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let body = us_body("2024-03-10", "2024-03-10", 0, "PT1H");
    assert_eq!(send(user_status(&c, &s, "", &body)).await.status, 503);
    assert_eq!(send(user_status(&c, &s, "", &body)).await.status, 200);

    s.set_faults(FaultPlan {
        next: vec![
            FaultKind::Status429 {
                retry_after: Some("7".into()),
            },
            FaultKind::RateLimitBody400,
            FaultKind::TruncatedJson,
            FaultKind::DropConnection,
            FaultKind::Slow(Duration::from_millis(30)),
        ],
        every_nth: None,
    });
    let r = send(user_status(&c, &s, "", &body)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
    let r = send(user_status(&c, &s, "", &body)).await;
    assert_eq!(r.status, 400);
    assert!(r.text.to_lowercase().contains("rate limit"));
    let r = send(user_status(&c, &s, "", &body)).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
    assert!(r.text.starts_with("{\"hasMore\""));
    assert!(user_status(&c, &s, "", &body).send().await.is_err());
    let started = std::time::Instant::now();
    assert_eq!(send(user_status(&c, &s, "", &body)).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(send(user_status(&c, &s, "", &body)).await.status, 200);

    // The admin endpoint sets plans too (every 2nd report request fails).
    let r = send(
        c.post(format!("{}/_sim/faults", s.base_url()))
            .body(r#"{"every_nth":{"n":2,"kind":{"Status5xx":502}}}"#),
    )
    .await;
    assert_eq!(r.status, 204);
    let statuses = [
        send(user_status(&c, &s, "", &body)).await.status,
        send(user_status(&c, &s, "", &body)).await.status,
        send(user_status(&c, &s, "", &body)).await.status,
        send(user_status(&c, &s, "", &body)).await.status,
    ];
    assert_eq!(statuses, [200, 502, 200, 502]);
    let bad = send(
        c.post(format!("{}/_sim/faults", s.base_url()))
            .body("{\"x\":1}"),
    )
    .await;
    assert_eq!(bad.status, 400);

    let st = s.stats();
    assert_eq!(st.faults_injected, 8);
    assert_eq!(st.count(SimEndpoint::UserStatus, STATUS_DROPPED), 1);
    let over_http = send(c.get(format!("{}/_sim/stats", s.base_url())))
        .await
        .json();
    assert_eq!(over_http["faults_injected"], 8);
    s.shutdown().await;
}

#[tokio::test]
async fn intent_returns_the_latest_25_newest_first() {
    let epoch = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let now = utc("2024-01-01T01:40:30Z");
    let cfg = SimulatorConfig {
        intent_epoch: epoch,
        frozen_now: Some(now),
        bots: vec!["st-bot-a".into(), "st-bot-b".into()],
        ..SimulatorConfig::default()
    };
    let feed = cfg.intent_feed("st-bot-b");
    let s = sim(cfg).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    for req in [
        c.post(format!("{base}/api/public/bot/st-bot-b/intentrealtimedata")),
        c.get(format!(
            "{base}/api/public/bot/st-bot-b//intentrealtimedata"
        )),
    ] {
        let r = send(
            req.header("auth", token())
                .header("accountId", "demo-account"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 25);
        // 100.5 minutes after the epoch: sessions 100 down to 76.
        let ids: Vec<&str> = arr
            .iter()
            .map(|x| x["sessionId"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (76..=100)
            .rev()
            .map(|k| generator::session(&feed, k).session_id)
            .collect();
        assert_eq!(ids, want);
        assert_eq!(
            utc(arr[0]["endTime"].as_str().unwrap()),
            utc("2024-01-01T01:40:00Z")
        );
        for x in arr {
            let end = utc(x["endTime"].as_str().unwrap());
            let start = utc(x["startTime"].as_str().unwrap());
            assert!(end <= now);
            assert!(x["intent"].is_array());
            let secs = (end - start).num_seconds();
            let th = x["timeHandled"].as_str().unwrap();
            assert_eq!(th, generator::format_time_handled(secs));
            assert!(matches!(
                x["status"].as_str(),
                Some("completed" | "Dropoff")
            ));
            assert!(x["deflectedTo"].is_null() || x["deflectedTo"].is_string());
            for key in ["userId", "channel", "ANI", "DNI"] {
                assert!(x[key].is_string(), "{key}");
            }
        }
    }
    let unknown = c
        .post(format!("{base}/api/public/bot/st-nope/intentrealtimedata"))
        .header("auth", token())
        .header("accountId", "demo-account");
    let r = send(unknown).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["errors"].is_array());
    let no_account = c
        .post(format!("{base}/api/public/bot/st-bot-a/intentrealtimedata"))
        .header("auth", token());
    assert_eq!(send(no_account).await.status, 400);
    s.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_serving_and_debug_hides_the_secret() {
    let cfg = SimulatorConfig::default();
    assert!(!format!("{cfg:?}").contains("demo-simulator-secret"));
    assert_eq!(cfg.intent_epoch.timestamp_subsec_nanos(), 0);
    let s = sim(cfg).await;
    let url = s.base_url();
    assert!(url.starts_with("http://127.0.0.1:"));
    s.shutdown().await;
    let r = reqwest::Client::new()
        .post(format!("{url}{US_PATH}"))
        .send()
        .await;
    assert!(r.is_err());
    let taken = start(
        SimulatorConfig {
            intent_interval: Duration::ZERO,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    assert!(matches!(taken, Err(SimulatorError::InvalidConfig { .. })));
}
