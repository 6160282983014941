//! The ground truth of the `user_status` dataset (see [`crate::simulator::truth`]): every
//! status entry of every selected agent's buckets that start in the local days asked about,
//! keyed `(user_id, bucket_start, metric, value)`, from [`bucket_statuses_with_malformed`].
//! Entries the simulator serves with an unparsable sum are the rejects.
//!
//! The buckets of a request are aligned to its window start, local midnight at the request's
//! offset; the grid of a day is therefore aligned to the day's first instant wherever its
//! windows start, as long as the granularity divides the hour a DST change moves. Coarser
//! granularities are refused rather than answered wrongly.

use chrono::{DateTime, Utc};

use super::generator::bucket_statuses_with_malformed;
use super::render::{bucket_ref, bucket_timezone_listed, is_supervisor_listed};
use super::UserStatusSim;
use crate::model::Granularity;
use crate::simulator::generator::agent;
use crate::simulator::truth::{
    instant_key, key, local_day, selected_agents, DatasetTruth, ExpectedExtra, ExpectedRow,
    PageRequest, Truth, TruthError, TruthQuery,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "user_status";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// A request window's pages at PT15M (the granularity of the benchmarks).
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    super::pages::user_status_pages(
        cfg,
        req.day,
        i64::from(req.offset_minutes),
        Granularity::PT15M,
        req.page_size,
    )
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let days = q.account_days(DATASET)?;
    let text = q.required_text(DATASET, "granularity")?;
    let granularity: Granularity = text.parse().map_err(|_| TruthError::BadSection {
        dataset: DATASET,
        key: "granularity".into(),
        reason: format!("{text:?} is not a granularity"),
    })?;
    if granularity.minutes() > 60 {
        return Err(TruthError::Unsupported {
            dataset: DATASET,
            what: format!("a day's bucket grid at {text} depends on its request windows"),
        });
    }
    let agents = selected_agents(cfg, &q.texts(DATASET, "agents")?);
    let mut truth = Truth::default();
    for &day in days {
        let range = local_day(q.zone, day);
        for &idx in &agents {
            let user_id = agent(cfg.seed, idx).user_id;
            let mut start = range.start;
            while start < range.end {
                let bucket = instant_key(start);
                for st in bucket_statuses_with_malformed(
                    cfg.seed,
                    idx,
                    start,
                    granularity,
                    cfg.malformed_every,
                ) {
                    let id = key(&[&user_id, &bucket, st.metric, st.value]);
                    if st.malformed {
                        truth.rejects.push(id);
                    } else {
                        let extra = row_extra(cfg, idx, &user_id, start, &id);
                        truth
                            .rows
                            .push(ExpectedRow::new(DATASET, day, None, id).with_extra(extra));
                    }
                }
                start += granularity.duration();
            }
        }
    }
    Ok(truth)
}

/// The `extra` of the row of status entry `entry` (its key) of agent `idx`'s bucket at `start`:
/// the agent's `isSupervisor` (page shape only) and the bucket's `timezone` where the API lists
/// them, and every level's unknown fields when they are on.
fn row_extra(
    cfg: &SimulatorConfig,
    idx: usize,
    user_id: &str,
    start: DateTime<Utc>,
    entry: &str,
) -> ExpectedExtra {
    let legacy = cfg.models.get::<UserStatusSim>().legacy_shape;
    let on = |level: &str, id: &str| {
        if cfg.unknown_fields {
            unknown::fields(level, id)
        } else {
            Vec::new()
        }
    };
    let mut agent = LevelFields::new("agent");
    if !legacy && is_supervisor_listed(cfg.seed, idx) {
        agent.fields.push(("isSupervisor".into(), "false".into()));
    }
    agent.fields.extend(on("agent", user_id));
    let mut bucket = LevelFields::new("bucket");
    if bucket_timezone_listed(cfg.seed, idx, start) {
        bucket.fields.push(("timezone".into(), "\"UTC\"".into()));
    }
    bucket
        .fields
        .extend(on("bucket", &bucket_ref(user_id, start)));
    let mut status = LevelFields::new("status");
    status.fields = on("status", entry);
    let stats = on("stats", entry);
    if !stats.is_empty() {
        status.nested.push(("stats".into(), stats));
    }
    unknown::expected_extra(&[agent, bucket, status])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::truth::TruthUnit;

    #[test]
    fn buckets_coarser_than_an_hour_are_refused_not_guessed() {
        let mut section = toml::Table::new();
        section.insert("agents".into(), toml::Value::Array(Vec::new()));
        let days = ["2024-11-03".parse().unwrap()];
        let cfg = SimulatorConfig::default();
        for (granularity, answered) in [("PT1H", true), ("PT2H", false), ("PT24H", false)] {
            section.insert("granularity".into(), granularity.into());
            let q = TruthQuery {
                section: &section,
                zone: chrono_tz::America::New_York,
                unit: TruthUnit::Days {
                    days: &days,
                    entity: None,
                },
            };
            match answer(&cfg, &q) {
                Ok(t) => assert!(answered && !t.rows.is_empty(), "{granularity}"),
                Err(e) => assert!(
                    !answered && matches!(e, TruthError::Unsupported { .. }),
                    "{granularity}: {e}"
                ),
            }
        }
    }
}
