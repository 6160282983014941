//! The ground truth of the `agent_performance` dataset (see [`crate::simulator::truth`]):
//! every queue entry of every agent's interval that starts in the local days asked about and
//! has ended by the simulator's "now", keyed `(agent_id, interval_start, queue_id)`. A
//! malformed queue entry is one reject, named like its key.

use super::{interval_ref, performance, render_page, ENVELOPE_REF};
use crate::simulator::truth::{
    instant_key, key, local_day, sim_now, DatasetTruth, ExpectedRow, PageRequest, Truth,
    TruthError, TruthQuery,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "agent_performance";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// A day's pages as served a day after it ended.
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    let range = req.utc_range();
    let now = range.end + chrono::TimeDelta::days(1);
    let all = performance(cfg.seed, cfg.agents, range, now, cfg.malformed_every);
    let size = req.page_size.max(1);
    (0..all.len().div_ceil(size).max(1))
        .map(|n| render_page(cfg, &all, n * size, size))
        .collect()
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let days = q.account_days(DATASET)?;
    let now = sim_now(cfg);
    let mut truth = Truth::default();
    let mut response = LevelFields::new("response");
    if cfg.unknown_fields {
        response.fields = unknown::envelope_fields(ENVELOPE_REF);
    }
    for &day in days {
        let range = local_day(q.zone, day);
        for p in performance(cfg.seed, cfg.agents, range, now, cfg.malformed_every) {
            let mut agent = LevelFields::new("agent");
            if cfg.unknown_fields {
                agent.fields = unknown::fields("agent", &p.agent_id);
            }
            for i in &p.intervals {
                let start = instant_key(i.start);
                let id = interval_ref(&p.agent_id, i.start);
                let mut interval = LevelFields::new("interval");
                if cfg.unknown_fields {
                    interval.fields = unknown::fields("interval", &id);
                }
                for s in &i.queues {
                    let row = key(&[p.agent_id.as_str(), &start, &s.queue.id]);
                    if s.malformed {
                        truth.rejects.push(row);
                        continue;
                    }
                    let mut queue = LevelFields::new("queue");
                    if cfg.unknown_fields {
                        queue.fields = unknown::fields("queue", &format!("{id}/{}", s.queue.id));
                    }
                    let extra = unknown::expected_extra(&[
                        response.clone(),
                        agent.clone(),
                        interval.clone(),
                        queue,
                    ]);
                    truth
                        .rows
                        .push(ExpectedRow::new(DATASET, day, None, row).with_extra(extra));
                }
            }
        }
    }
    Ok(truth)
}
