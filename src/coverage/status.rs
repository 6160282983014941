//! The classification of a dataset's units over a range of local days, from its coverage
//! record and watermark: the one shape `status` prints (as lines or as JSON), the daemon's
//! status page renders and `backfill --missing` selects from. Pure, except [`report`], which
//! reads what it needs from the state store through [`read`] ([`super::facts`]).
//!
//! A unit is:
//! - **MISSING**: nothing recorded (never fetched, or written before the record existed and
//!   not rebuilt);
//! - **FAILED**: its last attempt failed (the error is kept; a failed re-export leaves the
//!   previous files, whose figures are shown);
//! - **PROVISIONAL**: exported, but it will change: the dataset said it holds open data, it
//!   was exported before its day ended, or it lies inside the lookback the schedule
//!   re-exports (`lookback_days` before the watermark day, or before today without one); for a
//!   snapshot dataset, today;
//! - **EMPTY**: exported, and the API had nothing for it (zero rows in every table);
//! - **OK**: exported with rows.
//!
//! MISSING and FAILED units are holes; `backfill --missing` fills them, and the report lists
//! the commands that do, one per run of consecutive days holding a hole.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

pub use super::facts::{read, DatasetFacts, Stored};

use super::capture::CaptureSection;
use super::record::{Month, Polls, UnitRecord, Writer};
use crate::datasets::{Dataset, Kind};
use crate::scheduler::schedule_period;
use crate::sink::StateStore;
use crate::sources::window::local_day_bounds;
use crate::state::Watermark;

/// Version of the report's JSON shape (README, "Is my lake complete?").
pub const REPORT_VERSION: u32 = 1;

/// Days `status` shows when no range is given: the last 30, today included.
pub const DEFAULT_DAYS: u64 = 30;

/// Days of the range whose realtime capture `status` measures, the last of the range (each
/// bot's day reads its Parquet partitions; `reconcile` measures any day).
pub const CAPTURE_DAYS: u64 = 31;

/// What a unit is (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitState {
    Ok,
    Empty,
    Missing,
    Failed,
    Provisional,
}

impl UnitState {
    /// `OK`, `EMPTY`, `MISSING`, `FAILED`, `PROVISIONAL`.
    pub fn label(self) -> &'static str {
        match self {
            UnitState::Ok => "OK",
            UnitState::Empty => "EMPTY",
            UnitState::Missing => "MISSING",
            UnitState::Failed => "FAILED",
            UnitState::Provisional => "PROVISIONAL",
        }
    }

    /// MISSING or FAILED: what `backfill --missing` fetches.
    pub fn is_hole(self) -> bool {
        matches!(self, UnitState::Missing | UnitState::Failed)
    }
}

/// Why a unit is provisional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provisional {
    /// The dataset said the unit holds open data (e.g. spans without an end).
    Open,
    /// It was exported before its local day ended.
    PartialDay,
    /// It lies inside the lookback the schedule re-exports.
    Lookback,
    /// A snapshot dataset's today: still being polled.
    Today,
}

/// How recent the last export is, against the dataset's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Within one schedule interval.
    OnTime,
    /// Older than one interval.
    Delayed,
    /// Older than two.
    Late,
    /// Nothing exported yet.
    Never,
}

impl Freshness {
    pub fn label(self) -> &'static str {
        match self {
            Freshness::OnTime => "on time",
            Freshness::Delayed => "delayed",
            Freshness::Late => "late",
            Freshness::Never => "never exported",
        }
    }
}

/// The whole report: what `status --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub version: u32,
    pub generated_at: DateTime<Utc>,
    pub account_id: String,
    pub datasets: Vec<DatasetStatus>,
    /// The realtime capture of the days both a session history and a realtime capture
    /// cover (`null` unless both datasets are in the report); filled by the caller, see
    /// [`super::capture`].
    pub capture: Option<CaptureSection>,
}

