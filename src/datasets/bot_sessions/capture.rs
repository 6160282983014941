//! Realtime capture, measured: for one bot and local day that both `bot_sessions` and
//! `intent_realtime` hold in the lake, the share of the day's completed sessions (bot_sessions'
//! rows with an `end_time`: IntentRealtimeData lists only completed sessions, so a session
//! still active when its day was exported is neither counted nor missed until a later export
//! finds it ended) whose id `intent_realtime` also holds, and the ids it misses. Read from the Parquet partitions alone
//! (bot_sessions `dt` = local date of the start; intent_realtime `dt` = local date of the end,
//! so its partitions of the day and the next are read), so `reconcile`, `status` and the
//! metric all say the same. Both datasets must cut days in the same `timezone` for a day to
//! mean the same hours; a day is covered when both have a partition for it.
//!
//! [`measure`] is the function to call for one bot and day (`reconcile`); [`section`] measures
//! the days a status report's coverage says both datasets hold (`status`, the status page),
//! reading each partition once and only its `session_id` (and `end_time`) columns. Both reach
//! the core through [`RECONCILIATION`], registered in [`crate::datasets::RECONCILIATIONS`].
//! [`CAPTURE_RATIO`], [`CAPTURE_SESSIONS`] and [`CAPTURE_DAY`] are the gauges the export sets
//! for the last complete day (series only while it is measured).

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{Days, NaiveDate};

use futures::FutureExt;

use super::{BotSessionsConfig, INFO, TABLE};
use crate::config::Config;
use crate::coverage::capture::{CaptureCache, CaptureDay, CaptureSection, Fingerprint};
use crate::coverage::status::{DatasetStatus, Provisional, StatusReport, UnitState, UnitStatus};
use crate::datasets::intent_realtime;
use crate::datasets::reconcile::{ReconcileRequest, Reconciliation};
use crate::error::Error;
use crate::error_chain::error_chain;
use crate::metrics::{DatasetMetric, MetricKind};
use crate::sink::{PartitionKey, Sink};
use crate::sources::window::local_date;

/// Share of the last complete day's completed sessions that intent_realtime captured. Like
/// the two below, a series exists only while its bot's last complete day is measured
/// ([`MetricKind::MeasuredGauge`]); a day without completed sessions has no ratio.
pub static CAPTURE_RATIO: DatasetMetric = DatasetMetric {
    name: "smartassist_intent_capture_ratio",
    help: "Share of the last complete day's completed bot sessions (getSessions) that intent_realtime captured; no series while that day is not measured (either dataset lacks it) or has no completed session",
    kind: MetricKind::MeasuredGauge,
    label: "bot_id",
};

/// Completed sessions the capture ratio of the last complete day was measured over.
pub static CAPTURE_SESSIONS: DatasetMetric = DatasetMetric {
    name: "smartassist_intent_capture_sessions",
    help: "Completed bot sessions of the last complete day the capture ratio was measured over; no series while that day is not measured",
    kind: MetricKind::MeasuredGauge,
    label: "bot_id",
};

/// The local day the capture gauges were measured over.
pub static CAPTURE_DAY: DatasetMetric = DatasetMetric {
    name: "smartassist_intent_capture_day_timestamp_seconds",
    help: "Start (Unix seconds) of the local day the capture gauges of the bot were measured over (the last complete day); no series while that day is not measured",
    kind: MetricKind::MeasuredGauge,
    label: "bot_id",
};

/// The capture gauges of a bot.
pub(super) const GAUGES: [&DatasetMetric; 3] = [&CAPTURE_RATIO, &CAPTURE_SESSIONS, &CAPTURE_DAY];

/// The reconciliation this dataset registers ([`crate::datasets::RECONCILIATIONS`]).
pub static RECONCILIATION: Reconciliation = Reconciliation {
    dataset: "bot_sessions",
    section: |r| section(r.sink, r.report, r.last_days, r.command, r.cache).boxed(),
    command: |config, sink, req| reconcile(config, sink, req).boxed(),
};

/// The capture of one bot and day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub bot_id: String,
    pub day: NaiveDate,
    /// Completed sessions bot_sessions holds for the day.
    pub sessions: usize,
    /// Of those, the ones intent_realtime holds.
    pub captured: usize,
    /// The ones it does not hold, sorted.
    pub missed: Vec<String>,
}

