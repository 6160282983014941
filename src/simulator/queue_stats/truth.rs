//! The ground truth of the `queue_stats` dataset (see [`crate::simulator::truth`]): what one
//! poll of a queue returns at the simulator's "now" (to the second), from [`queue_snapshot`]
//! with the section's `channels` and `languages`: one row keyed `queue_id|polled_at`, in the
//! partition of the local date of that second. A broken answer is one reject (named by the
//! key its row would have had) and no row.

use super::{queue_snapshot, render, Filters};
use crate::simulator::truth::{
    instant_key, key, local_date, sim_now, DatasetTruth, ExpectedRow, PageRequest, Truth,
    TruthError, TruthQuery, TruthUnit,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "queue_stats";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// One poll of the first configured entity (a queue id) at the end of the request's day.
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    let Some(queue) = cfg.bots.first() else {
        return Vec::new();
    };
    let at = req.utc_range().end - chrono::TimeDelta::seconds(1);
    let q = queue_snapshot(cfg, queue, &Filters::default(), at);
    vec![render::answer(&q, cfg.unknown_fields)]
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let TruthUnit::Poll { entity: queue } = q.unit else {
        return Err(TruthError::Unsupported {
            dataset: DATASET,
            what: format!("its unit is one poll of a queue, not {:?}", q.unit),
        });
    };
    let filters = Filters::new(
        &q.texts(DATASET, "channels")?,
        &q.texts(DATASET, "languages")?,
    );
    let g = queue_snapshot(cfg, queue, &filters, sim_now(cfg));
    let row_key = key(&[queue.to_string(), instant_key(g.at)]);
    let mut truth = Truth::default();
    if g.malformed {
        truth.rejects.push(row_key);
        return Ok(truth);
    }
    let mut level = LevelFields::new("queue");
    if cfg.unknown_fields {
        level.fields = render::unknown_of("queue", &g);
        level.nested = vec![
            ("agentStatus".into(), render::unknown_of("agentStatus", &g)),
            (
                "queueSummary".into(),
                render::unknown_of("queueSummary", &g),
            ),
        ];
    }
    truth.rows.push(
        ExpectedRow::new(DATASET, local_date(q.zone, g.at), None, row_key)
            .with_extra(unknown::expected_extra(&[level])),
    );
    Ok(truth)
}
