//! The dataset registry: every dataset the exporter knows, by name, and the two shapes a dataset
//! can have, with the building blocks they share ([`history`]: a unit's export into one
//! partition per table; [`paging`]: the offset-paged walk of a unit's windows). The pipeline,
//! backfill, the daemon, `check`, `schema`/DDL, the config loader, the demo, metric labels and
//! the CLI's `--dataset` values all iterate over [`REGISTRY`]; outside this module only a
//! dataset's own folder names it.
//!
//! A dataset owns, in its folder: its name and [`Table`]s (schema, partition layout, row key),
//! its config section (raw keys, validation, documented defaults), how a unit of work is planned
//! and fetched (requests, paging, windows), the decoding into batches and rejects, how a
//! partition is written (replaced whole, or merged by a key), its own persisted objects
//! ([`crate::state::StateObject`]), its own metric families and its part in the demo. Two kinds
//! exist:
//! - [`HistoryDataset`]: windowed history: the unit is one local day (of one entity, when the
//!   dataset has entities), written as one partition per table, tracked by a watermark.
//! - [`SnapshotDataset`]: snapshot polls: the unit is one poll of one entity (a bot, a queue),
//!   merged by key into existing partitions ([`merged`]).
//!
//! What a dataset must not know about: the scheduler, the daemon, the CLI, watermarks and the
//! metrics of runs; those are generic over this module's traits. To add a dataset, see
//! ARCHITECTURE.md ("How to add a dataset").

pub mod agent_activity;
pub mod agent_performance;
pub mod agent_status_details;
pub mod agents;
pub mod bot_sessions;
pub mod call_details;
pub mod contact_volume;
pub mod history;
pub mod intent_realtime;
pub mod list;
pub mod merged;
pub mod paging;
pub mod queue_stats;
pub mod queues;
pub mod reconcile;
pub mod user_status;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;

use crate::client::{ApiClient, MemoryGate, Priority};
pub use crate::config::HistoryKeys;
use crate::config::{Config, Schedule, SectionSpec};
use crate::error::Error;
use crate::metrics::{DatasetMetric, Metrics};
pub use crate::schema::{Dedupe, PartitionLayout, Table};
use crate::sink::{Sink, StateStore, WriteStats};
use crate::sources::window::DayWindow;
use crate::sources::DecodeError;
use arrow::record_batch::RecordBatch;

/// Every dataset, in the order runs, DDL and `schema` list them. Adding a dataset adds one line.
pub static REGISTRY: &[&DatasetInfo] = &[
    &user_status::INFO,
    &intent_realtime::INFO,
    &agent_status_details::INFO,
    &call_details::INFO,
    &contact_volume::INFO,
    &agent_performance::INFO,
    &agents::INFO,
    &queues::INFO,
    &agent_activity::INFO,
    &bot_sessions::INFO,
    &queue_stats::INFO,
];

/// Datasets that reconcile another dataset against their own rows (see [`reconcile`]): the
/// `status` capture section and the `reconcile` command. Adding one adds one line.
pub static RECONCILIATIONS: &[&reconcile::Reconciliation] =
    &[&bot_sessions::capture::RECONCILIATION];

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
    /// The config section it reads (its keys, validation and documented defaults).
    pub config: &'static SectionSpec,
    /// Its own metric families, one series per entity (a snapshot dataset's bots), or one
    /// labelled with the dataset's name when its units are account-wide, declared in its
    /// module; the core registers them (see [`Dataset::metric_entities`] and
    /// [`crate::metrics::DatasetMetric`]).
    pub metrics: &'static [&'static DatasetMetric],
    /// The dataset with its validated config section, or `None` when disabled.
    pub build: fn(&Config) -> Option<Dataset>,
    /// Its pure path from one response page to rows (what `benches/datasets.rs` measures).
    pub decoder: PageDecoder,
    /// What the `demo` command does with it.
    pub demo: Demo,
}

/// A dataset's path from one API response page to rows, without I/O, as its unit of work takes
/// it: for benchmarks (`benches/datasets.rs` runs every registered dataset's on the pages its
/// simulator model serves, `simulator::truth::pages`) and tools. Both functions read the page
/// as answered for `window` (its offset for zone-less times, its claim for the records kept);
/// a dataset without windows ignores it. Request parameters that shape rows (a granularity)
/// are the dataset's defaults, account and export time fixed values.
#[derive(Debug, Clone, Copy)]
pub struct PageDecoder {
    /// Decodes the page into records without normalizing them; the records it holds.
    pub decode: fn(&[u8], &DayWindow) -> Result<usize, DecodeError>,
    /// Decodes and normalizes the page, handing each table's batch to the callback; the rows.
    pub rows: PageRows,
}

