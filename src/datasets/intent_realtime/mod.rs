//! IntentRealtimeData, a snapshot-poll dataset: the unit of work is one poll of one bot. The
//! API returns the latest completed sessions (at most [`PAGE`]) with no window and no paging;
//! each poll adds the sessions not exported yet to the partition of their local end date
//! (`intent_realtime/account_id=A/bot_id=B/dt=D`), so every session is written exactly once
//! however often it is returned and however many processes poll the bot ([`partition`] owns the
//! files of a partition, their index and compaction). A poll's cost follows from its new
//! sessions, not from the size of the day: the sessions the previous poll returned are skipped
//! without reading anything (the poll state keeps their ids), the others are looked up only in
//! the files whose end-time range covers them, and the new ones become one small file. Days
//! with several files are merged into one when they are closed ([`partition::Policy`]); a day
//! that a failed poll left with several files is merged by the next poll that returns some of
//! its sessions. A full poll of only new sessions means the bot is polled too rarely: it is
//! counted and logged as a suspected gap. [`decode`] owns the wire format and the conversion
//! between sessions and batches; the per-bot poll state lives in [`crate::state`].

pub mod config;
pub mod decode;
pub mod partition;
mod poll_state;
pub mod schema;
pub mod series;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::{info, warn};

use super::{
    Context, Dataset, DatasetInfo, Dedupe, Demo, DemoQuery, PageDecoder, PartitionLayout,
    PartitionWrite, SnapshotDataset, SnapshotSchedule, Table, UnitReport,
};
use crate::config::{Config, SectionSpec};
use crate::datasets::intent_realtime::schema::intent_realtime_schema;
use crate::datasets::merged;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::rejects;
use crate::sink::{PartitionKey, Sink, StateStore, WriteStats};
use crate::sources::extra::UnmappedCounts;
use crate::sources::window::local_date;
use crate::sources::Reject;
use crate::state;
pub use config::IntentConfig;
use decode::{decode_sessions, IntentSession};
use partition::{Merge, Policy};
pub use poll_state::PollState;
use poll_state::PollUpdate;

/// The `intent_realtime` table.
pub static TABLE: Table = Table {
    name: "intent_realtime",
    schema: intent_realtime_schema,
    layout: PartitionLayout::ACCOUNT_BOT_DAY,
    key: &["session_id"],
    dedupe: Some(Dedupe {
        keep_first_by: "exported_at",
    }),
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "intent_realtime",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: series::METRICS,
    build,
    decoder: PageDecoder {
        decode: |body, _| decode_sessions(body).map(|s| s.len()),
        rows: page_rows,
    },
    demo: Demo {
        section: Some("bot_ids = [\"st-demo-bot\"]"),
        queries: &[DemoQuery {
            about: "The demo bot's latest sessions and their intents",
            sql: "SELECT dt, session_id, end_time, intents\n\
                  FROM read_parquet('{out}/intent_realtime/*/*/*/*.parquet', hive_partitioning = true)\n\
                  ORDER BY end_time DESC LIMIT 10",
        }],
    },
};

static CONFIG: SectionSpec = SectionSpec::of::<IntentConfig>();

/// [`PageDecoder::rows`]: every session of one poll's answer as rows of one bot.
fn page_rows(
    body: &[u8],
    _window: &crate::sources::window::DayWindow,
    out: &mut dyn FnMut(&'static Table, arrow::record_batch::RecordBatch),
) -> Result<usize, crate::sources::DecodeError> {
    let (sessions, _) = split(decode_sessions(body)?);
    let batch = decode::sessions_to_batch(
        super::PAGE_DECODER_ACCOUNT,
        "bench-bot",
        &sessions,
        super::page_decoder_exported_at(),
    );
    out(&TABLE, batch);
    Ok(sessions.len())
}

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "intent_realtime";
/// The API returns at most this many sessions per poll.
pub const PAGE: usize = 25;

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<IntentConfig>()?;
    cfg.enabled
        .then(|| Dataset::Snapshot(Arc::new(IntentRealtime::new(cfg.clone()))))
}

/// The configured IntentRealtimeData polls.
pub struct IntentRealtime {
    cfg: IntentConfig,
    schedule: SnapshotSchedule,
    policy: Policy,
}

/// The decoded answer of one poll: sessions (each id once) and rejects.
type Records = Vec<Result<IntentSession, Reject>>;

impl IntentRealtime {
    pub fn new(cfg: IntentConfig) -> IntentRealtime {
        let schedule = SnapshotSchedule {
            schedule: cfg.schedule.clone(),
            schedule_timezone: cfg.schedule_timezone,
            gap_poll_interval: cfg.gap_poll_interval,
        };
        IntentRealtime {
            cfg,
            schedule,
            policy: Policy::default(),
        }
    }

