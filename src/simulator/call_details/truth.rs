//! The ground truth of the `call_details` dataset (see [`crate::simulator::truth`]): every
//! session starting in the local days asked about that passes the section's `channels`,
//! `queues` and `direction` filters (as the handler filters a request's body), from
//! [`calls_in`]: one `call_details` row keyed `session_id`, and one `call_segments` row per leg
//! of [`segments`], keyed `(session_id, segment_index)`, both in the day of the session's start.
//! A hostile session is one reject and no row.

use serde_json::{json, Value};

use super::http::passes_filters;
use super::{calls_in, segments};
use crate::simulator::truth::{
    key, local_day, DatasetTruth, ExpectedRow, Truth, TruthError, TruthQuery,
};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "call_details";
const SEGMENTS: &str = "call_segments";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
};

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let days = q.account_days(DATASET)?;
    let filter = filter_body(q)?;
    let mut truth = Truth::default();
    for &day in days {
        let range = local_day(q.zone, day);
        for call in calls_in(cfg, range) {
            if !passes_filters(&filter, &call) {
                continue;
            }
            if call.malformed.is_some() {
                truth.rejects.push(call.session_id);
                continue;
            }
            let row = |table, key| ExpectedRow {
                table,
                day,
                entity: None,
                key,
            };
            truth.rows.push(row(DATASET, call.session_id.clone()));
            for leg in segments(&call) {
                let index = leg.index.to_string();
                truth
                    .rows
                    .push(row(SEGMENTS, key(&[call.session_id.as_str(), &index])));
            }
        }
    }
    Ok(truth)
}

/// The request body filters the section's keys send.
fn filter_body(q: &TruthQuery<'_>) -> Result<Value, TruthError> {
    let mut body = json!({
        "channels": q.texts(DATASET, "channels")?,
        "queues": q.texts(DATASET, "queues")?,
    });
    if let Some(direction) = q.text(DATASET, "direction")? {
        body["direction"] = json!(direction);
    }
    Ok(body)
}
