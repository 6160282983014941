//! Registry-driven helpers: a config for any registered dataset built from its own registry
//! entry (its demo section against the simulator, every other dataset off), the section as the
//! exporter reads it (documented defaults filled in) for the simulator's truth
//! ([`smartassist_export::simulator::truth`]), and the rows of any table read back from
//! Parquet as `(table, dt, entity, key)` named by the table's key columns, so output and truth
//! compare key for key. Used by the compliance suite and the engine checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType};
use chrono::{DateTime, NaiveDate};
use smartassist_export::config::Config;
use smartassist_export::datasets::{self, Dataset, DatasetInfo, Kind, Table};
use smartassist_export::simulator::truth::{instant_key, key, ExpectedRow, Truth};
use smartassist_export::simulator::SimulatorConfig;

/// Where a config sends its output.
#[derive(Debug, Clone)]
pub enum OutputAt {
    Local(PathBuf),
    /// moto (or a proxy in front of it) at `endpoint`.
    S3 {
        endpoint: String,
        bucket: String,
        prefix: String,
    },
}

/// The `[output]` section for `out`.
fn output_section(out: &OutputAt) -> String {
    match out {
        OutputAt::Local(dir) => format!("[output]\nurl = {:?}\n", dir.display().to_string()),
        OutputAt::S3 {
            endpoint,
            bucket,
            prefix,
        } => format!(
            "[output]\nurl = \"s3://{bucket}/{prefix}\"\nendpoint = \"{endpoint}\"\n\
             region = \"us-east-1\"\nallow_http = true\n"
        ),
    }
}

/// `info`'s demo section (the lines that enable it against the simulator) with `overrides`
/// set on top, as a TOML table. Panics, naming what to add, when the dataset has none.
pub fn section(info: &DatasetInfo, overrides: &[(&str, toml::Value)]) -> toml::Table {
    let lines = info.demo.section.unwrap_or_else(|| {
        panic!(
            "{}: its registry entry has no demo section; give it the lines that enable it \
             against the built-in simulator",
            info.name
        )
    });
    let mut table: toml::Table = lines
        .parse()
        .unwrap_or_else(|e| panic!("{}: its demo section is not TOML: {e}", info.name));
    for (key, value) in overrides {
        table.insert((*key).to_string(), value.clone());
    }
    table
}

/// `written` with the documented default of every key it does not set: the section as the
/// exporter reads it.
pub fn effective_section(info: &DatasetInfo, written: &toml::Table) -> toml::Table {
    let mut table = written.clone();
    for (key, value) in info.config.all_defaults() {
        if !table.contains_key(key) {
            let parsed: toml::Table = format!("v = {value}").parse().unwrap_or_else(|e| {
                panic!("{}.{key}: default {value} is not TOML: {e}", info.name)
            });
            table.insert(key.to_string(), parsed["v"].clone());
        }
    }
    table
}

/// The zone of the dataset's local days: its section's `timezone` when written, else the
/// account zone `account`.
pub fn zone_of(section: &toml::Table, account: chrono_tz::Tz) -> chrono_tz::Tz {
    section
        .get("timezone")
        .and_then(toml::Value::as_str)
        .map(|z| z.parse().unwrap_or_else(|e| panic!("timezone {z:?}: {e}")))
        .unwrap_or(account)
}

/// A whole config: the simulator's credentials at `base_url`, the account zone `zone`, quick
/// retries, the output, the sections of the datasets in `on`, and every other registered
/// dataset off.
pub fn config_text(
    base_url: &str,
    zone: &str,
    out: &OutputAt,
    on: &[(&DatasetInfo, &toml::Table)],
) -> String {
    let sim = SimulatorConfig::default();
    let mut text = format!(
        "[api]\nbase_url = \"{base_url}\"\naccount_id = \"{account}\"\niid = \"{iid}\"\n\
         client_id = \"{client}\"\ntimezone = \"{zone}\"\nretry_base_ms = 20\n\
         retry_max_backoff_seconds = 1\nthrottle_backoff_seconds = 0.05\ntimeout_seconds = 10\n\
         requests_per_minute = 100000\nbot_requests_per_minute = 100000\n\
         bot_requests_per_hour = 100000\n\n{output}",
        account = sim.account_id,
        iid = sim.iid,
        client = sim.client_id,
        output = output_section(out),
    );
    for d in datasets::REGISTRY {
        match on.iter().find(|(info, _)| info.name == d.name) {
            Some((_, section)) => text.push_str(&format!("\n[{}]\n{section}", d.config.name)),
            None => text.push_str(&format!("\n[{}]\nenabled = false\n", d.config.name)),
        }
    }
    text
}

/// [`config_text`] of one dataset.
pub fn dataset_config_text(
    base_url: &str,
    zone: &str,
    out: &OutputAt,
    info: &DatasetInfo,
    section: &toml::Table,
) -> String {
    config_text(base_url, zone, out, &[(info, section)])
}

/// The validated config of `text`, with the simulator's secret.
pub fn config_of(text: &str) -> Config {
    datasets::config_from_toml(
        text,
        Path::new("<compliance>"),
        Some(SimulatorConfig::default().client_secret),
    )
    .unwrap_or_else(|e| panic!("the suite's config is invalid: {e}\n{text}"))
}

