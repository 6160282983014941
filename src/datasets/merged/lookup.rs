//! Which candidates a partition already holds: the lookup of a poll's candidate keys in the
//! files whose time range covers them. Within such a file only the row groups whose time
//! column's statistics cover a candidate's instant are read, and of those only the key columns
//! (ranged reads): a record's instant never changes, so a row group whose range misses every
//! candidate cannot hold one. Files are written with row groups of at most [`ROW_GROUP_ROWS`]
//! rows (merged files sorted by instant), so a lookup in a large file reads about one row
//! group per candidate.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};

use super::{index_name, FileEntry, MergedRecord, PartitionIndex};
use crate::error::Error;
use crate::sink::{PartitionKey, RowGroupFilter, Sink, StateStore, Version};
use crate::state;

/// Rows per row group of the partition's files (poll files and merged ones).
pub const ROW_GROUP_ROWS: usize = 4096;
/// Covering files read at the same time.
const PARALLEL_READS: usize = 8;

/// The ids of `candidates` held by the files whose `end_time` range covers one of them (plus a
/// merge in progress). `None` when the index changed meanwhile (the caller starts over). A
/// listed file that has disappeared although the index did not change was removed by someone
/// outside the exporter: it is dropped from `idx`, and its records are exported again.
pub(super) async fn known_ids<R: MergedRecord>(
    sink: &Sink,
    state_store: &StateStore,
    key: &PartitionKey,
    idx: &mut PartitionIndex<R>,
    version: Option<&Version>,
    candidates: &[R],
) -> Result<Option<HashSet<String>>, Error> {
    let wanted: HashSet<String> = candidates.iter().map(R::key).collect();
    let mut known = HashSet::new();
    let mut vanished = Vec::new();
    let files = covering(idx, candidates);
    // The covering files are read side by side (a few requests each on S3).
    let reads: Vec<_> = futures::stream::iter(files.iter().cloned())
        .map(|f: FileEntry| async move {
            let ends: Vec<i64> = candidates
                .iter()
                .filter(|r| f.covers(r.instant()))
                .map(|r| r.instant().timestamp_millis())
                .collect();
            let filter = RowGroupFilter {
                column: R::TIME_COLUMN,
                any_of: &ends,
            };
            sink.read_partition_file_pruned(key, &f.name, R::table().key, filter)
                .await
        })
        .buffered(PARALLEL_READS)
        .try_collect()
        .await?;
    for (f, read) in files.iter().zip(reads) {
        match read {
            Some(read) => known.extend(
                read.batches
                    .iter()
                    .flat_map(R::keys_of)
                    .filter(|id| wanted.contains(id)),
            ),
            // One side of a merge is always complete: inputs until the output exists.
            None if in_merge(idx, &f.name) => {}
            None => vanished.push(f.name.clone()),
        }
    }
    if !vanished.is_empty() {
        let current =
            state::load_versioned::<PartitionIndex<R>>(state_store, &index_name(key)).await?;
        if current.version.as_ref() != version {
            return Ok(None);
        }
        tracing::warn!(partition = %key.relative_dir(), files = ?vanished, "Files listed in the partition index are gone; their records will be exported again.");
        idx.files.retain(|f| !vanished.contains(&f.name));
    }
    Ok(Some(known))
}

/// The files (and a merge's output) whose `end_time` range covers a candidate.
fn covering<R: MergedRecord>(idx: &PartitionIndex<R>, candidates: &[R]) -> Vec<FileEntry> {
    let mut to_read: Vec<FileEntry> = idx
        .files
        .iter()
        .chain(idx.compaction.as_ref().map(|c| &c.output))
        .filter(|f| candidates.iter().any(|r| f.covers(r.instant())))
        .cloned()
        .collect();
    to_read.dedup_by(|a, b| a.name == b.name);
    to_read
}

fn in_merge<R>(idx: &PartitionIndex<R>, name: &str) -> bool {
    idx.compaction
        .as_ref()
        .is_some_and(|c| c.output.name == name || c.inputs.iter().any(|i| i == name))
}
