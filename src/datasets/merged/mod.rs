//! A snapshot dataset's partition as several files merged by a row key, so that a poll costs
//! what its new records cost, not what the partition already holds: each poll adds one small
//! file with only records no other file of the partition holds, and compaction merges files
//! (neighbours in time order when there are more than [`Policy::max_files`] small ones, all of
//! them once the day is closed). The records are any [`MergedRecord`]: a row key that names a
//! record within its partition, and an instant that never changes for it (it places the record
//! in its partition and orders the partition's files). `intent_realtime` (sessions by
//! `session_id`, ordered by `end_time`) and `queue_stats` (queue snapshots by queue and
//! `polled_at`) use it.
//!
//! The partition's index (`_state/<table>/account_id=A[/bot_id=B]/dt=D.json`, written only by
//! compare-and-swap) is the one place that says which records are taken:
//! - `files`: the published files, each with its row count and time range;
//! - `pending`: files claimed but perhaps not yet published, *with their records*, so any
//!   writer can publish a claim whose writer died;
//! - `compaction`: a merge in progress (its output and inputs), so any writer can finish it.
//!
//! Adding records ([`add_records`]): read the index; publish every pending file (idempotent:
//! a file's name and content follow from its claim) and move it to `files`; look the
//! candidates up in the files whose time range covers a candidate's instant, reading there
//! only the key columns of the row groups whose time statistics cover one (see
//! `merged/lookup.rs`; files have row groups of [`ROW_GROUP_ROWS`] rows); claim the rest as a
//! pending file with one conditional write (a conflict means another writer changed the
//! partition: start over); publish the file; move it to `files`. Two writers can therefore
//! never put one record in two files, and a crash between claim and publication loses nothing.
//!
//! Compaction ([`compact`]): record the merge, write the merged file (rows sorted by instant
//! and key), delete the inputs, replace them by the output in the index. Object stores offer no
//! atomic step over several objects, so between the merged file's appearance and the inputs'
//! deletion (one delete request per input, milliseconds) a reader listing the folder sees those
//! records twice. The generated query DDL hides that window: readers query the table's view,
//! which keeps one row per key over the files (see [`crate::schema::Dedupe`] and
//! docs/datasets/intent_realtime.md, "The moment of a merge"). Files that are in the folder but
//! not in the index (a write that landed after its file had been compacted away) are deleted by
//! the next compaction of the partition. [`close_days`] merges the partitions of days that
//! ended long enough ago into one file each.
//!
//! Partitions written by earlier versions (one `part-00000.parquet`, no index) are adopted: the
//! first writer builds the index from the files it finds.

use std::collections::HashSet;
use std::time::Duration;

use arrow::array::{Array, TimestampMillisecondArray};
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::schema::Table;
use crate::sink::{PartitionKey, Sink, StateStore, WriteStats, STATE_DIR};
use crate::state::{self, StateError, StateObject, MAX_UPDATE_ATTEMPTS};
use lookup::known_ids;
pub use lookup::ROW_GROUP_ROWS;

/// A record a merged partition holds: named by a key within its partition, placed and ordered
/// by an instant that never changes for it, kept in the index while claimed (hence serde), and
/// written as rows of [`MergedRecord::table`].
pub trait MergedRecord:
    Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The table whose partitions hold these records; its `key` columns name a row and are
    /// what a lookup reads back.
    fn table() -> &'static Table;
    /// The non-null timestamp column of [`MergedRecord::instant`].
    const TIME_COLUMN: &'static str;
    /// The record's key text, as [`MergedRecord::keys_of`] reads it back from a row.
    fn key(&self) -> String;
    /// The instant that orders it (milliseconds, as stored).
    fn instant(&self) -> DateTime<Utc>;
    /// The keys of the rows of `batch` (holding at least the table's key columns).
    fn keys_of(batch: &RecordBatch) -> Vec<String>;
    /// `records` as rows of the partition `key`, exported at `exported_at`.
    fn to_batch(key: &PartitionKey, records: &[Self], exported_at: DateTime<Utc>) -> RecordBatch;
}

