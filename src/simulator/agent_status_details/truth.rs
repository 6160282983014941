//! The ground truth of the `agent_status_details` dataset (see [`crate::simulator::truth`]):
//! every span of a selected agent that starts in the local days asked about, as it is at the
//! simulator's "now", keyed `(user_id, start_time)` with the start truncated to the second as
//! the API renders it, from [`agent_spans`]. A span is the day's however far it reaches into
//! the next; its malformed ones are the rejects, each once, in its own day.

use chrono::{DateTime, Utc};

use super::{agent_spans, events_json, is_supervisor_listed, span_ref, AsdRender, Generation};
use crate::simulator::generator::agent;
use crate::simulator::truth::{
    instant_key, key, local_day, selected_agents, sim_now, DatasetTruth, ExpectedExtra,
    ExpectedRow, PageRequest, Truth, TruthError, TruthQuery,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "agent_status_details";

/// The `extra` of a span row: the agent's `isSupervisor` and `/v3` `events` where the API sends
/// them, and the agent's and span's unknown fields when they are on.
fn row_extra(
    cfg: &SimulatorConfig,
    idx: usize,
    user_id: &str,
    start: DateTime<Utc>,
    v3: bool,
) -> ExpectedExtra {
    let mut agent = LevelFields::new("agent");
    if is_supervisor_listed(cfg.seed, idx) {
        agent.fields.push(("isSupervisor".into(), "false".into()));
    }
    if v3 {
        agent
            .fields
            .push(("events".into(), events_json(cfg.seed, idx)));
    }
    let mut span = LevelFields::new("span");
    if cfg.unknown_fields {
        agent.fields.extend(unknown::fields("agent", user_id));
        span.fields = unknown::fields("span", &span_ref(user_id, start));
    }
    unknown::expected_extra(&[agent, span])
}

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// A request window's pages (unversioned path) as served a day after it ended, every agent
/// selected.
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    let served = req.utc_range();
    let render = AsdRender {
        seed: cfg.seed,
        generation: Generation::Unversioned,
        offset_minutes: i64::from(req.offset_minutes),
        now: served.end + chrono::TimeDelta::days(1),
        served,
        malformed_every: cfg.malformed_every,
        unknown_fields: cfg.unknown_fields,
    };
    let agents: Vec<_> = (0..cfg.agents).map(|i| agent(cfg.seed, i)).collect();
    let all: Vec<usize> = (0..agents.len()).collect();
    let size = req.page_size.max(1);
    all.chunks(size)
        .enumerate()
        .map(|(n, page)| {
            let offset = n * size;
            render.page(&agents, page, offset + page.len() < all.len(), size, offset)
        })
        .collect()
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let days = q.account_days(DATASET)?;
    let agents = selected_agents(cfg, &q.texts(DATASET, "agents")?);
    // The `/v3` generation adds `events`; the section's path names the generation.
    let v3 = q
        .text(DATASET, "path")?
        .is_some_and(|p| p.to_ascii_lowercase().contains("/v3/"));
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
                let extra = row_extra(cfg, idx, &user_id, span.start, v3);
                truth
                    .rows
                    .push(ExpectedRow::new(DATASET, day, None, id).with_extra(extra));
            }
        }
    }
    Ok(truth)
}
