//! One opened output location, shared by its two users, [`Sink`](super::Sink) (partitions) and
//! [`StateStore`](super::StateStore) (small versioned objects): the object store, the prefix
//! all output lives under, how a finished object becomes visible ([`Publish`]), how errors
//! name objects, the S3 request counters and the staging grace. Also the object-level steps
//! both build on: a read that treats a missing object as `None`, and the staged-or-direct
//! publication of one object. Opening (local directory or S3) happens here, once, so both
//! users always address the same store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{layout, s3, store_err, SinkError, StoreOp, DEFAULT_STAGING_GRACE};
use crate::config::OutputLocation;
use crate::metrics::Metrics;

/// How a finished object becomes visible to readers: the output's two publishing strategies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Publish {
    /// Local disk: write a hidden staging file in the same directory, then rename it over the
    /// final name. `dir` is the real output directory, also swept for staging leftovers
    /// (LocalFileSystem hides its `<name>#<n>` upload files from `list`).
    StagedRename { dir: PathBuf },
    /// Object stores: write straight to the final key, where the object appears only when the
    /// PutObject / CompleteMultipartUpload succeeds.
    DirectPut,
}

/// An opened output location. Cheap to clone; clones share the object store and the counters.
#[derive(Clone)]
pub(super) struct Store {
    pub(super) objects: Arc<dyn ObjectStore>,
    /// Prefix of every object (empty for local output, whose store is rooted at the directory).
    pub(super) root: Path,
    pub(super) publish: Publish,
    /// Staging files younger than this are left alone by the sweeps.
    pub(super) staging_grace: Duration,
    /// Pages share a row group until their rows hold this many bytes (`[output]`
    /// `page_row_group_bytes`, see [`super::PAGE_ROW_GROUP_BYTES`]).
    pub(super) page_row_group_bytes: usize,
    /// Attempts of the S3 client built by [`Store::open`] (stays zero otherwise).
    requests: Arc<s3::RequestStats>,
    /// How errors name remote objects: `s3://bucket` then the object path.
    label: Arc<str>,
}

/// Shows the store by its `Display` form (e.g. `AmazonS3(bucket)`), never its configuration,
/// so credentials cannot reach logs through `{:?}`.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("objects", &format_args!("{}", self.objects))
            .field("root", &self.root.as_ref())
            .field("publish", &self.publish)
            .field("staging_grace", &self.staging_grace)
            .field("page_row_group_bytes", &self.page_row_group_bytes)
            .finish()
    }
}

