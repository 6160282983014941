//! The output location and what is written to it, by two types opened together
//! ([`Output::open_with`]) over one object store, one prefix and one set of S3 request counters:
//! - [`Sink`]: partitions. Partition paths, file naming, Parquet encoding (ZSTD, statistics,
//!   schema version metadata), atomic partition replacement, named files of partitions that
//!   hold several, reads and listings, the rejects dataset, staging cleanup.
//! - [`StateStore`]: the small objects under `_state/` that several processes read-modify-write
//!   (watermarks, poll states, partition indexes, leases), by compare-and-swap.
//!
//! The split follows the two access patterns: data files are written whole, once per partition
//! and unit of work, and only replaced; state objects are small and updated in place by
//! whoever runs. The one compare-and-swap primitive (`versioned.rs`) serves the state store and
//! the one partition file that is merged in place, a partition's rejects
//! ([`Sink::put_rejects_if`]).
//!
//! A partition written whole (history datasets, rejects) is exactly one file,
//! `part-00000.parquet`, whose name depends only on the [`PartitionKey`], so a rerun replaces the
//! partition instead of adding to it; datasets that add to a partition name their files
//! themselves ([`Sink::write_partition_file`]). Replacement is atomic per file: on local disk the
//! file is written under a hidden staging name in the same directory and renamed over the old
//! one; on S3 it is written straight to its key, where it appears only when the PutObject /
//! CompleteMultipartUpload succeeds, and each upload runs on its own task so that cancelling the
//! caller cannot strand a half-done multipart upload. The caller must write data before
//! committing any state that describes it, and should call [`Sink::cleanup_staging`] and
//! [`StateStore::cleanup_staging`] once per run to sweep staging files left by a killed
//! process. On S3, a process killed mid-upload can leave an incomplete multipart upload that
//! only a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes; so can a lost
//! CreateMultipartUpload answer (object_store retries the request, and the upload the first one
//! created is never known). The S3 client's retry policy and timeouts are
//! [`StoreTuning`](crate::config::StoreTuning), and it reports every request attempt to the
//! metrics handle it is opened with; a file the storage refuses is [`SinkError::Write`], naming
//! the file.

#[cfg(test)]
pub(crate) mod counting;
mod encode;
mod files;
mod layout;
mod listing;
mod ranged;
mod row_group;
mod s3;
mod staging;
mod state_store;
mod store;
mod versioned;
mod writer;

pub use listing::{StoredFile, StoredPartition};
pub use state_store::StateStore;
pub use writer::PartitionWriter;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use store::Store;

use crate::config::OutputLocation;
use crate::metrics::Metrics;
use crate::schema::rejects_schema;
use crate::schema::Table;

pub use encode::{
    created_by, page_row_group_bytes, table_properties, writer_options, writer_properties,
    writer_properties_with, MAX_ROW_GROUP_ROWS, PAGE_ROW_GROUP_BYTES, PAGE_ROW_GROUP_BYTES_ENV,
    ROW_GROUP_FLUSH_BYTES, UPLOAD_CONCURRENCY, UPLOAD_PART_BYTES,
};
pub use layout::{is_staging_name, PART_FILE_NAME, REJECTS_DIR, STAGING_PREFIX, STATE_DIR};
pub use ranged::{PrunedRead, RowGroupFilter, FOOTER_FETCH_BYTES};
pub use row_group::PendingPages;
pub use s3::StoreRequestCounts;
pub use versioned::{Conflict, Version, LOCKS_DIR};

/// Staging files younger than this are left alone by [`Sink::cleanup_staging`] and
/// [`StateStore::cleanup_staging`]: they may belong to a writer that is still running.
pub const DEFAULT_STAGING_GRACE: Duration = Duration::from_secs(15 * 60);

/// Identifies one Hive partition of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub table: &'static Table,
    pub account_id: String,
    /// Set exactly when the table's layout has a `bot_id` column.
    pub bot_id: Option<String>,
    pub dt: NaiveDate,
}

/// What one partition write produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub files: usize,
    pub rows: usize,
    pub bytes: u64,
}

/// The object store operation that failed, for error context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Get,
    Head,
    Put,
    Rename,
    Delete,
    List,
}

