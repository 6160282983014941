//! Values the metrics read from outside at each scrape, rather than being told of as they
//! happen: a [`ReaderSlot`] the composition root fills with a reader closure (so this module
//! and its callers know no client types), and the [`ReadingCollector`] that calls the reader
//! at each scrape and encodes what it read. The request budgets' gauges use it (`budget.rs`,
//! `bot_budget.rs`); each says how its reading becomes series.

use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};

/// Reads a value at a scrape.
type Reader<T> = Arc<dyn Fn() -> T + Send + Sync>;

/// Where the reader of a value goes: empty until the root gives one, replaced by the next.
/// Clones share the slot.
pub(super) struct ReaderSlot<T>(Arc<Mutex<Option<Reader<T>>>>);

impl<T> Clone for ReaderSlot<T> {
    fn clone(&self) -> Self {
        ReaderSlot(self.0.clone())
    }
}

impl<T> Default for ReaderSlot<T> {
    fn default() -> Self {
        ReaderSlot(Arc::default())
    }
}

impl<T> ReaderSlot<T> {
    /// Puts `read` in the slot (replacing a reader given before).
    pub(super) fn set(&self, read: Reader<T>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(read);
    }

    /// What the reader reads now; `None` before one is given.
    pub(super) fn read(&self) -> Option<T> {
        // Clone the reader out so the lock is not held while it reads.
        let reader = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        reader.map(|read| read())
    }
}

/// How a collector encodes what its reader read (`None`: no reader yet).
pub(super) type EncodeReading<T> = fn(Option<T>, &mut DescriptorEncoder) -> Result<(), fmt::Error>;

/// Reads its slot at each scrape and encodes the reading.
pub(super) struct ReadingCollector<T> {
    slot: ReaderSlot<T>,
    encode: EncodeReading<T>,
}

impl<T> ReadingCollector<T> {
    pub(super) fn new(slot: ReaderSlot<T>, encode: EncodeReading<T>) -> ReadingCollector<T> {
        ReadingCollector { slot, encode }
    }
}

impl<T> fmt::Debug for ReadingCollector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadingCollector").finish_non_exhaustive()
    }
}

impl<T: 'static> Collector for ReadingCollector<T> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        (self.encode)(self.slot.read(), &mut encoder)
    }
}

/// Encodes `metric` (a family built at the scrape) as the metric `name` with `help`.
pub(super) fn encode_metric(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}