/// When compaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// More files than this below [`Policy::frozen_rows`] in a partition: merge
    /// [`Policy::fan_in`] of them, neighbours in end-time order of similar size.
    pub max_files: usize,
    /// How many files one bounded compaction merges (at least 2).
    pub fan_in: usize,
    /// Files with at least this many records are merged again only when the day closes, so a
    /// busy day's polls never rewrite more than about `fan_in × frozen_rows` records and each
    /// record is rewritten a bounded number of times during the day.
    pub frozen_rows: u64,
    /// A day is closed this long after its local end: its files are then merged into one.
    pub close_after: Duration,
}

impl Default for Policy {
    /// At most 16 small files per partition, plus one per 10,000 sessions on a busy day;
    /// merging 8 neighbours of similar size behaves like merging the 8 smallest on a day
    /// polled in order (the newest files are the poll files), rewriting a session about
    /// log₈(10,000 / sessions per poll) times before the day closes. A day is merged into one
    /// file an hour after it ends (late sessions are rare by then).
    fn default() -> Self {
        Policy {
            max_files: 16,
            fan_in: 8,
            frozen_rows: 10_000,
            close_after: Duration::from_secs(3600),
        }
    }
}

impl Policy {
    /// The files a bounded compaction would merge; empty when none is due. Of the small files
    /// in end-time order (by `min_end`, then `max_end`), the run of `fan_in` neighbours whose
    /// largest file is the smallest (then the fewest sessions, then the earliest run), so a
    /// merged file's range joins ranges that were next to each other instead of spanning the
    /// day between them, and files of similar size are merged together. Each
    /// merge takes `fan_in - 1` small files off the count, and adds the other inputs'
    /// sessions (one at least per poll file) to each merged session's file, so a session is
    /// rewritten at most about `frozen_rows / (fan_in - 1)` times before its file freezes.
    pub(crate) fn mergeable<'a>(&self, files: &'a [FileEntry]) -> Vec<&'a FileEntry> {
        let mut small: Vec<&FileEntry> =
            files.iter().filter(|f| f.rows < self.frozen_rows).collect();
        if small.len() <= self.max_files {
            return Vec::new();
        }
        small.sort_by(|a, b| (a.min_end, a.max_end, &a.name).cmp(&(b.min_end, b.max_end, &b.name)));
        let n = self.fan_in.max(2).min(small.len());
        let cost = |run: &[&FileEntry]| {
            let rows = run.iter().map(|f| f.rows);
            (rows.clone().max().unwrap_or(0), rows.sum::<u64>())
        };
        let start = (0..=small.len() - n)
            .min_by_key(|&i| (cost(&small[i..i + n]), i))
            .unwrap_or(0);
        small[start..start + n].to_vec()
    }

    /// Whether a partition whose files hold `rows` sessions each is due a bounded merge.
    pub fn wants_merge(&self, rows: &[u64]) -> bool {
        rows.iter().filter(|r| **r < self.frozen_rows).count() > self.max_files
    }
}

/// A published data file of the partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub rows: u64,
    /// Time range of its records (`None` for an adopted file without rows); the names
    /// (`min_end`, `max_end`) are those of the first user, `intent_realtime`'s end times.
    pub min_end: Option<DateTime<Utc>>,
    pub max_end: Option<DateTime<Utc>>,
}

impl FileEntry {
    fn covers(&self, t: DateTime<Utc>) -> bool {
        matches!((self.min_end, self.max_end), (Some(a), Some(b)) if a <= t && t <= b)
    }
}

/// A claimed file: its records are taken; anyone may publish it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: MergedRecord")]
pub struct PendingFile<R> {
    pub file: FileEntry,
    pub exported_at: DateTime<Utc>,
    /// Stored as `sessions`, the name the first user's indexes have.
    #[serde(rename = "sessions")]
    pub records: Vec<R>,
}

/// A merge in progress: `output` replaces `inputs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    pub output: FileEntry,
    pub inputs: Vec<String>,
}