/// [`PageDecoder::rows`]: the page, its window and the callback taking each table's batch.
pub type PageRows = fn(
    &[u8],
    &DayWindow,
    &mut dyn FnMut(&'static Table, RecordBatch),
) -> Result<usize, DecodeError>;

/// The account id a [`PageDecoder`] writes into its rows.
pub const PAGE_DECODER_ACCOUNT: &str = "bench-account";

/// The `exported_at` a [`PageDecoder`] writes into its rows: 2024-01-01T00:00:00Z.
pub fn page_decoder_exported_at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default()
}

/// A dataset's part in the `demo` command: the lines of its config section in the demo config
/// (against the built-in simulator, in the demo's account zone) and example DuckDB queries
/// printed after the export.
#[derive(Debug, Clone, Copy)]
pub struct Demo {
    /// The section's lines, e.g. `enabled = true`; `None` leaves the dataset out of the demo.
    pub section: Option<&'static str>,
    pub queries: &'static [DemoQuery],
}

/// An example query: what it shows, and its SQL with `{out}` standing for the output root.
#[derive(Debug, Clone, Copy)]
pub struct DemoQuery {
    pub about: &'static str,
    pub sql: &'static str,
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

/// The config section of every registered dataset, in registry order: what
/// [`Config::load`](crate::config::Config::load) is given.
pub fn sections() -> Vec<&'static SectionSpec> {
    REGISTRY.iter().map(|d| d.config).collect()
}

/// Loads and validates the config file at `path` with every registered dataset's section.
pub fn load_config(
    path: &std::path::Path,
    env_secret: Option<String>,
) -> Result<Config, crate::config::ConfigError> {
    Config::load(path, env_secret, &sections())
}

/// Parses and validates config text with every registered dataset's section (`path` names
/// the file in messages and anchors relative paths).
pub fn config_from_toml(
    text: &str,
    path: &std::path::Path,
    env_secret: Option<String>,
) -> Result<Config, crate::config::ConfigError> {
    Config::from_toml(text, path, env_secret, &sections())
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
/// the account's API client (request budget, retries), the output (partitions in `sink`, `_state/`
/// objects in `state`, one location), the metrics handle, and the gate that bounds response
/// pages in memory.
#[derive(Clone, Debug)]
pub struct Context {
    pub account_id: String,
    pub client: ApiClient,
    pub sink: Sink,
    pub state: StateStore,
    pub metrics: Metrics,
    /// Bounds the bytes of history pages in memory across every day in flight (see
    /// [`crate::client::gate`]).
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

/// One unit of work of a history dataset: a local day, of one entity when the dataset has
/// entities (a per-bot history API exports each bot's day on its own, see
/// [`HistoryDataset::entities`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayUnit {
    pub day: NaiveDate,
    pub entity: Option<String>,
}

impl DayUnit {
    /// The account-wide unit of `day`.
    pub fn day(day: NaiveDate) -> DayUnit {
        DayUnit { day, entity: None }
    }

    /// Every unit of `day`: one per entity, or the account-wide one when `entities` is empty.
    pub fn of_day(day: NaiveDate, entities: &[String]) -> Vec<DayUnit> {
        if entities.is_empty() {
            return vec![DayUnit::day(day)];
        }
        entities
            .iter()
            .map(|e| DayUnit {
                day,
                entity: Some(e.clone()),
            })
            .collect()
    }
}

/// `2024-05-01`, or `2024-05-01 st-bot-1` for an entity's day.
impl fmt::Display for DayUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entity {
            Some(e) => write!(f, "{} {e}", self.day),
            None => write!(f, "{}", self.day),
        }
    }
}

/// Outcome of one unit of work (a day of a history dataset, a poll of a snapshot entity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitReport {
    /// The day (`2024-05-01`, `2024-05-01 st-bot` for an entity's day) or the polled entity.
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
    /// Fields of the unit's exported records that no column maps (kept in their rows'
    /// `extra`), by name (a nested one as `customerinfo.CustomerAge`): occurrences, one per
    /// field and record (see [`crate::sources::extra`]).
    pub unmapped: BTreeMap<String, u64>,
    /// What the unit wrote, per table and partition day (a history unit: each table's
    /// partition of its day; a poll: each day its new records went to). The coverage record
    /// ([`crate::coverage`]) keeps it.
    pub partitions: Vec<PartitionWrite>,
    /// The unit holds data that will still change although its day may be over (e.g. status
    /// spans still open, without an end): the coverage record calls it provisional until a
    /// later export finds it closed.
    pub open: bool,
    /// Snapshot: the answer held no record of the polled entity, so the poll wrote nothing
    /// (the coverage record counts such polls as empty).
    pub empty: bool,
}

