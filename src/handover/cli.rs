//! The CLI side of a hand-over: before a `backfill` or `run --once` sends any request, it
//! either takes the account's budget lease (and the leases it needs besides) and runs alone,
//! or hands its work to the daemon that holds the budget and relays what the daemon streams
//! back: progress to stderr, output lines to stdout, the exit code. Ctrl-C asks the daemon to
//! cancel the job (`DELETE`) and waits for its last report.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Event, HandoverEndpoint, HandoverError, JobRequest, JOBS_PATH, KEY_HEADER};
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::lease::{self, Holder, Identity, KeptLeases, Leases, BUDGET, LEASE_TTL, RENEW_EVERY};
use crate::progress::{ProgressMode, ProgressView};
use crate::sink::StateStore;
use crate::state;

/// How long connecting to a daemon's hand-over endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest line of the answer stream a CLI accepts.
const MAX_LINE: usize = 1 << 20;
/// Silence after which the daemon counts as gone (it reports every
/// [`super::PROGRESS_EVERY`]).
const SILENCE_LIMIT: Duration = Duration::from_secs(30);

/// Who does the command's work.
pub enum Owner {
    /// This process, holding the budget lease (and the others asked for) until it releases
    /// them.
    Alone(KeptLeases),
    /// The daemon did it; its outcome is the command's.
    HandedOver(Result<(), Error>),
    /// A shutdown signal came while waiting for a lease.
    Stopped,
}

/// What trying one daemon gave.
enum Attempt {
    /// It took the job (or refused it for a reason of its own): the command's outcome.
    Done(Result<(), Error>),
    /// Nobody answering as that daemon at its endpoint.
    Unreachable(String),
}

/// Takes the account's budget lease and `leases` for `command`, or hands `job` to the daemon
/// that holds the budget (see the module docs of [`crate::handover`]).
pub async fn own_or_hand_over(
    state: &StateStore,
    account_id: &str,
    command: &str,
    leases: &[&str],
    job: &JobRequest,
    shutdown: &CancellationToken,
) -> Result<Owner, Error> {
    let budget_lease = lease::lease_name(BUDGET, account_id);
    let mut tried: Option<(HandoverEndpoint, String)> = None;
    if let Some(holder) = state::load::<Holder>(state, &budget_lease).await? {
        if let Some(endpoint) = live_daemon(&holder) {
            match hand_over(&holder, endpoint, job, shutdown).await {
                Attempt::Done(result) => return Ok(Owner::HandedOver(result)),
                Attempt::Unreachable(reason) => tried = Some((endpoint.clone(), reason)),
            }
        }
    }
    // Nobody to hand over to: take the budget (a daemon we could not reach is judged like
    // any holder: a dead one is taken over, a live one refuses).
    let mut names = vec![BUDGET];
    names.extend_from_slice(leases);
    let me = Identity::current();
    let acquired = tokio::select! {
        acquired = Leases::acquire(state, &me, account_id, &names, command, LEASE_TTL) => acquired,
        _ = shutdown.cancelled() => {
            info!("Stopped while waiting for a lease.");
            return Ok(Owner::Stopped);
        }
    };
    let refused = match acquired {
        Ok(leases) => return Ok(Owner::Alone(leases.keep(RENEW_EVERY))),
        Err(e) => e,
    };
    let daemon = refused
        .holder()
        .and_then(|h| h.handover.clone().map(|e| (h.clone(), e)));
    let Some((holder, endpoint)) = daemon else {
        return Err(refused.into());
    };
    let reason = match tried {
        Some((endpoint_tried, reason)) if endpoint_tried == endpoint => reason,
        // A daemon took the budget meanwhile: hand over to it.
        _ => match hand_over(&holder, &endpoint, job, shutdown).await {
            Attempt::Done(result) => return Ok(Owner::HandedOver(result)),
            Attempt::Unreachable(reason) => reason,
        },
    };
    Err(HandoverError::Unreachable {
        addr: endpoint.connect_addr(),
        holder: Box::new(holder),
        reason,
    }
    .into())
}

/// The process spending the account's request budget on this output, if its lease is
/// neither released nor expired (`check` sends no probe beside it).
pub async fn budget_owner(state: &StateStore, account_id: &str) -> Result<Option<Holder>, Error> {
    let holder = state::load::<Holder>(state, &lease::lease_name(BUDGET, account_id)).await?;
    Ok(holder.filter(|h| !h.released && h.expires_at > Utc::now()))
}

