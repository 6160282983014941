//! Sweeping staging leftovers: our hidden `.tmp-*` files and LocalFileSystem's `<name>#<n>`
//! upload files that a killed writer left behind, older than a grace period so that a writer
//! still running elsewhere keeps its file. Local output is swept on disk (LocalFileSystem
//! hides its upload files from `list`); object stores are listed. Both users of the output
//! sweep what they write: the sink its partitions and rejects, the state store `_state/`.

use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;

use super::layout::is_staging_name;
use super::store::Store;
use super::{store_err, SinkError, StoreOp};

impl Store {
    /// Removes staging files older than `min_age` in `dir` (and below it when `recursive`).
    pub(super) async fn remove_staging_in(
        &self,
        dir: &str,
        recursive: bool,
        min_age: Duration,
    ) -> Result<usize, SinkError> {
        match self.local_path(dir) {
            Some(local) => {
                let task_path = local.clone();
                tokio::task::spawn_blocking(move || {
                    remove_local_staging(&task_path, recursive, min_age)
                })
                .await
                .map_err(|source| SinkError::CleanupTask {
                    path: local,
                    source,
                })?
            }
            // Object stores are written straight to the final key, so a partition write has
            // nothing to sweep there; only the per-run sweep (recursive) lists them, for
            // leftovers of older versions or other writers.
            None if !recursive => Ok(0),
            None => self.remove_remote_staging(dir, recursive, min_age).await,
        }
    }

    async fn remove_remote_staging(
        &self,
        dir: &str,
        recursive: bool,
        min_age: Duration,
    ) -> Result<usize, SinkError> {
        let prefix = self.object_path(dir);
        let candidates: Vec<Path> = if recursive {
            self.objects
                .list(Some(&prefix))
                .try_filter_map(|meta| {
                    let stale = is_stale_staging(&meta.location, meta.last_modified, min_age);
                    futures::future::ready(Ok(stale.then_some(meta.location)))
                })
                .try_collect()
                .await
                .map_err(store_err(StoreOp::List, &prefix))?
        } else {
            match self.objects.list_with_delimiter(Some(&prefix)).await {
                Ok(listing) => listing
                    .objects
                    .into_iter()
                    .filter(|m| is_stale_staging(&m.location, m.last_modified, min_age))
                    .map(|m| m.location)
                    .collect(),
                Err(object_store::Error::NotFound { .. }) => Vec::new(),
                Err(source) => {
                    return Err(SinkError::Store {
                        op: StoreOp::List,
                        path: prefix,
                        source,
                    })
                }
            }
        };
        let mut removed = 0;
        for path in candidates {
            match self.objects.delete(&path).await {
                Ok(()) => removed += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(SinkError::Store {
                        op: StoreOp::Delete,
                        path,
                        source,
                    })
                }
            }
        }
        Ok(removed)
    }
}

fn is_stale_staging(
    location: &Path,
    last_modified: chrono::DateTime<chrono::Utc>,
    min_age: Duration,
) -> bool {
    let is_staging = location.filename().is_some_and(is_staging_name);
    let age = (chrono::Utc::now() - last_modified)
        .to_std()
        .unwrap_or(Duration::ZERO);
    is_staging && age >= min_age
}

/// Deletes staging files (by name) older than `min_age` in `dir`, descending into
/// subdirectories when `recursive`. A missing directory holds nothing.
fn remove_local_staging(
    dir: &std::path::Path,
    recursive: bool,
    min_age: Duration,
) -> Result<usize, SinkError> {
    let io_err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| SinkError::LocalIo { path, source }
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_err(&path))?;
        if file_type.is_dir() {
            if recursive {
                removed += remove_local_staging(&path, true, min_age)?;
            }
            continue;
        }
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_staging_name) {
            continue;
        }
        if !min_age.is_zero() {
            let modified = match entry.metadata().and_then(|m| m.modified()) {
                Ok(t) => t,
                // Removed meanwhile (its writer finished): nothing to do.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path)(e)),
            };
            if now.duration_since(modified).unwrap_or(Duration::ZERO) < min_age {
                continue;
            }
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    Ok(removed)
}
