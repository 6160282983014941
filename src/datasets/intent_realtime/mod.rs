//! IntentRealtimeData, a snapshot-poll dataset: the unit of work is one poll of one bot. The
//! API returns the latest completed sessions (at most [`PAGE`]) with no window and no paging;
//! each poll merges the sessions not exported yet into the partition of their local end date
//! (`intent_realtime/account_id=A/bot_id=B/dt=D`), so every session is written exactly once
//! however often it is returned. A full poll of only new sessions means the bot is polled too
//! rarely: it is counted and logged as a suspected gap. [`decode`] owns the wire format and the
//! conversion between sessions and batches; the per-bot poll state lives in [`crate::state`].

pub mod decode;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::compute::concat_batches;
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::{info, warn};

use super::{
    Context, Dataset, DatasetInfo, Kind, PartitionLayout, SnapshotDataset, SnapshotSchedule, Table,
    UnitReport,
};
use crate::config::{Config, IntentConfig};
use crate::error::Error;
use crate::rejects;
use crate::schema::intent_realtime_schema;
use crate::sink::{PartitionKey, WriteStats};
use crate::sources::window::local_date;
use crate::state::{self, PollState};
use decode::{decode_sessions, session_ids, sessions_to_batch, IntentSession};

/// The `intent_realtime` table.
pub static TABLE: Table = Table {
    name: "intent_realtime",
    schema: intent_realtime_schema,
    layout: PartitionLayout::AccountBotDay,
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "intent_realtime",
    kind: Kind::Snapshot,
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    build,
};

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "intent_realtime";
/// The API returns at most this many sessions per poll.
pub const PAGE: usize = 25;

fn build(config: &Config) -> Option<Dataset> {
    let cfg = &config.intent;
    cfg.enabled.then(|| {
        Dataset::Snapshot(Arc::new(IntentRealtime::new(
            cfg.clone(),
            config.api.intent_path.clone(),
        )))
    })
}

/// The configured IntentRealtimeData polls.
pub struct IntentRealtime {
    cfg: IntentConfig,
    schedule: SnapshotSchedule,
    /// Path template containing `{bot_id}`.
    path: String,
}

impl IntentRealtime {
    pub fn new(cfg: IntentConfig, path: String) -> IntentRealtime {
        let schedule = SnapshotSchedule {
            schedule: cfg.schedule.clone(),
            schedule_timezone: cfg.schedule_timezone,
            gap_poll_interval: cfg.gap_poll_interval,
        };
        IntentRealtime {
            cfg,
            schedule,
            path,
        }
    }

    fn key(account_id: &str, bot_id: &str, dt: NaiveDate) -> PartitionKey {
        PartitionKey {
            table: &TABLE,
            account_id: account_id.to_string(),
            bot_id: Some(bot_id.to_string()),
            dt,
        }
    }

    async fn fetch(
        &self,
        cx: &Context,
        bot_id: &str,
    ) -> Result<Vec<Result<IntentSession, crate::sources::Reject>>, Error> {
        let path = self.path.replace("{bot_id}", bot_id);
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
        let state_name = state::poll_state_name(INFO.name, &cx.account_id, bot_id);
        let previous: PollState = state::load(&cx.sink, &state_name)
            .await?
            .unwrap_or_default();
        let records = self.fetch(cx, bot_id).await?;
        let returned = records.len();
        let mut rejected = Vec::new();
        let mut by_day: BTreeMap<NaiveDate, Vec<IntentSession>> = BTreeMap::new();
        let mut in_response: HashSet<String> = HashSet::new();
        for record in records {
            match record {
                Ok(s) if in_response.insert(s.session_id.clone()) => by_day
                    .entry(local_date(self.cfg.timezone, s.end_time))
                    .or_default()
                    .push(s),
                Ok(_) => {}
                Err(r) => rejected.push(r),
            }
        }
        let mut report = UnitReport {
            unit: bot_id.to_string(),
            requests: 1,
            returned,
            rejects: rejected.len(),
            ..UnitReport::default()
        };
        let mut newest = previous.newest_end_time;
        for (dt, sessions) in by_day {
            let (fresh, written) = self
                .merge_day(cx, bot_id, dt, sessions, exported_at)
                .await?;
            for s in &fresh {
                newest = Some(newest.map_or(s.end_time, |n| n.max(s.end_time)));
            }
            report.rows += fresh.len();
            report.written.files += written.files;
            report.written.rows += fresh.len();
            report.written.bytes += written.bytes;
        }
        let valid = returned - report.rejects;
        report.gap_suspected = previous.polls > 0 && valid >= PAGE && report.rows == valid;
        if report.gap_suspected {
            cx.metrics.intent_gap(bot_id);
            warn!(
                bot_id,
                returned,
                "Every session in a full poll was new: sessions between polls were probably missed. Poll this bot more often."
            );
        }
        if !rejected.is_empty() {
            let key = Self::key(
                &cx.account_id,
                bot_id,
                local_date(self.cfg.timezone, exported_at),
            );
            rejects::merge(
                &cx.sink,
                &cx.metrics,
                &key,
                Some(bot_id),
                ENDPOINT,
                &rejected,
                exported_at,
            )
            .await?;
        }
        cx.metrics.intent_new_sessions(bot_id, report.rows);
        cx.metrics.written(
            INFO.name,
            report.written.files,
            report.written.rows,
            report.written.bytes,
        );
        let next = PollState {
            polls: previous.polls + 1,
            newest_end_time: newest,
            last_poll_at: Some(exported_at),
        };
        state::store(&cx.sink, &state_name, &next).await?;
        info!(
            dataset = INFO.name,
            bot_id,
            returned,
            new_sessions = report.rows,
            rejects = report.rejects,
            "Polled bot."
        );
        Ok(report)
    }

    /// Merges `sessions` into the `dt` partition, skipping those already there. Returns the
    /// sessions written for the first time (none: nothing is rewritten).
    async fn merge_day(
        &self,
        cx: &Context,
        bot_id: &str,
        dt: NaiveDate,
        sessions: Vec<IntentSession>,
        exported_at: DateTime<Utc>,
    ) -> Result<(Vec<IntentSession>, WriteStats), Error> {
        let key = Self::key(&cx.account_id, bot_id, dt);
        let existing = cx.sink.read_partition(&key).await?;
        let known: HashSet<String> = existing.iter().flat_map(session_ids).collect();
        let fresh: Vec<IntentSession> = sessions
            .into_iter()
            .filter(|s| !known.contains(&s.session_id))
            .collect();
        if fresh.is_empty() {
            return Ok((fresh, WriteStats::default()));
        }
        let mut batches = existing;
        batches.push(sessions_to_batch(
            &cx.account_id,
            bot_id,
            &fresh,
            exported_at,
        ));
        let merged =
            concat_batches(&intent_realtime_schema(), &batches).map_err(|source| Error::Arrow {
                context: format!("merging sessions into {}", key.relative_dir()),
                source,
            })?;
        let written = cx.sink.write_partition(&key, vec![merged]).await?;
        Ok((fresh, written))
    }

    async fn probe_bot(&self, cx: &Context, bot_id: &str) -> Result<String, Error> {
        let sessions = self.fetch(cx, bot_id).await?;
        Ok(format!("{} session(s)", sessions.len()))
    }
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
