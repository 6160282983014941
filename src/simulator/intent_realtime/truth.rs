//! The ground truth of the `intent_realtime` dataset (see [`crate::simulator::truth`]): what one
//! poll of a bot returns at the simulator's "now", from [`latest_sessions`]: one row per
//! session keyed `session_id`, in the partition of the bot and of the local date of the
//! session's end. A session served with an unparsable end is one reject and no row.

use super::{feed, latest_sessions};
use crate::simulator::truth::{
    local_date, sim_now, DatasetTruth, ExpectedRow, PageRequest, Truth, TruthError, TruthQuery,
    TruthUnit,
};
use crate::simulator::unknown::{self, LevelFields};
use crate::simulator::SimulatorConfig;

const DATASET: &str = "intent_realtime";

pub(crate) const TRUTH: DatasetTruth = DatasetTruth {
    dataset: DATASET,
    answer,
    pages,
};

/// One poll of the first bot at the end of the request's day (the API has no window and no
/// paging).
fn pages(cfg: &SimulatorConfig, req: &PageRequest) -> Vec<String> {
    let Some(bot) = cfg.bots.first() else {
        return Vec::new();
    };
    let sessions = latest_sessions(&feed(cfg, bot), req.utc_range().end);
    vec![super::render::sessions(&sessions, cfg.unknown_fields)]
}

fn answer(cfg: &SimulatorConfig, q: &TruthQuery<'_>) -> Result<Truth, TruthError> {
    let TruthUnit::Poll { entity: bot } = q.unit else {
        return Err(TruthError::Unsupported {
            dataset: DATASET,
            what: format!("its unit is one poll of a bot, not {:?}", q.unit),
        });
    };
    if !cfg.bots.iter().any(|b| b == bot) {
        return Err(TruthError::Unsupported {
            dataset: DATASET,
            what: format!("the simulator serves no bot {bot:?} (it answers 404)"),
        });
    }
    let mut truth = Truth::default();
    for s in latest_sessions(&feed(cfg, bot), sim_now(cfg)) {
        if s.malformed {
            truth.rejects.push(s.session_id);
            continue;
        }
        let mut session = LevelFields::new("session");
        if cfg.unknown_fields {
            session.fields = unknown::fields("session", &s.session_id);
        }
        let day = local_date(q.zone, s.end_time);
        truth.rows.push(
            ExpectedRow::new(DATASET, day, Some(bot.to_string()), s.session_id)
                .with_extra(unknown::expected_extra(&[session])),
        );
    }
    Ok(truth)
}
