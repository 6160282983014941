//! The dataset registry: every dataset the exporter knows, by name, and the two shapes a dataset
//! can have. The pipeline, backfill, the daemon, `check`, `schema`/DDL, metric labels and the
//! CLI's `--dataset` values all iterate over [`REGISTRY`]; nothing outside a dataset's own
//! module names it.
//!
//! A dataset owns, in its module: its name and [`Table`]s (schema and partition layout), how its
//! config section turns it on, how a unit of work is planned and fetched (requests, paging,
//! windows), the decoding into batches and rejects, and how a partition is written (replaced
//! whole, or merged by a key). Two kinds exist:
//! - [`HistoryDataset`]: windowed history (UserStatus): the unit is one local day, written as one
//!   partition per day, tracked by a watermark.
//! - [`SnapshotDataset`]: snapshot polls (IntentRealtimeData): the unit is one poll of one entity
//!   (a bot), merged by key into existing partitions, with gap detection.
//!
//! What a dataset must not know about: the scheduler, the daemon, the CLI, watermarks and the
//! metrics of runs; those are generic over this module's traits. A dataset may keep its own
//! bookkeeping (a poll state, a partition index, a density profile) through [`crate::state`],
//! which owns every persisted object's name, format and corruption policy. To add a dataset, see
//! ARCHITECTURE.md ("How to add a dataset").

pub mod agent_status_details;
pub mod call_details;
pub mod history;
pub mod intent_realtime;
pub mod user_status;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;

use crate::client::{ApiClient, MemoryGate, Priority};
use crate::config::{Config, Schedule};
use crate::error::Error;
use crate::metrics::Metrics;
pub use crate::schema::{Dedupe, PartitionLayout, Table};
use crate::sink::{Sink, WriteStats};

/// Every dataset, in the order runs, DDL and `schema` list them. Adding a dataset adds one line.
pub static REGISTRY: &[&DatasetInfo] = &[
    &user_status::INFO,
    &intent_realtime::INFO,
    &agent_status_details::INFO,
    &call_details::INFO,
];

/// The shape of a dataset (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    History,
    Snapshot,
}

/// Static facts about a dataset, and how to build it from a config.
pub struct DatasetInfo {
    /// The dataset's name: `--dataset` value, metric label, state folder, and the name of its
    /// primary table.
    pub name: &'static str,
    /// Tables it writes; the first is the primary one (its folder also names the rejects).
    pub tables: &'static [&'static Table],
    /// Low-cardinality endpoint label of its requests in logs, errors and metrics.
    pub endpoint: &'static str,
    /// The dataset with its validated config section, or `None` when disabled.
    pub build: fn(&Config) -> Option<Dataset>,
}

impl DatasetInfo {
    /// The table whose folder names the dataset (and its rejects).
    pub fn primary(&self) -> &'static Table {
        self.tables[0]
    }
}

impl fmt::Debug for DatasetInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatasetInfo({})", self.name)
    }
}

/// The registered dataset called `name`.
pub fn by_name(name: &str) -> Option<&'static DatasetInfo> {
    REGISTRY.iter().copied().find(|d| d.name == name)
}

/// Every registered dataset name, in registry order.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|d| d.name).collect()
}

/// Every table of every registered dataset, in registry order.
pub fn tables() -> impl Iterator<Item = &'static Table> {
    REGISTRY.iter().flat_map(|d| d.tables.iter().copied())
}

/// `a`, `a or b`, `a, b or c`: for messages that list the datasets.
pub fn names_for_humans() -> String {
    let names = names();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_string(),
        None => String::new(),
    }
}

/// Parses a `--dataset` value against the registry.
pub fn parse_name(name: &str) -> Result<&'static DatasetInfo, UnknownDataset> {
    by_name(name).ok_or_else(|| UnknownDataset(name.to_string()))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown dataset {name:?} (expected {expected})", name = .0, expected = names_for_humans())]
pub struct UnknownDataset(pub String);

/// Everything a unit of work needs, built by the composition root and shared by every dataset:
/// the account's API client (rate limiter, retries), the output sink, the metrics handle, and
/// the gate that bounds response pages in memory.
#[derive(Clone, Debug)]
pub struct Context {
    pub account_id: String,
    pub client: ApiClient,
    pub sink: Sink,
    pub metrics: Metrics,
    /// Bounds history pages in memory across every day in flight (see
    /// [`crate::pipeline::PAGES_IN_MEMORY`]).
    pub page_gate: Arc<MemoryGate>,
}

impl Context {
    /// The same context whose client sends the requests of `dataset` at `priority` (see
    /// [`crate::client::budget`]): the pipeline and backfill choose the priority of each unit.
    pub fn for_work(&self, dataset: &'static str, priority: Priority) -> Context {
        Context {
            client: self.client.for_work(dataset, priority),
            ..self.clone()
        }
    }
}