impl std::fmt::Display for StoreOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreOp::Get => "get",
            StoreOp::Head => "head",
            StoreOp::Put => "put",
            StoreOp::Rename => "rename",
            StoreOp::Delete => "delete",
            StoreOp::List => "list",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot create output directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open output location {location}")]
    OpenStore {
        /// `file:///dir` or `s3://bucket/prefix` (never credentials).
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("invalid S3 prefix {prefix:?}")]
    InvalidPrefix {
        prefix: String,
        #[source]
        source: object_store::path::Error,
    },
    #[error("invalid partition value {column}={value:?}: only ASCII letters, digits, '.', '_' and '-' are allowed")]
    InvalidPartitionValue { column: &'static str, value: String },
    #[error("partition key of {table} must have a bot_id exactly when its layout has one")]
    BotIdMismatch { table: &'static str },
    #[error("invalid state name {name:?}")]
    InvalidStateName { name: String },
    #[error("invalid data file name {name:?}: a visible name ending in .parquet, without '/'")]
    InvalidFileName { name: String },
    #[error("record batch for {path} does not match the {dataset} schema")]
    SchemaMismatch { dataset: String, path: Path },
    /// The storage refused the bytes of a file (disk full, permission denied, S3 retries
    /// exhausted); `path` is the destination as the user knows it (absolute on local disk).
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode Parquet file {path}")]
    Encode {
        path: Path,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("cannot decode Parquet file {path}")]
    Decode {
        path: Path,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("cannot decode record batches of Parquet file {path}")]
    DecodeBatch {
        path: Path,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("object store {op} of {path} failed")]
    Store {
        op: StoreOp,
        path: Path,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot clean up staging files under {path}")]
    LocalIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the write of {path} was abandoned before it finished; the upload was aborted")]
    Abandoned { path: Path },
    #[error("upload task for {path} did not complete")]
    UploadTask {
        path: Path,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("staging cleanup task for {path} did not complete")]
    CleanupTask {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
}

fn store_err(op: StoreOp, path: &Path) -> impl FnOnce(object_store::Error) -> SinkError + '_ {
    move |source| SinkError::Store {
        op,
        path: path.clone(),
        source,
    }
}

/// An opened output location: its partitions ([`Sink`]) and its state objects
/// ([`StateStore`]), sharing one object store, prefix and set of S3 request counters. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Output {
    pub sink: Sink,
    pub state: StateStore,
}

impl Output {
    /// [`Output::open_with`] without metrics (S3 attempts are still counted for
    /// [`Output::request_counts`]).
    pub fn open(location: &OutputLocation) -> Result<Output, SinkError> {
        Output::open_on(location, None, AmazonS3Builder::from_env)
    }

    /// Opens the output location. Local: creates the directory if missing and roots a fsyncing
    /// LocalFileSystem there. S3: credentials and defaults from the `AWS_*` environment, the
    /// location's overrides and [`StoreTuning`](crate::config::StoreTuning) on top (path-style
    /// requests when an endpoint is set), and every HTTP attempt reported to `metrics`
    /// (`smartassist_store_requests_total`). No I/O on S3.
    pub fn open_with(location: &OutputLocation, metrics: &Metrics) -> Result<Output, SinkError> {
        Output::open_on(location, Some(metrics), AmazonS3Builder::from_env)
    }

    /// [`Output::open_with`], with S3 credentials and defaults taken from `base()` instead of
    /// the environment (tests pass explicit credentials; production uses `from_env`).
    pub fn open_on(
        location: &OutputLocation,
        metrics: Option<&Metrics>,
        base: impl FnOnce() -> AmazonS3Builder,
    ) -> Result<Output, SinkError> {
        Store::open(location, metrics, base).map(Output::sharing)
    }

    /// An output over any object store (tests, `InMemory`, a pre-built S3 client). Objects are
    /// written straight to their final keys, as on S3.
    pub fn with_store(store: Arc<dyn ObjectStore>, root: Path) -> Output {
        Output::sharing(Store::over(store, root))
    }

    fn sharing(store: Store) -> Output {
        Output {
            sink: Sink {
                store: store.clone(),
            },
            state: StateStore { store },
        }
    }

    /// Changes the age below which the staging sweeps of both leave staging files alone.
    pub fn with_staging_grace(self, grace: Duration) -> Output {
        let mut store = self.sink.store;
        store.staging_grace = grace;
        Output::sharing(store)
    }

    /// Changes the bound up to which pages share a row group (`[output]`
    /// `page_row_group_bytes`; [`PAGE_ROW_GROUP_BYTES_ENV`] still overrides it).
    pub fn with_page_row_group_bytes(self, bytes: usize) -> Output {
        let mut store = self.sink.store;
        store.page_row_group_bytes = bytes;
        Output::sharing(store)
    }

    /// The object prefix all output lives under.
    pub fn root(&self) -> &Path {
        &self.sink.store.root
    }

    /// HTTP request attempts of the S3 client so far, with the failed ones object_store
    /// retried (for metrics). All zero for local output and for [`Output::with_store`].
    pub fn request_counts(&self) -> StoreRequestCounts {
        self.sink.store.request_counts()
    }
}

/// The partitions of an output: writes them, reads them back, lists them, keeps their
/// rejects, sweeps their staging leftovers (see the module docs). Cheap to clone; clones share
/// the store.
#[derive(Clone, Debug)]
pub struct Sink {
    store: Store,
}

/// What names one version of a stored file: a file replaced by a new write has another
/// (its entity tag, or else its modification time and size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersion {
    pub e_tag: Option<String>,
    pub last_modified: chrono::DateTime<chrono::Utc>,
    pub size: u64,
}