/// The index of one partition (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: MergedRecord")]
pub struct PartitionIndex<R> {
    #[serde(default)]
    pub files: Vec<FileEntry>,
    #[serde(default = "Vec::new")]
    pub pending: Vec<PendingFile<R>>,
    #[serde(default)]
    pub compaction: Option<Compaction>,
}

impl<R> Default for PartitionIndex<R> {
    fn default() -> Self {
        PartitionIndex {
            files: Vec::new(),
            pending: Vec::new(),
            compaction: None,
        }
    }
}

/// Stored under `_state/<table>/account_id=A/bot_id=B/dt=D.json`, or `.../account_id=A/dt=D.json`
/// for a table without `bot_id`.
impl<R: MergedRecord> StateObject for PartitionIndex<R> {
    type Key = PartitionKey;
    fn file_name(key: &PartitionKey) -> String {
        index_file_name(key)
    }
}

fn index_file_name(key: &PartitionKey) -> String {
    let dt = key.dt.format("%Y-%m-%d");
    match key.bot_id.as_deref() {
        Some(bot) => format!("bot_id={bot}/dt={dt}.json"),
        None => format!("dt={dt}.json"),
    }
}

/// Name of the index of `key`'s partition.
pub fn index_name(key: &PartitionKey) -> String {
    format!(
        "{}/account_id={}/{}",
        key.table.name,
        key.account_id,
        index_file_name(key)
    )
}

/// `part-<16 hex digits>.parquet`, the hash of `parts`.
fn hashed_name<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    let digest = h.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("part-{hex}.parquet")
}

pub(crate) fn entry_for<R: MergedRecord>(name: String, records: &[R]) -> FileEntry {
    FileEntry {
        name,
        rows: records.len() as u64,
        min_end: records.iter().map(R::instant).min(),
        max_end: records.iter().map(R::instant).max(),
    }
}

/// What [`add_records`] did.
#[derive(Debug)]
pub struct Added<R> {
    /// The candidates no file held: written now, exactly once.
    pub fresh: Vec<R>,
    /// Files written (ours and pending ones of others).
    pub written: WriteStats,
    /// Sessions in each published file of the partition after this write.
    pub file_rows: Vec<u64>,
}

impl<R> Default for Added<R> {
    fn default() -> Self {
        Added {
            fresh: Vec::new(),
            written: WriteStats::default(),
            file_rows: Vec::new(),
        }
    }
}

/// Adds the `candidates` (all of `key`'s day) that no file of the partition holds yet, as one
/// new file (see the module docs for the protocol).
pub async fn add_records<R: MergedRecord>(
    sink: &Sink,
    state_store: &StateStore,
    key: &PartitionKey,
    candidates: Vec<R>,
    exported_at: DateTime<Utc>,
) -> Result<Added<R>, Error> {
    let name = index_name(key);
    let mut added = Added::default();
    // Claims of others this call published, checked for lateness after a conflict.
    let mut helped: Vec<String> = Vec::new();
    for attempt in 0..MAX_UPDATE_ATTEMPTS {
        if attempt > 0 {
            state::conflict_pause(attempt).await;
        }
        let loaded = state::load_versioned::<PartitionIndex<R>>(state_store, &name).await?;
        let existed = loaded.state.is_some();
        let mut idx = match loaded.state {
            Some(idx) => idx,
            None => adopt::<R>(sink, key).await?,
        };
        for late in helped.iter().filter(|f| existed && !lists(&idx, f)) {
            tracing::info!(partition = %key.relative_dir(), file = %late, "Removing a late duplicate write of a file already merged away.");
            sink.delete_partition_file(key, late).await?;
        }
        helped.clear();
        helped.extend(idx.pending.iter().map(|p| p.file.name.clone()));
        let changed = publish_pending(sink, key, &mut idx, &mut added.written).await? || !existed;
        let version = loaded.version.as_ref();
        let Some(known) = known_ids(sink, state_store, key, &mut idx, version, &candidates).await?
        else {
            continue;
        };
        let fresh: Vec<R> = candidates
            .iter()
            .filter(|r| !known.contains(&r.key()))
            .cloned()
            .collect();
        if fresh.is_empty() {
            if changed
                && state::store_if(state_store, &name, &idx, loaded.version.as_ref())
                    .await?
                    .is_err()
            {
                continue;
            }
            added.file_rows = idx.files.iter().map(|f| f.rows).collect();
            return Ok(added);
        }
        let mut ids: Vec<String> = fresh.iter().map(R::key).collect();
        ids.sort_unstable();
        let claim = PendingFile {
            file: entry_for(hashed_name(ids.iter().map(String::as_str)), &fresh),
            exported_at,
            records: fresh,
        };
        idx.pending.push(claim.clone());
        if state::store_if(state_store, &name, &idx, loaded.version.as_ref())
            .await?
            .is_err()
        {
            continue;
        }
        let stats = write_pending(sink, key, &claim).await?;
        added.written.files += stats.files;
        added.written.bytes += stats.bytes;
        added.written.rows += stats.rows;
        added.file_rows = commit::<R>(sink, state_store, key, &claim.file.name).await?;
        added.fresh = claim.records;
        return Ok(added);
    }
    Err(contended(&name))
}

