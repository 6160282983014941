//! Per-entity history units through the generic pipeline and backfill: a history dataset whose
//! units are (bot, day) exports one partition per bot and day, a scheduled run advances the
//! watermark of each bot over that bot's exported days, and a backfill plans, retries and
//! reports units by entity. Each entity has its own watermark (migrated from the dataset-level
//! one), and entities run at the same time. The dataset here is a test dataset written against
//! the public trait, counting the units it is asked for; the output is read back from disk.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::{
    history, Context, DatasetInfo, DayUnit, Demo, HistoryDataset, HistoryKeys, PageDecoder,
    PartitionLayout, Table, UnitReport,
};
use crate::app::App;
use crate::backfill::{backfill, BackfillRequest};
use crate::config::{DatasetSection, Problems, SectionContext, SectionSpec};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::pipeline::{run_history, Outcome};
use crate::state::{self, Watermark};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("bot_id", DataType::Utf8, false),
        Field::new("unit", DataType::Utf8, false),
    ]))
}

static TABLE: Table = Table {
    name: "per_bot",
    schema,
    layout: PartitionLayout::ACCOUNT_BOT_DAY,
    key: &["unit"],
    dedupe: None,
};

/// A section type only so that the test dataset's `DatasetInfo` is complete.
#[derive(Debug)]
struct PerBotSection;

impl DatasetSection for PerBotSection {
    const NAME: &'static str = "per_bot";
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[];
    type Raw = ();
    fn validate(_: &(), _: &SectionContext<'_>, _: &mut Problems) -> Self {
        PerBotSection
    }
}

static SECTION: SectionSpec = SectionSpec::of::<PerBotSection>();

static INFO: DatasetInfo = DatasetInfo {
    name: "per_bot",
    tables: &[&TABLE],
    endpoint: "per_bot",
    config: &SECTION,
    metrics: &[],
    build: |_| None,
    decoder: PageDecoder {
        decode: |_, _| Ok(0),
        rows: |_, _, _| Ok(0),
    },
    demo: Demo {
        section: None,
        queries: &[],
    },
};

/// Writes one row per unit; fails the units listed in `failing` (until they are removed) and
/// every unit of the bots in `gone`. Records every unit it is asked for, in order; with a
/// `meeting`, each bot's first unit waits there until as many bots have arrived as it counts.
struct PerBot {
    keys: HistoryKeys,
    bots: Vec<String>,
    failing: Mutex<BTreeSet<DayUnit>>,
    gone: BTreeSet<String>,
    calls: Mutex<Vec<DayUnit>>,
    meeting: Option<tokio::sync::Barrier>,
}

impl PerBot {
    async fn export(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let first_of_bot = {
            let mut calls = self.calls.lock().expect("lock");
            let first = !calls.iter().any(|c| c.entity == unit.entity);
            calls.push(unit.clone());
            first
        };
        if let (Some(meeting), true) = (&self.meeting, first_of_bot) {
            meeting.wait().await;
        }
        let day = history::DayExport::begin(cx, &INFO, unit).await?;
        let gone = unit.entity.as_ref().is_some_and(|e| self.gone.contains(e));
        let fetched = if gone || self.failing.lock().expect("lock").contains(unit) {
            Err(Error::Usage(format!("{unit} fails on purpose")))
        } else {
            let bot = unit.entity.clone().unwrap_or_default();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(vec![cx.account_id.clone()])),
                Arc::new(StringArray::from(vec![bot])),
                Arc::new(StringArray::from(vec![unit.to_string()])),
            ];
            let batch = RecordBatch::try_new(schema(), columns).expect("batch");
            Ok(history::FetchedDay {
                last: vec![(&TABLE, batch)],
                rejects: Vec::new(),
                requests: 1,
                open: false,
                unmapped: Default::default(),
            })
        };
        day.finish(fetched, exported_at).await
    }
}

