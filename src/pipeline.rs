//! The export pipeline: fetch → decode → normalize → write, the one place the ordering lives.
//! [`Exporter`] holds the API client, the sink and (when `base_url = "simulator"`) the running
//! simulator. [`Exporter::export_user_status_day`] replaces one local day's partition with every
//! bucket whose start lies in that day (DST-correct windows from [`crate::sources::window`]);
//! [`Exporter::export_intent_bot`] merges the latest sessions of one bot into the partitions of
//! their local end dates, each session exactly once. Rejects are written next to the data.
//! State (watermarks) is committed by callers only after these functions return `Ok`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::compute::concat_batches;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use url::Url;

use crate::auth::TokenMinter;
use crate::client::{ApiClient, ClientError, MemoryGate};
use crate::config::{BaseUrl, Config};
use crate::error::Error;
use crate::metrics;
use crate::model::Dataset;
use crate::rejects::{rejects_batch, rejects_from_batches};
use crate::schema::intent_realtime_schema;
use crate::simulator::{self, RunningSimulator, SimulatorConfig};
use crate::sink::{PartitionKey, PartitionWriter, Sink, WriteStats};
use crate::sources::intent::{decode_sessions, session_ids, sessions_to_batch, IntentSession};
use crate::sources::user_status::{decode_page, request_body, UserStatusNormalizer};
use crate::sources::window::{local_date, plan_day};
use crate::sources::Reject;

/// Endpoint labels used in logs, errors and metrics.
pub const USER_STATUS_ENDPOINT: &str = "user_status";
pub const INTENT_ENDPOINT: &str = "intent_realtime";
/// The API returns at most this many sessions per poll.
pub const INTENT_PAGE: usize = 25;
/// Safety stop for a server that keeps saying `hasMore`.
const MAX_PAGES_PER_WINDOW: usize = 100_000;
/// UserStatus pages that may be in memory at once, across every day in flight: from the moment
/// a response body starts to be read until its rows have been encoded into Parquet and the
/// encoders closed ([`PartitionWriter::write_page`]). Requests beyond that still overlap (a
/// request waiting for its response costs a socket, not memory), so `--concurrency` hides
/// latency without multiplying memory, and peak memory does not depend on the range length.
/// One page at a time serializes decode and encode: with the rate limit lifted a 90-day
/// backfill went from about 1.0 M to 0.78 M rows/s (`benches/run.sh`); at the platform's 60
/// requests/minute it costs nothing. In exchange 1 day and 90 days peak within 16%.
pub const PAGES_IN_MEMORY: usize = 1;
/// The UserStatus `limit` the API documents as its default (its sibling agentstatusdetails
/// also as its maximum). When the API refuses a larger `user_status.page_size` (400, 413 or
/// 422), the request is retried once with this; if that succeeds, the run keeps using it.
pub const FALLBACK_PAGE_SIZE: u32 = 50;

/// Outcome of one UserStatus day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayReport {
    pub day: Option<NaiveDate>,
    pub requests: usize,
    pub rows: usize,
    pub rejects: usize,
    pub written: WriteStats,
}

/// Outcome of one IntentRealtimeData poll of one bot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntentReport {
    pub returned: usize,
    pub new_sessions: usize,
    pub rejects: usize,
    pub partitions_written: usize,
    pub gap_suspected: bool,
    pub written: WriteStats,
}

/// Per-bot poll state, stored at `_state/intent_realtime/account_id=A/bot_id=B.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IntentPollState {
    pub polls: u64,
    pub newest_end_time: Option<DateTime<Utc>>,
    pub last_poll_at: Option<DateTime<Utc>>,
}

