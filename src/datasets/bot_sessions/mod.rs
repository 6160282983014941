//! Bot Sessions History (`getSessions`), a windowed-history dataset with one entity per bot:
//! each (bot, local day of `[bot_sessions] timezone`) is its own unit and its own
//! `bot_sessions/account_id=A/bot_id=B/dt=D` partition, one row per session whose start falls
//! in that day. A unit is one request range, the day's exact UTC bounds
//! ([`crate::sources::window::local_day_bounds`]: 23 or 25 hours on a DST change, far under the
//! API's 7-day limit) sent as `dateFrom`/`dateTo` date-times, paged with `skip`/`limit` by
//! [`walk::SessionWalk`], which keeps reading until it holds every session the server lists
//! (pages shift while sessions arrive; see [`walk`]). `containmentType` is not sent: it only
//! filters by kind, and the day is wanted whole. Requests count against the bot's per-bot
//! budget ([`crate::client::ApiClient::for_bot`]), not the account's.
//!
//! [`decode`] owns the wire format and the rows; [`capture`] measures intent_realtime's capture
//! against this dataset's sessions, and the export sets its gauges for the last complete day.

pub mod capture;
pub mod config;
pub mod decode;
pub mod held;
pub mod schema;
pub mod walk;

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::json;
use tracing::warn;

use super::history;
use super::{
    Context, Dataset, DatasetInfo, DayUnit, Demo, DemoQuery, HistoryDataset, HistoryKeys,
    PageDecoder, PartitionLayout, Table, UnitReport,
};
use crate::client::{ApiClient, MemoryGate};
use crate::config::{Config, SectionSpec};
use crate::error::Error;
use crate::metrics::{DatasetMetric, MetricKind};
use crate::sources::extra::UnmappedCounts;
use crate::sources::window::{local_date, local_day_bounds, DayWindow};
use crate::sources::{DecodeError, Reject};
pub use config::BotSessionsConfig;
use decode::{decode_page, decode_page_in, sessions_to_batch, BotSession, SessionsPage};
use held::Held;
use schema::bot_sessions_schema;
use walk::{SessionWalk, WalkPage};

/// Endpoint label used in logs, errors and metrics.
pub const ENDPOINT: &str = "bot_sessions";

/// The `bot_sessions` table.
pub static TABLE: Table = Table {
    name: "bot_sessions",
    schema: bot_sessions_schema,
    layout: PartitionLayout::ACCOUNT_BOT_DAY,
    key: &["session_id"],
    dedupe: None,
};

/// Sessions listed for a (bot, day) request whose `start_time` is outside the day asked for
/// (a server that ignores or misreads the range); each is a reject. Per bot, like every
/// family of [`INFO`]'s `metrics` (registered at zero for each configured bot).
pub static OUTSIDE_RANGE: DatasetMetric = DatasetMetric {
    name: "smartassist_bot_sessions_outside_range_total",
    help: "Bot Sessions listed for a day whose start_time is outside the day asked for (rejected)",
    kind: MetricKind::Counter,
    label: "bot_id",
};

/// Sessions whose `botId` echo differs from the bot the request named (rows keep the bot
/// asked for), per bot.
pub static OTHER_BOT: DatasetMetric = DatasetMetric {
    name: "smartassist_bot_sessions_other_bot_total",
    help: "Bot Sessions whose botId echo differs from the bot the request named",
    kind: MetricKind::Counter,
    label: "bot_id",
};

/// Sessions a walk listed again with content that differs from their first listing (the
/// first is kept, the other rejected; see [`held`]), per bot.
pub static CONFLICTING: DatasetMetric = DatasetMetric {
    name: "smartassist_bot_sessions_conflicting_repeats_total",
    help: "Bot Sessions listed again during one walk with different content (rejected; the first listing is kept)",
    kind: MetricKind::Counter,
    label: "bot_id",
};