impl HistoryDataset for PerBot {
    fn info(&self) -> &'static DatasetInfo {
        &INFO
    }
    fn schedule(&self) -> &HistoryKeys {
        &self.keys
    }
    fn entities(&self) -> &[String] {
        &self.bots
    }
    fn export_day<'a>(
        &'a self,
        cx: &'a Context,
        unit: &'a DayUnit,
        exported_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<UnitReport, Error>> {
        self.export(cx, unit, exported_at).boxed()
    }
    fn probe<'a>(&'a self, _: &'a Context, _: NaiveDate) -> BoxFuture<'a, Result<String, Error>> {
        async { Ok("per_bot".to_string()) }.boxed()
    }
}

fn day(s: &str) -> NaiveDate {
    s.parse().expect("day")
}

fn unit(d: &str, bot: &str) -> DayUnit {
    DayUnit {
        day: day(d),
        entity: Some(bot.to_string()),
    }
}

async fn app(out: &Path) -> App {
    let text = format!(
        "[api]\nbase_url = \"simulator\"\naccount_id = \"acct\"\niid = \"st-1\"\n\
         client_id = \"cs-1\"\nrequests_per_minute = 100000\n\
         [output]\nurl = {:?}\n[user_status]\nenabled = false\n",
        out.display().to_string()
    );
    let config = super::config_from_toml(&text, Path::new("t.toml"), None).expect("config");
    App::start(config, CancellationToken::new(), Metrics::new())
        .await
        .expect("app")
}

fn dataset(failing: &[DayUnit]) -> PerBot {
    let mut p = Problems::default();
    let cx = SectionContext {
        account_id: "acct",
        iid: "st-stream",
        timezone: chrono_tz::UTC,
    };
    let keys = crate::config::history::validate(
        crate::config::RawHistoryKeys {
            section: "per_bot",
            enabled: Some(true),
            schedule: &None,
            timezone: None,
            schedule_timezone: None,
            lookback_days: Some(2),
            max_days_per_run: Some(7),
        },
        crate::config::history::HistoryDefaults {
            enabled: true,
            schedule: "0 0 * * * *",
        },
        &cx,
        &mut p,
    );
    assert!(p.0.is_empty(), "{:?}", p.0);
    PerBot {
        keys,
        bots: vec!["b1".into(), "b2".into()],
        failing: Mutex::new(failing.iter().cloned().collect()),
        gone: BTreeSet::new(),
        calls: Mutex::new(Vec::new()),
        meeting: None,
    }
}

/// The days of `bot`'s units the dataset was asked for, in order.
fn days_asked(ds: &PerBot, bot: &str) -> Vec<String> {
    let calls = ds.calls.lock().expect("lock");
    calls
        .iter()
        .filter(|u| u.entity.as_deref() == Some(bot))
        .map(|u| u.day.to_string())
        .collect()
}

/// `from..=to` as day strings.
fn span(from: &str, to: &str) -> Vec<String> {
    day(from)
        .iter_days()
        .take_while(|d| *d <= day(to))
        .map(|d| d.to_string())
        .collect()
}

async fn entity_mark(app: &App, bot: &str) -> Option<NaiveDate> {
    let name = state::entity_watermark_name("per_bot", "acct", "bot", bot);
    let mark: Option<Watermark> = state::load(&app.cx.state, &name).await.expect("load");
    mark.map(|m| m.through_day)
}

/// Stores the dataset-level watermark a build before per-entity watermarks wrote.
async fn store_dataset_mark(app: &App, through: &str) {
    let mark = Watermark {
        through_day: day(through),
        covered_until: format!("{through}T23:59:59Z").parse().expect("ts"),
        updated_at: format!("{through}T23:59:59Z").parse().expect("ts"),
    };
    let name = state::watermark_name("per_bot", "acct");
    let stored = state::store_if(&app.cx.state, &name, &mark, None).await;
    assert!(stored.expect("store").is_ok());
}

/// The `(bot, dt)` partitions holding a file under `out`.
fn partitions(out: &Path) -> BTreeSet<(String, String)> {
    let root = out.join("per_bot/account_id=acct");
    let mut found = BTreeSet::new();
    for bot in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for dt in std::fs::read_dir(bot.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if dt.path().join("part-00000.parquet").exists() {
                found.insert((
                    bot.file_name().to_string_lossy().into_owned(),
                    dt.file_name().to_string_lossy().into_owned(),
                ));
            }
        }
    }
    found
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(b, d)| (format!("bot_id={b}"), format!("dt={d}")))
        .collect()
}