/// Outcome of one unit of work (a day of a history dataset, a poll of a snapshot entity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitReport {
    /// The day (`2024-05-01`) or the entity (`st-bot`).
    pub unit: String,
    pub requests: usize,
    /// Rows written for the first time or replaced (history: the day's rows; snapshot: new).
    pub rows: usize,
    pub rejects: usize,
    pub written: WriteStats,
    /// Snapshot: records the API returned (new or already exported).
    pub returned: usize,
    /// Snapshot: every record of a full poll was new, so some were probably missed.
    pub gap_suspected: bool,
}

/// When and how a history dataset runs on the schedule.
#[derive(Debug, Clone)]
pub struct HistorySchedule {
    pub schedule: Schedule,
    /// Zone the cron schedule is evaluated in.
    pub schedule_timezone: Tz,
    /// Zone whose local days are the units (and the `dt` partitions).
    pub timezone: Tz,
    /// Days before the watermark day re-exported by every scheduled run.
    pub lookback_days: u32,
    /// Most days one scheduled run exports.
    pub max_days_per_run: u32,
}

/// When a snapshot dataset polls.
#[derive(Debug, Clone)]
pub struct SnapshotSchedule {
    pub schedule: Schedule,
    pub schedule_timezone: Tz,
    /// After a suspected gap, poll that entity this often until a poll overlaps again.
    pub gap_poll_interval: Option<Duration>,
}

/// A windowed-history dataset: one local day is one unit and one partition per table.
pub trait HistoryDataset: Send + Sync {
    fn info(&self) -> &'static DatasetInfo;
    fn schedule(&self) -> &HistorySchedule;
    /// Fetch every record of the local `day` and replace its partitions. State is committed by
    /// the caller, only after this returns `Ok`.
    fn export_day<'a>(
        &'a self,
        cx: &'a Context,
        day: NaiveDate,
        exported_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>>;
    /// One cheap request through the export's request path; a one-line description on success.
    fn probe<'a>(
        &'a self,
        cx: &'a Context,
        today: NaiveDate,
    ) -> BoxFuture<'a, Result<String, Error>>;
}

/// A snapshot-poll dataset: one poll of one entity is one unit, merged by key.
pub trait SnapshotDataset: Send + Sync {
    fn info(&self) -> &'static DatasetInfo;
    fn schedule(&self) -> &SnapshotSchedule;
    /// The polled entities (bot ids).
    fn entities(&self) -> &[String];
    /// What an entity is, for messages and job names (`bot`).
    fn entity_kind(&self) -> &'static str;
    /// Poll `entity` once and merge what is new. State is committed inside, after the data.
    fn poll<'a>(
        &'a self,
        cx: &'a Context,
        entity: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>>;
    /// One request through the poll's request path; a one-line description on success.
    fn probe<'a>(
        &'a self,
        cx: &'a Context,
        entity: &'a str,
    ) -> BoxFuture<'a, Result<String, Error>>;
}

/// An enabled dataset, ready to run.
#[derive(Clone)]
pub enum Dataset {
    History(Arc<dyn HistoryDataset>),
    Snapshot(Arc<dyn SnapshotDataset>),
}

impl Dataset {
    pub fn info(&self) -> &'static DatasetInfo {
        match self {
            Dataset::History(d) => d.info(),
            Dataset::Snapshot(d) => d.info(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.info().name
    }

    pub fn kind(&self) -> Kind {
        match self {
            Dataset::History(_) => Kind::History,
            Dataset::Snapshot(_) => Kind::Snapshot,
        }
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dataset({})", self.name())
    }
}

/// Every dataset the config enables, in registry order.
pub fn enabled(config: &Config) -> Vec<Dataset> {
    REGISTRY.iter().filter_map(|d| (d.build)(config)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_name_their_primary_table() {
        let mut seen = std::collections::HashSet::new();
        for d in REGISTRY {
            assert!(seen.insert(d.name), "duplicate dataset {}", d.name);
            assert_eq!(d.primary().name, d.name);
        }
        let mut table_names = std::collections::HashSet::new();
        for t in tables() {
            assert!(table_names.insert(t.name), "duplicate table {}", t.name);
        }
    }

    #[test]
    fn dataset_names_parse_and_unknown_names_list_the_registry() {
        assert_eq!(parse_name("user_status").map(|d| d.name), Ok("user_status"));
        assert_eq!(
            parse_name("intent_realtime").map(|d| d.name),
            Ok("intent_realtime")
        );
        let err = parse_name("users").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown dataset \"users\" (expected user_status, intent_realtime, agent_status_details or call_details)"
        );
    }
}
