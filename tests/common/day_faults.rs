//! A reverse proxy in front of the simulator that acts on UserStatus requests by the local day
//! they ask for (the body's `filter.dateFilter.startDate`), independently of the exporter:
//! it counts the requests of each day, answers HTTP 500 for the days set to fail, and makes
//! the days set to be empty empty on the server (it asks the simulator for an agent that does
//! not exist, so the answer is the API's own empty page). Everything else is forwarded
//! unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

#[derive(Default)]
struct Plan {
    failing: BTreeSet<String>,
    empty: BTreeSet<String>,
    /// The `errors[].msg` of a failing day's answer, when set.
    fail_message: Option<String>,
    requests: BTreeMap<String, u64>,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    plan: Arc<Mutex<Plan>>,
}

/// A running proxy (the test's runtime ends it).
pub struct DayFaults {
    base_url: String,
    plan: Arc<Mutex<Plan>>,
}

impl DayFaults {
    /// Starts a proxy on loopback forwarding to `upstream` (a base URL).
    pub async fn start(upstream: &str) -> DayFaults {
        let plan = Arc::new(Mutex::new(Plan::default()));
        let proxy = Proxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .http1_only()
                .build()
                .expect("client"),
            plan: plan.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().fallback(forward).with_state(proxy);
        tokio::spawn(async move { axum::serve(listener, app).await });
        DayFaults {
            base_url: format!("http://{addr}"),
            plan,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Requests of these days (`YYYY-MM-DD`) fail with HTTP 500 from now on.
    pub fn fail_days(&self, days: &[&str]) {
        self.plan.lock().expect("plan").failing = days.iter().map(|d| d.to_string()).collect();
    }

    /// Failing days answer with this API error text (as `errors[].msg` of the 500's body).
    pub fn fail_with_message(&self, message: &str) {
        self.plan.lock().expect("plan").fail_message = Some(message.to_string());
    }

    /// These days hold nothing on the server.
    pub fn empty_days(&self, days: &[&str]) {
        self.plan.lock().expect("plan").empty = days.iter().map(|d| d.to_string()).collect();
    }

    /// Requests per day since the last call, and restarts the count.
    pub fn take_requests(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.plan.lock().expect("plan").requests)
    }
}

/// The day a UserStatus body asks for.
fn start_date(body: &serde_json::Value) -> Option<String> {
    body.pointer("/filter/dateFilter/startDate")?
        .as_str()
        .map(str::to_string)
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 64 << 20).await.unwrap_or_default();
    let mut json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let day = json.as_ref().and_then(start_date);
    let mut body = body.to_vec();
    if let Some(day) = &day {
        let (fail, empty, message) = {
            let mut plan = p.plan.lock().expect("plan");
            *plan.requests.entry(day.clone()).or_default() += 1;
            let message = plan.fail_message.clone();
            (
                plan.failing.contains(day),
                plan.empty.contains(day),
                message,
            )
        };
        if fail {
            let msg = message.as_deref().unwrap_or("this day fails on purpose");
            let answer = serde_json::json!({"errors": [{"msg": msg}]}).to_string();
            return (StatusCode::INTERNAL_SERVER_ERROR, answer).into_response();
        }
        if let (true, Some(j)) = (empty, json.as_mut()) {
            j["filter"]["agents"] = serde_json::json!(["nobody@empty-day.invalid"]);
            body = serde_json::to_vec(j).expect("json");
        }
    }
    let target = format!(
        "{}{}",
        p.upstream,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            headers.insert(k.clone(), v.clone());
        }
    }
    let Ok(response) = p
        .http
        .request(parts.method.clone(), target)
        .headers(headers)
        .body(body)
        .send()
        .await
    else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