/// What one unit wrote into one partition of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWrite {
    pub table: &'static str,
    /// The partition's day (its `dt`, or the layout's date column).
    pub day: NaiveDate,
    /// Rows written for the first time or replaced, the files written and their bytes.
    pub written: WriteStats,
}

/// When a snapshot dataset polls.
#[derive(Debug, Clone)]
pub struct SnapshotSchedule {
    pub schedule: Schedule,
    pub schedule_timezone: Tz,
    /// After a suspected gap, poll that entity this often until a poll overlaps again.
    pub gap_poll_interval: Option<Duration>,
}

/// A windowed-history dataset: one local day (of one entity, when it has entities) is one unit
/// and one partition per table.
pub trait HistoryDataset: Send + Sync {
    fn info(&self) -> &'static DatasetInfo;
    fn schedule(&self) -> &HistoryKeys;
    /// The entities whose days are exported one by one (e.g. the bots of a per-bot history
    /// API); empty (the default) when a day is one account-wide unit. Each entity has its own
    /// watermark, and several entities are exported at once (see `pipeline/entities.rs`).
    fn entities(&self) -> &[String] {
        &[]
    }
    /// What an entity is, for messages, job names and the simulator (`bot`); meaningful only
    /// when [`HistoryDataset::entities`] has some.
    fn entity_kind(&self) -> &'static str {
        "bot"
    }
    /// Fetch every record of `unit` and replace its partitions (usually through
    /// [`history::DayExport`]). State is committed by the caller, only after this returns `Ok`.
    fn export_day<'a>(
        &'a self,
        cx: &'a Context,
        unit: &'a DayUnit,
        exported_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>>;
    /// One cheap request through the export's request path; a one-line description on success.
    fn probe<'a>(
        &'a self,
        cx: &'a Context,
        today: NaiveDate,
    ) -> BoxFuture<'a, Result<String, Error>>;
    /// Which days a unit of work can be (see [`DayScope`]); any day by default.
    fn day_scope(&self) -> DayScope {
        DayScope::AnyDay
    }
    /// Its requests take their grants from each entity's per-bot budget
    /// ([`crate::client::ApiClient::for_bot`]) instead of the account's; `false` by default.
    fn uses_bot_budgets(&self) -> bool {
        false
    }
}

/// Which local days a history dataset can export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayScope {
    /// The API answers for any past day: scheduled runs re-export the lookback and catch up,
    /// a backfill exports the range asked for.
    AnyDay,
    /// The API serves a list only as it is now (master data such as the agents and queues):
    /// the unit is today's snapshot day (the local date of the run in the dataset's
    /// `timezone`), replaced by every run of that day. A scheduled run exports only today;
    /// a backfill takes today's snapshot whatever range it was given, and the CLI refuses a
    /// range of past days for a dataset named with `--dataset`, since they cannot be fetched.
    TodayOnly,
}

/// Where a snapshot dataset's entities come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntitySource {
    /// The config names them ([`SnapshotDataset::entities`]), fixed while the process runs.
    Config,
    /// Every entity of the latest snapshot of a list dataset (`queues`) at most
    /// `max_age_days` old, read again at every poll tick
    /// ([`SnapshotDataset::current_entities`]); [`SnapshotDataset::entities`] is empty.
    List {
        dataset: &'static str,
        max_age_days: u32,
    },
}

impl EntitySource {
    /// Where the entities come from, for `check` and logs (`the configured queue_ids`).
    pub fn describe(&self, config_key: &str, kind: &str) -> String {
        match self {
            EntitySource::Config => format!("the configured {config_key}"),
            EntitySource::List {
                dataset,
                max_age_days,
            } => format!(
                "every {kind} of the latest `{dataset}` snapshot in the output (at most \
                 {max_age_days} days old), read again at every poll"
            ),
        }
    }
}

