//! The ground truth of the `agent_activity` dataset (see [`crate::simulator::truth`]): every
//! event of every agent whose instant is in the local days asked about, keyed `(agent_id,
//! event_time, activity)`, from [`agent_events`]; the malformed ones are the rejects, each once,
//! in its own day (events of both occurrences of a repeated fall-back hour included). The
//! section's `event_time_zone` must be the zone the model writes times in.

use super::{agent_events, event_ref, render, response_fields, AgentActivitySim};
use crate::simulator::agents::wfm_agent_id;
use crate::simulator::truth::{
    instant_key, key, local_day, sim_now, DatasetTruth, ExpectedRow, PageRequest, Truth,
    TruthError, TruthQuery,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "agent_activity";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// A request window's one page, answered a day after it ended.
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    let mut cfg = cfg.clone();
    let range = req.utc_range();
    cfg.frozen_now = Some(range.end + chrono::TimeDelta::days(1));
    vec![render(&cfg, range)]
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let days = q.account_days(DATASET)?;
    let sim = cfg.models.get::<AgentActivitySim>();
    let zone = q.text(DATASET, "event_time_zone")?.unwrap_or("UTC");
    if zone != sim.event_zone.name() {
        return Err(TruthError::Unsupported {
            dataset: DATASET,
            what: format!(
                "event_time_zone {zone} is not the zone the model writes ({})",
                sim.event_zone
            ),
        });
    }
    let now = sim_now(cfg);
    let mut truth = Truth::default();
    for &day in days {
        let range = local_day(q.zone, day);
        for idx in 0..cfg.agents {
            let agent = wfm_agent_id(cfg.seed, idx);
            for e in agent_events(
                cfg.seed,
                idx,
                range.clone(),
                now,
                sim.event_zone,
                cfg.malformed_every,
            ) {
                let id = key(&[agent.as_str(), &instant_key(e.at), e.activity]);
                if e.malformed {
                    truth.rejects.push(id);
                    continue;
                }
                let mut level = LevelFields::new("update");
                if cfg.unknown_fields {
                    level.fields = unknown::fields("update", &event_ref(&agent, e.at));
                }
                let mut response = LevelFields::new("response");
                if cfg.unknown_fields {
                    response.fields = response_fields(cfg);
                }
                let extra = unknown::expected_extra(&[response, level]);
                truth
                    .rows
                    .push(ExpectedRow::new(DATASET, day, None, id).with_extra(extra));
            }
        }
    }
    Ok(truth)
}