    /// The same polls with another compaction policy (tests and benchmarks).
    pub fn with_policy(mut self, policy: Policy) -> IntentRealtime {
        self.policy = policy;
        self
    }

    fn key(account_id: &str, bot_id: &str, dt: NaiveDate) -> PartitionKey {
        PartitionKey {
            table: &TABLE,
            account_id: account_id.to_string(),
            bot_id: Some(bot_id.to_string()),
            dt,
        }
    }

    async fn fetch(&self, cx: &Context, bot_id: &str) -> Result<Records, Error> {
        let path = self.cfg.path.replace("{bot_id}", bot_id);
        Ok(cx
            .client
            .post_json(
                ENDPOINT,
                &path,
                &[],
                &serde_json::json!({}),
                decode_sessions,
            )
            .await?)
    }

    async fn poll_bot(
        &self,
        cx: &Context,
        bot_id: &str,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let records = self.fetch(cx, bot_id).await?;
        let target = Target {
            sink: &cx.sink,
            state: &cx.state,
            metrics: &cx.metrics,
            account_id: &cx.account_id,
            bot_id,
        };
        self.ingest(target, records, exported_at).await
    }

    /// Everything a poll does with the API's answer: add the new sessions to their days'
    /// partitions, merge days that grew past the policy or are closed, keep the rejects, count,
    /// then store the poll state (after the data it describes).
    pub async fn ingest(
        &self,
        t: Target<'_>,
        records: Records,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let state_name = state::object_name::<PollState>(INFO.name, t.account_id, t.bot_id);
        let previous: PollState = state::load(t.state, &state_name).await?.unwrap_or_default();
        let returned = records.len();
        let (sessions, rejected) = split(records);
        let response_keys: Vec<String> = sessions.iter().map(|s| s.session_id.clone()).collect();
        let seen: HashSet<&str> = previous.recent_keys.iter().map(String::as_str).collect();
        let mut by_day: BTreeMap<NaiveDate, Vec<IntentSession>> = BTreeMap::new();
        for s in sessions
            .iter()
            .filter(|s| !seen.contains(s.session_id.as_str()))
        {
            let day = local_date(self.cfg.timezone, s.end_time);
            by_day.entry(day).or_default().push(s.clone());
        }
        let mut report = UnitReport {
            unit: t.bot_id.to_string(),
            requests: 1,
            returned,
            rejects: rejected.len(),
            ..UnitReport::default()
        };
        let mut tally = PollTally {
            newest: previous.newest_end_time,
            unmapped: UnmappedCounts::default(),
            open_days: previous.open_days.clone(),
        };
        for (dt, candidates) in by_day {
            self.add_day(t, (dt, candidates), exported_at, &mut report, &mut tally)
                .await?;
        }
        report.written.rows = report.rows;
        report.unmapped = tally.unmapped.take();
        let closed = self
            .close_days(t, &tally.open_days, exported_at, &mut report)
            .await?;
        self.finish_poll(t, &previous, &mut report, &rejected, exported_at)
            .await?;
        let update = PollUpdate {
            at: exported_at,
            newest: tally.newest,
            keys: response_keys,
            opened: tally.open_days.difference(&closed).copied().collect(),
            closed,
        };
        state::update(t.state, &state_name, |current| Some(update.apply(current))).await?;
        info!(
            dataset = INFO.name,
            bot_id = t.bot_id,
            returned,
            new_sessions = report.rows,
            rejects = report.rejects,
            "Polled bot."
        );
        Ok(report)
    }

    /// Adds the new sessions of day `dt` to its partition (merging it when it grew past the
    /// policy), counting into `report` and `tally`.
    async fn add_day(
        &self,
        t: Target<'_>,
        (dt, candidates): (NaiveDate, Vec<IntentSession>),
        exported_at: DateTime<Utc>,
        report: &mut UnitReport,
        tally: &mut PollTally,
    ) -> Result<(), Error> {
        let key = Self::key(t.account_id, t.bot_id, dt);
        let added = partition::add_sessions(t.sink, t.state, &key, candidates, exported_at).await?;
        for s in &added.fresh {
            tally.newest = Some(tally.newest.map_or(s.end_time, |n| n.max(s.end_time)));
            if let Some(cell) = &s.extra {
                tally.unmapped.add_cell(cell);
            }
        }
        // Also a day that holds several files none of this poll's sessions went into (a
        // failed poll published them, or left their merge unfinished): else, once closed,
        // it would never be merged.
        if !added.fresh.is_empty() || added.file_rows.len() > 1 {
            tally.open_days.insert(dt);
        }
        report.rows += added.fresh.len();
        add_written(&mut report.written, &added.written);
        if !added.fresh.is_empty() {
            report.partitions.push(PartitionWrite {
                table: TABLE.name,
                day: dt,
                written: WriteStats {
                    rows: added.fresh.len(),
                    ..added.written.clone()
                },
            });
        }
        if self.policy.wants_merge(&added.file_rows) {
            let merged =
                partition::compact(t.sink, t.state, &key, Merge::Bounded(self.policy)).await?;
            add_written(&mut report.written, &merged.written);
        }
        Ok(())
    }

