//! Per-entity history units through the generic pipeline and backfill: a history dataset whose
//! units are (bot, day) exports one partition per bot and day, a scheduled run advances the
//! watermark only over days whose every bot was exported, and a backfill plans, retries and
//! reports units by entity. The dataset here is a test dataset written against the public
//! trait (no registered dataset has entities yet); the output is read back from disk.

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

/// Writes one row per unit; fails the units listed in `failing` (until they are removed).
struct PerBot {
    keys: HistoryKeys,
    bots: Vec<String>,
    failing: Mutex<BTreeSet<DayUnit>>,
}

impl PerBot {
    async fn export(
        &self,
        cx: &Context,
        unit: &DayUnit,
        exported_at: DateTime<Utc>,
    ) -> Result<UnitReport, Error> {
        let day = history::DayExport::begin(cx, &INFO, unit).await?;
        let fetched = if self.failing.lock().expect("lock").contains(unit) {
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
    }
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
async fn a_day_counts_for_the_watermark_only_when_every_entity_of_it_is_exported() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let now: DateTime<Utc> = "2024-05-03T12:00:00Z".parse().expect("now");
    // The second day's b2 unit fails: its b1 unit and the next day's units are written all
    // the same (one entity does not hold back the others), but that day is not exported
    // whole, so the watermark stops before it and the next run retries it.
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
    let mark_name = state::watermark_name("per_bot", "acct");
    let mark: Option<Watermark> = state::load(&app.cx.state, &mark_name).await.expect("load");
    assert_eq!(mark.map(|m| m.through_day), Some(day("2024-05-01")));

    ds.failing.lock().expect("lock").clear();
    let run = run_history(&ds, &app.cx, &CancellationToken::new(), now).await;
    assert_eq!(run.outcome, Outcome::Success, "{run:?}");
    // The second run starts lookback_days (2) before the watermark day.
    let mut all = Vec::new();
    for d in [
        "2024-04-29",
        "2024-04-30",
        "2024-05-01",
        "2024-05-02",
        "2024-05-03",
    ] {
        all.push(("b1", d));
        all.push(("b2", d));
    }
    assert_eq!(partitions(dir.path()), pairs(&all));
    let mark: Option<Watermark> = state::load(&app.cx.state, &mark_name).await.expect("load");
    assert_eq!(mark.map(|m| m.through_day), Some(day("2024-05-03")));
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
