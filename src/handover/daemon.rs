//! The daemon side of a hand-over: the `POST /handover/jobs` and `DELETE /handover/jobs/{id}`
//! routes on the daemon's server. A job runs in the daemon with its context and request budget:
//! a backfill at catch-up priority, a `run --once` at the priorities of the daemon's own runs,
//! each dataset (or polled entity) under the guard of the daemon's job doing the same work, so
//! the two never overlap. At most [`MAX_JOBS`] run at once. A job stops (between days, its
//! waiting requests leaving the budget's queue) when its CLI cancels it or goes away, or when
//! the daemon stops; [`HandoverService::drain`] waits for the jobs to report.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use futures::future::Future;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Event, HandoverEndpoint, JobRequest, Progress, JOBS_PATH, KEY_HEADER, PROGRESS_EVERY};
use crate::backfill::{backfill_selected, BackfillRequest, Selection};
use crate::datasets::{Context, Dataset};
use crate::error_chain::error_chain;
use crate::progress::{ProgressMode, ProgressSnapshot};
use crate::scheduler::Scheduler;

/// Handed-over jobs that may run at once; more are refused (HTTP 503).
pub const MAX_JOBS: u32 = 4;
/// Events buffered for a CLI that reads slowly (the job waits beyond that).
const EVENT_BUFFER: usize = 64;

/// Accepts and runs work handed over by CLIs. Cheap to clone.
#[derive(Clone)]
pub struct HandoverService {
    inner: Arc<Inner>,
}

struct Inner {
    cx: Context,
    datasets: Vec<Dataset>,
    scheduler: Arc<Scheduler>,
    endpoint: HandoverEndpoint,
    /// The daemon's stop: refuses new jobs and stops the running ones.
    stop: CancellationToken,
    slots: Arc<Semaphore>,
    jobs: Mutex<HashMap<String, CancellationToken>>,
}

impl HandoverService {
    pub fn new(
        cx: Context,
        datasets: Vec<Dataset>,
        scheduler: Arc<Scheduler>,
        endpoint: HandoverEndpoint,
        stop: CancellationToken,
    ) -> HandoverService {
        HandoverService {
            inner: Arc::new(Inner {
                cx,
                datasets,
                scheduler,
                endpoint,
                stop,
                slots: Arc::new(Semaphore::new(MAX_JOBS as usize)),
                jobs: Mutex::default(),
            }),
        }
    }

    /// The hand-over routes (the server must provide the peer address, see
    /// [`crate::server::serve`]).
    pub fn routes(&self) -> Router {
        Router::new()
            .route(JOBS_PATH, post(submit))
            .route(&format!("{JOBS_PATH}/{{id}}"), delete(cancel))
            .with_state(self.clone())
    }