/// One dataset's part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetStatus {
    pub dataset: String,
    /// `history` or `snapshot`.
    pub kind: &'static str,
    pub timezone: String,
    pub schedule: String,
    pub schedule_interval_seconds: u64,
    pub entity_kind: Option<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// A history dataset's watermark; for one with entities, the least advanced of its
    /// configured entities' (see `watermarks`).
    pub watermark: Option<WatermarkView>,
    /// A history dataset with entities: each configured entity's watermark, by entity (empty
    /// for every other dataset).
    pub watermarks: BTreeMap<String, WatermarkView>,
    /// The newest instant whose data is exported.
    pub newest_data_at: Option<DateTime<Utc>>,
    /// Now minus `newest_data_at`.
    pub lag_seconds: Option<i64>,
    /// When the last export (or poll) of it was committed.
    pub last_export_at: Option<DateTime<Utc>>,
    pub freshness: Freshness,
    pub counts: Counts,
    pub units: Vec<UnitStatus>,
    /// Unmapped API fields seen in the range, by name: occurrences.
    pub unmapped_fields: BTreeMap<String, u64>,
    /// Runs of consecutive days holding a MISSING or FAILED unit (history datasets).
    pub holes: Vec<Hole>,
    /// The commands that fill the holes, one per hole.
    pub backfill: Vec<String>,
    /// Notes: unreadable objects, holes no command can fill.
    pub problems: Vec<String>,
}

/// A history dataset's watermark.
#[derive(Debug, Clone, Serialize)]
pub struct WatermarkView {
    pub through_day: NaiveDate,
    pub covered_until: DateTime<Utc>,
}

impl WatermarkView {
    fn of(w: &Watermark) -> WatermarkView {
        WatermarkView {
            through_day: w.through_day,
            covered_until: w.covered_until,
        }
    }
}

/// Units per state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ok: usize,
    pub empty: usize,
    pub missing: usize,
    pub failed: usize,
    pub provisional: usize,
}

impl Counts {
    fn add(&mut self, state: UnitState) {
        match state {
            UnitState::Ok => self.ok += 1,
            UnitState::Empty => self.empty += 1,
            UnitState::Missing => self.missing += 1,
            UnitState::Failed => self.failed += 1,
            UnitState::Provisional => self.provisional += 1,
        }
    }
}

/// Consecutive days holding holes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hole {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// MISSING and FAILED units in it.
    pub units: usize,
}

/// One unit of the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitStatus {
    pub day: NaiveDate,
    pub entity: Option<String>,
    pub status: UnitState,
    /// Why it is provisional.
    pub provisional: Option<Provisional>,
    /// Rows over every table, then per table.
    pub rows: Option<u64>,
    pub tables: BTreeMap<String, u64>,
    pub files: Option<u64>,
    pub bytes: Option<u64>,
    pub rejects: Option<u64>,
    pub requests: Option<u64>,
    /// The rows' `exported_at` of the last export.
    pub exported_at: Option<DateTime<Utc>>,
    /// When the last export was committed.
    pub committed_at: Option<DateTime<Utc>>,
    pub run_id: Option<String>,
    pub by: Option<Writer>,
    /// The last error, when the last attempt failed (or, for a snapshot day, a poll did).
    pub error: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
    /// Snapshot datasets: the polls of the day.
    pub polls: Option<Polls>,
    pub unmapped: BTreeMap<String, u64>,
}

/// The report of every dataset of `datasets` over `from..=to` (each dataset's defaults for
/// what is not given, see [`DatasetFacts::range`]), read from `store` at `now`.
pub async fn report(
    store: &StateStore,
    datasets: &[Dataset],
    account_id: &str,
    (from, to): (Option<NaiveDate>, Option<NaiveDate>),
    now: DateTime<Utc>,
    command: &str,
) -> StatusReport {
    let mut out = Vec::with_capacity(datasets.len());
    for d in datasets {
        let facts = DatasetFacts::of(d);
        let range = facts.range(from, to, now);
        let stored = read(store, &facts, account_id, range.0, range.1).await;
        out.push(classify(&facts, &stored, range, now, command));
    }
    StatusReport {
        version: REPORT_VERSION,
        generated_at: now,
        account_id: account_id.to_string(),
        datasets: out,
        capture: None,
    }
}

/// Where the lookback of `entity` starts: `lookback_days` before its watermark day (the
/// dataset's for an account-wide unit; today without one, and never after today).
fn lookback_start(
    facts: &DatasetFacts,
    stored: &Stored,
    entity: Option<&str>,
    today: NaiveDate,
) -> NaiveDate {
    let mark = match entity {
        Some(e) if !stored.entity_watermarks.is_empty() => stored.entity_watermarks.get(e),
        _ => stored.watermark.as_ref(),
    };
    let anchor = mark.map_or(today, |w| w.through_day.min(today));
    anchor
        .checked_sub_days(Days::new(u64::from(facts.lookback_days)))
        .unwrap_or(anchor)
}

