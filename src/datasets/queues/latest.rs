//! The queue ids of the latest `queues` snapshot in the output, for datasets whose entities are
//! the account's queues (a per-queue API can take its list from here instead of its own
//! config): [`latest_queue_ids`] looks for the newest `snapshot_date` partition at most
//! `max_age_days` before `today` and reads its `queue_id` column. [`QueueListReader`] does the
//! same at every poll tick cheaply: it keeps the ids it read with the version of the snapshot
//! file they came from, so an unchanged list costs one HEAD request per tick (plus one per
//! older day looked at while today's snapshot is not written yet).

use std::sync::Mutex;

use arrow::array::{Array, AsArray};
use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use tracing::{info, warn};

use super::TABLE;
use crate::sink::{FileVersion, PartitionKey, Sink, SinkError};
use crate::sources::window::local_date;

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
    for day in recent_days(today, max_age_days) {
        let key = PartitionKey::account_day(&TABLE, account_id, day);
        if !sink.partition_exists(&key).await? {
            continue;
        }
        return Ok(Some(LatestQueues {
            snapshot_date: day,
            queue_ids: read_queue_ids(sink, &key).await?,
        }));
    }
    Ok(None)
}

/// `today` and the `max_age_days` days before it, newest first.
fn recent_days(today: NaiveDate, max_age_days: u32) -> impl Iterator<Item = NaiveDate> {
    (0..=u64::from(max_age_days)).map_while(move |age| today.checked_sub_days(Days::new(age)))
}

/// The `queue_id` of every row of the snapshot `key`, sorted, each once.
async fn read_queue_ids(sink: &Sink, key: &PartitionKey) -> Result<Vec<String>, SinkError> {
    let mut queue_ids = Vec::new();
    for batch in sink.read_partition(key).await? {
        if let Some(ids) = batch
            .column_by_name("queue_id")
            .and_then(|c| c.as_string_opt::<i32>())
        {
            queue_ids.extend((0..ids.len()).map(|i| ids.value(i).to_string()));
        }
    }
    queue_ids.sort();
    queue_ids.dedup();
    Ok(queue_ids)
}

/// The latest queue list of one account, read again whenever its snapshot file changes: a
/// new snapshot day, or today's snapshot replaced by another run of the `queues` export.
#[derive(Debug)]
pub struct QueueListReader {
    /// `[queues] timezone`: its local date names the snapshot days.
    timezone: Tz,
    max_age_days: u32,
    /// The last list read, with the day and file version it was read from.
    read: Mutex<Option<(NaiveDate, FileVersion, LatestQueues)>>,
}

impl QueueListReader {
    pub fn new(timezone: Tz, max_age_days: u32) -> QueueListReader {
        QueueListReader {
            timezone,
            max_age_days,
            read: Mutex::new(None),
        }
    }

    /// How old a snapshot may be, in days before today, to be used.
    pub fn max_age_days(&self) -> u32 {
        self.max_age_days
    }

    /// The newest snapshot at most `max_age_days` before today (at `now`, in the list's
    /// zone); `None` when there is none that recent. Logs when the list read changes.
    pub async fn current(
        &self,
        sink: &Sink,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LatestQueues>, SinkError> {
        let today = local_date(self.timezone, now);
        for day in recent_days(today, self.max_age_days) {
            let key = PartitionKey::account_day(&TABLE, account_id, day);
            let Some(version) = sink.partition_version(&key).await? else {
                continue;
            };
            if let Some((d, v, list)) = &*self.lock() {
                if *d == day && *v == version {
                    return Ok(Some(list.clone()));
                }
            }
            let list = LatestQueues {
                snapshot_date: day,
                queue_ids: read_queue_ids(sink, &key).await?,
            };
            let previous = self.lock().replace((day, version, list.clone()));
            log_change(previous.map(|(_, _, l)| l).as_ref(), &list);
            return Ok(Some(list));
        }
        if let Some((day, _, _)) = self.lock().take() {
            warn!(
                snapshot_date = %day,
                max_age_days = self.max_age_days,
                "The latest queues snapshot is too old to be used; no queue is polled until the queues export writes a new one."
            );
        }
        Ok(None)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(NaiveDate, FileVersion, LatestQueues)>> {
        // Plain data, consistent after any single assignment.
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn log_change(previous: Option<&LatestQueues>, now: &LatestQueues) {
    let before: &[String] = previous.map_or(&[], |p| &p.queue_ids);
    let added = now.queue_ids.iter().filter(|q| !before.contains(q)).count();
    let removed = before.iter().filter(|q| !now.queue_ids.contains(q)).count();
    if previous.is_none() || added > 0 || removed > 0 {
        info!(
            snapshot_date = %now.snapshot_date,
            queues = now.queue_ids.len(),
            added,
            removed,
            "Read the queue list."
        );
    }
}
