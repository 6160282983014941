//! The ground truth of the `contact_volume` dataset (see [`crate::simulator::truth`]): every
//! record whose interval starts in the local days asked about and has ended by the simulator's
//! "now", keyed `(queue_id, interval_start)`, and with `include_skill_breakdown` (default true)
//! its skills in `contact_volume_skills`, keyed `(queue_id, interval_start, skill_id)`. A
//! malformed record is one reject (named by its row's key), and none of its rows.

use super::{render_page, skill_ref, volumes, ContactVolumeSim, ENVELOPE_REF};
use crate::simulator::truth::{
    instant_key, key, local_day, sim_now, DatasetTruth, ExpectedRow, PageRequest, Truth,
    TruthError, TruthQuery,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "contact_volume";
const SKILLS: &str = "contact_volume_skills";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// A day's pages as served a day after it ended, skills included.
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    let range = req.utc_range();
    let now = range.end + chrono::TimeDelta::days(1);
    let all = volumes(cfg.seed, range, now, cfg.malformed_every);
    let sim = cfg.models.get::<ContactVolumeSim>();
    let size = req.page_size.max(1);
    (0..all.len().div_ceil(size).max(1))
        .map(|n| render_page(cfg, &sim, &all, "o-bench", n * size, size, true))
        .collect()
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let days = q.account_days(DATASET)?;
    let skills = match q.section.get("include_skill_breakdown") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => {
            return Err(TruthError::BadSection {
                dataset: DATASET,
                key: "include_skill_breakdown".into(),
                reason: format!("expected a boolean, not {other}"),
            })
        }
    };
    let now = sim_now(cfg);
    let mut truth = Truth::default();
    let mut response = LevelFields::new("response");
    if cfg.unknown_fields {
        response.fields = unknown::envelope_fields(ENVELOPE_REF);
    }
    for &day in days {
        for v in volumes(cfg.seed, local_day(q.zone, day), now, cfg.malformed_every) {
            let start = instant_key(v.start);
            if v.malformed {
                truth.rejects.push(key(&[v.queue.id.as_str(), &start]));
                continue;
            }
            let mut record = LevelFields::new("record");
            record.fields.push(("__v".into(), "0".into()));
            if cfg.unknown_fields {
                record
                    .fields
                    .extend(unknown::fields("record", &v.record_id));
            }
            truth.rows.push(
                ExpectedRow::new(DATASET, day, None, key(&[v.queue.id.as_str(), &start]))
                    .with_extra(unknown::expected_extra(&[response.clone(), record.clone()])),
            );
            if !skills {
                continue;
            }
            for s in &v.skills {
                let mut level = LevelFields::new("skill");
                if cfg.unknown_fields {
                    level.fields = unknown::fields("skill", &skill_ref(&v, s));
                }
                let id = key(&[v.queue.id.as_str(), &start, &s.id]);
                truth
                    .rows
                    .push(ExpectedRow::new(SKILLS, day, None, id).with_extra(
                        unknown::expected_extra(&[response.clone(), record.clone(), level]),
                    ));
            }
        }
    }
    Ok(truth)
}
