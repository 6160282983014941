//! The queue ids of the latest `queues` snapshot in the output, for datasets whose entities are
//! the account's queues (a per-queue API can take its list from here instead of its own
//! config): [`latest_queue_ids`] looks for the newest `snapshot_date` partition at most
//! `max_age_days` before `today` and reads its `queue_id` column.

use arrow::array::{Array, AsArray};
use chrono::{Days, NaiveDate};

use super::TABLE;
use crate::sink::{PartitionKey, Sink, SinkError};

/// The ids of one snapshot of the queue list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestQueues {
    pub snapshot_date: NaiveDate,
    /// `queue_id` of every row, sorted, each once.
    pub queue_ids: Vec<String>,
}

/// The newest snapshot of `account_id`'s queue list taken on `today` or up to `max_age_days`
/// before it; `None` when there is none that recent.
pub async fn latest_queue_ids(
    sink: &Sink,
    account_id: &str,
    today: NaiveDate,
    max_age_days: u32,
) -> Result<Option<LatestQueues>, SinkError> {
    for age in 0..=u64::from(max_age_days) {
        let Some(day) = today.checked_sub_days(Days::new(age)) else {
            break;
        };
        let key = PartitionKey::account_day(&TABLE, account_id, day);
        if !sink.partition_exists(&key).await? {
            continue;
        }
        let mut queue_ids = Vec::new();
        for batch in sink.read_partition(&key).await? {
            if let Some(ids) = batch
                .column_by_name("queue_id")
                .and_then(|c| c.as_string_opt::<i32>())
            {
                queue_ids.extend((0..ids.len()).map(|i| ids.value(i).to_string()));
            }
        }
        queue_ids.sort();
        queue_ids.dedup();
        return Ok(Some(LatestQueues {
            snapshot_date: day,
            queue_ids,
        }));
    }
    Ok(None)
}
