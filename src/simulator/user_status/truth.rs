//! The ground truth of the `user_status` dataset (see [`crate::simulator::truth`]): every
//! status entry of every selected agent's buckets that start in the local days asked about,
//! keyed `(user_id, bucket_start, metric, value)`, from [`bucket_statuses_with_malformed`].
//! Entries the simulator serves with an unparsable sum are the rejects.
//!
//! The buckets of a request are aligned to its window start, local midnight at the request's
//! offset; the grid of a day is therefore aligned to the day's first instant wherever its
//! windows start, as long as the granularity divides the hour a DST change moves. Coarser
//! granularities are refused rather than answered wrongly.

use super::generator::bucket_statuses_with_malformed;
use crate::model::Granularity;
use crate::simulator::generator::agent;
use crate::simulator::truth::{
    instant_key, key, local_day, selected_agents, DatasetTruth, ExpectedRow, Truth, TruthError,
    TruthQuery,
};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "user_status";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
};

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
                        truth.rows.push(ExpectedRow {
                            table: DATASET,
                            day,
                            entity: None,
                            key: id,
                        });
                    }
                }
                start += granularity.duration();
            }
        }
    }
    Ok(truth)
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