/// The state of one unit (and why it is provisional).
fn classify_unit(
    facts: &DatasetFacts,
    rec: Option<&UnitRecord>,
    today: NaiveDate,
    lookback_from: NaiveDate,
) -> (UnitState, Option<Provisional>) {
    let Some(rec) = rec else {
        return (UnitState::Missing, None);
    };
    let rows = rec.export.as_ref().map(|e| e.rows());
    if facts.kind == Kind::Snapshot {
        let polled = rec.polls.as_ref().is_some_and(|p| p.ok > 0);
        return match (polled || rows.is_some_and(|r| r > 0), rows.unwrap_or(0)) {
            (true, _) if rec.day >= today => (UnitState::Provisional, Some(Provisional::Today)),
            (true, 0) => (UnitState::Empty, None),
            (true, _) => (UnitState::Ok, None),
            (false, _) if rec.failure.is_some() => (UnitState::Failed, None),
            (false, _) => (UnitState::Missing, None),
        };
    }
    if rec.failed_last() {
        return (UnitState::Failed, None);
    }
    let Some(e) = &rec.export else {
        return (UnitState::Missing, None);
    };
    let reason = if e.open {
        Some(Provisional::Open)
    } else if facts.no_past {
        // A today-only list's snapshot day can change only while it is today.
        (rec.day >= today).then_some(Provisional::PartialDay)
    } else if e.started_at < local_day_bounds(facts.timezone, rec.day).end {
        Some(Provisional::PartialDay)
    } else if rec.day >= lookback_from {
        Some(Provisional::Lookback)
    } else {
        None
    };
    match reason {
        Some(r) => (UnitState::Provisional, Some(r)),
        None if e.rows() == 0 => (UnitState::Empty, None),
        None => (UnitState::Ok, None),
    }
}

fn unit_status(
    day: NaiveDate,
    entity: Option<&str>,
    rec: Option<&UnitRecord>,
    (status, provisional): (UnitState, Option<Provisional>),
) -> UnitStatus {
    let e = rec.and_then(|r| r.export.as_ref());
    let f = rec.and_then(|r| r.failure.as_ref());
    let snapshot_failure = rec.is_some_and(|r| r.polls.as_ref().is_some_and(|p| p.failed > 0));
    let show_error = status == UnitState::Failed || snapshot_failure;
    UnitStatus {
        day,
        entity: entity.map(str::to_string),
        status,
        provisional,
        rows: e.map(|e| e.rows()),
        tables: e.map_or_else(BTreeMap::new, |e| {
            e.tables.iter().map(|(t, w)| (t.clone(), w.rows)).collect()
        }),
        files: e.map(|e| e.tables.values().map(|t| t.files).sum()),
        bytes: e.map(|e| e.tables.values().map(|t| t.bytes).sum()),
        rejects: e.map(|e| e.rejects),
        requests: e.map(|e| e.requests),
        exported_at: e.map(|e| e.exported_at),
        committed_at: e.map(|e| e.finished_at),
        run_id: e.map(|e| e.run_id.clone()).filter(|r| !r.is_empty()),
        by: e.map(|e| e.by),
        error: f.filter(|_| show_error).map(|f| f.error.clone()),
        failed_at: f.filter(|_| show_error).map(|f| f.failed_at),
        polls: rec.and_then(|r| r.polls.clone()),
        unmapped: e.map(|e| e.unmapped.clone()).unwrap_or_default(),
    }
}

