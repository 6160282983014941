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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray, TimestampMillisecondArray};
    use arrow::record_batch::RecordBatch;
    use chrono::TimeZone;

    use super::*;
    use crate::sink::counting::CountingStore;
    use crate::sink::Output;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, d).expect("date")
    }

    /// Noon of `day(d)` in Berlin.
    fn noon(d: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Berlin
            .with_ymd_and_hms(2024, 6, d, 12, 0, 0)
            .single()
            .expect("t")
            .with_timezone(&Utc)
    }

    async fn write_snapshot(sink: &Sink, d: u32, ids: &[&str]) {
        let n = ids.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["acct"; n])),
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(StringArray::from(vec![Some("a queue"); n])),
            Arc::new(TimestampMillisecondArray::from(vec![0; n]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
        ];
        let batch = RecordBatch::try_new(super::super::queues_schema(), columns).expect("batch");
        let key = PartitionKey::account_day(&TABLE, "acct", day(d));
        sink.write_partition(&key, vec![batch])
            .await
            .expect("write");
    }

    #[tokio::test]
    async fn the_list_is_read_again_only_when_its_snapshot_changes_and_expires_after_max_age() {
        let store = Arc::new(CountingStore::default());
        let out = Output::with_store(store.clone(), object_store::path::Path::from("out"));
        let reader = QueueListReader::new(chrono_tz::Europe::Berlin, 7);
        let ids = |l: Option<LatestQueues>| l.map(|l| (l.snapshot_date, l.queue_ids));
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        assert_eq!(
            ids(reader
                .current(&out.sink, "acct", noon(10))
                .await
                .expect("read")),
            None
        );
        write_snapshot(&out.sink, 10, &["qu-b", "qu-a", "qu-b"]).await;
        let first = reader
            .current(&out.sink, "acct", noon(10))
            .await
            .expect("read");
        assert_eq!(ids(first), Some((day(10), owned(&["qu-a", "qu-b"]))));
        let gets = store.parquet_gets();
        // Unchanged: the ids kept, the file not fetched again.
        let again = reader
            .current(&out.sink, "acct", noon(10))
            .await
            .expect("read");
        assert_eq!(ids(again), Some((day(10), owned(&["qu-a", "qu-b"]))));
        // The double counts the version check (a HEAD: a GET without body) as one.
        assert_eq!(
            store.parquet_gets(),
            gets + 1,
            "an unchanged list is not read again"
        );
        // Replaced by another run of the day: read again.
        write_snapshot(&out.sink, 10, &["qu-a", "qu-c"]).await;
        let replaced = reader
            .current(&out.sink, "acct", noon(10))
            .await
            .expect("read");
        assert_eq!(ids(replaced), Some((day(10), owned(&["qu-a", "qu-c"]))));
        // A week later the last snapshot still counts; a day more, it is too old.
        let week = reader
            .current(&out.sink, "acct", noon(17))
            .await
            .expect("read");
        assert_eq!(ids(week), Some((day(10), owned(&["qu-a", "qu-c"]))));
        assert_eq!(
            ids(reader
                .current(&out.sink, "acct", noon(18))
                .await
                .expect("read")),
            None
        );
        // A new day's snapshot wins over older ones.
        write_snapshot(&out.sink, 18, &["qu-d"]).await;
        let new_day = reader
            .current(&out.sink, "acct", noon(18))
            .await
            .expect("read");
        assert_eq!(ids(new_day), Some((day(18), owned(&["qu-d"]))));
    }
}
