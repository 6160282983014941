//! Ranged reads of one Parquet data file: the footer with one suffix request, then only the
//! column chunks of the row groups a caller keeps, so a lookup in a large file costs what
//! the kept row groups cost, not the file. Row groups are kept by the INT64 `min`/`max`
//! statistics of one column (exact for the timestamps we write); a row group without such
//! statistics is always read, so pruning never hides a row that could match. The caller
//! must only ask for values that decide which rows can match (a row whose column value is
//! not among `any_of` is of no interest to it).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::statistics::Statistics;

use super::{SinkError, StoreOp};

/// Bytes fetched from the end of a file in the first request. The footer of an intent file
/// takes about 1.6 KB per row group: up to about 10 row groups it comes in this one request,
/// a larger one costs a second; a small file comes whole.
pub const FOOTER_FETCH_BYTES: u64 = 16 * 1024;

/// Which row groups a ranged read decodes: those whose INT64 `column` statistics (min, max)
/// may hold one of `any_of`, and every row group without such statistics.
#[derive(Debug, Clone, Copy)]
pub struct RowGroupFilter<'a> {
    pub column: &'a str,
    pub any_of: &'a [i64],
}

/// What a ranged read returned.
#[derive(Debug, Default)]
pub struct PrunedRead {
    pub batches: Vec<RecordBatch>,
    /// Row groups in the file, and how many of them were read.
    pub row_groups: usize,
    pub row_groups_read: usize,
}

/// `AsyncFileReader` over ranged GETs of one object, serving reads inside the prefetched tail
/// from memory. Every GET names the version the tail came from (`If-Match` on its ETag), so
/// the footer and the chunks it points at are of one file even if the name is republished
/// meanwhile. Remembers whether the object was missing or changed, so a file deleted or
/// replaced mid-read is told apart from a broken one.
struct RangedObject {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    tail: Bytes,
    e_tag: Option<String>,
    missing: Arc<AtomicBool>,
    changed: Arc<AtomicBool>,
}

impl RangedObject {
    fn tail_start(&self) -> u64 {
        self.size - self.tail.len() as u64
    }

    /// The bytes of `range` if the prefetched tail holds them.
    fn in_tail(&self, range: &Range<u64>) -> Option<Bytes> {
        let start = self.tail_start();
        (range.start >= start && range.end <= self.size).then(|| {
            self.tail
                .slice((range.start - start) as usize..(range.end - start) as usize)
        })
    }

    fn note(&self, e: object_store::Error) -> ParquetError {
        match e {
            object_store::Error::NotFound { .. } => self.missing.store(true, Ordering::Relaxed),
            object_store::Error::Precondition { .. } => self.changed.store(true, Ordering::Relaxed),
            _ => {}
        }
        ParquetError::External(Box::new(e))
    }

    /// One GET of `range` of the version the tail came from.
    async fn fetch(&self, range: Range<u64>) -> parquet::errors::Result<Bytes> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            if_match: self.e_tag.clone(),
            ..Default::default()
        };
        let got = match self.store.get_opts(&self.path, options).await {
            Ok(got) => got,
            Err(e) => return Err(self.note(e)),
        };
        got.bytes().await.map_err(|e| self.note(e))
    }
}