/// Classifies every unit of `from..=to` (days after today are left out) and sums up the
/// dataset. `command` is how the report names the program in its backfill commands (e.g.
/// `smartassist-export -c /etc/smartassist/config.toml`).
pub fn classify(
    facts: &DatasetFacts,
    stored: &Stored,
    (from, to): (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
    command: &str,
) -> DatasetStatus {
    let today = facts.today(now);
    let mut units = Vec::new();
    let to = to.min(today);
    for day in from.iter_days().take_while(|d| *d <= to) {
        for entity in entities_of(facts, stored, day) {
            let rec = stored
                .months
                .get(&Month::of(day))
                .and_then(|m| m.get(day, entity.as_deref()));
            let lookback_from = lookback_start(facts, stored, entity.as_deref(), today);
            let state = classify_unit(facts, rec, today, lookback_from);
            units.push(unit_status(day, entity.as_deref(), rec, state));
        }
    }
    let mut status = summarize(facts, stored, units, (from, to), now);
    fill_holes(facts, &mut status, command);
    status
}

/// The entities shown for `day`: the configured ones and any recorded for it (account-wide
/// datasets: the one `None`).
fn entities_of(facts: &DatasetFacts, stored: &Stored, day: NaiveDate) -> Vec<Option<String>> {
    let mut set: BTreeSet<Option<String>> = facts.entities.iter().cloned().map(Some).collect();
    if let Some(m) = stored.months.get(&Month::of(day)) {
        set.extend(
            m.units
                .iter()
                .filter(|u| u.day == day)
                .map(|u| u.entity.clone()),
        );
    }
    if set.is_empty() {
        set.insert(None);
    }
    set.into_iter().collect()
}

fn summarize(
    facts: &DatasetFacts,
    stored: &Stored,
    units: Vec<UnitStatus>,
    (from, to): (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
) -> DatasetStatus {
    let mut counts = Counts::default();
    let mut unmapped: BTreeMap<String, u64> = BTreeMap::new();
    for u in &units {
        counts.add(u.status);
        for (name, n) in &u.unmapped {
            *unmapped.entry(name.clone()).or_default() += n;
        }
    }
    let (newest, last_export) = newest(facts, stored);
    let period = schedule_period(&facts.schedule.cron, facts.schedule_timezone, now);
    let freshness = match last_export {
        None => Freshness::Never,
        Some(at) => {
            let age = (now - at).to_std().unwrap_or_default();
            if age <= period {
                Freshness::OnTime
            } else if age <= period * 2 {
                Freshness::Delayed
            } else {
                Freshness::Late
            }
        }
    };
    DatasetStatus {
        dataset: facts.name.to_string(),
        kind: match facts.kind {
            Kind::History => "history",
            Kind::Snapshot => "snapshot",
        },
        timezone: facts.timezone.name().to_string(),
        schedule: facts.schedule.expression.clone(),
        schedule_interval_seconds: period.as_secs(),
        entity_kind: facts.entity_kind.map(str::to_string),
        from,
        to,
        watermark: stored.watermark.as_ref().map(WatermarkView::of),
        watermarks: stored
            .entity_watermarks
            .iter()
            .map(|(e, w)| (e.clone(), WatermarkView::of(w)))
            .collect(),
        newest_data_at: newest,
        lag_seconds: newest.map(|n| (now - n).num_seconds().max(0)),
        last_export_at: last_export,
        freshness,
        counts,
        units,
        unmapped_fields: unmapped,
        holes: Vec::new(),
        backfill: Vec::new(),
        problems: stored.problems.clone(),
    }
}

/// The newest instant exported and the newest commit, from the watermark and every record
/// read: a history unit covers its day up to when its export began.
fn newest(facts: &DatasetFacts, stored: &Stored) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut data = stored.watermark.as_ref().map(|w| w.covered_until);
    let mut commit = stored.watermark.as_ref().map(|w| w.updated_at);
    for rec in stored.months.values().flat_map(|m| &m.units) {
        if let Some(p) = rec.polls.as_ref().and_then(|p| p.last_ok_at) {
            data = data.max(Some(p));
            commit = commit.max(Some(p));
        }
        let Some(e) = &rec.export else { continue };
        if facts.kind == Kind::History {
            let end = local_day_bounds(facts.timezone, rec.day).end;
            data = data.max(Some(e.started_at.min(end)));
            commit = commit.max(Some(e.finished_at));
        }
    }
    (data, commit)
}

/// Groups the holes into runs of consecutive days and writes the command of each.
fn fill_holes(facts: &DatasetFacts, status: &mut DatasetStatus, command: &str) {
    let mut days: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for u in status.units.iter().filter(|u| u.status.is_hole()) {
        *days.entry(u.day).or_default() += 1;
    }
    if days.is_empty() {
        return;
    }
    if facts.no_past {
        status.problems.push(format!(
            "{} day(s) without a successful poll or snapshot: the API serves this dataset only \
             as it is now, so they cannot be fetched again",
            days.len()
        ));
        return;
    }
    for (day, n) in days {
        match status.holes.last_mut() {
            Some(h) if h.to.succ_opt() == Some(day) => {
                h.to = day;
                h.units += n;
            }
            _ => status.holes.push(Hole {
                from: day,
                to: day,
                units: n,
            }),
        }
    }
    status.backfill = status
        .holes
        .iter()
        .map(|h| backfill_command(command, facts.name, h.from, h.to))
        .collect();
}

/// `<command> backfill --missing --dataset NAME --from A --to B`.
pub fn backfill_command(command: &str, dataset: &str, from: NaiveDate, to: NaiveDate) -> String {
    format!("{command} backfill --missing --dataset {dataset} --from {from} --to {to}")
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
