//! Parquet encoding onto one object: writer properties (ZSTD 3, page statistics, schema version
//! and dataset in the key-value metadata, bounded row groups) and the streaming upload through
//! `object_store::buffered::BufWriter`. On any failure the upload is aborted so no multipart
//! parts are left behind by us; the caller decides where the object goes (final key or staging).

use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStore;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::arrow::{
    add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter, AsyncArrowWriter,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::{ColumnPath, SchemaDescriptor};
use tokio::io::AsyncWriteExt;

use super::row_group::PendingPages;
use super::SinkError;
use crate::schema::{DATASET_KEY, SCHEMA_VERSION, SCHEMA_VERSION_KEY};

/// ZSTD level: a good ratio at low CPU cost.
const ZSTD_LEVEL: i32 = 3;
/// Upper bound on rows per row group.
pub const MAX_ROW_GROUP_ROWS: usize = 1024 * 1024;
/// A row group is flushed once its buffered (encoded + pending) size passes this many bytes, so
/// the memory of one open file is bounded by this plus the upload buffers below.
pub const ROW_GROUP_FLUSH_BYTES: usize = 64 * 1024 * 1024;
/// Pages ([`Feed::Page`]) share one row group until their rows hold this many bytes, by default
/// (`[output]` `page_row_group_bytes` sets it): they wait as Arrow rows
/// ([`PendingPages`](super::PendingPages), which says why not in an open row group) and are
/// then encoded and written out together. The parquet crate creates a ZSTD compression and
/// decompression context for every column of every row group, and on this project's virtual
/// machine creating one costs a trapped `cpuid`: one row group per page spent 23% of a Call
/// Details export's CPU there. Memory between pages is this bound per open file (plus its
/// compressed bytes), whatever the page size; while a row group is encoded, its encoders and
/// contexts (about 101 kB a leaf column) come on top, one file per encoding thread at a time.
pub const PAGE_ROW_GROUP_BYTES: usize =
    crate::config::defaults::OUTPUT_PAGE_ROW_GROUP_BYTES as usize;
/// BufWriter capacity: files up to this size are one PutObject, larger ones a multipart upload
/// with parts of this size (S3 needs at least 5 MiB per part).
pub const UPLOAD_PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once per file.
pub const UPLOAD_CONCURRENCY: usize = 4;

/// Environment variable overriding the configured bound (`[output]` `page_row_group_bytes`)
/// for the files opened after it is set, for benchmarks and tests that compare bounds without
/// a config per bound: a number of bytes; `0` ends a row group after every page (the least
/// memory between pages, the most CPU). Anything else that is not a number is ignored.
pub const PAGE_ROW_GROUP_BYTES_ENV: &str = "SMARTASSIST_PAGE_ROW_GROUP_BYTES";

/// The bound between pages: [`PAGE_ROW_GROUP_BYTES_ENV`] when it is set to a number, else
/// `configured`.
pub fn page_row_group_bytes(configured: usize) -> usize {
    std::env::var(PAGE_ROW_GROUP_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(configured)
}

/// When [`write_parquet_stream`] ends a row group: at `rows` rows, and between pages once its
/// encoders hold `page_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupBounds {
    pub rows: usize,
    pub page_bytes: usize,
}

/// The `created_by` string written into every file footer.
pub fn created_by() -> String {
    format!("smartassist-export {}", env!("CARGO_PKG_VERSION"))
}

/// Writer properties for a file of `dataset_label` (stored under [`DATASET_KEY`]).
pub fn writer_properties(dataset_label: &str) -> WriterProperties {
    writer_properties_with(dataset_label, MAX_ROW_GROUP_ROWS)
}

/// [`writer_properties`] with row groups of at most `row_group_rows` rows.
pub fn writer_properties_with(dataset_label: &str, row_group_rows: usize) -> WriterProperties {
    // ZSTD accepts levels 1..=22, so 3 is always valid; fall back to the default level rather
    // than panic should that ever change.
    let level = ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default();
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_created_by(created_by())
        .set_key_value_metadata(Some(vec![
            KeyValue::new(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string()),
            KeyValue::new(DATASET_KEY.to_string(), dataset_label.to_string()),
        ]))
        .build()
}

/// Tables whose integer and timestamp columns keep dictionary encoding: their values repeat
/// (UserStatus: 96 bucket starts a day, durations of a few distinct lengths), and delta
/// encoding made a day's file 18% larger (124 → 147 kB) for no CPU saved.
const DICTIONARY_TABLES: &[&str] = &["user_status"];

/// [`writer_properties_with`] plus the per-column choices for a file of `schema`: every
/// top-level Int32, Int64 and timestamp column is written without a dictionary, in
/// `DELTA_BINARY_PACKED` (then ZSTD as every column), unless the table is one of
/// [`DICTIONARY_TABLES`]. Times, durations and counts are mostly distinct or close to their
/// neighbours: a dictionary of them costs a hash per value and makes the file larger (Call
/// Details: 1.05 → 0.57 MB a day). Page statistics stay on for these columns (readers prune
/// on the times).
pub fn table_properties(
    schema: &SchemaRef,
    dataset_label: &str,
    row_group_rows: usize,
) -> WriterProperties {
    let props = writer_properties_with(dataset_label, row_group_rows);
    if DICTIONARY_TABLES.contains(&dataset_label) {
        return props;
    }
    let mut builder = props.into_builder();
    for field in schema.fields() {
        if matches!(
            field.data_type(),
            DataType::Int32 | DataType::Int64 | DataType::Timestamp(..)
        ) {
            let path = ColumnPath::new(vec![field.name().clone()]);
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
    }
    builder.build()
}

/// What every file of one schema, label and row-group bound starts from: its writer
/// properties with the serialized Arrow schema (`ARROW:schema`) already in the key-value
/// metadata, and its Parquet schema. The Arrow writer derives both from the Arrow schema for
/// every file it opens, the same each time; building them once per process and cloning them
/// (reference-counted columns, one string) leaves the files byte for byte as they were.
struct FileTemplate {
    schema: SchemaRef,
    label: String,
    row_group_rows: usize,
    props: WriterProperties,
    parquet_schema: SchemaDescriptor,
}

/// The templates built so far: one per table and bound in use (tens), so a linear search.
static TEMPLATES: Mutex<Vec<Arc<FileTemplate>>> = Mutex::new(Vec::new());

/// The writer options of a file of `schema` with [`writer_properties_with`]`(dataset_label,
/// row_group_rows)`: the Arrow writer's own result, built once per process (see
/// [`FileTemplate`]).
pub fn writer_options(
    schema: &SchemaRef,
    dataset_label: &str,
    row_group_rows: usize,
) -> Result<ArrowWriterOptions, ParquetError> {
    let template = template(schema, dataset_label, row_group_rows)?;
    Ok(ArrowWriterOptions::new()
        .with_properties(template.props.clone())
        .with_parquet_schema(template.parquet_schema.clone())
        .with_skip_arrow_metadata(true))
}

fn template(
    schema: &SchemaRef,
    dataset_label: &str,
    row_group_rows: usize,
) -> Result<Arc<FileTemplate>, ParquetError> {
    let found = |all: &[Arc<FileTemplate>]| {
        all.iter()
            .find(|t| {
                t.row_group_rows == row_group_rows
                    && t.label == dataset_label
                    && (Arc::ptr_eq(&t.schema, schema) || t.schema == *schema)
            })
            .cloned()
    };
    // A poisoned lock only means another thread panicked while pushing: the list is still a
    // list of complete templates.
    if let Some(t) = found(&TEMPLATES.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(t);
    }
    let mut props = table_properties(schema, dataset_label, row_group_rows);
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(schema)?;
    add_encoded_arrow_schema_to_metadata(schema, &mut props);
    let built = Arc::new(FileTemplate {
        schema: Arc::clone(schema),
        label: dataset_label.to_string(),
        row_group_rows,
        props,
        parquet_schema,
    });
    let mut all = TEMPLATES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = found(&all) {
        return Ok(t);
    }
    all.push(Arc::clone(&built));
    Ok(built)
}

/// Encodes `batches` (all of `schema`) into one in-memory Parquet file with the same writer
/// properties, for small objects written with one conditional put (which cannot be multipart).
pub fn encode_to_bytes(
    schema: SchemaRef,
    dataset_label: &str,
    batches: &[RecordBatch],
) -> Result<Bytes, ParquetError> {
    let mut buf = Vec::new();
    let options = writer_options(&schema, dataset_label, MAX_ROW_GROUP_ROWS)?;
    let mut writer = parquet::arrow::ArrowWriter::try_new_with_options(&mut buf, schema, options)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(buf))
}

/// `AsyncFileWriter` over a `BufWriter` that remembers whether shutdown (the final
/// PutObject / CompleteMultipartUpload) has begun: before that point the upload must be aborted
/// on error; after it, `BufWriter` must not be touched again (its `abort` panics once shut down,
/// and a failed multipart completion already aborts itself).
///
/// The caller must drive [`write_parquet_stream`] to its end (the sink runs it on its own task): a
/// dropped future would drop an in-flight multipart upload without aborting it.
struct UploadWriter {
    /// `None` once aborted.
    inner: Option<BufWriter>,
    shutdown_started: bool,
    location: Path,
    /// The storage error that failed a write or the completion, kept whole for the caller (the
    /// Parquet writer only sees a summary of it).
    failure: Option<std::io::Error>,
}

fn aborted_error() -> ParquetError {
    ParquetError::General("upload already aborted".to_string())
}

impl UploadWriter {
    /// Keeps a storage error for [`write_parquet_stream`]'s caller and hands the Parquet writer
    /// a summary.
    fn keep_failure(&mut self, result: std::io::Result<()>) -> parquet::errors::Result<()> {
        result.map_err(|e| {
            let summary = ParquetError::General(format!("storage write failed: {e}"));
            self.failure = Some(e);
            summary
        })
    }

    /// Aborts the upload (a no-op when nothing was sent yet) unless shutdown has begun.
    async fn abort(&mut self) {
        if self.shutdown_started {
            return;
        }
        if let Some(mut inner) = self.inner.take() {
            if let Err(abort_err) = inner.abort().await {
                tracing::warn!(
                    path = %self.location,
                    error = &abort_err as &dyn std::error::Error,
                    "Could not abort upload after a failed Parquet write; a bucket lifecycle rule must remove the incomplete upload."
                );
            }
        }
    }
}

impl AsyncFileWriter for UploadWriter {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        async move {
            let inner = self.inner.as_mut().ok_or_else(aborted_error)?;
            let result = inner.write_all(&bs).await;
            self.keep_failure(result)
        }
        .boxed()
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        async move {
            let inner = self.inner.as_mut().ok_or_else(aborted_error)?;
            self.shutdown_started = true;
            let result = inner.shutdown().await;
            self.keep_failure(result)
        }
        .boxed()
    }
}