/// Everything a run needs: config, client, sink, and the simulator when configured.
pub struct Exporter {
    config: Arc<Config>,
    client: ApiClient,
    sink: Sink,
    simulator: Option<RunningSimulator>,
    /// Bounds UserStatus pages in memory (see [`PAGES_IN_MEMORY`]).
    page_gate: MemoryGate,
    /// UserStatus `limit`: `user_status.page_size`, lowered to [`FALLBACK_PAGE_SIZE`] for the
    /// rest of the run once the API refuses the configured size and accepts that one.
    page_size: AtomicU32,
}

impl Exporter {
    /// Build the client and sink; start the built-in simulator when `base_url = "simulator"`.
    pub async fn connect(
        config: Config,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<Exporter, Error> {
        let (base, simulator) = match &config.api.base_url {
            BaseUrl::Remote(url) => (url.clone(), None),
            BaseUrl::Simulator => {
                let sim = simulator::start(
                    simulator_config_for(&config),
                    std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                )
                .await?;
                let url = Url::parse(&sim.base_url())
                    .map_err(|e| Error::Usage(format!("simulator base URL is invalid: {e}")))?;
                info!(base_url = %url, "Started the built-in simulator.");
                (url, Some(sim))
            }
        };
        let minter = TokenMinter::new(
            &config.api.client_id,
            &config.api.client_secret,
            &config.auth,
        );
        let client = ApiClient::new(&config.api, base, minter, cancel)?;
        let sink = Sink::open(&config.output)?;
        let page_size = AtomicU32::new(config.user_status.page_size);
        Ok(Exporter {
            config: Arc::new(config),
            client,
            sink,
            simulator,
            page_gate: MemoryGate::new(PAGES_IN_MEMORY),
            page_size,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// Stop the built-in simulator, if one was started.
    pub async fn shutdown(self) {
        if let Some(sim) = self.simulator {
            sim.shutdown().await;
        }
    }

    /// Partition key of a UserStatus day.
    pub fn user_status_key(&self, day: NaiveDate) -> PartitionKey {
        PartitionKey {
            dataset: Dataset::UserStatus,
            account_id: self.config.api.account_id.clone(),
            bot_id: None,
            dt: day,
        }
    }

    /// Fetch every page of one local day and replace its partition.
    pub async fn export_user_status_day(
        &self,
        day: NaiveDate,
        exported_at: DateTime<Utc>,
    ) -> Result<DayReport, Error> {
        let started = Instant::now();
        let cfg = &self.config.user_status;
        let account_id = &self.config.api.account_id;
        let key = self.user_status_key(day);
        // Each page is read under the page gate, normalized and encoded as its own row group as
        // soon as it arrives, so a day waiting for its next page holds only compressed bytes.
        // The previous file stays visible until the new one is complete; any failure abandons
        // the write and leaves it in place.
        let mut writer = self.sink.begin_partition(&key).await?;
        let mut normalizer = UserStatusNormalizer::new(account_id, cfg.granularity, exported_at);
        let fetched = self
            .fetch_user_status_day(day, &mut normalizer, &mut writer)
            .await;
        let requests = match fetched {
            Ok(requests) => requests,
            Err(e) => {
                writer.abort().await;
                return Err(e);
            }
        };
        let (last, rejects) = normalizer.finish();
        if last.num_rows() > 0 {
            writer.write(last).await?;
        }
        let written = writer.commit().await?;
        let rows = written.rows;
        self.write_rejects(
            &key,
            None,
            USER_STATUS_ENDPOINT,
            &rejects,
            exported_at,
            false,
        )
        .await?;
        metrics::written(
            Dataset::UserStatus.name(),
            written.files,
            written.rows,
            written.bytes,
        );
        info!(
            dataset = "user_status",
            %day,
            requests,
            rows,
            rejects = rejects.len(),
            bytes = written.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Exported day."
        );
        Ok(DayReport {
            day: Some(day),
            requests,
            rows,
            rejects: rejects.len(),
            written,
        })
    }

    /// Fetch every page of a day's windows, streaming each page's rows into `writer`.
    /// Returns the number of requests made.
    async fn fetch_user_status_day(
        &self,
        day: NaiveDate,
        normalizer: &mut UserStatusNormalizer,
        writer: &mut PartitionWriter,
    ) -> Result<usize, Error> {
        let cfg = &self.config.user_status;
        let path = &self.config.api.user_status_path;
        let mut requests = 0;
        let mut limit = self.page_size.load(Ordering::Relaxed);
        // Set while trying FALLBACK_PAGE_SIZE after the API refused a larger `limit`.
        let mut refused_limit: Option<u32> = None;
        for window in plan_day(cfg.timezone, day) {
            let body = request_body(&cfg.agents, &window, cfg.granularity);
            let mut offset: usize = 0;
            let mut seen: HashSet<String> = HashSet::new();
            for _ in 0..MAX_PAGES_PER_WINDOW {
                let query = [("limit", limit.to_string()), ("offset", offset.to_string())];
                let result = self
                    .client
                    .post_json_gated(
                        USER_STATUS_ENDPOINT,
                        path,
                        &query,
                        &body,
                        Some(&self.page_gate),
                        |bytes| {
                            let page = decode_page(bytes)?;
                            for agent in page.agents {
                                match agent {
                                    Ok(agent) => {
                                        if seen.insert(agent.user_id().to_string()) {
                                            normalizer.push_agent(&agent, &window.claim);
                                        }
                                    }
                                    Err(reject) => normalizer.push_reject(reject),
                                }
                            }
                            Ok((page.has_more, page.record_count))
                        },
                    )
                    .await;
                requests += 1;
                let ((has_more, record_count), permit) = match result {
                    Ok(page) => page,
                    // A refused request never reached the decoder: retry the same offset once
                    // with the documented default, which the API must accept.
                    Err(ClientError::Rejected { status, .. })
                        if matches!(status, 400 | 413 | 422) && limit > FALLBACK_PAGE_SIZE =>
                    {
                        refused_limit = Some(limit);
                        limit = FALLBACK_PAGE_SIZE;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if let Some(refused) = refused_limit.take() {
                    // The smaller page worked, so the size was the problem: keep it for every
                    // later request of this run instead of paying a refused request per day.
                    if self.page_size.fetch_min(limit, Ordering::Relaxed) > limit {
                        warn!(
                            refused_limit = refused,
                            limit,
                            "The API refused user_status.page_size; using its documented default from now on. Set page_size = {limit} to skip the refused request."
                        );
                    }
                }
                if normalizer.rows() > 0 {
                    writer.write_page(normalizer.take_batch(), permit).await?;
                }
                if !has_more {
                    break;
                }
                if record_count == 0 {
                    warn!(%day, offset, "The API said hasMore but returned no records; stopping pagination.");
                    break;
                }
                offset += record_count;
            }
        }
        Ok(requests)
    }

    async fn write_rejects(
        &self,
        key: &PartitionKey,
        bot_id: Option<&str>,
        endpoint: &str,
        rejects: &[Reject],
        at: DateTime<Utc>,
        merge: bool,
    ) -> Result<(), Error> {
        if !rejects.is_empty() {
            metrics::rejects(key.dataset.name(), rejects.len());
            warn!(
                dataset = key.dataset.name(),
                dt = %key.dt,
                rejects = rejects.len(),
                first_reason = %rejects[0].reason,
                "Records rejected; kept in the rejects dataset."
            );
        }
        let mut all: Vec<Reject> = Vec::new();
        if merge {
            if rejects.is_empty() {
                return Ok(());
            }
            all = rejects_from_batches(&self.sink.read_rejects(key).await?);
            let known: HashSet<String> = all.iter().map(|r| r.raw_json.clone()).collect();
            let before = all.len();
            all.extend(
                rejects
                    .iter()
                    .filter(|r| !known.contains(&r.raw_json))
                    .cloned(),
            );
            if all.len() == before {
                return Ok(());
            }
        } else {
            all.extend_from_slice(rejects);
        }
        let batch = rejects_batch(key.dataset, &key.account_id, bot_id, endpoint, &all, at)
            .map_err(|source| Error::Arrow {
                context: "building the rejects batch".into(),
                source,
            })?;
        self.sink.write_rejects(key, batch).await?;
        Ok(())
    }

    fn intent_state_name(&self, bot_id: &str) -> String {
        format!(
            "intent_realtime/account_id={}/bot_id={}.json",
            self.config.api.account_id, bot_id
        )
    }

    /// Read the poll state of a bot (default when absent or unreadable).
    pub async fn intent_state(&self, bot_id: &str) -> Result<IntentPollState, Error> {
        let raw = self.sink.get_state(&self.intent_state_name(bot_id)).await?;
        Ok(raw
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    /// Poll one bot and merge unseen sessions into their partitions.
    pub async fn export_intent_bot(
        &self,
        bot_id: &str,
        exported_at: DateTime<Utc>,
    ) -> Result<IntentReport, Error> {
        let account_id = &self.config.api.account_id;
        let tz = self.config.intent.timezone;
        let path = self.config.api.intent_path.replace("{bot_id}", bot_id);
        let state = self.intent_state(bot_id).await?;
        let records = self
            .client
            .post_json(
                INTENT_ENDPOINT,
                &path,
                &[],
                &serde_json::json!({}),
                decode_sessions,
            )
            .await?;
        let returned = records.len();
        let mut rejects = Vec::new();
        let mut by_day: BTreeMap<NaiveDate, Vec<IntentSession>> = BTreeMap::new();
        let mut in_response: HashSet<String> = HashSet::new();
        for record in records {
            match record {
                Ok(s) => {
                    if in_response.insert(s.session_id.clone()) {
                        by_day
                            .entry(local_date(tz, s.end_time))
                            .or_default()
                            .push(s);
                    }
                }
                Err(r) => rejects.push(r),
            }
        }
        let mut report = IntentReport {
            returned,
            rejects: rejects.len(),
            ..IntentReport::default()
        };
        let mut newest = state.newest_end_time;
        for (dt, sessions) in by_day {
            let key = PartitionKey {
                dataset: Dataset::IntentRealtime,
                account_id: account_id.clone(),
                bot_id: Some(bot_id.to_string()),
                dt,
            };
            let existing = self.sink.read_partition(&key).await?;
            let known: HashSet<String> = existing.iter().flat_map(session_ids).collect();
            let fresh: Vec<IntentSession> = sessions
                .into_iter()
                .filter(|s| !known.contains(&s.session_id))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            for s in &fresh {
                newest = Some(newest.map_or(s.end_time, |n| n.max(s.end_time)));
            }
            let mut batches = existing;
            batches.push(sessions_to_batch(account_id, bot_id, &fresh, exported_at));
            let merged = concat_batches(&intent_realtime_schema(), &batches).map_err(|source| {
                Error::Arrow {
                    context: format!("merging sessions into {}", key.relative_dir()),
                    source,
                }
            })?;
            let written = self.sink.write_partition(&key, vec![merged]).await?;
            report.new_sessions += fresh.len();
            report.partitions_written += 1;
            report.written.files += written.files;
            report.written.rows += fresh.len();
            report.written.bytes += written.bytes;
        }
        let valid = returned - report.rejects;
        report.gap_suspected =
            state.polls > 0 && valid >= INTENT_PAGE && report.new_sessions == valid;
        if report.gap_suspected {
            metrics::intent_gap(bot_id);
            warn!(
                bot_id,
                returned,
                "Every session in a full poll was new: sessions between polls were probably missed. Poll this bot more often."
            );
        }
        if !rejects.is_empty() {
            let key = PartitionKey {
                dataset: Dataset::IntentRealtime,
                account_id: account_id.clone(),
                bot_id: Some(bot_id.to_string()),
                dt: local_date(tz, exported_at),
            };
            self.write_rejects(
                &key,
                Some(bot_id),
                INTENT_ENDPOINT,
                &rejects,
                exported_at,
                true,
            )
            .await?;
        }
        metrics::intent_new_sessions(bot_id, report.new_sessions);
        metrics::written(
            Dataset::IntentRealtime.name(),
            report.written.files,
            report.written.rows,
            report.written.bytes,
        );
        let new_state = IntentPollState {
            polls: state.polls + 1,
            newest_end_time: newest,
            last_poll_at: Some(exported_at),
        };
        let bytes = serde_json::to_vec(&new_state).unwrap_or_default();
        self.sink
            .put_state(&self.intent_state_name(bot_id), Bytes::from(bytes))
            .await?;
        info!(
            dataset = "intent_realtime",
            bot_id,
            returned,
            new_sessions = report.new_sessions,
            partitions = report.partitions_written,
            rejects = report.rejects,
            "Polled bot."
        );
        Ok(report)
    }
}

/// The simulator configuration matching an exporter config (`base_url = "simulator"`).
pub fn simulator_config_for(config: &Config) -> SimulatorConfig {
    let mut bots = config.intent.bot_ids.clone();
    if bots.is_empty() {
        bots.push("st-demo-bot".to_string());
    }
    SimulatorConfig {
        account_id: config.api.account_id.clone(),
        iid: config.api.iid.clone(),
        client_id: config.api.client_id.clone(),
        client_secret: config.api.client_secret.expose().to_string(),
        enforce_jti: config.auth.enforce_jti,
        bots,
        ..SimulatorConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tokio_util::sync::CancellationToken;

    fn config(out: &Path) -> Config {
        let text = format!(
            r#"
[api]
base_url = "simulator"
account_id = "acct-gate"
iid = "st-gate"
client_id = "cs-gate"
requests_per_minute = 100000
[output]
url = "{}"
[user_status]
granularity = "PT15M"
timezone = "UTC"
[intent_realtime]
enabled = false
"#,
            out.display()
        );
        Config::from_toml(
            &text,
            Path::new("gate.toml"),
            Some("gate-test-secret".into()),
        )
        .expect("valid test config")
    }

    /// A UserStatus page is read only with a permit of the page gate: while the test holds the
    /// only permit, the day's response arrives and waits at the gate (an event the gate counts),
    /// nothing is written; once the permit is released the day completes with its rows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_body_is_read_only_with_a_memory_permit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exporter = Exporter::connect(config(dir.path()), CancellationToken::new())
            .await
            .expect("exporter with the built-in simulator");
        assert_eq!(exporter.page_gate.available(), PAGES_IN_MEMORY);
        let mut held = Vec::new();
        for _ in 0..PAGES_IN_MEMORY {
            held.push(exporter.page_gate.acquire().await.expect("permit"));
        }
        let day = NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date");
        let key = exporter.user_status_key(day);
        let mut export = Box::pin(exporter.export_user_status_day(day, Utc::now()));
        let mut ticks = tokio::time::interval(std::time::Duration::from_millis(2));
        loop {
            tokio::select! {
                biased;
                r = &mut export => panic!("the day finished without waiting for a page permit: {r:?}"),
                _ = ticks.tick() => if exporter.page_gate.waiting() == 1 { break },
            }
        }
        assert!(
            !exporter.sink.partition_exists(&key).await.expect("list"),
            "nothing may be written while the page waits at the gate"
        );
        drop(held);
        let report = export
            .await
            .expect("the day completes once the permit is free");

        assert!(report.rows > 0);
        assert_eq!(report.requests, 1);
        assert!(exporter.sink.partition_exists(&key).await.expect("list"));
        assert_eq!(exporter.page_gate.available(), PAGES_IN_MEMORY);
        exporter.shutdown().await;
    }
}