impl Capture {
    /// `captured / sessions`; `None` for a day without completed sessions.
    pub fn ratio(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.captured as f64 / self.sessions as f64)
    }
}

/// The capture of `bot_id` on local `day` from the lake, or `None` when either dataset has no
/// partition for that bot and day.
pub async fn measure(
    sink: &Sink,
    account_id: &str,
    bot_id: &str,
    day: NaiveDate,
) -> Result<Option<Capture>, Error> {
    let lake = Lake {
        sink,
        account_id,
        bot_id,
    };
    let sessions_key = lake.key(&TABLE, day);
    let intent_key = lake.key(&intent_realtime::TABLE, day);
    if sink.list_partition_files(&sessions_key).await?.is_empty()
        || sink.list_partition_files(&intent_key).await?.is_empty()
    {
        return Ok(None);
    }
    let mut held = BTreeMap::new();
    lake.capture(day, &mut held).await.map(Some)
}

/// The datasets (`bot_sessions`, `intent_realtime`) that hold no partition of `bot_id` on
/// `day`: why [`measure`] found nothing to measure.
pub async fn missing(
    sink: &Sink,
    account_id: &str,
    bot_id: &str,
    day: NaiveDate,
) -> Result<Vec<&'static str>, Error> {
    let lake = Lake {
        sink,
        account_id,
        bot_id,
    };
    let mut out = Vec::new();
    for (name, table) in [
        ("bot_sessions", &TABLE),
        ("intent_realtime", &intent_realtime::TABLE),
    ] {
        if sink
            .list_partition_files(&lake.key(table, day))
            .await?
            .is_empty()
        {
            out.push(name);
        }
    }
    Ok(out)
}

/// `reconcile`: [`measure`] for every bot and day asked; a header line, then one line per bot
/// and day (`-` and why for a day either dataset does not hold).
async fn reconcile(
    config: &Config,
    sink: &Sink,
    req: &ReconcileRequest,
) -> Result<Vec<String>, Error> {
    let section = config
        .section::<BotSessionsConfig>()
        .ok_or_else(|| Error::Usage("the bot_sessions section is not loaded".into()))?;
    let configured = section.bots(config);
    if let Some(unknown) = req.entities.iter().find(|b| !configured.contains(b)) {
        return Err(Error::Usage(format!(
            "--bot {unknown} is not among the configured bots (bot_sessions.bot_ids, else intent_realtime.bot_ids): {configured:?}"
        )));
    }
    let bots = if req.entities.is_empty() {
        configured
    } else {
        req.entities.clone()
    };
    if bots.is_empty() {
        return Err(Error::Usage(
            "no bot: set bot_sessions.bot_ids or intent_realtime.bot_ids, or pass --bot".into(),
        ));
    }
    let yesterday = local_date(section.keys.timezone, chrono::Utc::now())
        .checked_sub_days(Days::new(1))
        .unwrap_or_default();
    let from = req.from.unwrap_or(yesterday);
    let to = req.to.unwrap_or(from);
    if to < from {
        return Err(Error::Usage(format!("--to {to} is before --from {from}")));
    }
    let account = &config.api.account_id;
    let mut out = vec!["bot\tday\tsessions\tcaptured\tratio\tmissed".to_string()];
    for bot in &bots {
        for day in from.iter_days().take_while(|d| *d <= to) {
            out.push(match measure(sink, account, bot, day).await? {
                None => {
                    let missing = missing(sink, account, bot, day).await?;
                    // Empty only when a writer added the partition since `measure` looked.
                    let why = if missing.is_empty() {
                        "not covered when measured".to_string()
                    } else {
                        format!("not covered: no {} partition", missing.join(" and no "))
                    };
                    format!("{bot}\t{day}\t-\t-\t-\t{why}")
                }
                Some(c) => format!(
                    "{bot}\t{day}\t{}\t{}\t{}\t{}",
                    c.sessions,
                    c.captured,
                    c.ratio().map_or("-".to_string(), |r| format!("{r:.4}")),
                    c.missed.join(",")
                ),
            });
        }
    }
    Ok(out)
}