fn contended(name: &str) -> Error {
    Error::State(StateError::Contended {
        object: format!("{STATE_DIR}/{name}"),
        attempts: MAX_UPDATE_ATTEMPTS,
    })
}

/// Writes a claimed file (same name and content whoever writes it).
async fn write_pending<R: MergedRecord>(
    sink: &Sink,
    key: &PartitionKey,
    claim: &PendingFile<R>,
) -> Result<WriteStats, Error> {
    let batch = R::to_batch(key, &claim.records, claim.exported_at);
    Ok(sink
        .write_partition_file(key, &claim.file.name, &[batch], ROW_GROUP_ROWS)
        .await?)
}

/// Publishes every pending file of `idx` and moves it to `files`; whether there were any.
async fn publish_pending<R: MergedRecord>(
    sink: &Sink,
    key: &PartitionKey,
    idx: &mut PartitionIndex<R>,
    written: &mut WriteStats,
) -> Result<bool, Error> {
    let pending = std::mem::take(&mut idx.pending);
    let any = !pending.is_empty();
    for claim in pending {
        let stats = write_pending(sink, key, &claim).await?;
        written.files += stats.files;
        written.bytes += stats.bytes;
        idx.files.push(claim.file);
    }
    Ok(any)
}

/// Moves our published claim `file` from `pending` to `files`; the row counts of the
/// partition's files after that. If someone else moved it already and it has since been
/// compacted away, our late write re-created it: that copy is deleted.
async fn commit<R: MergedRecord>(
    sink: &Sink,
    state_store: &StateStore,
    key: &PartitionKey,
    file: &str,
) -> Result<Vec<u64>, Error> {
    let name = index_name(key);
    let mut rows = Vec::new();
    let stored = state::update(state_store, &name, |idx: Option<PartitionIndex<R>>| {
        let mut idx = idx?;
        rows = idx.files.iter().map(|f| f.rows).collect();
        let pos = idx.pending.iter().position(|p| p.file.name == file)?;
        let claim = idx.pending.remove(pos);
        rows.push(claim.file.rows);
        idx.files.push(claim.file);
        Some(idx)
    })
    .await?;
    if stored.is_none() {
        delete_if_unlisted::<R>(sink, state_store, key, file).await?;
    }
    Ok(rows)
}

/// Whether the index lists `file` (published, claimed, or either side of a merge).
fn lists<R>(idx: &PartitionIndex<R>, file: &str) -> bool {
    idx.files.iter().any(|f| f.name == file)
        || idx.pending.iter().any(|p| p.file.name == file)
        || idx
            .compaction
            .as_ref()
            .is_some_and(|c| c.output.name == file || c.inputs.iter().any(|i| i == file))
}

/// After a write of `file` that turned out late (someone else had published it already):
/// when the index no longer lists it, a merge removed it before our write re-created it, so
/// the copy is deleted. (Without an index nothing is deleted.)
async fn delete_if_unlisted<R: MergedRecord>(
    sink: &Sink,
    state_store: &StateStore,
    key: &PartitionKey,
    file: &str,
) -> Result<(), Error> {
    let current = state::load::<PartitionIndex<R>>(state_store, &index_name(key)).await?;
    if current.is_some_and(|idx| !lists(&idx, file)) {
        tracing::info!(partition = %key.relative_dir(), file, "Removing a late duplicate write of a file already merged away.");
        sink.delete_partition_file(key, file).await?;
    }
    Ok(())
}