/// Registration of the dataset.
pub static INFO: DatasetInfo = DatasetInfo {
    name: "bot_sessions",
    tables: &[&TABLE],
    endpoint: ENDPOINT,
    config: &CONFIG,
    metrics: &[
        &capture::CAPTURE_RATIO,
        &capture::CAPTURE_SESSIONS,
        &capture::CAPTURE_DAY,
        &OUTSIDE_RANGE,
        &OTHER_BOT,
        &CONFLICTING,
    ],
    build,
    decoder: PageDecoder {
        decode: |body, _| decode_page(body).map(|p| p.sessions.len()),
        rows: page_rows,
    },
    demo: Demo {
        // The demo bot named (the suite enables a dataset alone, without intent_realtime's
        // bots), and whole days on one page or two, so the per-bot budget keeps the demo short.
        section: Some("enabled = true\nbot_ids = [\"st-demo-bot\"]\npage_size = 1000"),
        queries: &[
            DemoQuery {
                about: "Containment per bot and day (share of sessions by containment type)",
                sql: "SELECT bot_id, dt, containment_type, count(*) AS sessions,\n\
                      round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY bot_id, dt), 1) AS pct\n\
                      FROM read_parquet('{out}/bot_sessions/*/*/*/*.parquet', hive_partitioning = true)\n\
                      GROUP BY bot_id, dt, containment_type ORDER BY bot_id, dt, sessions DESC",
            },
            DemoQuery {
                about: "Realtime capture per bot and day: completed sessions intent_realtime holds",
                sql: "WITH s AS (SELECT bot_id, dt, session_id FROM read_parquet('{out}/bot_sessions/*/*/*/*.parquet', hive_partitioning = true) WHERE end_time IS NOT NULL),\n\
                      i AS (SELECT DISTINCT bot_id, session_id FROM read_parquet('{out}/intent_realtime/*/*/*/*.parquet', hive_partitioning = true, union_by_name = true))\n\
                      SELECT s.bot_id, s.dt, count(*) AS sessions, count(i.session_id) AS captured,\n\
                      round(count(i.session_id) / count(*), 3) AS ratio\n\
                      FROM s LEFT JOIN i USING (bot_id, session_id) GROUP BY ALL ORDER BY ALL",
            },
        ],
    },
};

static CONFIG: SectionSpec = SectionSpec::of::<BotSessionsConfig>();