/// The dataset `info` as `section` enables it: its kind and its entities (bots of a snapshot
/// dataset, entities of a per-entity history dataset).
pub fn enabled(info: &DatasetInfo, section: &toml::Table) -> Dataset {
    let text = dataset_config_text(
        "http://127.0.0.1:9",
        "UTC",
        &OutputAt::Local(PathBuf::from("/nonexistent")),
        info,
        section,
    );
    let config = config_of(&text);
    let mut on = datasets::enabled(&config);
    assert_eq!(
        on.len(),
        1,
        "{}: its demo section must enable it (and only it): {on:?}",
        info.name
    );
    on.remove(0)
}

/// The entities of a dataset (empty for an account-wide history dataset).
pub fn entities(d: &Dataset) -> Vec<String> {
    match d {
        Dataset::History(h) => h.entities().to_vec(),
        Dataset::Snapshot(s) => s.entities().to_vec(),
    }
}

/// Whether a dataset is a history dataset.
pub fn is_history(d: &Dataset) -> bool {
    d.kind() == Kind::History
}

/// The local days an export of `days` writes for `d` in `zone` (its days' zone): `days`
/// itself, or today's snapshot day alone for a dataset whose API serves a list only as it is
/// now (`DayScope::TodayOnly`), which takes today's snapshot whatever range it is given.
pub fn exported_days(d: &Dataset, zone: chrono_tz::Tz, days: &[NaiveDate]) -> Vec<NaiveDate> {
    match d.snapshot_day(chrono::Utc::now()) {
        Some(_) => vec![chrono::Utc::now().with_timezone(&zone).date_naive()],
        None => days.to_vec(),
    }
}

/// A row's identity: table, its partition's date (`dt`), entity (`bot_id`), key.
pub type RowId = (String, NaiveDate, Option<String>, String);

/// How many times each row occurs.
pub type Rows = BTreeMap<RowId, usize>;

/// The truth's rows, counted.
pub fn expected_rows(truth: &Truth) -> Rows {
    let mut rows = Rows::new();
    for r in &truth.rows {
        add_expected(&mut rows, r);
    }
    rows
}

fn add_expected(rows: &mut Rows, r: &ExpectedRow) {
    let id = (r.table.to_string(), r.day, r.entity.clone(), r.key.clone());
    *rows.entry(id).or_default() += 1;
}

/// The rows of `table` in `files` (paths relative to the table's folder, their batches).
pub fn rows_of(table: &Table, files: Vec<(String, Vec<RecordBatch>)>, into: &mut Rows) {
    for (path, batches) in files {
        let part = |name: &str| {
            path.split('/')
                .find_map(|s| s.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
        };
        let date = table.layout.date_column();
        let dt: NaiveDate = part(date)
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("{table}: {path} has no {date}= partition"));
        let entity = table.layout.has_bot().then(|| {
            part("bot_id").unwrap_or_else(|| panic!("{table}: {path} has no bot_id= partition"))
        });
        for b in &batches {
            let columns: Vec<&dyn Array> = table
                .key
                .iter()
                .map(|c| {
                    b.column_by_name(c)
                        .unwrap_or_else(|| panic!("{table}: {path} lacks key column {c}"))
                        .as_ref()
                })
                .collect();
            for i in 0..b.num_rows() {
                let parts: Vec<String> = columns.iter().map(|c| key_text(*c, i)).collect();
                let id = (table.name.to_string(), dt, entity.clone(), key(&parts));
                *into.entry(id).or_default() += 1;
            }
        }
    }
}

/// A key column's value as the simulator's truth writes it.
fn key_text(col: &dyn Array, i: usize) -> String {
    if col.is_null(i) {
        return "null".into();
    }
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let ms = col.as_primitive::<TimestampMillisecondType>().value(i);
            instant_key(DateTime::from_timestamp_millis(ms).expect("a representable instant"))
        }
        other => {
            panic!("a key column of type {other}: teach tests/common/registry.rs its key text")
        }
    }
}

/// Every row of every table of `info` under the local output `root`.
pub fn local_rows(root: &Path, info: &DatasetInfo) -> Rows {
    let mut rows = Rows::new();
    for table in info.tables {
        rows_of(table, super::read_dataset(root, table.name), &mut rows);
    }
    rows
}

/// Panics with the first differences when `got` is not exactly `want` (each row once).
pub fn assert_rows(what: &str, want: &Rows, got: &Rows) {
    let doubled: Vec<_> = want.iter().filter(|(_, n)| **n > 1).take(3).collect();
    assert!(
        doubled.is_empty(),
        "{what}: the truth names a row twice: {doubled:?}"
    );
    let missing: Vec<&RowId> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&RowId> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let twice: Vec<(&RowId, &usize)> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && twice.is_empty(),
        "{what}: {} rows expected, {} found; {} missing (first {:?}), {} not expected \
         (first {:?}), {} more than once (first {:?})",
        want.len(),
        got.values().sum::<usize>(),
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(3).collect::<Vec<_>>(),
        twice.len(),
        twice.iter().take(3).collect::<Vec<_>>(),
    );
}

/// Rows per table.
pub fn count_by_table(rows: &Rows) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for ((table, ..), n) in rows {
        *out.entry(table.clone()).or_default() += n;
    }
    out
}

/// A relative path of a file under a table's folder is what readers may see: a complete
/// Parquet file in `k=v` partition folders, or something hidden (a `_` or `.` component).
pub fn visible_to_readers_and_stray(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|p| p.starts_with('_') || p.starts_with('.'))
    {
        return false;
    }
    let (file, dirs) = parts.split_last().expect("a path has a file name");
    !(file.ends_with(".parquet") && dirs.iter().all(|d| d.contains('=')))
}
