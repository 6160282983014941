//! Parquet sink on object_store (STUB: to be implemented). Owns partition paths, file naming,
//! Parquet encoding (ZSTD, statistics, schema version metadata), atomic partition replacement,
//! the rejects dataset, staging cleanup and small state objects under `_state/`.

use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::NaiveDate;

use crate::model::Dataset;

/// Where output goes. Built by the config layer from `[output] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputLocation {
    /// Absolute directory on local disk.
    Local(PathBuf),
    /// `s3://bucket/prefix` plus optional overrides for S3-compatible stores.
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
        allow_http: bool,
    },
}

/// Identifies one Hive partition of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub dataset: Dataset,
    pub account_id: String,
    /// Set for `intent_realtime`, `None` for `user_status`.
    pub bot_id: Option<String>,
    pub dt: NaiveDate,
}

impl PartitionKey {
    /// `user_status/account_id=A/dt=2024-05-01` or
    /// `intent_realtime/account_id=A/bot_id=B/dt=2024-05-01`.
    pub fn relative_dir(&self) -> String {
        todo!()
    }
}

/// What one partition write produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub files: usize,
    pub rows: usize,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("stub")]
    Stub,
}

/// The Parquet sink.
#[derive(Debug, Clone)]
pub struct Sink {}

impl Sink {
    pub fn open(_location: &OutputLocation) -> Result<Sink, SinkError> {
        todo!()
    }
    pub async fn write_partition(
        &self,
        _key: &PartitionKey,
        _batches: Vec<RecordBatch>,
    ) -> Result<WriteStats, SinkError> {
        todo!()
    }
    pub async fn read_partition(&self, _key: &PartitionKey) -> Result<Vec<RecordBatch>, SinkError> {
        todo!()
    }
    pub async fn partition_exists(&self, _key: &PartitionKey) -> Result<bool, SinkError> {
        todo!()
    }
    pub async fn write_rejects(
        &self,
        _key: &PartitionKey,
        _rejects: Option<RecordBatch>,
    ) -> Result<WriteStats, SinkError> {
        todo!()
    }
    pub async fn cleanup_staging(&self, _dataset: Dataset) -> Result<usize, SinkError> {
        todo!()
    }
    pub async fn get_state(&self, _name: &str) -> Result<Option<Bytes>, SinkError> {
        todo!()
    }
    pub async fn put_state(&self, _name: &str, _value: Bytes) -> Result<(), SinkError> {
        todo!()
    }
}
