//! Named data files of a partition, for datasets that keep several files per partition
//! (`intent_realtime` adds one file per poll and compacts them): write one atomically under a
//! given name, read one back (optionally only some columns, or only the row groups a
//! statistics filter keeps, with ranged reads), delete one, list them. Also the
//! compare-and-swap read and write of a partition's rejects file (the versioned primitive the
//! state store uses too), for rejects merged by several writers. The caller owns which names
//! exist and what each holds.

use arrow::record_batch::RecordBatch;

use bytes::Bytes;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use std::sync::Arc;

use super::ranged::{self, PrunedRead, RowGroupFilter};
use super::{
    encode, layout, Conflict, PartitionKey, Sink, SinkError, Version, WriteStats, PART_FILE_NAME,
    REJECTS_DIR,
};
use crate::schema::rejects_schema;

impl Sink {
    /// Publishes `batches` (of the table's schema) as `<partition>/<file_name>`, atomically
    /// replacing a file of that name: readers see the old file or the new one, never a partial
    /// one. Row groups hold at most `row_group_rows` rows (small ones let
    /// [`Sink::read_partition_file_pruned`] skip most of a large file).
    pub async fn write_partition_file(
        &self,
        key: &PartitionKey,
        file_name: &str,
        batches: &[RecordBatch],
        row_group_rows: usize,
    ) -> Result<WriteStats, SinkError> {
        key.validate()?;
        layout::validate_file_name(file_name)?;
        let dir = key.relative_dir();
        let mut writer = self.begin_in_dir(
            &dir,
            file_name,
            (key.table.schema)(),
            key.table.name,
            row_group_rows,
        );
        for batch in batches {
            writer.write(batch.clone()).await?;
        }
        writer.commit().await
    }

    /// Reads `columns` of the row groups of `<partition>/<file_name>` that `filter` keeps, with
    /// ranged requests (footer, then only those column chunks); `None` when the file does not
    /// exist or disappears meanwhile. See [`RowGroupFilter`] for which row groups are kept.
    pub async fn read_partition_file_pruned(
        &self,
        key: &PartitionKey,
        file_name: &str,
        columns: &[&str],
        filter: RowGroupFilter<'_>,
    ) -> Result<Option<PrunedRead>, SinkError> {
        key.validate()?;
        layout::validate_file_name(file_name)?;
        let path = self.file_path(key, file_name);
        ranged::read_pruned(Arc::clone(&self.store.objects), &path, columns, filter).await
    }

    /// Reads `<partition>/<file_name>` back; `None` when it does not exist. With `columns`,
    /// only those top-level columns are decoded.
    pub async fn read_partition_file(
        &self,
        key: &PartitionKey,
        file_name: &str,
        columns: Option<&[&str]>,
    ) -> Result<Option<Vec<RecordBatch>>, SinkError> {
        key.validate()?;
        layout::validate_file_name(file_name)?;
        let path = self.file_path(key, file_name);
        let Some((bytes, _)) = self.store.get_if_exists(&path).await? else {
            return Ok(None);
        };
        decode_parquet(&path, bytes, columns).map(Some)
    }

    /// Deletes `<partition>/<file_name>` (nothing to do when it does not exist).
    pub async fn delete_partition_file(
        &self,
        key: &PartitionKey,
        file_name: &str,
    ) -> Result<(), SinkError> {
        key.validate()?;
        layout::validate_file_name(file_name)?;
        let path = self.file_path(key, file_name);
        self.store.delete_if_exists(path).await
    }

    /// Names of the Parquet files a table reader sees in the partition, sorted.
    pub async fn partition_file_names(&self, key: &PartitionKey) -> Result<Vec<String>, SinkError> {
        key.validate()?;
        Ok(self
            .list_visible(&key.relative_dir())
            .await?
            .iter()
            .filter(|p| p.extension() == Some("parquet"))
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// The object path of `<partition>/<file_name>` (both already validated).
    fn file_path(&self, key: &PartitionKey, file_name: &str) -> Path {
        self.store
            .object_path(&format!("{}/{file_name}", key.relative_dir()))
    }

    fn rejects_relative_file(key: &PartitionKey) -> String {
        format!("{}/{PART_FILE_NAME}", key.rejects_relative_dir())
    }

    /// The partition's rejects with the version of their file (see [`Sink::put_rejects_if`]);
    /// `None` when there are none.
    pub async fn read_rejects_versioned(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<(Vec<RecordBatch>, Version)>, SinkError> {
        key.validate()?;
        let relative = Self::rejects_relative_file(key);
        match self.store.get_versioned(&relative).await? {
            None => Ok(None),
            Some((bytes, version)) => {
                let batches = decode_parquet(&self.store.object_path(&relative), bytes, None)?;
                Ok(Some((batches, version)))
            }
        }
    }

    /// Replaces the partition's rejects file with `batch` (schema [`rejects_schema`]) only if
    /// it still has the version `expected` (`None`: only if there is none), in one put.
    pub async fn put_rejects_if(
        &self,
        key: &PartitionKey,
        batch: &RecordBatch,
        expected: Option<&Version>,
    ) -> Result<Result<WriteStats, Conflict>, SinkError> {
        key.validate()?;
        let relative = Self::rejects_relative_file(key);
        let label = format!("{}/{}", REJECTS_DIR, key.table.name);
        let bytes = encode::encode_to_bytes(rejects_schema(), &label, std::slice::from_ref(batch))
            .map_err(|source| SinkError::Encode {
                path: self.store.object_path(&relative),
                source,
            })?;
        let stats = WriteStats {
            files: 1,
            rows: batch.num_rows(),
            bytes: bytes.len() as u64,
        };
        Ok(self
            .store
            .put_if(&relative, bytes, expected)
            .await?
            .map(|_| stats))
    }
}

/// The batches of a whole Parquet object; only the top-level `columns` named, when given.
pub(super) fn decode_parquet(
    path: &Path,
    bytes: Bytes,
    columns: Option<&[&str]>,
) -> Result<Vec<RecordBatch>, SinkError> {
    let decode_err = |source| SinkError::Decode {
        path: path.clone(),
        source,
    };
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(decode_err)?;
    if let Some(columns) = columns {
        let mask = projection(builder.schema(), builder.parquet_schema(), columns);
        builder = builder.with_projection(mask);
    }
    let reader = builder.build().map_err(decode_err)?;
    reader
        .map(|batch| {
            batch.map_err(|source| SinkError::DecodeBatch {
                path: path.clone(),
                source,
            })
        })
        .collect()
}

/// The projection of a file's top-level `columns` (by name; absent ones are ignored).
pub(super) fn projection(
    schema: &arrow::datatypes::Schema,
    parquet_schema: &parquet::schema::types::SchemaDescriptor,
    columns: &[&str],
) -> parquet::arrow::ProjectionMask {
    let roots = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.contains(&f.name().as_str()))
        .map(|(i, _)| i);
    parquet::arrow::ProjectionMask::roots(parquet_schema, roots)
}
