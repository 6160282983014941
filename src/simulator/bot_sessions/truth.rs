//! The ground truth of the `bot_sessions` dataset (see [`crate::simulator::truth`]): for each
//! local day of a bot, the sessions getSessions lists at the simulator's "now" whose start
//! falls in the day (of every bot served when the query names none), one row each keyed
//! `session_id`, in the partition of the bot and day. A
//! session served with a broken count is one reject and no row. Every row's `extra` holds the
//! `tags.altText` the API always sends (no column maps it), plus the unknown fields.

use super::listed;
use crate::simulator::intent_realtime::feed;
use crate::simulator::truth::{
    local_day, sim_now, DatasetTruth, ExpectedRow, PageRequest, Truth, TruthError, TruthQuery,
    TruthUnit,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "bot_sessions";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// The pages of the first bot for the request's UTC range.
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    let Some(bot) = cfg.bots.first() else {
        return Vec::new();
    };
    let now = sim_now(cfg);
    let all = listed(&feed(cfg, bot), &req.utc_range(), now);
    let size = req.page_size.max(1);
    let chunks: Vec<_> = all.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            super::render(
                bot,
                all.len(),
                i + 1 < chunks.len(),
                c.iter(),
                now,
                cfg.unknown_fields,
            )
        })
        .collect()
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let TruthUnit::Days { days, entity } = q.unit else {
        return Err(TruthError::Unsupported {
            dataset: DATASET,
            what: format!("its unit is a local day of a bot, not {:?}", q.unit),
        });
    };
    // Without an entity: the days of every bot the simulator serves.
    let bots: Vec<&str> = match entity {
        Some(bot) if cfg.bots.iter().any(|b| b == bot) => vec![bot],
        Some(bot) => {
            return Err(TruthError::Unsupported {
                dataset: DATASET,
                what: format!("the simulator serves no bot {bot:?} (it answers 404)"),
            })
        }
        None => cfg.bots.iter().map(String::as_str).collect(),
    };
    let mut truth = Truth::default();
    for (bot, &day) in bots.iter().flat_map(|b| days.iter().map(move |d| (*b, d))) {
        for s in listed(&feed(cfg, bot), &local_day(q.zone, day), sim_now(cfg)) {
            if s.malformed {
                truth.rejects.push(s.id().to_string());
                continue;
            }
            let mut level = LevelFields::new("session");
            let mut tags = vec![("altText".to_string(), "[]".to_string())];
            if cfg.unknown_fields {
                level.fields = unknown::fields("session", s.id());
                tags.extend(unknown::fields("tags", s.id()));
            }
            level.nested = vec![("tags".to_string(), tags)];
            truth.rows.push(
                ExpectedRow::new(DATASET, day, Some(bot.to_string()), s.id().to_string())
                    .with_extra(unknown::expected_extra(&[level])),
            );
        }
    }
    Ok(truth)
}