/// What [`write_parquet_stream`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    pub rows: usize,
    pub bytes: u64,
}

/// What feeds a streaming write: batches, then `Finish`. A closed channel without `Finish`
/// means the producer gave up (error or cancellation): the upload is aborted.
///
/// A `Page` (see [`crate::sink::PartitionWriter::write_page`]) is encoded into the open row
/// group, which is written out once its encoders hold [`PAGE_ROW_GROUP_BYTES`]; only then are
/// its rows freed and its permit released, so the permit covers the page in every unencoded
/// form, and between pages an open file holds its compressed bytes and at most one bounded
/// open row group.
#[derive(Debug)]
pub enum Feed {
    Batch(RecordBatch),
    Page(RecordBatch, Option<tokio::sync::OwnedSemaphorePermit>),
    Finish,
}

/// Encodes batches (all of `schema`) into one Parquet object at `location` as they arrive on
/// `feed` (row groups as `bounds` says), so memory is bounded by the row group
/// in progress and the upload buffer, not by the file. The object appears only when this
/// returns `Ok` (single put or completed multipart upload), on [`Feed::Finish`]; on any error,
/// or when the channel closes without `Finish`, the upload we started is aborted. `Finish` alone gives a valid, schema-only file. A storage
/// failure (disk full, permission denied, S3 retries exhausted) is reported as
/// [`SinkError::Write`] naming `destination`, the file as the user knows it.
pub async fn write_parquet_stream(
    store: Arc<dyn ObjectStore>,
    location: &Path,
    destination: String,
    schema: SchemaRef,
    dataset_label: &str,
    bounds: RowGroupBounds,
    mut feed: tokio::sync::mpsc::Receiver<Feed>,
) -> Result<Encoded, SinkError> {
    let mut writer = open_writer(store, location, &schema, dataset_label, bounds.rows)?;
    match drain_feed(&mut writer, &schema, &mut feed, bounds.page_bytes).await {
        Ok(metadata) => Ok(Encoded {
            rows: usize::try_from(metadata.file_metadata().num_rows()).unwrap_or(0),
            bytes: writer.bytes_written() as u64,
        }),
        Err(stop) => {
            let mut upload = writer.into_inner();
            upload.abort().await;
            if let Some(source) = upload.failure.take() {
                return Err(SinkError::Write {
                    path: destination,
                    source,
                });
            }
            Err(stop.into_error(location, dataset_label))
        }
    }
}