/// The index of a partition that has none: its existing files (an earlier version's
/// `part-00000.parquet`), with their rows and time ranges.
async fn adopt<R: MergedRecord>(
    sink: &Sink,
    key: &PartitionKey,
) -> Result<PartitionIndex<R>, Error> {
    let mut idx = PartitionIndex::default();
    let columns: Vec<&str> = R::table()
        .key
        .iter()
        .copied()
        .chain([R::TIME_COLUMN])
        .collect();
    for name in sink.partition_file_names(key).await? {
        let Some(batches) = sink.read_partition_file(key, &name, Some(&columns)).await? else {
            continue;
        };
        let ends = instants(&batches, R::TIME_COLUMN);
        idx.files.push(FileEntry {
            name,
            rows: ends.len() as u64,
            min_end: ends.iter().min().copied(),
            max_end: ends.iter().max().copied(),
        });
    }
    Ok(idx)
}

fn instants(batches: &[RecordBatch], column: &str) -> Vec<DateTime<Utc>> {
    batches
        .iter()
        .filter_map(|b| b.column_by_name(column))
        .filter_map(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
        .flat_map(|a| a.iter().flatten().collect::<Vec<_>>())
        .filter_map(DateTime::<Utc>::from_timestamp_millis)
        .collect()
}

/// Which files a compaction merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Every file: the day is closed.
    All,
    /// The policy's run of `fan_in` neighbours, if more than `max_files` are below
    /// `frozen_rows`.
    Bounded(Policy),
}

/// What [`compact`] did.
#[derive(Debug, Default)]
pub struct Compacted {
    pub written: WriteStats,
    /// Published files in the partition afterwards.
    pub files: usize,
}

/// Finishes a merge in progress, then merges the files `merge` selects (nothing when fewer
/// than two), and deletes files of the folder the index does not list.
pub async fn compact<R: MergedRecord>(
    sink: &Sink,
    state_store: &StateStore,
    key: &PartitionKey,
    merge: Merge,
) -> Result<Compacted, Error> {
    let name = index_name(key);
    let mut out = Compacted::default();
    for attempt in 0..MAX_UPDATE_ATTEMPTS {
        if attempt > 0 {
            state::conflict_pause(attempt).await;
        }
        let listed = sink.partition_file_names(key).await?;
        let loaded = state::load_versioned::<PartitionIndex<R>>(state_store, &name).await?;
        let Some(mut idx) = loaded.state else {
            return Ok(out);
        };
        if let Some(c) = idx.compaction.clone() {
            let stats = finish::<R>(sink, state_store, key, &c).await?;
            out.written.files += stats.files;
            out.written.bytes += stats.bytes;
            continue;
        }
        remove_unlisted(sink, key, &idx, &listed).await?;
        let inputs = choose(&idx.files, merge);
        if inputs.len() < 2 {
            out.files = idx.files.len();
            return Ok(out);
        }
        let names: Vec<&str> = inputs.iter().map(|f| f.name.as_str()).collect();
        let output = FileEntry {
            name: hashed_name(std::iter::once("compaction").chain(names.iter().copied())),
            rows: inputs.iter().map(|f| f.rows).sum(),
            min_end: inputs.iter().filter_map(|f| f.min_end).min(),
            max_end: inputs.iter().filter_map(|f| f.max_end).max(),
        };
        let c = Compaction {
            output,
            inputs: names.iter().map(|n| n.to_string()).collect(),
        };
        idx.compaction = Some(c);
        // A conflict (a poll claimed or published meanwhile) starts over; a success is
        // finished on the next turn of the loop, like a merge someone else left.
        let _ = state::store_if(state_store, &name, &idx, loaded.version.as_ref()).await?;
    }
    Err(contended(&name))
}

