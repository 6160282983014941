//! Check 9: nothing the API sends is dropped. Every dataset is exported twice from the same
//! simulated data, once as the API serves it today and once with fields the exporter does not
//! know added to every level of every record, and to the response envelope of the APIs whose
//! envelope keys the exporter keeps (level `response`: `contact_volume`, `agent_performance`;
//! `SimulatorConfig::unknown_fields`). Both outputs
//! hold the same rows with the same values in every column but `extra` (and `exported_at`);
//! each row's `extra` holds exactly the fields the model's truth names for it, each with its
//! exact JSON text (null when it names none); and the unknown fields are counted in
//! `smartassist_unmapped_fields_total`.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::value::RawValue;
use smartassist_export::simulator::truth::{ExpectedExtra, Truth};

use smartassist_export::datasets::Table;

use chrono::NaiveDate;
use smartassist_export::app::App;
use smartassist_export::backfill::{backfill, BackfillRequest};
use smartassist_export::datasets::{self, Dataset, DatasetInfo};
use smartassist_export::metrics::Metrics;
use smartassist_export::pipeline::{run_snapshot, Outcome};
use smartassist_export::simulator::truth::TruthUnit;
use smartassist_export::simulator::SimulatorConfig;
use tokio_util::sync::CancellationToken;

use super::common::registry::*;
use super::common::{date, read_dataset, start_sim};
use super::{history_truth, series, sim_config, truth_of, utc, NY, ZONE};

/// Every row of every table of a dataset: its other columns' values as text, and its `extra`.
pub type Cells = BTreeMap<RowId, (Vec<String>, Option<String>)>;

/// Columns whose values differ between two exports of the same data by design.
const VARYING: [&str; 2] = ["exported_at", "extra"];