impl Sink {
    /// Replaces the partition's data with `batches` (which must have the dataset's schema).
    /// Zero rows still write a valid schema-only file, so old content is replaced. Staging
    /// leftovers in the partition directory are removed first.
    pub async fn write_partition(
        &self,
        key: &PartitionKey,
        batches: Vec<RecordBatch>,
    ) -> Result<WriteStats, SinkError> {
        let mut writer = self.begin_partition(key).await?;
        for batch in batches {
            writer.write(batch).await?;
        }
        writer.commit().await
    }

    /// Reads back every visible Parquet file of the partition (empty when it does not exist).
    pub async fn read_partition(&self, key: &PartitionKey) -> Result<Vec<RecordBatch>, SinkError> {
        key.validate()?;
        self.read_dir(&key.relative_dir()).await
    }

    /// Reads back the partition's rejects (empty when there are none).
    pub async fn read_rejects(&self, key: &PartitionKey) -> Result<Vec<RecordBatch>, SinkError> {
        key.validate()?;
        self.read_dir(&key.rejects_relative_dir()).await
    }

    /// Whether the partition's data file exists.
    pub async fn partition_exists(&self, key: &PartitionKey) -> Result<bool, SinkError> {
        key.validate()?;
        let path = self.store.object_path(&key.relative_file());
        match self.store.objects.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(SinkError::Store {
                op: StoreOp::Head,
                path,
                source,
            }),
        }
    }

    /// The version of the partition's data file (`None` when it does not exist): one HEAD
    /// request, so a reader can keep what it read from the file until the version changes.
    pub async fn partition_version(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<FileVersion>, SinkError> {
        key.validate()?;
        let path = self.store.object_path(&key.relative_file());
        match self.store.objects.head(&path).await {
            Ok(meta) => Ok(Some(FileVersion {
                e_tag: meta.e_tag,
                last_modified: meta.last_modified,
                size: meta.size,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(SinkError::Store {
                op: StoreOp::Head,
                path,
                source,
            }),
        }
    }

    /// Object paths of the files a table reader would see in the partition directory: names
    /// not starting with `.` or `_`, sorted.
    pub async fn list_partition_files(&self, key: &PartitionKey) -> Result<Vec<Path>, SinkError> {
        key.validate()?;
        self.list_visible(&key.relative_dir()).await
    }

    /// Writes the partition's rejects (schema [`rejects_schema`]) to
    /// `_rejects/<relative_dir>/part-00000.parquet`, atomically like data files. `None` or zero
    /// rows delete an existing rejects file, so a clean re-export clears old rejects.
    pub async fn write_rejects(
        &self,
        key: &PartitionKey,
        rejects: Option<RecordBatch>,
    ) -> Result<WriteStats, SinkError> {
        key.validate()?;
        let dir = key.rejects_relative_dir();
        self.store
            .remove_staging_in(&dir, false, self.store.staging_grace)
            .await?;
        match rejects {
            Some(batch) if batch.num_rows() > 0 => {
                let label = format!("{}/{}", REJECTS_DIR, key.table.name);
                self.publish_parquet(&dir, PART_FILE_NAME, rejects_schema(), &label, &[batch])
                    .await
            }
            _ => {
                let path = self.store.object_path(&format!("{dir}/{PART_FILE_NAME}"));
                self.store.delete_if_exists(path).await?;
                Ok(WriteStats::default())
            }
        }
    }

    /// Removes staging leftovers (our `.tmp-*` files, LocalFileSystem `<name>#<n>` files) older
    /// than the staging grace under the table's data and rejects prefixes. Returns how many
    /// were removed.
    pub async fn cleanup_staging(&self, table: &Table) -> Result<usize, SinkError> {
        let mut removed = 0;
        for prefix in [
            table.name.to_string(),
            format!("{REJECTS_DIR}/{}", table.name),
        ] {
            removed += self
                .store
                .remove_staging_in(&prefix, true, self.store.staging_grace)
                .await?;
        }
        Ok(removed)
    }

    /// Encodes `batches` into `<dir>/<file_name>`, atomically replacing any old file.
    async fn publish_parquet(
        &self,
        dir: &str,
        file_name: &str,
        schema: arrow::datatypes::SchemaRef,
        label: &str,
        batches: &[RecordBatch],
    ) -> Result<WriteStats, SinkError> {
        let mut writer = self.begin_in_dir(dir, file_name, schema, label, MAX_ROW_GROUP_ROWS);
        for batch in batches {
            writer.write(batch.clone()).await?;
        }
        writer.commit().await
    }

    /// Starts a streaming write of `{dir}/{file_name}`: the upload runs on its own task (so a
    /// cancelled caller cannot strand it half-way) and is fed batch by batch.
    fn begin_in_dir(
        &self,
        dir: &str,
        file_name: &str,
        schema: arrow::datatypes::SchemaRef,
        label: &str,
        row_group_rows: usize,
    ) -> PartitionWriter {
        let (target, final_path) = self.store.write_target(dir, file_name);
        let page_bound = encode::page_row_group_bytes(self.store.page_row_group_bytes);
        let destination = self.store.describe(&format!("{dir}/{file_name}"));
        // Two batches in flight: the encoder works on one while the caller builds the next.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let task = {
            let (objects, target) = (Arc::clone(&self.store.objects), target.clone());
            let label = label.to_string();
            tokio::spawn(async move {
                encode::write_parquet_stream(
                    objects,
                    &target,
                    destination,
                    schema,
                    &label,
                    encode::RowGroupBounds {
                        rows: row_group_rows,
                        page_bytes: page_bound,
                    },
                    rx,
                )
                .await
            })
        };
        PartitionWriter {
            store: self.store.clone(),
            tx,
            task: Some(task),
            target,
            final_path,
        }
    }

    /// Starts replacing a partition's data file with batches streamed through the returned
    /// writer; the old file stays visible until [`PartitionWriter::commit`] succeeds. Dropping
    /// the writer (or [`PartitionWriter::abort`]) abandons the write and leaves the old file.
    pub async fn begin_partition(&self, key: &PartitionKey) -> Result<PartitionWriter, SinkError> {
        self.begin_partition_as(key, (key.table.schema)()).await
    }

    /// [`Sink::begin_partition`] written with `schema` instead of the table's: the same
    /// columns (names, types, nullability) whose field metadata the unit chooses, e.g. the unit
    /// of a duration column that a dataset's config declares. Other columns are a
    /// [`SinkError::SchemaMismatch`].
    pub async fn begin_partition_as(
        &self,
        key: &PartitionKey,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<PartitionWriter, SinkError> {
        key.validate()?;
        let dir = key.relative_dir();
        if !same_columns(&schema, &(key.table.schema)()) {
            return Err(SinkError::SchemaMismatch {
                dataset: key.table.name.to_string(),
                path: self.store.object_path(&dir),
            });
        }
        // Only leftovers older than the grace: a younger staging file may be another
        // process's write of this same partition, still in progress.
        self.store
            .remove_staging_in(&dir, false, self.store.staging_grace)
            .await?;
        Ok(self.begin_in_dir(
            &dir,
            PART_FILE_NAME,
            schema,
            key.table.name,
            MAX_ROW_GROUP_ROWS,
        ))
    }

    async fn list_visible(&self, dir: &str) -> Result<Vec<Path>, SinkError> {
        let prefix = self.store.object_path(dir);
        let listing = match self.store.objects.list_with_delimiter(Some(&prefix)).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(source) => {
                return Err(SinkError::Store {
                    op: StoreOp::List,
                    path: prefix,
                    source,
                })
            }
        };
        let mut files: Vec<Path> = listing
            .objects
            .into_iter()
            .map(|meta| meta.location)
            .filter(|p| {
                p.filename().is_some_and(|n| {
                    !n.starts_with('.') && !n.starts_with('_') && !is_staging_name(n)
                })
            })
            .collect();
        files.sort();
        Ok(files)
    }

    async fn read_dir(&self, dir: &str) -> Result<Vec<RecordBatch>, SinkError> {
        let mut out = Vec::new();
        for path in self.list_visible(dir).await? {
            if path.extension() != Some("parquet") {
                continue;
            }
            let bytes = match self.store.objects.get(&path).await {
                Ok(result) => result
                    .bytes()
                    .await
                    .map_err(store_err(StoreOp::Get, &path))?,
                // Replaced or removed between list and get: nothing to read there any more.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(source) => {
                    return Err(SinkError::Store {
                        op: StoreOp::Get,
                        path,
                        source,
                    })
                }
            };
            out.extend(files::decode_parquet(&path, bytes, None)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod page_tests;
#[cfg(test)]
mod tests;

/// Whether two schemas have the same columns (names, types, nullability, in order), whatever
/// their metadata.
fn same_columns(a: &arrow::datatypes::Schema, b: &arrow::datatypes::Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| {
            x.name() == y.name()
                && x.data_type() == y.data_type()
                && x.is_nullable() == y.is_nullable()
        })
}