#[tokio::test]
async fn each_entity_advances_its_own_watermark_over_its_own_exported_days() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let now: DateTime<Utc> = "2024-05-03T12:00:00Z".parse().expect("now");
    // b2's second day fails: every other unit is written all the same (one entity does not
    // hold back the others); b1's watermark reaches today, b2's stops before its failed day.
    let ds = dataset(&[unit("2024-05-02", "b2")]);
    let run = run_history(&ds, &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(run.outcome, Outcome::Partial, "{run:?}");
    let error = run.error.clone().unwrap_or_default();
    assert!(
        error.contains("b2") && error.contains("2024-05-02"),
        "{error}"
    );
    assert_eq!(
        partitions(dir.path()),
        pairs(&[
            ("b1", "2024-05-01"),
            ("b2", "2024-05-01"),
            ("b1", "2024-05-02"),
            ("b1", "2024-05-03"),
            ("b2", "2024-05-03")
        ])
    );
    assert_eq!(entity_mark(&app, "b1").await, Some(day("2024-05-03")));
    assert_eq!(entity_mark(&app, "b2").await, Some(day("2024-05-01")));
    let dataset_level = state::watermark_name("per_bot", "acct");
    let mark: Option<Watermark> = state::load(&app.cx.state, &dataset_level)
        .await
        .expect("load");
    assert_eq!(
        mark, None,
        "a dataset with entities has no dataset-level watermark"
    );

    ds.failing.lock().expect("lock").clear();
    ds.calls.lock().expect("lock").clear();
    let run = run_history(&ds, &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(run.outcome, Outcome::Success, "{run:?}");
    // Each entity starts lookback_days (2) before its own watermark day.
    assert_eq!(days_asked(&ds, "b1"), span("2024-05-01", "2024-05-03"));
    assert_eq!(days_asked(&ds, "b2"), span("2024-04-29", "2024-05-03"));
    assert_eq!(entity_mark(&app, "b1").await, Some(day("2024-05-03")));
    assert_eq!(entity_mark(&app, "b2").await, Some(day("2024-05-03")));
    app.shutdown().await;
}

#[tokio::test]
async fn a_bot_that_always_fails_pins_only_itself_and_the_upgrade_starts_from_the_old_watermark() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    // Written by a build with one watermark per dataset: both bots start from it.
    store_dataset_mark(&app, "2024-04-20").await;
    let now: DateTime<Utc> = "2024-05-03T12:00:00Z".parse().expect("now");
    let mut ds = dataset(&[]);
    ds.gone.insert("b2".into());

    let first = run_history(&ds, &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(first.outcome, Outcome::Partial, "{first:?}");
    // lookback_days 2 before the old watermark day, max_days_per_run 7.
    assert_eq!(days_asked(&ds, "b1"), span("2024-04-18", "2024-04-24"));
    assert_eq!(days_asked(&ds, "b2"), span("2024-04-18", "2024-04-24"));
    let error = first.error.clone().unwrap_or_default();
    assert!(error.starts_with("7 units failed: "), "{error}");
    assert!(!error.contains("b1"), "{error}");
    assert_eq!(entity_mark(&app, "b1").await, Some(day("2024-04-24")));
    // The failing bot keeps the old watermark as its own: upgrading skips none of its days.
    assert_eq!(entity_mark(&app, "b2").await, Some(day("2024-04-20")));

    ds.calls.lock().expect("lock").clear();
    let second = run_history(&ds, &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(second.outcome, Outcome::Partial, "{second:?}");
    // b1 goes on from its own watermark: only the lookback of it is exported again.
    assert_eq!(days_asked(&ds, "b1"), span("2024-04-22", "2024-04-28"));
    assert_eq!(days_asked(&ds, "b2"), span("2024-04-18", "2024-04-24"));
    assert_eq!(entity_mark(&app, "b1").await, Some(day("2024-04-28")));
    assert_eq!(entity_mark(&app, "b2").await, Some(day("2024-04-20")));
    app.shutdown().await;
}

#[tokio::test]
async fn a_bot_added_after_the_upgrade_starts_at_the_lookback_and_a_removed_one_pins_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    store_dataset_mark(&app, "2024-04-20").await;
    let now: DateTime<Utc> = "2024-05-03T12:00:00Z".parse().expect("now");
    let mut ds = dataset(&[]);
    ds.gone.insert("b2".into());
    let run = run_history(&ds, &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(run.outcome, Outcome::Partial, "{run:?}");

    // b2 leaves the config, b3 joins it.
    let mut ds = dataset(&[]);
    ds.bots = vec!["b1".into(), "b3".into()];
    let run = run_history(&ds, &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(run.outcome, Outcome::Success, "{run:?}");
    assert_eq!(days_asked(&ds, "b1"), span("2024-04-22", "2024-04-28"));
    // Like a first run: lookback_days (2) before today.
    assert_eq!(days_asked(&ds, "b3"), span("2024-05-01", "2024-05-03"));
    assert_eq!(entity_mark(&app, "b3").await, Some(day("2024-05-03")));

    // status: the dataset's watermark is the least advanced configured bot's (b2's old one
    // is no longer read), and each configured bot's is listed.
    let facts = crate::coverage::status::DatasetFacts::history(&ds);
    let stored = crate::coverage::status::read(
        &app.cx.state,
        &facts,
        "acct",
        day("2024-05-01"),
        day("2024-05-03"),
    )
    .await;
    assert_eq!(
        stored.watermark.map(|w| w.through_day),
        Some(day("2024-04-28"))
    );
    let each: Vec<(String, NaiveDate)> = stored
        .entity_watermarks
        .iter()
        .map(|(b, w)| (b.clone(), w.through_day))
        .collect();
    assert_eq!(
        each,
        [
            ("b1".to_string(), day("2024-04-28")),
            ("b3".to_string(), day("2024-05-03"))
        ]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn different_bots_days_are_in_flight_at_the_same_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let now: DateTime<Utc> = "2024-05-03T12:00:00Z".parse().expect("now");
    let mut ds = dataset(&[]);
    // Each bot's first day waits until the other bot's first day has started: one bot after
    // the other would never get past it (the guard below turns that hang into a failure).
    ds.meeting = Some(tokio::sync::Barrier::new(2));
    let guard = std::time::Duration::from_secs(120);
    let run = tokio::time::timeout(
        guard,
        run_history(&ds, &app.cx, &CancellationToken::new(), now),
    )
    .await
    .expect("the bots' first days never met: entities ran one after the other");
    assert_eq!(run.outcome, Outcome::Success, "{run:?}");
    // Each bot's days still in order.
    assert_eq!(days_asked(&ds, "b1"), span("2024-05-01", "2024-05-03"));
    assert_eq!(days_asked(&ds, "b2"), span("2024-05-01", "2024-05-03"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_backfill_exports_retries_and_reports_each_entity_s_day() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let ds: Arc<dyn HistoryDataset> = Arc::new(dataset(&[unit("2024-05-02", "b1")]));
    let req = BackfillRequest {
        from: day("2024-05-01"),
        to: day("2024-05-02"),
        datasets: vec![super::Dataset::History(Arc::clone(&ds))],
        concurrency: 2,
        skip_existing: false,
    };
    let report = backfill(&app.cx, &req).await.expect("backfill");
    let d = &report.datasets[0];
    let done: Vec<&str> = d.days.iter().map(|r| r.unit.as_str()).collect();
    assert_eq!(done, ["2024-05-01 b1", "2024-05-01 b2", "2024-05-02 b2"]);
    assert_eq!(d.failed_days.len(), 1);
    assert_eq!(d.failed_days[0].0, unit("2024-05-02", "b1"));
    assert_eq!(
        partitions(dir.path()),
        pairs(&[
            ("b1", "2024-05-01"),
            ("b2", "2024-05-01"),
            ("b2", "2024-05-02")
        ])
    );
    let err = report.into_result().expect_err("one unit failed");
    assert_eq!(err.to_string(), "1 of 4 units failed: 2024-05-02 b1");
    app.shutdown().await;
}