    /// Merges every partition of `open` whose day is closed into one file
    /// ([`merged::close_days`]); returns the days that now hold at most one.
    async fn close_days(
        &self,
        t: Target<'_>,
        open: &BTreeSet<NaiveDate>,
        now: DateTime<Utc>,
        report: &mut UnitReport,
    ) -> Result<BTreeSet<NaiveDate>, Error> {
        merged::close_days::<IntentSession>(
            (t.sink, t.state),
            open,
            self.cfg.timezone,
            &self.policy,
            now,
            |day| Self::key(t.account_id, t.bot_id, day),
            &mut report.written,
        )
        .await
    }

    /// Gap detection, rejects and metrics of a poll whose sessions are stored.
    async fn finish_poll(
        &self,
        t: Target<'_>,
        previous: &PollState,
        report: &mut UnitReport,
        rejected: &[Reject],
        exported_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let valid = report.returned - report.rejects;
        report.gap_suspected = previous.polls > 0 && valid >= PAGE && report.rows == valid;
        if report.gap_suspected {
            t.metrics.dataset_counter(&series::GAPS, t.bot_id).inc();
            warn!(
                bot_id = t.bot_id,
                returned = report.returned,
                "Every session in a full poll was new: sessions between polls were probably missed. Poll this bot more often."
            );
        }
        if !rejected.is_empty() {
            let day = local_date(self.cfg.timezone, exported_at);
            let key = Self::key(t.account_id, t.bot_id, day);
            rejects::merge(
                t.sink,
                t.metrics,
                &key,
                Some(t.bot_id),
                ENDPOINT,
                rejected,
                exported_at,
            )
            .await?;
        }
        t.metrics
            .dataset_counter(&series::NEW_SESSIONS, t.bot_id)
            .inc_by(report.rows as u64);
        t.metrics
            .unmapped_fields(INFO.name, report.unmapped.values().sum());
        t.metrics.written(
            INFO.name,
            report.written.files,
            report.written.rows,
            report.written.bytes,
        );
        Ok(())
    }

    async fn probe_bot(&self, cx: &Context, bot_id: &str) -> Result<String, Error> {
        let sessions = self.fetch(cx, bot_id).await?;
        Ok(format!("{} session(s)", sessions.len()))
    }
}

/// Where one bot's polls go: the output, the metrics, the account and the bot.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub sink: &'a Sink,
    pub state: &'a StateStore,
    pub metrics: &'a Metrics,
    pub account_id: &'a str,
    pub bot_id: &'a str,
}

/// The sessions of an answer, each id once (first occurrence), and its rejects.
fn split(records: Records) -> (Vec<IntentSession>, Vec<Reject>) {
    let mut ids = HashSet::new();
    let mut sessions = Vec::new();
    let mut rejected = Vec::new();
    for record in records {
        match record {
            Ok(s) if ids.insert(s.session_id.clone()) => sessions.push(s),
            Ok(_) => {}
            Err(r) => rejected.push(r),
        }
    }
    (sessions, rejected)
}

fn add_written(total: &mut WriteStats, more: &WriteStats) {
    total.files += more.files;
    total.bytes += more.bytes;
}

impl SnapshotDataset for IntentRealtime {
    fn info(&self) -> &'static DatasetInfo {
        &INFO
    }

    fn schedule(&self) -> &SnapshotSchedule {
        &self.schedule
    }

    fn entities(&self) -> &[String] {
        &self.cfg.bot_ids
    }

    fn entity_kind(&self) -> &'static str {
        "bot"
    }

    fn timezone(&self) -> chrono_tz::Tz {
        self.cfg.timezone
    }

    fn poll<'a>(
        &'a self,
        cx: &'a Context,
        entity: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>> {
        self.poll_bot(cx, entity, at).boxed()
    }

    fn probe<'a>(
        &'a self,
        cx: &'a Context,
        entity: &'a str,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.probe_bot(cx, entity).boxed()
    }
}

/// What a poll's days added up to, for its poll state and report.
struct PollTally {
    /// The newest `end_time` of any session stored.
    newest: Option<DateTime<Utc>>,
    unmapped: UnmappedCounts,
    /// Days that got sessions (or hold several files) and are not yet closed.
    open_days: BTreeSet<NaiveDate>,
}