/// The Arrow writer of one object, over an upload that has sent nothing yet.
fn open_writer(
    store: Arc<dyn ObjectStore>,
    location: &Path,
    schema: &SchemaRef,
    dataset_label: &str,
    rows: usize,
) -> Result<AsyncArrowWriter<UploadWriter>, SinkError> {
    let upload = UploadWriter {
        inner: Some(
            BufWriter::with_capacity(store, location.clone(), UPLOAD_PART_BYTES)
                .with_max_concurrency(UPLOAD_CONCURRENCY),
        ),
        shutdown_started: false,
        location: location.clone(),
        failure: None,
    };
    writer_options(schema, dataset_label, rows)
        .and_then(|options| AsyncArrowWriter::try_new_with_options(upload, schema.clone(), options))
        // Nothing has been uploaded yet: the BufWriter only buffers until capacity.
        .map_err(|source| SinkError::Encode {
            path: location.clone(),
            source,
        })
}

/// Why a streaming write stopped before its object was complete.
enum Stop {
    Parquet(ParquetError),
    Mismatch,
    Abandoned,
}

impl Stop {
    fn into_error(self, location: &Path, dataset_label: &str) -> SinkError {
        match self {
            Stop::Parquet(source) => SinkError::Encode {
                path: location.clone(),
                source,
            },
            Stop::Mismatch => SinkError::SchemaMismatch {
                dataset: dataset_label.to_string(),
                path: location.clone(),
            },
            Stop::Abandoned => SinkError::Abandoned {
                path: location.clone(),
            },
        }
    }
}

