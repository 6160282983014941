//! One `intent_realtime` partition (a bot's local day) as several files merged by
//! `session_id`, ordered by `end_time`: the protocol of [`crate::datasets::merged`] over
//! [`IntentSession`]s (a session's end time decides its partition, so it never changes). The
//! index lives at `_state/intent_realtime/account_id=A/bot_id=B/dt=D.json`.

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use super::decode::{session_ids, sessions_to_batch, IntentSession};
use crate::datasets::merged::{self, MergedRecord};
use crate::error::Error;
use crate::schema::Table;
use crate::sink::{PartitionKey, Sink, StateStore};

#[cfg(test)]
use crate::datasets::merged::entry_for;
#[cfg(test)]
use crate::state;
pub use merged::{index_name, Compacted, Compaction, FileEntry, Merge, Policy, ROW_GROUP_ROWS};

/// The index of an `intent_realtime` partition.
pub type PartitionIndex = merged::PartitionIndex<IntentSession>;
/// A claimed file of sessions.
pub type PendingFile = merged::PendingFile<IntentSession>;
/// What [`add_sessions`] did.
pub type Added = merged::Added<IntentSession>;

impl MergedRecord for IntentSession {
    fn table() -> &'static Table {
        &super::TABLE
    }
    const TIME_COLUMN: &'static str = "end_time";
    fn key(&self) -> String {
        self.session_id.clone()
    }
    fn instant(&self) -> DateTime<Utc> {
        self.end_time
    }
    fn keys_of(batch: &RecordBatch) -> Vec<String> {
        session_ids(batch)
    }
    fn to_batch(key: &PartitionKey, records: &[Self], exported_at: DateTime<Utc>) -> RecordBatch {
        sessions_to_batch(
            &key.account_id,
            key.bot_id.as_deref().unwrap_or_default(),
            records,
            exported_at,
        )
    }
}

/// Adds the `candidates` (all of `key`'s day) that no file of the partition holds yet, as one
/// new file ([`merged::add_records`]).
pub async fn add_sessions(
    sink: &Sink,
    state_store: &StateStore,
    key: &PartitionKey,
    candidates: Vec<IntentSession>,
    exported_at: DateTime<Utc>,
) -> Result<Added, Error> {
    merged::add_records(sink, state_store, key, candidates, exported_at).await
}

/// [`merged::compact`] of an `intent_realtime` partition.
pub async fn compact(
    sink: &Sink,
    state_store: &StateStore,
    key: &PartitionKey,
    merge: Merge,
) -> Result<Compacted, Error> {
    merged::compact::<IntentSession>(sink, state_store, key, merge).await
}

/// Ids of a `session_id` column (test and benchmark helper for readers of a partition).
pub fn ids_of(batches: &[RecordBatch]) -> Vec<String> {
    merged::keys_of::<IntentSession>(batches)
}

#[cfg(test)]
mod tests;