/// A snapshot-poll dataset: one poll of one entity is one unit, merged by key.
pub trait SnapshotDataset: Send + Sync {
    fn info(&self) -> &'static DatasetInfo;
    fn schedule(&self) -> &SnapshotSchedule;
    /// The polled entities (bot ids) when the config names them; empty when they are listed
    /// ([`EntitySource::List`]).
    fn entities(&self) -> &[String];
    /// Where the entities come from; the config by default.
    fn entity_source(&self) -> EntitySource {
        EntitySource::Config
    }
    /// The entities to poll at `now`: [`SnapshotDataset::entities`], or for a listed source
    /// the current list (`None` while there is no list recent enough).
    fn current_entities<'a>(
        &'a self,
        _cx: &'a Context,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<Vec<String>>, Error>> {
        let entities = self.entities().to_vec();
        Box::pin(async move { Ok(Some(entities)) })
    }
    /// What an entity is, for messages and job names (`bot`).
    fn entity_kind(&self) -> &'static str;
    /// The zone of its local days (its `dt` partitions): a poll's coverage is recorded under
    /// the local day it ran on ([`crate::coverage`]).
    fn timezone(&self) -> Tz;
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

    /// The entities whose units are separate (polled bots; a per-entity history's ids).
    pub fn entities(&self) -> &[String] {
        match self {
            Dataset::History(d) => d.entities(),
            Dataset::Snapshot(d) => d.entities(),
        }
    }

    /// The bots whose per-bot budgets its requests use (see
    /// [`HistoryDataset::uses_bot_budgets`]); empty for most datasets.
    pub fn bot_budget_bots(&self) -> &[String] {
        match self {
            Dataset::History(d) if d.uses_bot_budgets() => d.entities(),
            _ => &[],
        }
    }

    /// The label values of the dataset's own metric families ([`DatasetInfo::metrics`]): its
    /// entities, or, for an account-wide dataset, its name (one series per family).
    pub fn metric_entities(&self) -> Vec<&str> {
        if self.is_listed() {
            // Listed entities are not known ahead; their series appear with their first poll.
            return Vec::new();
        }
        match self.entities() {
            [] => vec![self.name()],
            entities => entities.iter().map(String::as_str).collect(),
        }
    }

    /// A snapshot dataset whose entities are listed at every poll ([`EntitySource::List`]).
    pub fn is_listed(&self) -> bool {
        matches!(self, Dataset::Snapshot(d) if d.entity_source() != EntitySource::Config)
    }

    /// What an entity is (`bot`, ...).
    pub fn entity_kind(&self) -> &'static str {
        match self {
            Dataset::History(d) => d.entity_kind(),
            Dataset::Snapshot(d) => d.entity_kind(),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Dataset::History(_) => Kind::History,
            Dataset::Snapshot(_) => Kind::Snapshot,
        }
    }

    /// Today's snapshot day of a [`DayScope::TodayOnly`] history dataset at `now` (the local
    /// date in its `timezone`); `None` for every other dataset.
    pub fn snapshot_day(&self, now: DateTime<Utc>) -> Option<NaiveDate> {
        match self {
            Dataset::History(d) if d.day_scope() == DayScope::TodayOnly => Some(
                crate::sources::window::local_date(d.schedule().timezone, now),
            ),
            _ => None,
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
mod config_tests;
#[cfg(test)]
mod entity_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_time_column_is_utc_milliseconds() {
        use arrow::datatypes::{DataType, TimeUnit};
        let schemas = tables().map(|t| (t.name, (t.schema)()));
        for (name, schema) in schemas.chain([("rejects", crate::schema::rejects_schema())]) {
            for f in schema.fields() {
                if let DataType::Timestamp(unit, tz) = f.data_type() {
                    assert_eq!(*unit, TimeUnit::Millisecond, "{name}.{}", f.name());
                    assert_eq!(tz.as_deref(), Some("UTC"), "{name}.{}", f.name());
                }
            }
        }
    }

    #[test]
    fn every_table_has_a_well_formed_partition_layout() {
        for t in tables() {
            assert!(t.layout.is_well_formed(), "{}: {:?}", t.name, t.layout);
        }
    }

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
    fn every_table_names_its_rows_by_non_null_columns_of_its_files() {
        for t in tables() {
            let schema = (t.schema)();
            assert!(!t.key.is_empty(), "{t} has no key");
            for column in t.key {
                let field = schema
                    .field_with_name(column)
                    .unwrap_or_else(|_| panic!("{t}: key column {column} is not in its schema"));
                assert!(!field.is_nullable(), "{t}: key column {column} is nullable");
                assert!(
                    !t.partition_columns().contains(column),
                    "{t}: {column} is a partition column"
                );
            }
        }
    }

    #[test]
    fn dataset_names_parse_and_unknown_names_list_the_registry() {
        for d in REGISTRY {
            assert_eq!(parse_name(d.name).map(|p| p.name), Ok(d.name));
        }
        let err = parse_name("users").expect_err("unknown").to_string();
        assert!(
            err.starts_with("unknown dataset \"users\" (expected "),
            "{err}"
        );
        for d in REGISTRY {
            assert!(err.contains(d.name), "{err} lacks {}", d.name);
        }
        // `a, b or c`: the last two joined by "or".
        let names = names();
        if let [.., before, last] = names.as_slice() {
            assert!(err.ends_with(&format!("{before} or {last})")), "{err}");
        }
    }
}