/// The rows of `tables` under `root`, named as the suite names them.
pub fn cells(root: &Path, tables: &[&'static Table]) -> Cells {
    let mut out = Cells::new();
    let options = FormatOptions::default().with_null("<null>");
    for table in tables.iter().copied() {
        for (path, batches) in read_dataset(root, table.name) {
            for b in &batches {
                // Instants as epoch milliseconds (the formatter would need the zone database).
                let plain: Vec<(String, ArrayRef)> = b
                    .schema()
                    .fields()
                    .iter()
                    .zip(b.columns())
                    .filter(|(f, _)| !VARYING.contains(&f.name().as_str()))
                    .map(|(f, c)| match f.data_type() {
                        DataType::Timestamp(..) => {
                            (f.name().clone(), cast(c, &DataType::Int64).expect("cast"))
                        }
                        _ => (f.name().clone(), c.clone()),
                    })
                    .collect();
                let columns: Vec<(&str, ArrayFormatter<'_>)> = plain
                    .iter()
                    .map(|(name, c)| {
                        let fmt = ArrayFormatter::try_new(c.as_ref(), &options)
                            .unwrap_or_else(|e| panic!("{table}.{name}: {e}"));
                        (name.as_str(), fmt)
                    })
                    .collect();
                let extra = b
                    .column_by_name("extra")
                    .unwrap_or_else(|| panic!("{table}: {path} has no extra column"))
                    .as_string::<i32>();
                for i in 0..b.num_rows() {
                    // Name the row as the suite does (partition folders and key columns).
                    let mut one = Rows::new();
                    rows_of(table, vec![(path.clone(), vec![b.slice(i, 1)])], &mut one);
                    let id = one.into_keys().next().expect("one row");
                    let values = columns
                        .iter()
                        .map(|(name, f)| format!("{name}={}", f.value(i)))
                        .collect();
                    let cell = extra.is_valid(i).then(|| extra.value(i).to_string());
                    let before = out.insert(id.clone(), (values, cell));
                    assert!(before.is_none(), "{table}: row {id:?} twice in one export");
                }
            }
        }
    }
    out
}

/// `cell` read the way the truth states an `extra`: each field by its path (a field of a group
/// the truth nests, by the group's key and its own), with its exact text.
fn read_extra(cell: Option<&str>, want: &ExpectedExtra) -> Result<ExpectedExtra, String> {
    let mut got = ExpectedExtra::new();
    let Some(cell) = cell else {
        return Ok(got);
    };
    let groups: Vec<&str> = want
        .keys()
        .filter(|p| p.len() == 2)
        .map(|p| p[0].as_str())
        .collect();
    let fields = members(cell)?;
    if fields.is_empty() {
        return Err(format!("extra is an empty object instead of null: {cell}"));
    }
    for (key, value) in fields {
        if groups.contains(&key.as_str()) {
            for (inner, v) in members(value.get())? {
                insert_once(&mut got, vec![key.clone(), inner], v.get())?;
            }
        } else {
            insert_once(&mut got, vec![key], value.get())?;
        }
    }
    Ok(got)
}

fn insert_once(got: &mut ExpectedExtra, path: Vec<String>, json: &str) -> Result<(), String> {
    match got.insert(path.clone(), json.to_string()) {
        None => Ok(()),
        Some(_) => Err(format!("{path:?} is in extra twice")),
    }
}

/// The members of a JSON object in order (repeated keys kept).
fn members(json: &str) -> Result<Vec<(String, &RawValue)>, String> {
    let map: Vec<(String, &RawValue)> = serde_json::from_str::<OrderedObject<'_>>(json)
        .map_err(|e| format!("extra {json} is not a JSON object: {e}"))?
        .0;
    Ok(map)
}

struct OrderedObject<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for OrderedObject<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    out.push((k, map.next_value()?));
                }
                Ok(OrderedObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Every row's `extra` is exactly the truth's; returns how many rows hold one.
pub fn assert_extra_is_the_truths(what: &str, truth: &Truth, got: &Cells) -> usize {
    let mut with_extra = 0;
    for row in &truth.rows {
        let id: RowId = (
            row.table.to_string(),
            row.day,
            row.entity.clone(),
            row.key.clone(),
        );
        let (_, cell) = got
            .get(&id)
            .unwrap_or_else(|| panic!("{what}: the truth's row {id:?} is not in the output"));
        let read = read_extra(cell.as_deref(), &row.extra)
            .unwrap_or_else(|e| panic!("{what}: row {id:?}: {e}"));
        assert_eq!(read, row.extra, "{what}: extra of row {id:?}: {cell:?}");
        if cell.is_some() {
            with_extra += 1;
        }
    }
    with_extra
}

/// The two exports hold the same rows with the same values in every other column.
pub fn assert_same_rows_but_extra(what: &str, plain: &Cells, unknown: &Cells) {
    assert_eq!(
        plain.keys().collect::<Vec<_>>(),
        unknown.keys().collect::<Vec<_>>(),
        "{what}: the rows differ"
    );
    for (id, (values, _)) in plain {
        assert_eq!(
            &unknown[id].0, values,
            "{what}: row {id:?} differs outside extra"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_land_in_extra_exactly_and_change_nothing_else() {
    let mut checked = Vec::new();
    // Rows whose extra is null as the API serves today (checked against the truth above).
    let mut null_rows = 0;
    for info in datasets::REGISTRY {
        let section = section(info, &[]);
        let d = enabled(info, &section);
        let mut outputs = Vec::new();
        for unknown_fields in [false, true] {
            outputs.push(export_for_extra(info, &d, &section, unknown_fields).await);
        }
        let (plain, unknown) = (&outputs[0], &outputs[1]);
        let name = info.name;
        assert_same_rows_but_extra(name, &plain.cells, &unknown.cells);
        let plain_rows = assert_extra_is_the_truths(
            &format!("{name} as the API sends it"),
            &plain.truth,
            &plain.cells,
        );
        let unknown_rows = assert_extra_is_the_truths(
            &format!("{name} with unknown fields"),
            &unknown.truth,
            &unknown.cells,
        );
        assert_eq!(
            unknown.truth.rows.len(),
            unknown.cells.len(),
            "{name}: rows beyond the truth's"
        );
        assert_eq!(
            unknown_rows,
            unknown.cells.len(),
            "{name}: every row carries the unknown fields"
        );
        null_rows += plain.cells.len() - plain_rows;
        assert!(
            unknown.unmapped > plain.unmapped,
            "{name}: smartassist_unmapped_fields_total {} with unknown fields, {} without",
            unknown.unmapped,
            plain.unmapped
        );
        println!(
            "{name}: {} rows; extra on {plain_rows} as served, on all with unknown fields; \
             unmapped fields counted {} and {}",
            plain.cells.len(),
            plain.unmapped,
            unknown.unmapped
        );
        checked.push(name);
    }
    assert!(
        null_rows > 0,
        "no row has a null extra: the check proves nothing"
    );
    println!("datasets checked: {checked:?}");
}

/// One export of a dataset for check 9: its rows, the truth, and the unmapped fields counted.
struct ExtraExport {
    cells: Cells,
    truth: Truth,
    unmapped: f64,
}

async fn export_for_extra(
    info: &'static DatasetInfo,
    d: &Dataset,
    section: &toml::Table,
    unknown_fields: bool,
) -> ExtraExport {
    let name = info.name;
    let now = utc("2024-11-05T12:00:00Z");
    let cfg = SimulatorConfig {
        unknown_fields,
        ..sim_config(d, now, Some(7))
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let text = dataset_config_text(
        &sim.base_url(),
        ZONE,
        &OutputAt::Local(out.clone()),
        info,
        section,
    );
    let metrics = Metrics::new();
    let app = App::start(config_of(&text), CancellationToken::new(), metrics.clone())
        .await
        .unwrap_or_else(|e| panic!("{name}: the app starts: {e}"));
    let at_start = series::parse(&metrics.render());
    assert_eq!(
        series::value(
            &at_start,
            smartassist_export::metrics::UNMAPPED_FIELDS,
            &[("dataset", name)]
        ),
        0.0
    );
    assert!(
        at_start.contains_key(&format!(
            "{}{{dataset=\"{name}\"}}",
            smartassist_export::metrics::UNMAPPED_FIELDS
        )),
        "{name}: smartassist_unmapped_fields_total is not at zero from the start"
    );
    let truth = if is_history(d) {
        let asked: Vec<NaiveDate> = ["2024-06-12", "2024-11-03"]
            .iter()
            .map(|s| date(s))
            .collect();
        let days = exported_days(d, zone_of(section, NY), &asked);
        let req = BackfillRequest {
            from: days[0],
            to: days[0],
            datasets: app.datasets().to_vec(),
            concurrency: 2,
            skip_existing: false,
        };
        for &day in &days {
            let req = BackfillRequest {
                from: day,
                to: day,
                ..req.clone()
            };
            let report = backfill(&app.cx, &req).await.and_then(|r| r.into_result());
            report.unwrap_or_else(|e| panic!("{name}: backfill of {day} failed: {e}"));
        }
        history_truth(&cfg, info, d, section, &days)
    } else {
        let Some(Dataset::Snapshot(s)) = app.datasets().first().cloned() else {
            panic!("{name}: not a snapshot dataset");
        };
        let mut all = Truth::default();
        for e in entities(d) {
            let run = run_snapshot(s.as_ref(), &app.cx, &e, now).await;
            assert_eq!(
                run.outcome,
                Outcome::Success,
                "{name} poll of {e}: {:?}",
                run.error
            );
            let t = truth_of(&cfg, info, section, TruthUnit::Poll { entity: &e });
            all.rows.extend(t.rows);
        }
        all
    };
    let unmapped = series::value(
        &series::parse(&metrics.render()),
        smartassist_export::metrics::UNMAPPED_FIELDS,
        &[("dataset", name)],
    );
    let cells = cells(&out, info.tables);
    app.shutdown().await;
    sim.shutdown().await;
    ExtraExport {
        cells,
        truth,
        unmapped,
    }
}
