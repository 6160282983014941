//! What the classification of [`super::status`] reads of a dataset: its facts from the config
//! ([`DatasetFacts`]: kind, zone, schedule, lookback, entities, whether past days can be
//! fetched) and what is stored for it ([`Stored`]: its watermark, or each entity's, and its
//! coverage months), loaded from the state store by [`read`] as the scheduled run reads them.
//! Everything after this is pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use super::record::{CoverageMonth, Month};
use super::status::DEFAULT_DAYS;
use crate::config::Schedule;
use crate::datasets::{Dataset, HistoryDataset, Kind, SnapshotDataset};
use crate::error_chain::error_chain;
use crate::sink::StateStore;
use crate::sources::window::local_date;
use crate::state::{self, Watermark};

/// What the classification needs to know of a dataset besides what is stored.
#[derive(Debug, Clone)]
pub struct DatasetFacts {
    pub name: &'static str,
    pub kind: Kind,
    /// The zone of its local days.
    pub timezone: Tz,
    /// History: days before the watermark day every scheduled run re-exports (0 for snapshots).
    pub lookback_days: u32,
    pub schedule: Schedule,
    pub schedule_timezone: Tz,
    /// The configured entities (bots), empty when a day is one account-wide unit.
    pub entities: Vec<String>,
    /// What an entity is (`bot`), when it has entities.
    pub entity_kind: Option<&'static str>,
    /// Its past days cannot be fetched again (a snapshot, or a history dataset of
    /// [`crate::datasets::DayScope::TodayOnly`]): holes get no backfill command.
    pub no_past: bool,
}

impl DatasetFacts {
    pub fn of(dataset: &Dataset) -> DatasetFacts {
        match dataset {
            Dataset::History(d) => DatasetFacts::history(d.as_ref()),
            Dataset::Snapshot(d) => DatasetFacts::snapshot(d.as_ref()),
        }
    }

    pub fn history(d: &dyn HistoryDataset) -> DatasetFacts {
        let keys = d.schedule();
        DatasetFacts {
            name: d.info().name,
            kind: Kind::History,
            timezone: keys.timezone,
            lookback_days: keys.lookback_days,
            schedule: keys.schedule.clone(),
            schedule_timezone: keys.schedule_timezone,
            entities: d.entities().to_vec(),
            entity_kind: (!d.entities().is_empty()).then(|| d.entity_kind()),
            no_past: d.day_scope() == crate::datasets::DayScope::TodayOnly,
        }
    }

    pub fn snapshot(d: &dyn SnapshotDataset) -> DatasetFacts {
        let s = d.schedule();
        DatasetFacts {
            name: d.info().name,
            kind: Kind::Snapshot,
            timezone: d.timezone(),
            lookback_days: 0,
            schedule: s.schedule.clone(),
            schedule_timezone: s.schedule_timezone,
            entities: d.entities().to_vec(),
            entity_kind: Some(d.entity_kind()),
            no_past: true,
        }
    }

    /// Today in the dataset's zone.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        local_date(self.timezone, now)
    }

    /// The range shown: `to` (default today, never after it) and `from` (default the
    /// [`DEFAULT_DAYS`] days up to `to`).
    pub fn range(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        now: DateTime<Utc>,
    ) -> (NaiveDate, NaiveDate) {
        let today = self.today(now);
        let to = to.map_or(today, |t| t.min(today));
        let from = from.unwrap_or_else(|| {
            to.checked_sub_days(Days::new(DEFAULT_DAYS - 1))
                .unwrap_or(to)
        });
        (from, to)
    }
}

/// What is stored for one dataset: its watermark (history), its coverage months, and what
/// could not be read.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// A history dataset's watermark; for one with entities, the least advanced of its
    /// configured entities' watermarks (the others are in `entity_watermarks`).
    pub watermark: Option<Watermark>,
    /// A history dataset with entities: each configured entity's watermark (its own, or the
    /// dataset-level one it will start from), by entity; entities without one are absent.
    pub entity_watermarks: BTreeMap<String, Watermark>,
    pub months: BTreeMap<Month, CoverageMonth>,
    /// Objects that could not be read (a corrupt month reads as empty meanwhile).
    pub problems: Vec<String>,
}

/// Reads the watermark (history datasets) and the coverage months of `from..=to`.
pub async fn read(
    store: &StateStore,
    facts: &DatasetFacts,
    account_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Stored {
    let mut stored = Stored::default();
    if facts.kind == Kind::History {
        read_watermarks(store, facts, account_id, &mut stored).await;
    }
    for (month, read) in super::load(store, facts.name, account_id, from, to).await {
        match read {
            Ok(m) => {
                stored.months.insert(month, m);
            }
            Err(e) => stored.problems.push(format!(
                "{}; `status --rebuild` rebuilds it from the Parquet files",
                error_chain(&e)
            )),
        }
    }
    stored
}

/// Reads the watermark of a history dataset: its one watermark, or (a dataset with
/// entities) each configured entity's, as the scheduled run reads them
/// ([`crate::pipeline::run_history`]), and their minimum as the dataset's.
async fn read_watermarks(
    store: &StateStore,
    facts: &DatasetFacts,
    account_id: &str,
    stored: &mut Stored,
) {
    let name = state::watermark_name(facts.name, account_id);
    let dataset_level = match state::load::<state::DatasetMark>(store, &name).await {
        Ok(w) => w,
        Err(e) => {
            stored.problems.push(error_chain(&e));
            None
        }
    };
    let (Some(kind), false) = (facts.entity_kind, facts.entities.is_empty()) else {
        stored.watermark = dataset_level.map(|w| w.mark);
        return;
    };
    let inherited = dataset_level
        .filter(|w| !w.entities_took_over)
        .map(|w| w.mark);
    for entity in &facts.entities {
        let name = state::entity_watermark_name(facts.name, account_id, kind, entity);
        match state::load::<Watermark>(store, &name).await {
            Ok(own) => {
                if let Some(w) = own.or_else(|| inherited.clone()) {
                    stored.entity_watermarks.insert(entity.clone(), w);
                }
            }
            Err(e) => stored.problems.push(error_chain(&e)),
        }
    }
    stored.watermark = stored
        .entity_watermarks
        .values()
        .min_by_key(|w| (w.through_day, w.covered_until))
        .cloned();
}