impl AsyncFileReader for RangedObject {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            match self.in_tail(&range) {
                Some(bytes) => Ok(bytes),
                None => self.fetch(range).await,
            }
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        let this: &Self = self;
        // The chunks of several row groups are fetched side by side.
        futures::future::try_join_all(ranges.into_iter().map(|range| async move {
            match this.in_tail(&range) {
                Some(bytes) => Ok(bytes),
                None => this.fetch(range).await,
            }
        }))
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let hint = self.tail.len();
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .with_prefetch_hint(Some(hint))
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Rows of the Parquet file at `path`, from its footer (a suffix read, and a second read only
/// for a footer larger than [`FOOTER_FETCH_BYTES`]); `None` when the object does not exist.
pub(super) async fn footer_rows(
    store: Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<u64>, SinkError> {
    let options = GetOptions {
        range: Some(GetRange::Suffix(FOOTER_FETCH_BYTES)),
        ..Default::default()
    };
    let store_error = |source| SinkError::Store {
        op: StoreOp::Get,
        path: path.clone(),
        source,
    };
    let result = match store.get_opts(path, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(source) => return Err(store_error(source)),
    };
    let (size, e_tag) = (result.meta.size, result.meta.e_tag.clone());
    let tail = result.bytes().await.map_err(store_error)?;
    let hint = tail.len();
    let missing = Arc::new(AtomicBool::new(false));
    let mut reader = RangedObject {
        store,
        path: path.clone(),
        size,
        tail,
        e_tag,
        missing: Arc::clone(&missing),
        changed: Arc::new(AtomicBool::new(false)),
    };
    let read = ParquetMetaDataReader::new()
        .with_prefetch_hint(Some(hint))
        .load_and_finish(&mut reader, size)
        .await;
    match read {
        Ok(meta) => Ok(Some(
            u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0),
        )),
        Err(_) if missing.load(Ordering::Relaxed) => Ok(None),
        Err(source) => Err(SinkError::Decode {
            path: path.clone(),
            source,
        }),
    }
}

/// Whether `rg` may hold a row whose `column` (leaf index `col`) is one of `any_of`.
fn may_hold(rg: &RowGroupMetaData, col: Option<usize>, any_of: &[i64]) -> bool {
    let Some(stats) = col
        .and_then(|c| rg.columns().get(c))
        .and_then(|c| c.statistics())
    else {
        return true;
    };
    match stats {
        Statistics::Int64(s) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => any_of.iter().any(|v| min <= v && v <= max),
            _ => true,
        },
        _ => true,
    }
}

/// Reads `columns` of the row groups of `path` that `filter` keeps; `None` when the object
/// does not exist (or disappears during the read). An object replaced during the read is read
/// again, once.
pub(super) async fn read_pruned(
    store: Arc<dyn ObjectStore>,
    path: &Path,
    columns: &[&str],
    filter: RowGroupFilter<'_>,
) -> Result<Option<PrunedRead>, SinkError> {
    match read_pruned_once(Arc::clone(&store), path, columns, filter).await? {
        Attempt::Done(read) => Ok(read),
        Attempt::Changed(_) => match read_pruned_once(store, path, columns, filter).await? {
            Attempt::Done(read) => Ok(read),
            Attempt::Changed(source) => Err(SinkError::Decode {
                path: path.clone(),
                source,
            }),
        },
    }
}

/// One read of a version of the object.
enum Attempt {
    Done(Option<PrunedRead>),
    /// The object was replaced between the footer and a chunk.
    Changed(ParquetError),
}

async fn read_pruned_once(
    store: Arc<dyn ObjectStore>,
    path: &Path,
    columns: &[&str],
    filter: RowGroupFilter<'_>,
) -> Result<Attempt, SinkError> {
    let options = GetOptions {
        range: Some(GetRange::Suffix(FOOTER_FETCH_BYTES)),
        ..Default::default()
    };
    let store_error = |source| SinkError::Store {
        op: StoreOp::Get,
        path: path.clone(),
        source,
    };
    let result = match store.get_opts(path, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(Attempt::Done(None)),
        Err(source) => return Err(store_error(source)),
    };
    let (size, e_tag) = (result.meta.size, result.meta.e_tag.clone());
    let tail = result.bytes().await.map_err(store_error)?;
    let (missing, changed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let reader = RangedObject {
        store,
        path: path.clone(),
        size,
        tail,
        e_tag,
        missing: Arc::clone(&missing),
        changed: Arc::clone(&changed),
    };
    match decode(reader, columns, filter).await {
        Ok(read) => Ok(Attempt::Done(Some(read))),
        Err(_) if missing.load(Ordering::Relaxed) => Ok(Attempt::Done(None)),
        Err(source) if changed.load(Ordering::Relaxed) => Ok(Attempt::Changed(source)),
        Err(source) => Err(SinkError::Decode {
            path: path.clone(),
            source,
        }),
    }
}

async fn decode(
    reader: RangedObject,
    columns: &[&str],
    filter: RowGroupFilter<'_>,
) -> Result<PrunedRead, ParquetError> {
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
    let meta = Arc::clone(builder.metadata());
    let schema = meta.file_metadata().schema_descr();
    let col = schema
        .columns()
        .iter()
        .position(|c| c.name() == filter.column && c.path().parts().len() == 1);
    let keep: Vec<usize> = meta
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, rg)| may_hold(rg, col, filter.any_of))
        .map(|(i, _)| i)
        .collect();
    let mut read = PrunedRead {
        row_groups: meta.num_row_groups(),
        row_groups_read: keep.len(),
        batches: Vec::new(),
    };
    if keep.is_empty() {
        return Ok(read);
    }
    let mask = super::files::projection(builder.schema(), builder.parquet_schema(), columns);
    let stream = builder
        .with_row_groups(keep)
        .with_projection(mask)
        .build()?;
    read.batches = stream.try_collect().await?;
    Ok(read)
}

#[cfg(test)]
mod tests;
