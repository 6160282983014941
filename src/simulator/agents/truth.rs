//! The ground truth of the `agents` dataset (see [`crate::simulator::truth`]): the list has no
//! history, so the answer for local days is the list as the API serves it, in the snapshot day
//! of the last day asked (an export takes one snapshot); keyed by `agent_id`. The agents sent
//! broken are the rejects.

use super::{is_malformed, render, wfm_agent_id};
use crate::simulator::truth::{
    DatasetTruth, ExpectedRow, PageRequest, Truth, TruthError, TruthQuery,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "agents";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// The whole list on one page (the server's answer to a request without paging).
fn pages(cfg: &SimulatorConfig, _: &PageRequest) -> Vec<String> {
    vec![render(cfg, 0..cfg.agents)]
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let mut truth = Truth::default();
    let Some(&day) = q.account_days(DATASET)?.last() else {
        return Ok(truth);
    };
    for idx in 0..cfg.agents {
        let id = wfm_agent_id(cfg.seed, idx);
        if is_malformed(cfg.malformed_every, idx) {
            truth.rejects.push(id);
            continue;
        }
        let mut level = LevelFields::new("record");
        if cfg.unknown_fields {
            level.fields = unknown::fields("agent", &id);
        }
        let extra = unknown::expected_extra(&[level]);
        truth
            .rows
            .push(ExpectedRow::new(DATASET, day, None, id).with_extra(extra));
    }
    Ok(truth)
}
