//! The simulator's Queue Size model: `POST /agentassist/api/v1/public/{streamId}/monitor/
//! queueStatsById/{queueId}` (a trailing `/` as in the documented sample is the same path)
//! answers the state of the queue at "now" (`frozen_now` or the clock, to the second) as a
//! JSON array with one queue record, preceded by a `//` line comment as in the documented
//! sample (reference §9). The stream id must be the simulator's `iid` (else 404); every queue
//! id is known (its data come from the id). The body's `channels` and `languages` filters
//! (either casing) change the numbers, as a filtered view of the queue would. Under
//! `malformed_every`, about one answer in that many carries a broken record (`waiting` as a
//! string), which the exporter must reject.
//!
//! The data come from the pure generator in `generator.rs` (re-exported here): tests compare
//! each exported row with [`queue_snapshot`] at the moment the model served it, which the
//! model records for every answer ([`served`]).

mod generator;
mod render;
mod truth;

use std::sync::Mutex;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};

pub use generator::{queue_snapshot, Filters, GeneratedQueue};

use crate::simulator::model::{check_header, ApiModel, ApiRequest, Handler, ModelState, Reply};
use crate::simulator::shared::{lock, Shared};
use crate::simulator::{RunningSimulator, SimulatorConfig};

/// The `/_sim/stats` label of Queue Size requests.
pub const ENDPOINT: &str = "queuestatsbyid";

pub(crate) static MODEL: ApiModel = ApiModel {
    endpoint: ENDPOINT,
    route,
    methods: &[Method::POST],
    gated: true,
    blocking: false,
    state: Some(new_log),
    truth: Some(truth::TRUTH),
};

/// One answer the model served: the queue, the filters and the moment (whole seconds) whose
/// state it rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub queue_id: String,
    pub filters: Filters,
    pub at: DateTime<Utc>,
}

/// Every answer served, in order.
struct ServedLog(Mutex<Vec<Served>>);

fn new_log(_: &SimulatorConfig) -> ModelState {
    Box::new(ServedLog(Mutex::new(Vec::new())))
}

/// Every answer `sim` served so far, in order (for tests: the moment each queue state was
/// taken, to compare exported rows with [`queue_snapshot`] at that moment).
pub fn served(sim: &RunningSimulator) -> Vec<Served> {
    sim.shared
        .state::<ServedLog>()
        .map(|log| lock(&log.0).clone())
        .unwrap_or_default()
}

fn route(segments: &[&str]) -> Option<Handler> {
    match segments {
        ["agentassist", "api", "v1", "public", stream, "monitor", "queueStatsById", queue] => {
            let (stream, queue) = (stream.to_string(), queue.to_string());
            Some(Handler::new(move |shared, req| {
                queue_stats(shared, &stream, &queue, req).unwrap_or_else(|e| e)
            }))
        }
        _ => None,
    }
}

fn queue_stats(
    shared: &Shared,
    stream: &str,
    queue: &str,
    req: &ApiRequest,
) -> Result<Reply, Reply> {
    let cfg = &shared.cfg;
    check_header(&req.headers, "accountId", &cfg.account_id, true)?;
    if stream != cfg.iid {
        return Err(Reply::error(StatusCode::NOT_FOUND, "Stream not found"));
    }
    let filters = Filters::from_body(&req.body)
        .map_err(|e| Reply::bad_request(&format!("invalid body: {e}")))?;
    let now = cfg.frozen_now.unwrap_or_else(Utc::now);
    let at = generator::second_of(now);
    let q = queue_snapshot(cfg, queue, &filters, at);
    if let Some(log) = shared.state::<ServedLog>() {
        lock(&log.0).push(Served {
            queue_id: queue.to_string(),
            filters,
            at,
        });
    }
    Ok(Reply::json(
        StatusCode::OK,
        render::answer(&q, cfg.unknown_fields),
    ))
}

#[cfg(test)]
mod tests;
