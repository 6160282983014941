//! A partition write in progress: batches stream to the Parquet encoder task, and
//! [`PartitionWriter::commit`] publishes the file under its final name only once it is complete
//! ([`PartitionWriter::abort`], or dropping the writer, leaves the previous file in place).

use arrow::record_batch::RecordBatch;
use object_store::path::Path;

use super::store::Store;
use super::{encode, SinkError, WriteStats};

/// The encoder task's result; `None` (already collected) counts as abandoned.
async fn join_encoder(
    task: Option<tokio::task::JoinHandle<Result<encode::Encoded, SinkError>>>,
    target: &Path,
) -> Result<encode::Encoded, SinkError> {
    match task {
        Some(task) => task.await.unwrap_or_else(|source| {
            Err(SinkError::UploadTask {
                path: target.clone(),
                source,
            })
        }),
        None => Err(SinkError::Abandoned {
            path: target.clone(),
        }),
    }
}

/// A partition write in progress (see [`Sink::begin_partition`](super::Sink::begin_partition)).
#[derive(Debug)]
pub struct PartitionWriter {
    pub(super) store: Store,
    pub(super) tx: tokio::sync::mpsc::Sender<encode::Feed>,
    /// `None` once the encoder's result has been collected (after it stopped early).
    pub(super) task: Option<tokio::task::JoinHandle<Result<encode::Encoded, SinkError>>>,
    pub(super) target: Path,
    pub(super) final_path: Path,
}

impl PartitionWriter {
    /// Encode one more batch (it must have the dataset's schema).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), SinkError> {
        self.feed(encode::Feed::Batch(batch)).await
    }

    /// Add one page of rows to the file: it waits as Arrow rows with the file's other waiting
    /// pages until together they hold [`encode::PAGE_ROW_GROUP_BYTES`], then they are encoded
    /// into one row group and written out (see [`super::PendingPages`]); then `permit` (if
    /// any) is freed. Callers that bound how many pages are in memory at once (the UserStatus
    /// pipeline does) take the permit before reading the page's body, so it covers the page
    /// until its rows are encoded or counted in that bound, and an open file waiting for its
    /// next page holds its compressed bytes and at most that bound of rows.
    pub async fn write_page(
        &mut self,
        batch: RecordBatch,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<(), SinkError> {
        self.feed(encode::Feed::Page(batch, permit)).await
    }

    async fn feed(&mut self, item: encode::Feed) -> Result<(), SinkError> {
        if self.task.is_some() && self.tx.send(item).await.is_ok() {
            return Ok(());
        }
        // The encoder stopped early (it aborted its upload): its result says why.
        Err(match join_encoder(self.task.take(), &self.target).await {
            Err(e) => e,
            Ok(_) => SinkError::Abandoned {
                path: self.target.clone(),
            },
        })
    }

    /// Complete the file and publish it over the partition's previous file.
    pub async fn commit(self) -> Result<WriteStats, SinkError> {
        let PartitionWriter {
            store,
            tx,
            task,
            target,
            final_path,
        } = self;
        let _ = tx.send(encode::Feed::Finish).await;
        drop(tx);
        let encoded = match join_encoder(task, &target).await {
            Ok(encoded) => encoded,
            Err(e) => {
                store.abandon(&target, &final_path).await;
                return Err(e);
            }
        };
        store.publish(&target, &final_path).await?;
        Ok(WriteStats {
            files: 1,
            rows: encoded.rows,
            bytes: encoded.bytes,
        })
    }

    /// Abandon the write: the upload is aborted and the previous file stays in place.
    pub async fn abort(self) {
        let PartitionWriter {
            store,
            tx,
            task,
            target,
            final_path,
        } = self;
        drop(tx);
        if let Some(task) = task {
            let _ = task.await;
        }
        store.abandon(&target, &final_path).await;
    }
}
