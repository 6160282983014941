//! The ground truth of the `agent_status_details` dataset (see [`crate::simulator::truth`]):
//! every span of a selected agent that starts in the local days asked about, as it is at the
//! simulator's "now", keyed `(user_id, start_time)` with the start truncated to the second as
//! the API renders it, from [`agent_spans`]. A span is the day's however far it reaches into
//! the next; its malformed ones are the rejects, each once, in its own day.

use chrono::DateTime;

use super::agent_spans;
use crate::simulator::generator::agent;
use crate::simulator::truth::{
    instant_key, key, local_day, selected_agents, sim_now, DatasetTruth, ExpectedRow, Truth,
    TruthError, TruthQuery,
};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "agent_status_details";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
};

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let days = q.account_days(DATASET)?;
    let agents = selected_agents(cfg, &q.texts(DATASET, "agents")?);
    let now = sim_now(cfg);
    let mut truth = Truth::default();
    for &day in days {
        let range = local_day(q.zone, day);
        for &idx in &agents {
            let user_id = agent(cfg.seed, idx).user_id;
            for span in agent_spans(cfg.seed, idx, range.clone(), now, cfg.malformed_every) {
                if span.start < range.start {
                    continue;
                }
                // The API renders times truncated to the second.
                let rendered =
                    DateTime::from_timestamp(span.start.timestamp(), 0).unwrap_or(span.start);
                let id = key(&[user_id.as_str(), &instant_key(rendered)]);
                if span.malformed.is_some() {
                    truth.rejects.push(id);
                    continue;
                }
                truth.rows.push(ExpectedRow {
                    table: DATASET,
                    day,
                    entity: None,
                    key: id,
                });
            }
        }
    }
    Ok(truth)
}
