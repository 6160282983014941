//! What every table's schema shares, and the [`Table`] descriptor (name, schema, partition
//! layout) every dataset registers its tables with. A dataset's own schemas (the contract with
//! every reader: column names, types and nullability) are functions in the dataset's folder,
//! built from the helpers here; the rejects table's schema is here. Times are
//! `Timestamp(Millisecond, "UTC")`, the one timestamp type that Athena, Trino and Spark all read
//! as a timestamp ([`ts`], [`timestamp_builder`] and the `constant_*` column helpers build
//! columns of it). `SCHEMA_VERSION` is written into each Parquet file's key-value metadata; bump
//! it on any change to any table's schema.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray, TimestampMillisecondArray, TimestampMillisecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the column layout, stored under [`SCHEMA_VERSION_KEY`] in every Parquet file.
/// 2: every table built from API records ends with `extra` (the record's unmapped fields,
/// see [`crate::sources::extra`]).
pub const SCHEMA_VERSION: &str = "2";
/// Parquet key-value metadata key holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "smartassist_export.schema_version";
/// Parquet key-value metadata key holding the dataset name.
pub const DATASET_KEY: &str = "smartassist_export.dataset";

/// The UTC millisecond timestamp type used for every time column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// The zone of [`timestamp_type`].
const UTC: &str = "UTC";

/// A builder of [`timestamp_type`] values.
pub fn timestamp_builder(capacity: usize) -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::with_capacity(capacity).with_timezone(UTC)
}

/// A [`timestamp_type`] column of `n` copies of the instant `ms` (epoch milliseconds).
pub fn constant_timestamp(ms: i64, n: usize) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(vec![ms; n]).with_timezone(UTC))
}

/// A Utf8 column of `n` copies of `value`.
pub fn constant_utf8(value: &str, n: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(value, n)))
}

/// A Utf8 column.
pub fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// A [`timestamp_type`] column.
pub fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp_type(), nullable)
}

/// Hive partition layout of a table: its partition columns, outermost first. Always
/// `account_id` first and a date column last (`dt`, the local day of the data, or another name
/// for another kind of date, e.g. `snapshot_date`, the local day a list was taken); `bot_id` in
/// between when partitions are per bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionLayout {
    pub columns: &'static [&'static str],
}

impl PartitionLayout {
    /// `account_id=A/dt=D`.
    pub const ACCOUNT_DAY: PartitionLayout = PartitionLayout {
        columns: &["account_id", "dt"],
    };
    /// `account_id=A/bot_id=B/dt=D`.
    pub const ACCOUNT_BOT_DAY: PartitionLayout = PartitionLayout {
        columns: &["account_id", "bot_id", "dt"],
    };

    /// Partition column names, outermost first.
    pub fn columns(self) -> &'static [&'static str] {
        self.columns
    }

    /// Whether a partition key of this layout carries a `bot_id`.
    pub fn has_bot(self) -> bool {
        self.columns.contains(&"bot_id")
    }

    /// The date column (the last one).
    pub fn date_column(self) -> &'static str {
        self.columns.last().copied().unwrap_or("dt")
    }

    /// Whether the columns follow the rule above.
    pub fn is_well_formed(self) -> bool {
        matches!(
            self.columns,
            ["account_id", date] | ["account_id", "bot_id", date]
                if *date != "account_id" && *date != "bot_id"
        )
    }
}

/// One output table: a folder under the output root (and the table name in the DDL), the Arrow
/// schema of its files, its partition layout, the columns that name a row, and whether a row
/// can briefly be in two files. Compared and ordered by name.
pub struct Table {
    pub name: &'static str,
    pub schema: fn() -> SchemaRef,
    pub layout: PartitionLayout,
    /// The columns identifying a row within a partition (the partition columns come on top):
    /// no two rows of a partition share their values. Non-null columns of `schema`; the
    /// deduplicating views partition by them, and the compliance suite names rows by them.
    pub key: &'static [&'static str],
    /// `None` when a partition is always one file, replaced whole. `Some` for a table whose
    /// partitions are several files that a merge rewrites: for a moment a row is then in two
    /// files, so the query DDL reads it through a view that keeps one row per [`Table::key`].
    pub dedupe: Option<Dedupe>,
}

/// How readers keep one row per [`Table::key`] in a table whose partitions are several files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dedupe {
    /// The window's order: copies of a row are equal (and share this column's value), so any
    /// one of them is kept; ordering by this column only gives engines a defined window.
    pub keep_first_by: &'static str,
}

impl Table {
    /// Partition column names, outermost first.
    pub fn partition_columns(&self) -> &'static [&'static str] {
        self.layout.columns()
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Table({})", self.name)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Table {}

impl std::hash::Hash for Table {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl PartialOrd for Table {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Table {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(other.name)
    }
}

/// Records that could not be normalized: kept whole, with the reason, never dropped.
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("dataset", false),
        utf8("account_id", false),
        utf8("bot_id", true),
        utf8("endpoint", false),
        utf8("reason", false),
        utf8("raw_json", false),
        ts("rejected_at", false),
    ]))
}
