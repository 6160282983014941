//! Test double: an `InMemory` store that counts the GET requests for `.parquet` objects and
//! the bytes they return, so tests can check how much of a data file a read fetched; it can
//! also delete or replace a `.parquet` object right after its next GET, as another writer
//! could between two requests of one read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// What happens to a `.parquet` object right after its next GET.
#[derive(Debug, Clone)]
pub enum Tamper {
    Delete,
    Replace(bytes::Bytes),
}

/// `InMemory` counting the GETs of `.parquet` objects and the bytes they returned.
#[derive(Debug, Default)]
pub struct CountingStore {
    inner: InMemory,
    parquet_bytes: Arc<AtomicU64>,
    parquet_gets: Arc<AtomicU64>,
    tamper: Mutex<Option<Tamper>>,
}

impl CountingStore {
    /// Bytes of `.parquet` objects fetched so far.
    pub fn parquet_bytes(&self) -> u64 {
        self.parquet_bytes.load(Ordering::Relaxed)
    }

    /// GET requests for `.parquet` objects so far.
    pub fn parquet_gets(&self) -> u64 {
        self.parquet_gets.load(Ordering::Relaxed)
    }

    /// Applies `tamper` to the `.parquet` object of the next GET, once that GET answered.
    pub fn tamper_after_next_get(&self, tamper: Tamper) {
        *self.tamper.lock().expect("tamper lock") = Some(tamper);
    }
}

impl std::fmt::Display for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let result = self.inner.get_opts(location, options).await?;
        if location.extension() != Some("parquet") {
            return Ok(result);
        }
        self.parquet_gets.fetch_add(1, Ordering::Relaxed);
        self.parquet_bytes
            .fetch_add(result.range.end - result.range.start, Ordering::Relaxed);
        let tamper = self.tamper.lock().expect("tamper lock").take();
        // Read the answer before the object changes (InMemory's answer is already in memory).
        let meta = result.meta.clone();
        let range = result.range.clone();
        let attributes = result.attributes.clone();
        let extensions = result.extensions.clone();
        let bytes = result.bytes().await?;
        match tamper {
            Some(Tamper::Delete) => self.inner.delete(location).await?,
            Some(Tamper::Replace(b)) => {
                self.inner.put(location, b.into()).await?;
            }
            None => {}
        }
        Ok(GetResult {
            payload: object_store::GetResultPayload::Stream(Box::pin(futures::stream::once(
                async move { Ok(bytes) },
            ))),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
