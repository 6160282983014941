//! Parquet sink on object_store. Owns partition paths, file naming, Parquet encoding (ZSTD,
//! statistics, schema version metadata), atomic partition replacement, the rejects dataset,
//! staging cleanup and small state objects under `_state/`.
//!
//! A partition written whole (history datasets, rejects) is exactly one file,
//! `part-00000.parquet`, whose name depends only on the [`PartitionKey`], so a rerun replaces the
//! partition instead of adding to it; datasets that add to a partition name their files
//! themselves ([`Sink::write_partition_file`]). Small objects that several processes
//! read-modify-write go through compare-and-swap ([`Sink::get_versioned`], [`Sink::put_if`]). Replacement is
//! atomic per file: on local disk the file is written under a hidden staging name in the same
//! directory and renamed over the old one; on S3 it is written straight to its key, where it
//! appears only when the PutObject / CompleteMultipartUpload succeeds, and each upload runs on its
//! own task so that cancelling the caller cannot strand a half-done multipart upload. The caller must write data
//! before committing any state that describes it, and should call [`Sink::cleanup_staging`] once
//! per run to sweep staging files left by a killed process. On S3, a process killed mid-upload
//! can leave an incomplete multipart upload that only a bucket lifecycle rule
//! (AbortIncompleteMultipartUpload) removes; so can a lost CreateMultipartUpload answer
//! (object_store retries the request, and the upload the first one created is never known). The
//! S3 client's retry policy and timeouts are [`StoreTuning`](crate::config::StoreTuning), and
//! it reports every request attempt to the metrics handle it is opened with; a file the storage
//! refuses is [`SinkError::Write`], naming the file.

#[cfg(test)]
pub(crate) mod counting;
mod encode;
mod files;
mod layout;
mod ranged;
mod staging;
mod store;
mod versioned;
mod writer;

pub use writer::PartitionWriter;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::NaiveDate;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::config::OutputLocation;
use crate::metrics::Metrics;
use crate::schema::rejects_schema;
use crate::schema::Table;

pub use encode::{
    created_by, writer_properties, MAX_ROW_GROUP_ROWS, ROW_GROUP_FLUSH_BYTES, UPLOAD_CONCURRENCY,
    UPLOAD_PART_BYTES,
};
pub use layout::{is_staging_name, PART_FILE_NAME, REJECTS_DIR, STAGING_PREFIX, STATE_DIR};
pub use ranged::{PrunedRead, RowGroupFilter, FOOTER_FETCH_BYTES};
pub use store::StoreRequestCounts;
pub use versioned::{Conflict, Version, LOCKS_DIR};

/// Staging files younger than this are left alone by [`Sink::cleanup_staging`]: they may belong
/// to a writer of another partition that is still running.
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

/// How a finished object becomes visible to readers: the sink's two publishing strategies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Publish {
    /// Local disk: write a hidden staging file in the same directory, then rename it over the
    /// final name. `dir` is the real output directory, also swept for staging leftovers
    /// (LocalFileSystem hides its `<name>#<n>` upload files from `list`).
    StagedRename { dir: PathBuf },
    /// Object stores: write straight to the final key, where the object appears only when the
    /// PutObject / CompleteMultipartUpload succeeds.
    DirectPut,
}

/// The Parquet sink. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct Sink {
    store: Arc<dyn ObjectStore>,
    /// Prefix of every object (empty for local output, whose store is rooted at the directory).
    root: Path,
    publish: Publish,
    staging_grace: Duration,
    /// Attempts of the S3 client built by [`Sink::open`] (stays zero otherwise).
    requests: Arc<store::RequestStats>,
    /// How errors name remote objects: `s3://bucket` then the object path.
    label: Arc<str>,
}

/// Shows the store by its `Display` form (e.g. `AmazonS3(bucket)`), never its configuration,
/// so credentials cannot reach logs through `{:?}`.
impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("store", &format_args!("{}", self.store))
            .field("root", &self.root.as_ref())
            .field("publish", &self.publish)
            .field("staging_grace", &self.staging_grace)
            .finish()
    }
}

impl Sink {
    /// [`Sink::open_with`] without metrics (S3 attempts are still counted for
    /// [`Sink::request_counts`]).
    pub fn open(location: &OutputLocation) -> Result<Sink, SinkError> {
        Sink::open_on(location, None, AmazonS3Builder::from_env)
    }

    /// Opens the output location. Local: creates the directory if missing and roots a fsyncing
    /// LocalFileSystem there. S3: credentials and defaults from the `AWS_*` environment, the
    /// location's overrides and [`StoreTuning`](crate::config::StoreTuning) on top (path-style
    /// requests when an endpoint is set), and every HTTP attempt reported to `metrics`
    /// (`smartassist_store_requests_total`). No I/O on S3.
    pub fn open_with(location: &OutputLocation, metrics: &Metrics) -> Result<Sink, SinkError> {
        Sink::open_on(location, Some(metrics), AmazonS3Builder::from_env)
    }