/// Encodes the feed's batches until `Finish` (see [`Feed`]), then writes the footer.
async fn drain_feed(
    writer: &mut AsyncArrowWriter<UploadWriter>,
    schema: &SchemaRef,
    feed: &mut tokio::sync::mpsc::Receiver<Feed>,
    page_bound: usize,
) -> Result<parquet::file::metadata::ParquetMetaData, Stop> {
    let mut pending = PendingPages::new(page_bound);
    loop {
        match feed.recv().await {
            Some(Feed::Batch(batch)) => {
                // Pages before it come first, in their own row group.
                write_row_group(writer, schema, pending.take()).await?;
                write_batch(writer, schema, &batch).await?;
                if writer.in_progress_size() >= ROW_GROUP_FLUSH_BYTES {
                    writer.flush().await.map_err(Stop::Parquet)?;
                }
            }
            Some(Feed::Page(batch, permit)) => {
                if batch.schema().fields() != schema.fields() {
                    return Err(Stop::Mismatch);
                }
                if let Some(group) = pending.push(batch) {
                    write_row_group(writer, schema, group).await?;
                }
                // Encoded, or waiting within the row-group bound: only now may the next page
                // come in.
                drop(permit);
            }
            Some(Feed::Finish) => break,
            None => return Err(Stop::Abandoned),
        }
    }
    write_row_group(writer, schema, pending.take()).await?;
    writer.finish().await.map_err(Stop::Parquet)
}