    /// Waits up to `limit` for every job to end (the daemon's stop stops them); whether they
    /// all did.
    pub async fn drain(&self, limit: Duration) -> bool {
        let all = self.inner.slots.acquire_many(MAX_JOBS);
        matches!(tokio::time::timeout(limit, all).await, Ok(Ok(_)))
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        // Inserts and removes only: consistent after any panic elsewhere.
        self.inner.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err` (status, message) unless the request comes from this host with the key.
    fn admit(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        if !from_this_host(peer, self.inner.endpoint.addr) {
            return Err((
                StatusCode::FORBIDDEN,
                "work is handed over from this host only".into(),
            ));
        }
        let offered = headers
            .get(KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !self.inner.endpoint.key.matches(offered) {
            return Err((
                StatusCode::FORBIDDEN,
                "wrong or missing hand-over key (it is in this daemon's budget lease)".into(),
            ));
        }
        Ok(())
    }

    /// The daemon's datasets named in `names`, in its order; a name it does not export is
    /// refused.
    fn resolve(&self, names: &[String]) -> Result<Vec<Dataset>, String> {
        if names.is_empty() {
            return Err("no dataset named".into());
        }
        if let Some(missing) = names
            .iter()
            .find(|n| !self.inner.datasets.iter().any(|d| d.name() == n.as_str()))
        {
            return Err(format!(
                "the running daemon does not export {missing} (its config does not enable \
                 it): enable it there, or stop the daemon and run this command alone"
            ));
        }
        Ok(self
            .inner
            .datasets
            .iter()
            .filter(|d| names.iter().any(|n| n == d.name()))
            .cloned()
            .collect())
    }
}

/// Whether `peer` is this host, for a daemon listening on `listen`: a loopback address (an
/// IPv4 one mapped into IPv6 included), or the specific address it listens on.
fn from_this_host(peer: SocketAddr, listen: SocketAddr) -> bool {
    let peer = peer.ip().to_canonical();
    let listen = listen.ip().to_canonical();
    peer.is_loopback() || (!listen.is_unspecified() && peer == listen)
}

async fn submit(
    State(svc): State<HandoverService>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = svc.admit(peer, &headers) {
        return refusal.into_response();
    }
    if svc.inner.stop.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping").into_response();
    }
    let request: JobRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("unreadable job: {e}")).into_response();
        }
    };
    let datasets = match svc.resolve(request.datasets()) {
        Ok(d) => d,
        Err(message) => return (StatusCode::CONFLICT, message).into_response(),
    };
    let Ok(slot) = svc.inner.slots.clone().try_acquire_owned() else {
        let message = format!(
            "the daemon already runs {MAX_JOBS} handed-over jobs (or is stopping); try again later"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let token = svc.inner.stop.child_token();
    svc.jobs().insert(id.clone(), token.clone());
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(run_job(svc, id, token.clone(), request, datasets, tx, slot));
    // The job stops when its CLI goes away: the body (and this guard) is dropped then.
    let gone = token.drop_guard();
    let lines = futures::stream::unfold((rx, gone), |(mut rx, gone)| async move {
        let event = rx.recv().await?;
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), (rx, gone)))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

async fn cancel(
    State(svc): State<HandoverService>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refusal) = svc.admit(peer, &headers) {
        return refusal.into_response();
    }
    let token = svc.jobs().get(&id).cloned();
    match token {
        Some(token) => {
            info!(job = %id, "The CLI cancelled its handed-over job.");
            token.cancel();
            (StatusCode::ACCEPTED, "cancelling").into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such job").into_response(),
    }
}

async fn run_job(
    svc: HandoverService,
    id: String,
    token: CancellationToken,
    request: JobRequest,
    datasets: Vec<Dataset>,
    tx: mpsc::Sender<Event>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = tx.send(Event::Accepted { job: id.clone() }).await;
    info!(job = %id, work = %request.describe(), "Running work handed over by a CLI on this daemon's request budget.");
    let cx = Context {
        client: svc.inner.cx.client.with_stop(token.clone()),
        ..svc.inner.cx.clone()
    };
    let result = match request {
        JobRequest::Backfill {
            from,
            to,
            concurrency,
            skip_existing,
            missing,
            provisional,
            ..
        } => {
            let (feed, progress) = watch::channel(None);
            let selection = if missing {
                Selection::Holes { provisional }
            } else {
                Selection::All
            };
            let req = BackfillRequest {
                from,
                to,
                datasets,
                concurrency: concurrency.clamp(1, 64),
                skip_existing,
            };
            let work = backfill_selected(&cx, &req, ProgressMode::Feed(feed), selection);
            match reporting(work, &tx, Some(progress)).await {
                Ok(report) => {
                    for text in report.lines(&req) {
                        let _ = tx.send(Event::Line { text }).await;
                    }
                    report.into_result().map(|_| ())
                }
                Err(e) => Err(e),
            }
        }
        JobRequest::RunOnce { .. } => {
            let jobs = Some(svc.inner.scheduler.as_ref());
            let work = crate::daemon::run_each_once(&cx, &datasets, &token, jobs);
            let summaries = reporting(work, &tx, None).await;
            for text in crate::daemon::once_lines(&summaries) {
                let _ = tx.send(Event::Line { text }).await;
            }
            crate::daemon::once_result(&summaries)
        }
    };
    let (exit_code, error) = match &result {
        Ok(()) => (0, None),
        Err(e) if svc.inner.stop.is_cancelled() => (
            e.exit_code(),
            Some(format!("the daemon is stopping: {}", error_chain(e))),
        ),
        Err(e) => (e.exit_code(), Some(error_chain(e))),
    };
    match &error {
        None => info!(job = %id, "Handed-over work finished."),
        Some(e) => warn!(job = %id, exit_code, error = %e, "Handed-over work did not complete."),
    }
    let _ = tx.send(Event::Finished { exit_code, error }).await;
    svc.jobs().remove(&id);
}

/// Runs `work`, sending the latest backfill progress (or, without any, a heartbeat) every
/// [`PROGRESS_EVERY`] so a CLI that went away is noticed.
async fn reporting<T>(
    work: impl Future<Output = T>,
    tx: &mpsc::Sender<Event>,
    mut progress: Option<watch::Receiver<Option<(&'static str, ProgressSnapshot)>>>,
) -> T {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                let latest = progress
                    .as_mut()
                    .and_then(|rx| *rx.borrow_and_update());
                let event = match latest {
                    Some((dataset, s)) => Event::Progress(Progress::of(dataset, &s)),
                    None => Event::Alive,
                };
                let _ = tx.send(event).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn work_is_accepted_from_this_host_only() {
        let any = addr("0.0.0.0:9464");
        assert!(from_this_host(addr("127.0.0.1:50000"), any));
        assert!(from_this_host(addr("[::1]:50000"), addr("[::]:9464")));
        assert!(from_this_host(
            addr("[::ffff:127.0.0.1]:50000"),
            addr("[::]:9464")
        ));
        assert!(!from_this_host(addr("10.0.0.7:50000"), any));
        // Listening on a specific address: connections to it from this host come from it.
        let own = addr("10.0.0.5:9464");
        assert!(from_this_host(addr("10.0.0.5:50000"), own));
        assert!(!from_this_host(addr("10.0.0.7:50000"), own));
    }
}