    /// [`Sink::open_with`], with S3 credentials and defaults taken from `base()` instead of the
    /// environment (tests pass explicit credentials; production uses `from_env`).
    pub fn open_on(
        location: &OutputLocation,
        metrics: Option<&Metrics>,
        base: impl FnOnce() -> AmazonS3Builder,
    ) -> Result<Sink, SinkError> {
        match location {
            OutputLocation::Local(dir) => Sink::open_local(dir),
            OutputLocation::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                allow_http,
                tuning,
            } => {
                let requests = Arc::new(store::RequestStats::new(metrics.cloned()));
                let builder = store::s3_builder(
                    base(),
                    bucket,
                    endpoint.as_deref(),
                    region.as_deref(),
                    *allow_http,
                    tuning,
                    &requests,
                );
                let store = builder.build().map_err(|source| SinkError::OpenStore {
                    location: format!("s3://{bucket}/{prefix}"),
                    source,
                })?;
                let trimmed = prefix.trim_matches('/');
                let root = Path::parse(trimmed).map_err(|source| SinkError::InvalidPrefix {
                    prefix: prefix.clone(),
                    source,
                })?;
                Ok(Sink {
                    requests,
                    label: format!("s3://{bucket}").into(),
                    ..Sink::with_store(Arc::new(store), root)
                })
            }
        }
    }

    fn open_local(dir: &std::path::Path) -> Result<Sink, SinkError> {
        std::fs::create_dir_all(dir).map_err(|source| SinkError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let dir = std::fs::canonicalize(dir).map_err(|source| SinkError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let fs = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|source| SinkError::OpenStore {
                location: format!("file://{}", dir.display()),
                source,
            })?
            .with_fsync(true);
        Ok(Sink {
            publish: Publish::StagedRename { dir },
            ..Sink::with_store(Arc::new(fs), Path::default())
        })
    }

    /// HTTP request attempts of the S3 client so far, with the failed ones object_store
    /// retried (for metrics). All zero for local output and for [`Sink::with_store`].
    pub fn request_counts(&self) -> StoreRequestCounts {
        self.requests.snapshot()
    }

    /// A sink over any object store (tests, `InMemory`, a pre-built S3 client). Objects are
    /// written straight to their final keys, as on S3.
    pub fn with_store(store: Arc<dyn ObjectStore>, root: Path) -> Sink {
        Sink {
            label: store.to_string().into(),
            store,
            root,
            publish: Publish::DirectPut,
            staging_grace: DEFAULT_STAGING_GRACE,
            requests: Arc::default(),
        }
    }

    /// Changes the age below which [`Sink::cleanup_staging`] leaves staging files alone.
    pub fn with_staging_grace(mut self, grace: Duration) -> Sink {
        self.staging_grace = grace;
        self
    }

    /// The object prefix all output lives under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The object path of a relative `a/b/c` string under the root.
    fn object_path(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|s| !s.is_empty())
            .fold(self.root.clone(), |p, seg| p.join(seg))
    }

    /// The real directory of a relative `a/b/c` string, for local output.
    fn local_path(&self, relative: &str) -> Option<PathBuf> {
        let Publish::StagedRename { dir } = &self.publish else {
            return None;
        };
        Some(
            relative
                .split('/')
                .filter(|s| !s.is_empty())
                .fold(dir.clone(), |p, seg| p.join(seg)),
        )
    }

    /// Where a write of `{dir}/{file_name}` goes first, and its final path: a hidden staging
    /// name beside it for [`Publish::StagedRename`], the final key itself for
    /// [`Publish::DirectPut`]. After a successful write, [`Sink::publish`] makes it visible.
    fn write_target(&self, dir: &str, file_name: &str) -> (Path, Path) {
        let final_path = self.object_path(&format!("{dir}/{file_name}"));
        let target = match self.publish {
            Publish::StagedRename { .. } => {
                self.object_path(&format!("{dir}/{}", layout::staging_name(file_name)))
            }
            Publish::DirectPut => final_path.clone(),
        };
        (target, final_path)
    }

    /// Makes a completely written `target` visible at `final_path` (a rename for staged
    /// writes; nothing to do for direct puts, which are visible once complete).
    async fn publish(&self, target: &Path, final_path: &Path) -> Result<(), SinkError> {
        if target == final_path {
            return Ok(());
        }
        self.rename_into_place(target, final_path).await
    }

    /// Forgets a `target` whose write failed: staging files are removed; a direct put that
    /// failed never became visible.
    async fn abandon(&self, target: &Path, final_path: &Path) {
        if target != final_path {
            self.discard(target).await;
        }
    }

    /// A relative `a/b/c` string as errors show it: the absolute file path on local disk,
    /// `s3://bucket/prefix/a/b/c` on S3.
    fn describe(&self, relative: &str) -> String {
        match self.local_path(relative) {
            Some(path) => path.display().to_string(),
            None => format!("{}/{}", self.label, self.object_path(relative)),
        }
    }

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
        let path = self.object_path(&key.relative_file());
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
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
        self.remove_staging_in(&dir, false, self.staging_grace)
            .await?;
        match rejects {
            Some(batch) if batch.num_rows() > 0 => {
                let label = format!("{}/{}", REJECTS_DIR, key.table.name);
                self.publish_parquet(&dir, PART_FILE_NAME, rejects_schema(), &label, &[batch])
                    .await
            }
            _ => {
                let path = self.object_path(&format!("{dir}/{PART_FILE_NAME}"));
                match self.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(WriteStats::default()),
                    Err(source) => Err(SinkError::Store {
                        op: StoreOp::Delete,
                        path,
                        source,
                    }),
                }
            }
        }
    }

    /// Removes staging leftovers (our `.tmp-*` files, LocalFileSystem `<name>#<n>` files) older
    /// than the staging grace under the dataset's data, rejects, state and lease prefixes.
    /// Returns how many were removed.
    pub async fn cleanup_staging(&self, table: &Table) -> Result<usize, SinkError> {
        let mut removed = 0;
        for prefix in [
            table.name.to_string(),
            format!("{REJECTS_DIR}/{}", table.name),
            format!("{STATE_DIR}/{}", table.name),
            format!("{STATE_DIR}/lease/{}", table.name),
        ] {
            removed += self
                .remove_staging_in(&prefix, true, self.staging_grace)
                .await?;
        }
        Ok(removed)
    }

    /// Reads the state object `_state/<name>`, `None` when absent.
    pub async fn get_state(&self, name: &str) -> Result<Option<Bytes>, SinkError> {
        layout::validate_state_name(name)?;
        let path = self.object_path(&format!("{STATE_DIR}/{name}"));
        Ok(self.get_if_exists(&path).await?.map(|(bytes, _)| bytes))
    }

    /// The object at `path` with its metadata; `None` when absent, also when it disappears
    /// between the answer's headers and its body (a rename over it on local disk).
    async fn get_if_exists(
        &self,
        path: &Path,
    ) -> Result<Option<(Bytes, object_store::ObjectMeta)>, SinkError> {
        let result = match self.store.get(path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(store_err(StoreOp::Get, path)(source)),
        };
        let meta = result.meta.clone();
        match result.bytes().await {
            Ok(bytes) => Ok(Some((bytes, meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(store_err(StoreOp::Get, path)(source)),
        }
    }

    /// Atomically replaces the state object `_state/<name>` (names like
    /// `user_status/account_id=A.json`) whatever it holds: a blind write, for tools and tests.
    /// Read-modify-write goes through [`Sink::put_state_if`].
    pub async fn put_state(&self, name: &str, value: Bytes) -> Result<(), SinkError> {
        layout::validate_state_name(name)?;
        let relative = format!("{STATE_DIR}/{name}");
        let (parent, file_name) = relative.rsplit_once('/').unwrap_or(("", relative.as_str()));
        let (target, final_path) = self.write_target(parent, file_name);
        // A failed local write leaves no file: LocalFileSystem removes its own upload file.
        self.store
            .put(&target, PutPayload::from(value))
            .await
            .map_err(|source| SinkError::Write {
                path: self.describe(&relative),
                source: source.into(),
            })?;
        self.publish(&target, &final_path).await
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
        let (target, final_path) = self.write_target(dir, file_name);
        let destination = self.describe(&format!("{dir}/{file_name}"));
        // Two batches in flight: the encoder works on one while the caller builds the next.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let task = {
            let (store, target) = (Arc::clone(&self.store), target.clone());
            let label = label.to_string();
            tokio::spawn(async move {
                encode::write_parquet_stream(
                    store,
                    &target,
                    destination,
                    schema,
                    &label,
                    row_group_rows,
                    rx,
                )
                .await
            })
        };
        PartitionWriter {
            sink: self.clone(),
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
        key.validate()?;
        let dir = key.relative_dir();
        // Only leftovers older than the grace: a younger staging file may be another
        // process's write of this same partition, still in progress.
        self.remove_staging_in(&dir, false, self.staging_grace)
            .await?;
        Ok(self.begin_in_dir(
            &dir,
            PART_FILE_NAME,
            (key.table.schema)(),
            key.table.name,
            MAX_ROW_GROUP_ROWS,
        ))
    }

    /// Renames a staging object over its final name; removes the staging object if that fails.
    async fn rename_into_place(&self, staging: &Path, final_path: &Path) -> Result<(), SinkError> {
        match self.store.rename(staging, final_path).await {
            Ok(()) => Ok(()),
            Err(source) => {
                self.discard(staging).await;
                Err(SinkError::Store {
                    op: StoreOp::Rename,
                    path: final_path.clone(),
                    source,
                })
            }
        }
    }

    /// Best-effort removal of a staging object after a failure; the original error is what the
    /// caller reports, and cleanup_staging sweeps anything left.
    async fn discard(&self, path: &Path) {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(
                path = %path,
                error = &e as &dyn std::error::Error,
                "Could not remove a staging file; a later cleanup will retry."
            ),
        }
    }

    async fn list_visible(&self, dir: &str) -> Result<Vec<Path>, SinkError> {
        let prefix = self.object_path(dir);
        let listing = match self.store.list_with_delimiter(Some(&prefix)).await {
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
            let bytes = match self.store.get(&path).await {
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
mod tests;
