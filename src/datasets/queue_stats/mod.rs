//! Queue Size (`queueStatsById`), a snapshot-poll dataset: the unit of work is one poll of one
//! queue. The API answers the queue's state at the moment of the request (waiting and engaged
//! conversations, agents by status, wait summary) and forgets it; polled on a schedule (every
//! minute by default) it becomes a time series. Each poll adds one row per queue record to the
//! partition of the local date of `polled_at` (`queue_stats/account_id=A/dt=D`), keyed by
//! `queue_id` and `polled_at`, through the merged-partition protocol of
//! [`crate::datasets::merged`] (one small file per poll, merged as the day grows and once it
//! is closed), so a poll repeated within the same second, or retried after a crash, writes
//! nothing twice.
//!
//! `polled_at` is the moment the answered request was sent (after any retries and budget
//! waits: the poll's start plus the time until its successful attempt,
//! [`crate::client::ApiClient::post_json_sent`]), truncated to the second. The polls are
//! realtime in the request budget (the pipeline gives every snapshot poll that priority) and
//! count in `check`'s and `run`'s poll arithmetic (`daemon::PollBudget`). [`decode`] owns the
//! wire format (a JSON array whose documented sample carries a `//` comment); the per-queue
//! poll state ([`PollState`]) keeps the days a queue's polls left with several files.
//!
//! The polled queues are the configured `queue_ids`, or, with `queue_ids` empty, every queue
//! of the latest snapshot of the `queues` list in the output
//! ([`SnapshotDataset::current_entities`], read again at every poll tick through
//! [`QueueListReader`], which re-reads the list only when its snapshot file changed).

mod answer;
pub mod config;
pub mod decode;
mod poll_state;
pub mod schema;
pub mod series;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::{info, warn};

use super::queues::{self, QueueListReader, QueuesConfig};
use super::{
    Context, Dataset, DatasetInfo, Dedupe, Demo, DemoQuery, EntitySource, PageDecoder,
    PartitionLayout, SnapshotDataset, SnapshotSchedule, Table, UnitReport,
};
use crate::config::{Config, SectionSpec};
use crate::datasets::merged::{self, Merge, MergedRecord, Policy};
use crate::error::Error;
use crate::rejects;
use crate::sink::{PartitionKey, WriteStats};
use crate::sources::window::local_date;
use crate::sources::Reject;
use crate::state;
pub use config::QueueStatsConfig;
use decode::{decode_elements, decode_queue_stats, Element, QueueSnapshot};
pub use poll_state::PollState;
use schema::queue_stats_schema;

/// The `queue_stats` table.
pub static TABLE: Table = Table {
    name: "queue_stats",
    schema: queue_stats_schema,
    layout: PartitionLayout::ACCOUNT_DAY,
    key: &["queue_id", "polled_at"],
    dedupe: Some(Dedupe {
        keep_first_by: "exported_at",
    }),
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "queue_stats",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: series::METRICS,
    build,
    decoder: PageDecoder {
        decode: |body, w| decode_queue_stats(body, w.claim.start).map(|r| r.len()),
        rows: page_rows,
    },
    demo: Demo {
        section: Some("enabled = true\nqueue_ids = [\"qu-demo-support\", \"qu-demo-sales\"]"),
        queries: &[DemoQuery {
            about: "Conversations waiting in each demo queue, latest polls first",
            sql: "SELECT polled_at, queue_name, waiting, engaged, agents_available\n\
                  FROM read_parquet('{out}/queue_stats/*/*/*.parquet', hive_partitioning = true)\n\
                  ORDER BY polled_at DESC, queue_name LIMIT 10",
        }],
    },
};

static CONFIG: SectionSpec = SectionSpec::of::<QueueStatsConfig>();

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "queue_stats";