/// The hand-over endpoint of a lease that is neither released nor expired.
fn live_daemon(holder: &Holder) -> Option<&HandoverEndpoint> {
    (!holder.released && holder.expires_at > Utc::now())
        .then_some(holder.handover.as_ref())
        .flatten()
}

async fn hand_over(
    holder: &Holder,
    endpoint: &HandoverEndpoint,
    job: &JobRequest,
    shutdown: &CancellationToken,
) -> Attempt {
    let addr = endpoint.connect_addr();
    // The endpoint is on this host: never through a proxy from the environment.
    let http = match reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
    {
        Ok(http) => http,
        Err(e) => return Attempt::Unreachable(error_chain(&e)),
    };
    let body = match serde_json::to_vec(job) {
        Ok(body) => body,
        Err(e) => return Attempt::Unreachable(error_chain(&e)),
    };
    let sent = http
        .post(format!("http://{addr}{JOBS_PATH}"))
        .header(KEY_HEADER, endpoint.key.expose())
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => return Attempt::Unreachable(error_chain(&e.without_url())),
    };
    let status = response.status();
    if status != StatusCode::OK {
        let message = response.text().await.unwrap_or_default().trim().to_string();
        // Another process, or an older daemon, at that address.
        if matches!(
            status,
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ) {
            return Attempt::Unreachable(format!("HTTP {status}: {message}"));
        }
        return Attempt::Done(Err(HandoverError::Refused {
            status: status.as_u16(),
            message,
        }
        .into()));
    }
    info!(
        daemon = %holder,
        work = %job.describe(),
        "A daemon owns the account's request budget; it does the work (Ctrl-C cancels it)."
    );
    Attempt::Done(relay(&http, addr, endpoint, response, shutdown).await)
}

/// Relays the daemon's answer stream until its `finished` event.
async fn relay(
    http: &reqwest::Client,
    addr: SocketAddr,
    endpoint: &HandoverEndpoint,
    mut response: reqwest::Response,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let mut view = ProgressView::new(&ProgressMode::detect());
    let mut buf: Vec<u8> = Vec::new();
    let mut job: Option<String> = None;
    let (mut cancel_wanted, mut cancel_sent) = (false, false);
    loop {
        if cancel_wanted && !cancel_sent {
            if let Some(id) = &job {
                cancel_sent = true;
                cancel(http, addr, endpoint, id).await;
            }
        }
        let chunk = tokio::select! {
            chunk = tokio::time::timeout(SILENCE_LIMIT, response.chunk()) => chunk,
            _ = shutdown.cancelled(), if !cancel_wanted => {
                cancel_wanted = true;
                continue;
            }
        };
        let chunk = match chunk {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => return Err(lost("the answer ended without a result")),
            Ok(Err(e)) => return Err(lost(&error_chain(&e.without_url()))),
            Err(_) => return Err(lost("no word from it for 30 s")),
        };
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event = match serde_json::from_slice::<Event>(&line) {
                Ok(event) => event,
                Err(e) => {
                    warn!(error = %e, "Skipping a line of the daemon's answer this version cannot read.");
                    continue;
                }
            };
            match event {
                Event::Accepted { job: id } => job = Some(id),
                Event::Progress(p) => view.update(&p.dataset, &p.snapshot()),
                Event::Line { text } => view.println(&text),
                Event::Alive => {}
                Event::Finished { exit_code: 0, .. } => return Ok(()),
                Event::Finished { exit_code, error } => {
                    return Err(HandoverError::Failed {
                        exit_code,
                        message: error
                            .unwrap_or_else(|| format!("the daemon's job ended with {exit_code}")),
                    }
                    .into())
                }
            }
        }
        if buf.len() > MAX_LINE {
            return Err(lost("a line of the answer is longer than 1 MiB"));
        }
    }
}

fn lost(reason: &str) -> Error {
    HandoverError::Lost {
        reason: reason.to_string(),
    }
    .into()
}

/// Asks the daemon to cancel job `id` (best effort: the answer stream says how it ended).
async fn cancel(http: &reqwest::Client, addr: SocketAddr, endpoint: &HandoverEndpoint, id: &str) {
    info!("Cancelling the handed-over job; the daemon stops it and reports what it finished.");
    let sent = http
        .delete(format!("http://{addr}{JOBS_PATH}/{id}"))
        .header(KEY_HEADER, endpoint.key.expose())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => warn!(
            status = r.status().as_u16(),
            "The daemon did not cancel the job."
        ),
        Err(e) => {
            warn!(error = %error_chain(&e.without_url()), "Could not ask the daemon to cancel the job.")
        }
    }
}