/// The inputs of a merge: everything, or what the policy finds due.
fn choose(files: &[FileEntry], merge: Merge) -> Vec<FileEntry> {
    match merge {
        Merge::All => files.to_vec(),
        Merge::Bounded(p) => p.mergeable(files).into_iter().cloned().collect(),
    }
}

/// Writes a recorded merge's output unless it exists, deletes its inputs, and replaces them by
/// the output in the index. Safe to run by several writers at once: the output's content
/// follows from the inputs.
async fn finish<R: MergedRecord>(
    sink: &Sink,
    state_store: &StateStore,
    key: &PartitionKey,
    c: &Compaction,
) -> Result<WriteStats, Error> {
    let mut written = WriteStats::default();
    let listed = sink.partition_file_names(key).await?;
    if !listed.contains(&c.output.name) {
        let mut batches = Vec::new();
        for input in &c.inputs {
            match sink.read_partition_file(key, input, None).await? {
                Some(b) => batches.extend(b),
                // Deleted: the output was written (and perhaps the merge finished) meanwhile.
                None => return Ok(written),
            }
        }
        let merged = sorted::<R>(key, &batches)?;
        written = sink
            .write_partition_file(key, &c.output.name, &[merged], ROW_GROUP_ROWS)
            .await?;
    }
    for input in &c.inputs {
        sink.delete_partition_file(key, input).await?;
    }
    let finalized = state::update(
        state_store,
        &index_name(key),
        |idx: Option<PartitionIndex<R>>| {
            let mut idx = idx?;
            if idx.compaction.as_ref() != Some(c) {
                return None;
            }
            idx.files.retain(|f| !c.inputs.contains(&f.name));
            idx.files.push(c.output.clone());
            idx.compaction = None;
            Some(idx)
        },
    )
    .await?;
    if finalized.is_none() && written.files > 0 {
        delete_if_unlisted::<R>(sink, state_store, key, &c.output.name).await?;
    }
    Ok(written)
}

/// The rows of `batches` in one batch ordered by instant, then key columns.
fn sorted<R: MergedRecord>(
    key: &PartitionKey,
    batches: &[RecordBatch],
) -> Result<RecordBatch, Error> {
    let arrow_err = |source| Error::Arrow {
        context: format!("compacting {}", key.relative_dir()),
        source,
    };
    let all = concat_batches(&(R::table().schema)(), batches).map_err(arrow_err)?;
    let column = |name: &str| {
        all.column_by_name(name)
            .cloned()
            .ok_or_else(|| arrow_err(arrow::error::ArrowError::SchemaError(name.to_string())))
    };
    let mut by = Vec::new();
    for name in std::iter::once(R::TIME_COLUMN).chain(R::table().key.iter().copied()) {
        // The instant may also be a key column: sorting by it twice changes nothing.
        by.push(SortColumn {
            values: column(name)?,
            options: None,
        });
    }
    let order = lexsort_to_indices(&by, None).map_err(arrow_err)?;
    take_record_batch(&all, &order).map_err(arrow_err)
}

/// Deletes the files of the folder (listed before `idx` was read) that `idx` does not know:
/// late writes of files compacted away.
async fn remove_unlisted<R>(
    sink: &Sink,
    key: &PartitionKey,
    idx: &PartitionIndex<R>,
    listed: &[String],
) -> Result<(), Error> {
    let known: HashSet<&str> = idx
        .files
        .iter()
        .map(|f| f.name.as_str())
        .chain(idx.pending.iter().map(|p| p.file.name.as_str()))
        .collect();
    for name in listed.iter().filter(|n| !known.contains(n.as_str())) {
        tracing::info!(partition = %key.relative_dir(), file = %name, "Removing a data file the partition index does not list (a late duplicate write).");
        sink.delete_partition_file(key, name).await?;
    }
    Ok(())
}

/// The keys of the rows of `batches` (test and benchmark helper for readers of a partition).
pub fn keys_of<R: MergedRecord>(batches: &[RecordBatch]) -> Vec<String> {
    batches.iter().flat_map(R::keys_of).collect()
}

mod close;
mod lookup;
pub use close::close_days;