/// One bot's partitions of both datasets.
struct Lake<'a> {
    sink: &'a Sink,
    account_id: &'a str,
    bot_id: &'a str,
}

impl Lake<'_> {
    fn key(&self, table: &'static crate::schema::Table, dt: NaiveDate) -> PartitionKey {
        PartitionKey {
            table,
            account_id: self.account_id.to_string(),
            bot_id: Some(self.bot_id.to_string()),
            dt,
        }
    }

    /// `columns` of every file of the partition of `table` and `dt` (none when it does not
    /// exist).
    async fn read(
        &self,
        table: &'static crate::schema::Table,
        dt: NaiveDate,
        columns: &[&str],
    ) -> Result<Vec<RecordBatch>, Error> {
        let key = self.key(table, dt);
        let mut out = Vec::new();
        for name in self.sink.partition_file_names(&key).await? {
            // A file merged away since the listing holds nothing the merged one lacks.
            if let Some(b) = self
                .sink
                .read_partition_file(&key, &name, Some(columns))
                .await?
            {
                out.extend(b);
            }
        }
        Ok(out)
    }

    /// The capture of `day`; `held` keeps the intent_realtime ids read per `dt`, so the
    /// partition a day shares with the next is read once.
    async fn capture(
        &self,
        day: NaiveDate,
        held: &mut BTreeMap<NaiveDate, BTreeSet<String>>,
    ) -> Result<Capture, Error> {
        let completed = completed_ids(&self.read(&TABLE, day, &["session_id", "end_time"]).await?);
        let mut missed: BTreeSet<String> = completed.clone();
        for dt in [Some(day), day.checked_add_days(Days::new(1))]
            .into_iter()
            .flatten()
        {
            let ids = match held.entry(dt) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let batches = self
                        .read(&intent_realtime::TABLE, dt, &["session_id"])
                        .await?;
                    e.insert(ids(&batches))
                }
            };
            missed.retain(|id| !ids.contains(id));
        }
        Ok(Capture {
            bot_id: self.bot_id.to_string(),
            day,
            sessions: completed.len(),
            captured: completed.len() - missed.len(),
            missed: missed.into_iter().collect(),
        })
    }
}

/// The capture of every bot and day of `report` that both `bot_sessions` and
/// `intent_realtime` hold (a unit neither MISSING nor FAILED in each; with `last_days`, only
/// the last that many days of the range); `None` unless the report has both datasets.
/// `command` names the program in the `reconcile` pointers. With a `cache`, a bot's day whose
/// units have not changed since it was measured is not read again. A bot whose files cannot
/// be read is a problem of the section.
pub async fn section(
    sink: &Sink,
    report: &StatusReport,
    last_days: Option<u64>,
    command: &str,
    cache: Option<&CaptureCache>,
) -> Option<CaptureSection> {
    let find = |name: &str| report.datasets.iter().find(|d| d.dataset == name);
    let history = find(INFO.name)?;
    let realtime = find(intent_realtime::INFO.name)?;
    let mut out = CaptureSection {
        history: history.dataset.clone(),
        realtime: realtime.dataset.clone(),
        timezone: history.timezone.clone(),
        ..CaptureSection::default()
    };
    if history.timezone != realtime.timezone {
        out.problems.push(format!(
            "{} cuts days in {} and {} in {}: give both the same `timezone` to measure the capture",
            history.dataset, history.timezone, realtime.dataset, realtime.timezone
        ));
        return Some(out);
    }
    let Some(days) = shared_days(history, realtime, last_days) else {
        return Some(out);
    };
    (out.from, out.to) = (Some(days.0), Some(days.1));
    let units = HeldUnits {
        history: held_units(history),
        realtime: held_units(realtime),
    };
    let bots: BTreeSet<&str> = units.history.keys().map(|(b, _)| *b).collect();
    let mut kept = BTreeMap::new();
    for bot in bots {
        let lake = Lake {
            sink,
            account_id: &report.account_id,
            bot_id: bot,
        };
        let measured = Measured {
            out: &mut out,
            kept: &mut kept,
        };
        measure_bot(&lake, &units, days, (command, cache), measured).await;
    }
    if let Some(c) = cache {
        c.replace(kept);
    }
    Some(out)
}

