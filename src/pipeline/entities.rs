//! The scheduled run of a history dataset whose day has one unit per entity (`bot_sessions`:
//! one per bot and local day). Each entity has its own watermark
//! ([`state::entity_watermark_name`]) and plans its own days from it (`lookback_days` and
//! `max_days_per_run` per entity), so an entity that keeps failing (a deleted bot answering
//! 404) holds back only its own days: the other entities advance over their own committed
//! prefixes, and a second run does not redo their days. Entities run concurrently, at most
//! [`ENTITIES_IN_FLIGHT`] at once, each one's days in order: they do not share a request
//! budget (each bot has its own, [`crate::client::ApiClient::for_bot`]), and response pages in
//! memory stay bounded across all of them by the context's page gate.
//!
//! Upgrading from the dataset-level watermark (`_state/<dataset>/account_id=A.json`, written
//! by builds before this one): an entity without a watermark of its own starts from that one,
//! and stores it as its own even when it exported nothing; once every configured entity has
//! stored its own, the dataset-level object is marked taken over ([`state::DatasetMark`]), so
//! an entity configured later starts at `lookback_days` before today like a first run. An
//! entity removed from the config is simply no longer read: its watermark pins nothing.

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{export_in_order, next_watermark, store_watermark, DaysRun, RunSummary};
use crate::datasets::{Context, HistoryDataset};
use crate::error_chain::error_chain;
use crate::sources::window::local_date;
use crate::state::{self, DatasetMark, StateError, Watermark};

/// Entities whose days are exported at the same time. Each has a request budget of its own
/// (the XO runtime limits are per bot), so running them side by side takes nothing from
/// another; a bot-day of 15 pages took 31 s one after the other, and with the per-bot limit
/// (60 a minute) the requests of one bot leave the link mostly idle. Four keeps the open
/// connections and the coverage writes of a run modest while most configs (a handful of
/// bots) run all at once.
pub const ENTITIES_IN_FLIGHT: usize = 4;

/// One entity's part of the run.
struct EntityPlan {
    entity: String,
    state_name: String,
    /// Its watermark before the run: its own, or the dataset-level one it starts from.
    previous: Option<Watermark>,
    /// `previous` is the dataset-level watermark, not yet stored as the entity's own.
    inherited: bool,
    plan: Vec<NaiveDate>,
}

/// A run of every configured entity (see the module docs); the caller finishes the summary.
pub(super) async fn run(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    stop: &CancellationToken,
    now: DateTime<Utc>,
    run_id: &str,
) -> RunSummary {
    let name = dataset.info().name;
    let legacy_name = state::watermark_name(name, &cx.account_id);
    let legacy = match state::load::<DatasetMark>(&cx.state, &legacy_name).await {
        Ok(l) => l.filter(|l| !l.entities_took_over).map(|l| l.mark),
        Err(e) => {
            let mut s = RunSummary::new(name, "-".into(), run_id);
            s.outcome = super::Outcome::Failure;
            s.error = Some(error_chain(&e));
            return s;
        }
    };
    let today = local_date(dataset.schedule().timezone, now);
    let mut unreadable = DaysRun::default();
    let mut plans = Vec::new();
    for entity in dataset.entities() {
        match plan_entity(dataset, cx, entity, legacy.as_ref(), today).await {
            Ok(p) => plans.push(p),
            Err(e) => unreadable
                .failed
                .push(format!("{entity}: {}", error_chain(&e))),
        }
    }
    let window = match (
        plans.iter().filter_map(|p| p.plan.first()).min(),
        plans.iter().filter_map(|p| p.plan.last()).max(),
    ) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "-".into(),
    };
    let mut summary = RunSummary::new(name, window, run_id);
    let work = Work {
        dataset,
        cx,
        stop,
        today,
        now,
        run_id,
    };
    let entities: Vec<_> = plans.iter().map(|p| work.entity(p)).collect();
    let runs: Vec<(usize, DaysRun)> = futures::stream::iter(entities)
        .buffered(ENTITIES_IN_FLIGHT)
        .collect()
        .await;
    let mut all = unreadable;
    let mut every_entity_stored = all.failed.is_empty();
    for (p, (done, days)) in plans.iter().zip(runs) {
        all.absorb(days);
        let tz = dataset.schedule().timezone;
        let exported = next_watermark(p.previous.as_ref(), &p.plan[..done], tz, now);
        // An inherited watermark is stored as the entity's own even when nothing was exported.
        let mark = exported.or_else(|| p.previous.clone().filter(|_| p.inherited));
        let stored = match mark {
            Some(mark) => {
                let key = (name, p.entity.as_str());
                store_watermark(cx, key, &p.state_name, &mark, &mut summary).await
            }
            None => !p.inherited,
        };
        every_entity_stored &= stored;
    }
    all.settle_into(&mut summary);
    if legacy.is_some() && every_entity_stored && summary.outcome != super::Outcome::Cancelled {
        mark_taken_over(cx, &legacy_name).await;
    }
    summary
}

/// What every entity's days of one run share.
#[derive(Clone, Copy)]
struct Work<'a> {
    dataset: &'a dyn HistoryDataset,
    cx: &'a Context,
    stop: &'a CancellationToken,
    today: NaiveDate,
    now: DateTime<Utc>,
    run_id: &'a str,
}

impl<'a> Work<'a> {
    /// Exports the planned days of one entity in order: how many of them, from the start,
    /// were exported, and what its days did.
    async fn entity(self, p: &'a EntityPlan) -> (usize, DaysRun) {
        let mut out = DaysRun::default();
        let unit = (p.plan.as_slice(), Some(p.entity.as_str()));
        let (cx, stop) = (self.cx, self.stop);
        let done = export_in_order(
            self.dataset,
            cx,
            stop,
            unit,
            self.today,
            self.now,
            self.run_id,
            &mut out,
        )
        .await;
        (done, out)
    }
}

/// Reads `entity`'s watermark (or starts it from `legacy`), reports its coverage to the lag
/// gauge, and plans its days.
async fn plan_entity(
    dataset: &dyn HistoryDataset,
    cx: &Context,
    entity: &str,
    legacy: Option<&Watermark>,
    today: NaiveDate,
) -> Result<EntityPlan, StateError> {
    let name = dataset.info().name;
    let state_name =
        state::entity_watermark_name(name, &cx.account_id, dataset.entity_kind(), entity);
    let own = state::load::<Watermark>(&cx.state, &state_name).await?;
    let inherited = own.is_none() && legacy.is_some();
    let previous = own.or_else(|| legacy.cloned());
    if let Some(p) = &previous {
        cx.metrics.set_covered(name, entity, p.covered_until);
    }
    let schedule = dataset.schedule();
    let plan = super::plan_days(dataset.day_scope(), previous.as_ref(), today, schedule);
    Ok(EntityPlan {
        entity: entity.to_string(),
        state_name,
        previous,
        inherited,
        plan,
    })
}

/// Marks the dataset-level watermark as taken over by the entities (every configured one
/// has stored its own). A failure only means the next run tries again.
async fn mark_taken_over(cx: &Context, legacy_name: &str) {
    let marked = state::update(&cx.state, legacy_name, |current: Option<DatasetMark>| {
        let mut current = current?;
        if current.entities_took_over {
            return None;
        }
        current.entities_took_over = true;
        Some(current)
    })
    .await;
    if let Err(e) = marked {
        warn!(error = %error_chain(&e), "Could not mark the dataset watermark as taken over by its entities; the next run tries again.");
    }
}
