//! HTTP-level tests of the simulator's core: a real simulator on loopback driven with reqwest.
//! Auth, Enforce JTI, the rate limit, faults and shutdown are exercised through UserStatus;
//! the table itself through a model that exists only here. Expected values are hand-written,
//! never taken from the server's own rendering. The request helpers serve every model's tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::model::{ApiModel, Handler, ModelState, Reply};
use super::*;

pub(crate) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(crate) async fn sim(cfg: SimulatorConfig) -> RunningSimulator {
    start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

pub(crate) fn sign(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A fresh token for the default credentials, with a unique jti.
pub(crate) fn token() -> String {
    let now = Utc::now().timestamp();
    sign(
        json!({"appId": "cs-demo-client", "jti": uuid::Uuid::new_v4().to_string(),
               "iat": now, "exp": now + 300}),
        "demo-simulator-secret",
    )
}

pub(crate) fn us_body(start: &str, end: &str, offset: i64, granularity: &str) -> Value {
    json!({"filter": {"dateFilter": {"startDate": start, "endDate": end,
           "timeZoneOffSet": offset}}, "granularity": granularity})
}

pub(crate) struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

pub(crate) async fn send(req: reqwest::RequestBuilder) -> Resp {
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

pub(crate) const US_PATH: &str =
    "/agentassist/api/public/analytics/account/demo-account/userstatus";

pub(crate) fn user_status(
    client: &reqwest::Client,
    s: &RunningSimulator,
    query: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    user_status_with(client, s, query, body, &[])
}

/// A UserStatus request with valid headers, except those named in `overrides` (reqwest's
/// `header()` appends, so replaced headers must be set here).
pub(crate) fn user_status_with(
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
    assert_eq!(st.count(user_status::ENDPOINT, 401), 3);
    assert_eq!(st.count(user_status::ENDPOINT, 200), 1);
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
    assert_eq!(st.count(user_status::ENDPOINT, STATUS_DROPPED), 1);
    let over_http = send(c.get(format!("{}/_sim/stats", s.base_url())))
        .await
        .json();
    assert_eq!(over_http["faults_injected"], 8);
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

#[test]
fn every_documented_path_is_served_by_exactly_one_model() {
    let account = "/agentassist/api/public/analytics/account/acc";
    let paths = [
        (format!("{account}/userstatus"), "userstatus"),
        (format!("{account}//userstatus"), "userstatus"),
        (
            "/agentassist/api/public/analytics/1.1/account/acc/userstatus".to_string(),
            "userstatus",
        ),
        (
            "/api/public/bot/st-1//intentrealtimedata".to_string(),
            "intentrealtimedata",
        ),
        (
            format!("{account}/agentstatusdetails"),
            "agentstatusdetails",
        ),
        (
            format!("{account}/v2/agentstatusdetails"),
            "agentstatusdetails",
        ),
        (
            format!("{account}/v3/agentstatusdetails"),
            "agentstatusdetails",
        ),
        (format!("{account}/calldetails"), "calldetails"),
        (format!("{account}/callDetails"), "calldetails"),
        (format!("{account}/v2/calldetails"), "calldetails"),
        (format!("{account}/v2/interactionDetails"), "calldetails"),
    ];
    for (path, want) in &paths {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let matched: Vec<&str> = MODELS
            .iter()
            .filter(|m| (m.route)(&segments).is_some())
            .map(|m| m.endpoint)
            .collect();
        assert_eq!(matched, vec![*want], "{path}");
    }
    let mut labels: Vec<&str> = MODELS.iter().map(|m| m.endpoint).collect();
    labels.sort_unstable();
    let count = labels.len();
    labels.dedup();
    assert_eq!(
        labels.len(),
        count,
        "endpoint labels are unique: {labels:?}"
    );
}

/// Settings of the table test's model: only its own folder (here, this file) knows the type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EchoSim {
    greeting: String,
}

impl Default for EchoSim {
    fn default() -> Self {
        EchoSim {
            greeting: "hello".into(),
        }
    }
}

/// State of the table test's model across requests.
struct EchoCount(AtomicU64);

fn echo_state(_: &SimulatorConfig) -> ModelState {
    Box::new(EchoCount(AtomicU64::new(0)))
}

/// `GET /echo/{id}`: the id, the request's number, the configured greeting and the query.
fn echo_route(segments: &[&str]) -> Option<Handler> {
    let ["echo", id] = segments else { return None };
    let id = id.to_string();
    Some(Handler::new(move |shared, req| {
        let n = shared
            .state::<EchoCount>()
            .map(|c| c.0.fetch_add(1, Ordering::SeqCst) + 1);
        let greeting = shared.cfg.models.get::<EchoSim>().greeting.clone();
        let body = json!({"id": id, "n": n, "greeting": greeting, "query": req.query()});
        Reply::json(StatusCode::OK, body.to_string())
    }))
}

fn open_route(segments: &[&str]) -> Option<Handler> {
    matches!(segments, ["open"])
        .then(|| Handler::new(|_, _| Reply::json(StatusCode::OK, "[]".to_string())))
}

static ECHO: ApiModel = ApiModel {
    endpoint: "echo",
    route: echo_route,
    methods: &[Method::GET],
    gated: true,
    blocking: true,
    state: Some(echo_state),
    truth: None,
};

static OPEN: ApiModel = ApiModel {
    endpoint: "open",
    route: open_route,
    methods: &[Method::GET, Method::POST],
    gated: false,
    blocking: false,
    state: None,
    truth: None,
};

static TEST_MODELS: &[&ApiModel] = &[&ECHO, &OPEN];

#[tokio::test]
async fn a_model_is_served_from_its_table_entry_with_its_own_settings_and_state() {
    let cfg = SimulatorConfig {
        models: ModelSettings::default().with(EchoSim {
            greeting: "hi".into(),
        }),
        ..SimulatorConfig::default()
    };
    let s = start_serving(cfg, "127.0.0.1:0".parse().unwrap(), TEST_MODELS)
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let echo = format!("{}/echo//a-1", s.base_url());
    for n in 1..=2 {
        let r = send(c.get(format!("{echo}?x=1")).header("auth", token())).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.json(),
            json!({"id": "a-1", "n": n, "greeting": "hi", "query": "x=1"})
        );
    }
    assert_eq!(send(c.get(&echo)).await.status, 401);
    assert_eq!(
        send(c.post(&echo).header("auth", token())).await.status,
        405
    );
    assert_eq!(
        send(c.post(format!("{}/open", s.base_url()))).await.status,
        200
    );
    let us = send(user_status(
        &c,
        &s,
        "",
        &us_body("2024-03-10", "2024-03-10", 0, "PT1H"),
    ))
    .await;
    assert_eq!(us.status, 404);

    let st = s.stats();
    assert_eq!(st.count("echo", 200), 2);
    assert_eq!(st.count("echo", 401), 1);
    assert_eq!(st.count("echo", 405), 1);
    assert_eq!(st.requests("open"), 1);
    assert_eq!(st.count(UNKNOWN_ENDPOINT, 404), 1);
    assert_eq!(st.total_requests, 6);
    let over_http = send(c.get(format!("{}/_sim/stats", s.base_url())))
        .await
        .json();
    assert_eq!(
        over_http["by_endpoint"],
        json!({"echo": 4, "open": 1, "unknown": 1})
    );
    s.shutdown().await;
}

#[test]
fn an_unset_model_setting_reads_as_its_default() {
    let cfg = SimulatorConfig::default();
    assert_eq!(*cfg.models.get::<EchoSim>(), EchoSim::default());
    assert!(!cfg.models.get::<user_status::UserStatusSim>().legacy_shape);
}

#[tokio::test]
async fn cached_answers_are_sent_again_without_the_handler_and_still_gated() {
    let cfg = SimulatorConfig {
        cache_responses: true,
        ..SimulatorConfig::default()
    };
    let s = start_serving(cfg, "127.0.0.1:0".parse().unwrap(), TEST_MODELS)
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let echo = |q: &str| c.get(format!("{}/echo/a-1{q}", s.base_url()));
    // The handler numbers its calls: a cached answer repeats the first call's number.
    let first = send(echo("?x=1").header("auth", token())).await;
    assert_eq!(first.json()["n"], json!(1));
    let again = send(echo("?x=1").header("auth", token())).await;
    assert_eq!(
        (again.status, again.text.as_str()),
        (200, first.text.as_str())
    );
    assert_eq!(send(echo("?x=1")).await.status, 401, "auth still applies");
    let other = send(echo("?x=2").header("auth", token())).await;
    assert_eq!(other.json()["n"], json!(2));

    let st = s.stats();
    assert_eq!((st.cache_hits, st.cache_misses), (1, 2));
    let sent = (first.text.len() + again.text.len() + other.text.len()) as u64;
    let refused = st.body_bytes_by_endpoint["echo"] - sent;
    assert!(refused > 0, "the 401's body is counted too");
    s.shutdown().await;
}