/// The days of both reports' ranges (with `last_days`, only the last that many); `None` when
/// they share none.
fn shared_days(
    history: &DatasetStatus,
    realtime: &DatasetStatus,
    last_days: Option<u64>,
) -> Option<(NaiveDate, NaiveDate)> {
    let to = history.to.min(realtime.to);
    let mut from = history.from.max(realtime.from);
    if let Some(first) = last_days.and_then(|n| to.checked_sub_days(Days::new(n.max(1) - 1))) {
        from = from.max(first);
    }
    (from <= to).then_some((from, to))
}

/// The units each dataset holds data for, by bot and day (see [`held_units`]).
struct HeldUnits<'a> {
    history: BTreeMap<(&'a str, NaiveDate), &'a UnitStatus>,
    realtime: BTreeMap<(&'a str, NaiveDate), &'a UnitStatus>,
}

/// Where a section's measurements go: its days and problems, and the days the cache keeps.
struct Measured<'a> {
    out: &'a mut CaptureSection,
    kept: &'a mut BTreeMap<(String, NaiveDate), (Fingerprint, CaptureDay)>,
}

/// Measures the days of `from..=to` that both datasets hold for the lake's bot (a day whose
/// units are unchanged since the `cache` measured it is taken from there); the bot's first day
/// whose partitions cannot be read ends its measuring, a problem of the section.
async fn measure_bot(
    lake: &Lake<'_>,
    units: &HeldUnits<'_>,
    (from, to): (NaiveDate, NaiveDate),
    (command, cache): (&str, Option<&CaptureCache>),
    m: Measured<'_>,
) {
    let bot = lake.bot_id;
    let mut held = BTreeMap::new();
    for day in from.iter_days().take_while(|d| *d <= to) {
        let (Some(h), Some(r)) = (
            units.history.get(&(bot, day)),
            units.realtime.get(&(bot, day)),
        ) else {
            continue;
        };
        let next = day
            .succ_opt()
            .and_then(|n| units.realtime.get(&(bot, n)).copied());
        let print = Fingerprint::of([Some(*h), Some(*r), next]);
        let key = (bot.to_string(), day);
        if let Some(c) = cache.and_then(|c| c.get(&key, &print)) {
            m.out.days.push(c.clone());
            m.kept.insert(key, (print, c));
            continue;
        }
        let provisional = r.status == UnitState::Provisional
            || !matches!(h.provisional, None | Some(Provisional::Lookback));
        match lake.capture(day, &mut held).await {
            Ok(c) => {
                let d = CaptureDay::new(
                    bot,
                    day,
                    (c.sessions, c.captured),
                    &c.missed,
                    provisional,
                    command,
                );
                m.kept.insert(key, (print, d.clone()));
                m.out.days.push(d);
            }
            Err(e) => {
                m.out.problems.push(format!(
                    "{bot} {day}: cannot read the partitions: {}",
                    error_chain(&e)
                ));
                break;
            }
        }
    }
}

/// The units of `d` that hold data (neither MISSING nor FAILED), by bot and day.
fn held_units(d: &DatasetStatus) -> BTreeMap<(&str, NaiveDate), &UnitStatus> {
    d.units
        .iter()
        .filter(|u| !u.status.is_hole())
        .filter_map(|u| Some(((u.entity.as_deref()?, u.day), u)))
        .collect()
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch.column_by_name(name)?.as_any().downcast_ref()
}

/// Every `session_id` of the batches.
fn ids(batches: &[RecordBatch]) -> BTreeSet<String> {
    batches
        .iter()
        .filter_map(|b| string_column(b, "session_id"))
        .flat_map(|a| a.iter().flatten().map(str::to_string))
        .collect()
}

/// The `session_id` of every row with an `end_time`.
fn completed_ids(batches: &[RecordBatch]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for b in batches {
        let (Some(idc), Some(end)) = (
            string_column(b, "session_id"),
            b.column_by_name("end_time")
                .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>()),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            if idc.is_valid(i) && end.is_valid(i) {
                out.insert(idc.value(i).to_string());
            }
        }
    }
    out
}
