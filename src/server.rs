//! The health and metrics HTTP endpoint of `run` on `[server] listen`:
//! - `GET /healthz`: `200 ok` while the scheduler runs and every job has succeeded within
//!   `unhealthy_after_intervals` schedule intervals (at least 60 s) of its last success or of
//!   startup; otherwise `503` with one line per reason (also `503 shutting down` while draining).
//! - `GET /metrics`: the metrics handle's registry in the Prometheus text format.
//!
//! The daemon merges the hand-over routes into [`router`]'s ([`crate::handover::daemon`]).
//! Callers bind the listener themselves (so a bad address fails before any job starts), call
//! [`serve`] with the router and cancel `stop` after the drain.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::scheduler::Scheduler;

#[derive(Clone)]
struct AppState {
    scheduler: Arc<Scheduler>,
    intervals: u32,
    metrics: Metrics,
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match s.scheduler.health(Utc::now(), s.intervals) {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

async fn render_metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        s.metrics.render(),
    )
}

/// The router, exposed for tests.
pub fn router(
    scheduler: Arc<Scheduler>,
    unhealthy_after_intervals: u32,
    metrics: Metrics,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState {
            scheduler,
            intervals: unhealthy_after_intervals,
            metrics,
        })
}

/// Serve `app` until `stop` is cancelled. Handlers may extract the peer's address
/// (`ConnectInfo<SocketAddr>`).
pub fn serve(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    })
}

/// `GET http://addr/path` with std only (for the `healthcheck` subcommand in images without
/// curl): returns the status code and body.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Schedule;
    use crate::scheduler::{Job, JobSpec, RunSignal, Work};

    #[tokio::test]
    async fn healthz_and_metrics_answer_over_http() {
        let metrics = Metrics::new();
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .build()
            .parse("0 */15 * * * *")
            .expect("cron");
        let work: Work = Arc::new(|_| Box::pin(async { Ok(RunSignal::default()) }));
        let job = Job::new(
            JobSpec {
                name: "user_status".into(),
                dataset: "user_status",
                schedule: Schedule {
                    expression: "0 */15 * * * *".into(),
                    cron,
                },
                tz: chrono_tz::Tz::UTC,
                fast_interval: None,
                metrics: metrics.clone(),
            },
            work,
            Utc::now(),
            false,
        );
        let sched = Scheduler::new(vec![job]);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let app = router(sched.clone(), 3, metrics.clone());
        let server = serve(listener, app, stop.clone());
        metrics.skipped_tick("server_test");
        let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/healthz"))
            .await
            .expect("join")
            .expect("get");
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
            .await
            .expect("join")
            .expect("get");
        assert_eq!(status, 200);
        assert!(
            body.contains("smartassist_skipped_ticks_total{dataset=\"server_test\"} 1"),
            "{body}"
        );
        let drained = sched
            .drain(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(1),
                || {},
            )
            .await;
        assert!(drained);
        let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/healthz"))
            .await
            .expect("join")
            .expect("get");
        assert_eq!((status, body.as_str()), (503, "shutting down\n"));
        stop.cancel();
        server.await.expect("join").expect("serve");
    }
}