/// Encodes `pages` (none: nothing) into one row group and writes it out.
async fn write_row_group(
    writer: &mut AsyncArrowWriter<UploadWriter>,
    schema: &SchemaRef,
    pages: Vec<RecordBatch>,
) -> Result<(), Stop> {
    if pages.is_empty() {
        return Ok(());
    }
    for page in &pages {
        write_batch(writer, schema, page).await?;
    }
    writer.flush().await.map_err(Stop::Parquet)
}

async fn write_batch(
    writer: &mut AsyncArrowWriter<UploadWriter>,
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> Result<(), Stop> {
    if batch.schema().fields() != schema.fields() {
        return Err(Stop::Mismatch);
    }
    writer.write(batch).await.map_err(Stop::Parquet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
        ];
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    /// The file as the Arrow writer writes it when left to derive everything itself.
    fn written_by_the_arrow_writer(b: &RecordBatch, label: &str) -> Vec<u8> {
        let props = table_properties(&b.schema(), label, MAX_ROW_GROUP_ROWS);
        let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), b.schema(), Some(props))
            .expect("writer");
        w.write(b).expect("write");
        w.into_inner().expect("close")
    }

    /// The encodings of column `column` of the file's first row group, and the batch read
    /// back.
    fn encodings_and_rows(
        file: Bytes,
        column: usize,
    ) -> (Vec<parquet::basic::Encoding>, RecordBatch) {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet file");
        let encodings = reader
            .metadata()
            .row_group(0)
            .column(column)
            .encodings()
            .collect();
        let mut batches = reader.build().expect("reader");
        (encodings, batches.next().expect("a batch").expect("rows"))
    }

    #[test]
    fn integer_columns_are_delta_encoded_without_a_dictionary_except_in_dictionary_tables() {
        let b = batch();
        let file = encode_to_bytes(b.schema(), "call_segments", std::slice::from_ref(&b));
        let (encodings, back) = encodings_and_rows(file.expect("encode"), 1);
        assert!(
            encodings.contains(&Encoding::DELTA_BINARY_PACKED),
            "{encodings:?}"
        );
        assert!(
            !encodings.contains(&Encoding::RLE_DICTIONARY),
            "{encodings:?}"
        );
        assert_eq!(back, b, "values read back unchanged");
        // Strings keep their dictionary.
        let file = encode_to_bytes(b.schema(), "call_segments", std::slice::from_ref(&b));
        let (encodings, _) = encodings_and_rows(file.expect("encode"), 0);
        assert!(
            encodings.contains(&Encoding::RLE_DICTIONARY),
            "{encodings:?}"
        );
        let file = encode_to_bytes(b.schema(), "user_status", std::slice::from_ref(&b));
        let (encodings, back) = encodings_and_rows(file.expect("encode"), 1);
        assert!(
            encodings.contains(&Encoding::RLE_DICTIONARY),
            "{encodings:?}"
        );
        assert!(
            !encodings.contains(&Encoding::DELTA_BINARY_PACKED),
            "{encodings:?}"
        );
        assert_eq!(back, b);
    }

    #[test]
    fn files_from_a_template_are_the_arrow_writers_byte_for_byte() {
        let b = batch();
        for label in ["first_label", "second_label", "first_label"] {
            let got = encode_to_bytes(b.schema(), label, std::slice::from_ref(&b)).expect("encode");
            assert_eq!(
                got.as_ref(),
                written_by_the_arrow_writer(&b, label),
                "{label}"
            );
        }
    }
}
