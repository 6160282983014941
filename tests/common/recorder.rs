//! A recording reverse proxy in front of the simulator: forwards every request unchanged and
//! records when it arrived, its path and the status answered, so a test measures at the
//! boundary (poll cadence per bot, throttled answers, history requests served) independently of
//! the exporter's own figures.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub path: String,
    pub status: u16,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    hits: Arc<Mutex<Vec<Hit>>>,
}

/// A running proxy; dropping it stops nothing (the test's runtime ends it).
pub struct Recorder {
    base_url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Recorder {
    /// Starts a proxy on loopback forwarding to `upstream` (a base URL without a trailing
    /// slash).
    pub async fn start(upstream: &str) -> Recorder {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let proxy = Proxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .http1_only()
                .build()
                .expect("client"),
            hits: hits.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().fallback(forward).with_state(proxy);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorder {
            base_url: format!("http://{addr}"),
            hits,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every request so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        let mut hits = self.hits.lock().expect("hits").clone();
        hits.sort_by_key(|h| h.at);
        hits
    }
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let target = format!(
        "{}{}",
        p.upstream,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let body = to_bytes(body, 64 << 20).await.unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            headers.insert(k.clone(), v.clone());
        }
    }
    let sent = p
        .http
        .request(parts.method.clone(), target)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(_) => {
            record(&p, at, path, 502);
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    record(&p, at, path, status.as_u16());
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

fn record(p: &Proxy, at: Instant, path: String, status: u16) {
    p.hits.lock().expect("hits").push(Hit { at, path, status });
}