/// [`PageDecoder::rows`]: every queue record of one answer as rows polled at the window's start.
fn page_rows(
    body: &[u8],
    window: &crate::sources::window::DayWindow,
    out: &mut dyn FnMut(&'static Table, arrow::record_batch::RecordBatch),
) -> Result<usize, crate::sources::DecodeError> {
    let (snapshots, _) = split(decode_queue_stats(body, window.claim.start)?);
    let batch = decode::snapshots_to_batch(
        super::PAGE_DECODER_ACCOUNT,
        &snapshots,
        super::page_decoder_exported_at(),
    );
    out(&TABLE, batch);
    Ok(snapshots.len())
}

/// The key text of a row: its `queue_id` and its `polled_at` (UTC, RFC 3339 with
/// milliseconds), joined by `|`, as the tests' truth writes keys.
pub fn row_key(queue_id: &str, polled_at: DateTime<Utc>) -> String {
    format!(
        "{queue_id}|{}",
        polled_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

impl MergedRecord for QueueSnapshot {
    fn table() -> &'static Table {
        &TABLE
    }
    const TIME_COLUMN: &'static str = "polled_at";
    fn key(&self) -> String {
        row_key(&self.queue_id, self.polled_at)
    }
    fn instant(&self) -> DateTime<Utc> {
        self.polled_at
    }
    fn keys_of(batch: &arrow::record_batch::RecordBatch) -> Vec<String> {
        decode::row_keys(batch)
    }
    fn to_batch(
        key: &PartitionKey,
        records: &[Self],
        exported_at: DateTime<Utc>,
    ) -> arrow::record_batch::RecordBatch {
        decode::snapshots_to_batch(&key.account_id, records, exported_at)
    }
}

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<QueueStatsConfig>()?;
    if !cfg.enabled {
        return None;
    }
    let polls = QueueStats::new(cfg.clone());
    // Validation lets `queue_ids` be empty only with `[queues]` enabled.
    let polls = match config.section::<QueuesConfig>() {
        Some(QueuesConfig(list)) if cfg.queue_ids.is_empty() => {
            polls.with_queue_list(list.keys.timezone)
        }
        _ => polls,
    };
    Some(Dataset::Snapshot(Arc::new(polls)))
}

/// How old the `queues` snapshot that lists the polled queues may be, in days before today
/// (in `[queues] timezone`): the list is exported once a day by default, so a week of failed
/// list exports still polls the last known queues; an older list polls none (and says so).
pub const QUEUE_LIST_MAX_AGE_DAYS: u32 = 7;

/// The configured Queue Size polls.
pub struct QueueStats {
    cfg: QueueStatsConfig,
    /// The configured `queue_ids`, each one entity with its own job.
    queues: Vec<String>,
    /// With `queue_ids` empty: every queue of the latest `queues` snapshot, read at every tick.
    list: Option<QueueListReader>,
    schedule: SnapshotSchedule,
    policy: Policy,
}

/// The decoded answer of one poll.
type Records = Vec<Element>;

/// What storing a poll's rows did ([`QueueStats::store`]).
struct Stored {
    /// The partition of the poll's day.
    key: PartitionKey,
    /// The rows no file held: written now.
    fresh: Vec<QueueSnapshot>,
    exported_at: DateTime<Utc>,
    /// The queue's days with files not merged yet, this poll's included.
    open_days: BTreeSet<NaiveDate>,
    /// The days closed (merged into one file) now.
    closed: BTreeSet<NaiveDate>,
}

impl QueueStats {
    pub fn new(cfg: QueueStatsConfig) -> QueueStats {
        let schedule = SnapshotSchedule {
            schedule: cfg.schedule.clone(),
            schedule_timezone: cfg.schedule_timezone,
            gap_poll_interval: None,
        };
        QueueStats {
            queues: cfg.queue_ids.clone(),
            list: None,
            cfg,
            schedule,
            policy: Policy::default(),
        }
    }

    /// The same polls of every queue of the account's `queues` list instead of the configured
    /// ones; `timezone` is `[queues] timezone` (its local date names the snapshot days).
    pub fn with_queue_list(mut self, timezone: chrono_tz::Tz) -> QueueStats {
        self.queues.clear();
        self.list = Some(QueueListReader::new(timezone, QUEUE_LIST_MAX_AGE_DAYS));
        self
    }

    /// The same polls with another compaction policy (tests).
    pub fn with_policy(mut self, policy: Policy) -> QueueStats {
        self.policy = policy;
        self
    }

    /// The request body: the filters that are configured.
    fn request_body(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        if !self.cfg.channels.is_empty() {
            body.insert("channels".into(), self.cfg.channels.clone().into());
        }
        if !self.cfg.languages.is_empty() {
            body.insert("languages".into(), self.cfg.languages.clone().into());
        }
        serde_json::Value::Object(body)
    }

    /// One request for `queue_id`; its records stamped with `polled_at` (see the module docs).
    async fn fetch(
        &self,
        cx: &Context,
        queue_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(Records, DateTime<Utc>), Error> {
        let started = std::time::Instant::now();
        let path = self.cfg.path.replace("{queue_id}", queue_id);
        let (records, sent) = cx
            .client
            .post_json_sent(ENDPOINT, &path, &[], &self.request_body(), |body| {
                decode_elements(body, at)
            })
            .await?;
        let polled_at = polled_at(at, sent.saturating_duration_since(started));
        let stamped = records
            .into_iter()
            .map(|e| Element {
                decoded: e.decoded.map(|s| QueueSnapshot { polled_at, ..s }),
                ..e
            })
            .collect();
        Ok((stamped, polled_at))
    }

    /// One poll of `queue_id` for the tick `at`: fetch, sort the answer, store its row (and
    /// rejects), then the queue's poll state, last.
    async fn poll_queue(
        &self,
        cx: &Context,
        queue_id: &str,
        at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let (records, polled_at) = self.fetch(cx, queue_id, at).await?;
        let returned = records.len();
        let sorted = answer::sort(queue_id, records);
        self.count_answer(cx, queue_id, polled_at, &sorted);
        let empty = sorted.kept.is_none();
        let (snapshots, rejected): (Vec<QueueSnapshot>, _) =
            (sorted.kept.into_iter().collect(), sorted.rejected);
        let state_name = state::object_name::<PollState>(INFO.name, &cx.account_id, queue_id);
        let previous: PollState = state::load(&cx.state, &state_name)
            .await?
            .unwrap_or_default();
        let mut report = UnitReport {
            unit: queue_id.to_string(),
            requests: 1,
            returned,
            rejects: rejected.len(),
            empty,
            ..UnitReport::default()
        };
        let stored = self
            .store(cx, polled_at, at, snapshots, &previous, &mut report)
            .await?;
        self.finish_poll(
            cx,
            queue_id,
            &stored.fresh,
            &rejected,
            &stored.key,
            stored.exported_at,
            &mut report,
        )
        .await?;
        let update = poll_state::PollUpdate {
            polled_at,
            opened: stored
                .open_days
                .difference(&stored.closed)
                .copied()
                .collect(),
            closed: stored.closed,
        };
        state::update(&cx.state, &state_name, |current| {
            Some(update.apply(current))
        })
        .await?;
        info!(
            dataset = INFO.name,
            queue_id,
            %polled_at,
            rows = report.rows,
            rejects = report.rejects,
            "Polled queue."
        );
        Ok(report)
    }

    /// Stores a poll's rows in the partition of `polled_at`'s local day, merges it when its
    /// small files pile up, and closes the queue's open days that are over; counts rows and
    /// files in `report`.
    async fn store(
        &self,
        cx: &Context,
        polled_at: DateTime<Utc>,
        at: DateTime<Utc>,
        snapshots: Vec<QueueSnapshot>,
        previous: &PollState,
        report: &mut UnitReport,
    ) -> Result<Stored, Error> {
        let dt = local_date(self.cfg.timezone, polled_at);
        let key = self.key(&cx.account_id, dt);
        // `exported_at` is when the rows are handed to the writer: after the answer, so never
        // before `polled_at` (see docs/datasets/queue_stats.md).
        let exported_at = Utc::now().max(polled_at);
        let added = merged::add_records(&cx.sink, &cx.state, &key, snapshots, exported_at).await?;
        let mut open_days = previous.open_days.clone();
        if !added.fresh.is_empty() || added.file_rows.len() > 1 {
            open_days.insert(dt);
        }
        report.rows = added.fresh.len();
        add_written(&mut report.written, &added.written);
        if self.policy.wants_merge(&added.file_rows) {
            let merged = merged::compact::<QueueSnapshot>(
                &cx.sink,
                &cx.state,
                &key,
                Merge::Bounded(self.policy),
            )
            .await?;
            add_written(&mut report.written, &merged.written);
        }
        let closed = merged::close_days::<QueueSnapshot>(
            (&cx.sink, &cx.state),
            &open_days,
            self.cfg.timezone,
            &self.policy,
            at,
            |day| self.key(&cx.account_id, day),
            &mut report.written,
        )
        .await?;
        report.written.rows = report.rows;
        Ok(Stored {
            key,
            fresh: added.fresh,
            exported_at,
            open_days,
            closed,
        })
    }

    /// The counters of an answer's records that were not kept as its row (see [`answer`]),
    /// and the warning of an answer without the polled queue.
    fn count_answer(
        &self,
        cx: &Context,
        queue_id: &str,
        polled_at: DateTime<Utc>,
        sorted: &answer::Sorted,
    ) {
        let count = |metric, n: usize| {
            if n > 0 {
                cx.metrics
                    .dataset_counter(metric, queue_id)
                    .inc_by(n as u64);
            }
        };
        count(&series::REPEATED, sorted.repeats);
        count(&series::CONFLICTING, sorted.conflicting);
        count(&series::OTHER_QUEUE, sorted.other_queues);
        if sorted.kept.is_none() && sorted.undecodable > 0 {
            // The queue's record may be among them: not counted as missing, the rejects
            // counter has them.
            warn!(
                dataset = INFO.name,
                queue_id,
                %polled_at,
                undecodable = sorted.undecodable,
                "No record of the polled queue could be kept: records of the answer did not decode (kept in the rejects with the reason); nothing is written for this poll."
            );
        } else if sorted.kept.is_none() {
            count(&series::MISSING, 1);
            warn!(
                dataset = INFO.name,
                queue_id,
                %polled_at,
                records = sorted.rejected.len() + sorted.repeats,
                "The answer holds no record of the polled queue: nothing is written for this poll."
            );
        }
    }

    /// Rejects and metrics of a poll whose rows are stored.
    #[allow(clippy::too_many_arguments)]
    async fn finish_poll(
        &self,
        cx: &Context,
        queue_id: &str,
        fresh: &[QueueSnapshot],
        rejected: &[Reject],
        key: &PartitionKey,
        at: DateTime<Utc>,
        report: &mut UnitReport,
    ) -> Result<(), Error> {
        if !rejected.is_empty() {
            rejects::merge(&cx.sink, &cx.metrics, key, None, ENDPOINT, rejected, at).await?;
        }
        let mut unmapped = crate::sources::extra::UnmappedCounts::default();
        for s in fresh {
            if let Some(cell) = &s.extra {
                unmapped.add_cell(cell);
            }
        }
        report.unmapped = unmapped.take();
        cx.metrics
            .dataset_counter(&series::SNAPSHOTS, queue_id)
            .inc_by(report.rows as u64);
        if let Some(waiting) = fresh
            .iter()
            .find(|s| s.queue_id == queue_id)
            .and_then(|s| s.waiting)
        {
            cx.metrics
                .dataset_gauge(&series::WAITING, queue_id)
                .set(waiting as f64);
        }
        cx.metrics
            .unmapped_fields(INFO.name, report.unmapped.values().sum());
        cx.metrics.written(
            INFO.name,
            report.written.files,
            report.written.rows,
            report.written.bytes,
        );
        Ok(())
    }

    fn key(&self, account_id: &str, dt: NaiveDate) -> PartitionKey {
        PartitionKey {
            table: &TABLE,
            account_id: account_id.to_string(),
            bot_id: None,
            dt,
        }
    }

    async fn probe_queue(&self, cx: &Context, queue_id: &str) -> Result<String, Error> {
        let (records, _) = self.fetch(cx, queue_id, Utc::now()).await?;
        let sorted = answer::sort(queue_id, records);
        let kept = match &sorted.kept {
            Some(s) => format!("{} waiting", s.waiting.unwrap_or(0)),
            None => "no record of this queue".to_string(),
        };
        Ok(format!("{kept}, {} rejected", sorted.rejected.len()))
    }
}

/// `at` (the poll's start) plus `elapsed` (until its answered request was sent), truncated to
/// the second.
pub fn polled_at(at: DateTime<Utc>, elapsed: std::time::Duration) -> DateTime<Utc> {
    let t = at + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::zero());
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The snapshots of an answer to no particular poll (the generic [`PageDecoder`]), each queue
/// once (first occurrence), and its rejects.
fn split(records: Vec<Result<QueueSnapshot, Reject>>) -> (Vec<QueueSnapshot>, Vec<Reject>) {
    let mut ids = HashSet::new();
    let mut snapshots = Vec::new();
    let mut rejected = Vec::new();
    for record in records {
        match record {
            Ok(s) if ids.insert(s.queue_id.clone()) => snapshots.push(s),
            Ok(_) => {}
            Err(r) => rejected.push(r),
        }
    }
    (snapshots, rejected)
}

fn add_written(total: &mut WriteStats, more: &WriteStats) {
    total.files += more.files;
    total.bytes += more.bytes;
}

impl SnapshotDataset for QueueStats {
    fn timezone(&self) -> chrono_tz::Tz {
        self.cfg.timezone
    }

    fn info(&self) -> &'static DatasetInfo {
        &INFO
    }

    fn schedule(&self) -> &SnapshotSchedule {
        &self.schedule
    }

    fn entities(&self) -> &[String] {
        &self.queues
    }

    fn entity_kind(&self) -> &'static str {
        "queue"
    }

    fn entity_source(&self) -> EntitySource {
        match &self.list {
            Some(list) => EntitySource::List {
                dataset: queues::INFO.name,
                max_age_days: list.max_age_days(),
            },
            None => EntitySource::Config,
        }
    }

    fn current_entities<'a>(
        &'a self,
        cx: &'a Context,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<Vec<String>>, Error>> {
        async move {
            let Some(list) = &self.list else {
                return Ok(Some(self.queues.clone()));
            };
            let latest = list.current(&cx.sink, &cx.account_id, now).await?;
            Ok(latest.map(|l| l.queue_ids))
        }
        .boxed()
    }

    fn poll<'a>(
        &'a self,
        cx: &'a Context,
        entity: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>> {
        self.poll_queue(cx, entity, at).boxed()
    }

    fn probe<'a>(
        &'a self,
        cx: &'a Context,
        entity: &'a str,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.probe_queue(cx, entity).boxed()
    }
}

#[cfg(test)]
mod tests;