/// [`PageDecoder::rows`]: a page's sessions that start in the window's claim.
fn page_rows(
    body: &[u8],
    window: &DayWindow,
    out: &mut dyn FnMut(&'static Table, arrow::record_batch::RecordBatch),
) -> Result<usize, DecodeError> {
    let page = decode_page(body)?;
    let kept: Vec<BotSession> = page
        .sessions
        .into_iter()
        .filter_map(Result::ok)
        .filter(|s| window.claim.contains(&s.start_time))
        .collect();
    let n = kept.len();
    out(
        &TABLE,
        sessions_to_batch(
            super::PAGE_DECODER_ACCOUNT,
            "bench-bot",
            &kept,
            super::page_decoder_exported_at(),
        ),
    );
    Ok(n)
}

fn build(config: &Config) -> Option<Dataset> {
    let cfg = config.section::<BotSessionsConfig>()?;
    let bots = cfg.bots(config);
    cfg.keys
        .enabled
        .then(|| Dataset::History(Arc::new(BotSessions::new(cfg.clone(), bots))))
}

/// The configured Bot Sessions History export.
pub struct BotSessions {
    cfg: BotSessionsConfig,
    bots: Vec<String>,
}

/// The body of one page request: the range as UTC date-times with milliseconds, `skip` and
/// `limit` (no `containmentType`: see the module docs).
pub fn request_body(range: &Range<DateTime<Utc>>, skip: usize, limit: u32) -> serde_json::Value {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    json!({
        "dateFrom": at(range.start),
        "dateTo": at(range.end),
        "skip": skip,
        "limit": limit,
    })
}

impl BotSessions {
    pub fn new(cfg: BotSessionsConfig, bots: Vec<String>) -> BotSessions {
        BotSessions { cfg, bots }
    }

    /// The unit's export, then (whatever its outcome) the bot's capture gauges.
    async fn export(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let report = self.export_unit(cx, unit, exported_at).await;
        self.measure_capture(cx, unit, exported_at).await;
        report
    }

    async fn export_unit(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let mut day = history::DayExport::begin(cx, &INFO, unit).await?;
        let fetched = self.fetch_day(cx, unit, exported_at, &mut day).await;
        day.finish(fetched, exported_at).await
    }

    /// The capture gauges of the unit's bot for the last complete day ("yesterday" of the
    /// export's clock, `exported_at`, as the planned days are), read from the lake after an
    /// attempt at that day: set when both datasets hold the day (the ratio only when it has
    /// completed sessions), removed when either lacks it or its files cannot be read. The
    /// export of another day removes gauges that still hold a day before yesterday: that
    /// value is stale, and the last complete day is not measured yet.
    async fn measure_capture(&self, cx: &Context, unit: &DayUnit, exported_at: DateTime<Utc>) {
        let tz = self.cfg.keys.timezone;
        let Some(yesterday) = local_date(tz, exported_at).checked_sub_days(Days::new(1)) else {
            return;
        };
        let Some(bot) = unit.entity.as_deref() else {
            return;
        };
        let yesterday_start = local_day_bounds(tz, yesterday).start.timestamp() as f64;
        if unit.day != yesterday {
            // The day gauge says which day the others hold (it outlives this dataset's
            // instance, as the daemon's metrics do).
            let held = cx.metrics.dataset_gauge_value(&capture::CAPTURE_DAY, bot);
            if held.is_some_and(|start| start < yesterday_start) {
                forget_capture(cx, bot);
            }
            return;
        }
        match capture::measure(&cx.sink, &cx.account_id, bot, unit.day).await {
            Ok(Some(c)) => {
                let gauge = |m| cx.metrics.dataset_gauge(m, bot);
                match c.ratio() {
                    Some(r) => gauge(&capture::CAPTURE_RATIO).set(r),
                    None => {
                        cx.metrics
                            .remove_dataset_series(&capture::CAPTURE_RATIO, bot);
                    }
                }
                gauge(&capture::CAPTURE_SESSIONS).set(c.sessions as f64);
                gauge(&capture::CAPTURE_DAY).set(yesterday_start);
            }
            Ok(None) => forget_capture(cx, bot),
            Err(e) => {
                forget_capture(cx, bot);
                warn!(bot, day = %unit.day, error = %crate::error_chain::error_chain(&e), "Cannot measure the realtime capture.")
            }
        }
    }

    /// One page: the request the export and `check` both send, for the range `asked` (the
    /// walk's pinned range, within the day); sessions are placed against the `day` (one that
    /// starts outside it is a reject, see [`decode_page_in`]).
    async fn fetch_page(
        &self,
        client: &ApiClient,
        gate: Option<&MemoryGate>,
        bot: &str,
        (asked, day): (&Range<DateTime<Utc>>, &Range<DateTime<Utc>>),
        skip: usize,
        limit: u32,
    ) -> Result<(SessionsPage, Option<tokio::sync::OwnedSemaphorePermit>), Error> {
        let body = request_body(asked, skip, limit);
        Ok(client
            .post_json_gated(ENDPOINT, &self.cfg.path_of(bot), &[], &body, gate, |b| {
                decode_page_in(b, Some(day))
            })
            .await?)
    }

    /// Walks the unit's sessions (see [`walk`]), streaming each page's new sessions of the day
    /// into `day`; each session and each broken record is kept once however often it is listed
    /// (see [`held`]).
    async fn fetch_day(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
        day: &mut history::DayExport<'_>,
    ) -> Result<history::FetchedDay, Error> {
        let bot = unit.entity.as_deref().ok_or(Error::Usage(
            "bot_sessions exports the day of a bot; no bot was given".into(),
        ))?;
        let client = cx.client.for_bot(bot);
        let range = local_day_bounds(self.cfg.keys.timezone, unit.day);
        let mut held = Held::default();
        let mut rejects: Vec<Reject> = Vec::new();
        let mut unmapped = UnmappedCounts::default();
        let mut walk = SessionWalk::new();
        let walk_span = tracing::warn_span!("getSessions walk", bot, day = %unit.day);
        let mut tally = Tally::default();
        while let Some(skip) = walk.next_skip() {
            let asked = range.start..walk.range_end(range.end);
            let (page, permit) = self
                .fetch_page(
                    &client,
                    Some(cx.page_gate.as_ref()),
                    bot,
                    (&asked, &range),
                    skip,
                    self.cfg.page_size,
                )
                .await?;
            let (records, more, total) = (page.sessions.len(), page.more_available, page.total);
            let sorted = held.sort(page, walk.passes() - 1, &range);
            for s in &sorted.kept {
                tally.active |= s.is_active();
                tally.other_bot += u64::from(s.bot_id.as_deref().is_some_and(|b| b != bot));
                unmapped.add(&s.unmapped);
            }
            tally.outside += sorted.outside as u64;
            tally.conflicting += sorted.conflicting as u64;
            rejects.extend(sorted.rejects);
            if !sorted.kept.is_empty() {
                let batch = sessions_to_batch(&cx.account_id, bot, &sorted.kept, exported_at);
                day.write_page(&TABLE, batch, permit).await?;
            }
            // The walk's own warnings name the bot and the day through this span.
            walk_span.in_scope(|| {
                walk.record(WalkPage {
                    records,
                    new: sorted.new,
                    earlier: sorted.earlier,
                    held: held.len(),
                    more,
                    total,
                    newest: sorted.newest,
                })
            });
        }
        report_anomalies(cx, bot, unit.day, &tally, &walk, held.len());
        unmapped.forget(decode::DOCUMENTED_EXTRA);
        Ok(history::FetchedDay {
            last: Vec::new(),
            rejects,
            requests: walk.pages(),
            unmapped,
            // Provisional: an active session will still change (it ends, its counts grow),
            // and a walk that gave up may miss sessions; the next run exports the day again.
            open: tally.active || walk.gave_up,
        })
    }

    /// Probes every configured bot (one deleted or misspelt bot id must show in `check`, not
    /// only in the next export); fails naming every bot whose probe failed.
    async fn probe_today(&self, cx: &Context, today: NaiveDate) -> Result<String, Error> {
        if self.bots.is_empty() {
            return Ok("no bot configured".into());
        }
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for bot in &self.bots {
            match self.probe_bot(cx, bot, today).await {
                Ok(line) => ok.push(line),
                Err(e) => failed.push(format!(
                    "bot {bot}: {}",
                    crate::error_chain::error_chain(&e)
                )),
            }
        }
        match (failed.is_empty(), ok.is_empty()) {
            (true, _) => Ok(ok.join("; ")),
            (false, true) => Err(Error::Unhealthy(failed.join("; "))),
            // The bots that answered are named too: one failing bot is not a failing API.
            (false, false) => Err(Error::Unhealthy(format!(
                "{}; OK: {}",
                failed.join("; "),
                ok.join("; ")
            ))),
        }
    }

    async fn probe_bot(&self, cx: &Context, bot: &str, today: NaiveDate) -> Result<String, Error> {
        let range = local_day_bounds(self.cfg.keys.timezone, today);
        let client = cx.client.for_bot(bot);
        let (page, _) = self
            .fetch_page(&client, None, bot, (&range, &range), 0, 1)
            .await?;
        let total = page
            .total
            .map_or_else(|| "no total".to_string(), |t| format!("total = {t}"));
        Ok(format!(
            "bot {bot}: {} session(s) on a 1-session page of today, {total}, moreAvailable = {}",
            page.sessions.len(),
            page.more_available
        ))
    }
}

/// Removes the bot's capture gauges: its last complete day is not measured.
fn forget_capture(cx: &Context, bot: &str) {
    for m in capture::GAUGES {
        cx.metrics.remove_dataset_series(m, bot);
    }
}

/// What a day's walk counted, for its warnings and counters.
#[derive(Debug, Default)]
struct Tally {
    /// A session still active was kept.
    active: bool,
    /// Sessions starting outside the day (rejected).
    outside: u64,
    /// Sessions echoing another bot.
    other_bot: u64,
    /// Sessions listed again with different content (rejected).
    conflicting: u64,
}

/// The day's walk's warnings and counters: sessions outside the day, sessions echoing another
/// bot, sessions listed again with different content, a walk that gave up.
fn report_anomalies(
    cx: &Context,
    bot: &str,
    day: NaiveDate,
    tally: &Tally,
    walk: &SessionWalk,
    held: usize,
) {
    let Tally {
        outside,
        other_bot,
        conflicting,
        ..
    } = *tally;
    if conflicting > 0 {
        cx.metrics
            .dataset_counter(&CONFLICTING, bot)
            .inc_by(conflicting);
        warn!(
            bot,
            %day,
            sessions = conflicting,
            "getSessions listed sessions again with different content during the walk; the first listing is kept, the others rejected (the next export of the day lists them afresh)."
        );
    }
    if outside > 0 {
        cx.metrics
            .dataset_counter(&OUTSIDE_RANGE, bot)
            .inc_by(outside);
        warn!(
            bot,
            %day,
            sessions = outside,
            "getSessions listed sessions that start outside the requested day; rejected (the server ignores or misreads the range)."
        );
    }
    if other_bot > 0 {
        cx.metrics
            .dataset_counter(&OTHER_BOT, bot)
            .inc_by(other_bot);
        warn!(
            bot,
            %day,
            sessions = other_bot,
            "getSessions echoed another botId than the bot asked for; the rows keep the bot asked for."
        );
    }
    if walk.gave_up {
        warn!(
            bot,
            %day,
            passes = walk.passes(),
            sessions = held,
            "getSessions kept listing pages; exporting what was listed (the next run reads the day again)."
        );
    }
}

impl HistoryDataset for BotSessions {
    fn info(&self) -> &'static DatasetInfo {
        &INFO
    }

    fn schedule(&self) -> &HistoryKeys {
        &self.cfg.keys
    }

    fn entities(&self) -> &[String] {
        &self.bots
    }

    fn uses_bot_budgets(&self) -> bool {
        true
    }

    fn export_day<'a>(
        &'a self,
        cx: &'a Context,
        unit: &'a DayUnit,
        exported_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>> {
        self.export(cx, unit, exported_at).boxed()
    }

    fn probe<'a>(
        &'a self,
        cx: &'a Context,
        today: NaiveDate,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.probe_today(cx, today).boxed()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod capture_tests;

#[cfg(test)]
mod capture_gauge_tests;