impl Store {
    /// Opens the output location. Local: creates the directory if missing and roots a
    /// fsyncing LocalFileSystem there. S3: `base()` (normally the `AWS_*` environment), the
    /// location's overrides and [`StoreTuning`](crate::config::StoreTuning) on top, and every
    /// HTTP attempt counted and reported to `metrics`. No I/O on S3.
    pub(super) fn open(
        location: &OutputLocation,
        metrics: Option<&Metrics>,
        base: impl FnOnce() -> AmazonS3Builder,
    ) -> Result<Store, SinkError> {
        match location {
            OutputLocation::Local(dir) => Store::open_local(dir),
            OutputLocation::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                allow_http,
                tuning,
            } => {
                let requests = Arc::new(s3::RequestStats::new(metrics.cloned()));
                let builder = s3::s3_builder(
                    base(),
                    bucket,
                    endpoint.as_deref(),
                    region.as_deref(),
                    *allow_http,
                    tuning,
                    &requests,
                );
                let objects = builder.build().map_err(|source| SinkError::OpenStore {
                    location: format!("s3://{bucket}/{prefix}"),
                    source,
                })?;
                let trimmed = prefix.trim_matches('/');
                let root = Path::parse(trimmed).map_err(|source| SinkError::InvalidPrefix {
                    prefix: prefix.clone(),
                    source,
                })?;
                Ok(Store {
                    requests,
                    label: format!("s3://{bucket}").into(),
                    ..Store::over(Arc::new(objects), root)
                })
            }
        }
    }

    fn open_local(dir: &std::path::Path) -> Result<Store, SinkError> {
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
        Ok(Store {
            publish: Publish::StagedRename { dir },
            ..Store::over(Arc::new(fs), Path::default())
        })
    }

    /// Any object store under `root`; objects are written straight to their final keys.
    pub(super) fn over(objects: Arc<dyn ObjectStore>, root: Path) -> Store {
        Store {
            label: objects.to_string().into(),
            objects,
            root,
            publish: Publish::DirectPut,
            staging_grace: DEFAULT_STAGING_GRACE,
            page_row_group_bytes: super::PAGE_ROW_GROUP_BYTES,
            requests: Arc::default(),
        }
    }

    pub(super) fn request_counts(&self) -> s3::StoreRequestCounts {
        self.requests.snapshot()
    }

    /// The object path of a relative `a/b/c` string under the root.
    pub(super) fn object_path(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|s| !s.is_empty())
            .fold(self.root.clone(), |p, seg| p.join(seg))
    }

    /// The real directory of a relative `a/b/c` string, for local output.
    pub(super) fn local_path(&self, relative: &str) -> Option<PathBuf> {
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

    /// A relative `a/b/c` string as errors show it: the absolute file path on local disk,
    /// `s3://bucket/prefix/a/b/c` on S3.
    pub(super) fn describe(&self, relative: &str) -> String {
        match self.local_path(relative) {
            Some(path) => path.display().to_string(),
            None => format!("{}/{}", self.label, self.object_path(relative)),
        }
    }

    /// The object at `path` with its metadata; `None` when absent, also when it disappears
    /// between the answer's headers and its body (a rename over it on local disk).
    pub(super) async fn get_if_exists(
        &self,
        path: &Path,
    ) -> Result<Option<(Bytes, object_store::ObjectMeta)>, SinkError> {
        let result = match self.objects.get(path).await {
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

    /// Deletes the object at `path`; nothing to do when it does not exist.
    pub(super) async fn delete_if_exists(&self, path: Path) -> Result<(), SinkError> {
        match self.objects.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(SinkError::Store {
                op: StoreOp::Delete,
                path,
                source,
            }),
        }
    }

    /// Where a write of `{dir}/{file_name}` goes first, and its final path: a hidden staging
    /// name beside it for [`Publish::StagedRename`], the final key itself for
    /// [`Publish::DirectPut`]. After a successful write, [`Store::publish`] makes it visible.
    pub(super) fn write_target(&self, dir: &str, file_name: &str) -> (Path, Path) {
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
    pub(super) async fn publish(&self, target: &Path, final_path: &Path) -> Result<(), SinkError> {
        if target == final_path {
            return Ok(());
        }
        self.rename_into_place(target, final_path).await
    }

    /// Forgets a `target` whose write failed: staging files are removed; a direct put that
    /// failed never became visible.
    pub(super) async fn abandon(&self, target: &Path, final_path: &Path) {
        if target != final_path {
            self.discard(target).await;
        }
    }

    /// Atomically replaces the small object at `relative` with `value` whatever it holds (one
    /// in-memory put, then [`Store::publish`]).
    pub(super) async fn put_whole(&self, relative: &str, value: Bytes) -> Result<(), SinkError> {
        let (parent, file_name) = relative.rsplit_once('/').unwrap_or(("", relative));
        let (target, final_path) = self.write_target(parent, file_name);
        // A failed local write leaves no file: LocalFileSystem removes its own upload file.
        self.objects
            .put(&target, value.into())
            .await
            .map_err(|source| SinkError::Write {
                path: self.describe(relative),
                source: source.into(),
            })?;
        self.publish(&target, &final_path).await
    }

    /// Renames a staging object over its final name; removes the staging object if that fails.
    async fn rename_into_place(&self, staging: &Path, final_path: &Path) -> Result<(), SinkError> {
        match self.objects.rename(staging, final_path).await {
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
    /// caller reports, and the staging sweeps remove anything left.
    async fn discard(&self, path: &Path) {
        match self.objects.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(
                path = %path,
                error = &e as &dyn std::error::Error,
                "Could not remove a staging file; a later cleanup will retry."
            ),
        }
    }
}
