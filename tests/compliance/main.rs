//! The compliance suite: every dataset in `datasets::REGISTRY` passes these checks by being
//! registered, without a test of its own. Each check iterates the registry; a failure names the
//! dataset. A dataset's config is built from its registry entry alone: the core config against
//! the in-process simulator, its `demo.section`, every other dataset off
//! (`tests/common/registry.rs`). Expected rows come from the simulator's truth
//! (`simulator::truth`: the model serving the dataset answers from its own generator), compared
//! key for key (`schema::Table::key`) with the Parquet files read back with the parquet crate.
//!
//! 1. Metrics: after `App::start`, every series the dataset emits exists at zero (runs per
//!    outcome, rejects, rows/bytes/files written per table, HTTP requests of its endpoint, its
//!    own families per entity), and a whole export creates no series that was not there.
//! 2. `schema --format arrow|athena|duckdb` declares each of its tables.
//! 3. `check` probes it against the simulator and names it.
//! 4. Docs (`docs.rs`): README's Datasets table has its row linking to its page
//!    `docs/datasets/<name>.md`, README's output layout shows each of its tables with its
//!    partition folders, and its page lists every column of its tables with its type (its
//!    configuration rows are checked by `datasets::config_tests`; its queries and demo queries
//!    run in DuckDB in `tests/engines.rs`).
//! 5. History datasets: the DST spring-forward and fall-back days and an ordinary day of
//!    America/New_York, with hostile records served, hold exactly the truth's rows (each
//!    once, in the partition of its day); each hostile record is one reject with its raw JSON
//!    and reason, counted in `smartassist_rejects_total`.
//! 6. Exporting the same days again leaves the same rows in the same files.
//! 7. A crash (SIGKILL of `run --once`, on S3) while the state object is being written, then a
//!    re-run: exact rows, only complete Parquet files visible, state committed (`crash.rs`).
//! 8. Snapshot datasets: a poll, a later overlapping poll and a repeated poll write each record
//!    once (and check 7 on the poll state).
//! 9. Nothing the API sends is dropped: with unknown fields added to every level of every
//!    record, each row's `extra` holds exactly the truth's fields with their exact JSON text,
//!    every other column is unchanged, and the fields are counted; without them `extra` holds
//!    only the fields the API already sends untyped (null for most rows) (`extra.rs`).
//! 10. Coverage (`coverage.rs`): every unit of checks 5 and 8 is in the coverage record with
//!     the truth's rows per table, and `status` classifies it (OK or EMPTY; a snapshot day
//!     counts its polls).
//!
//! A new dataset passes by: its `Table`s declaring `key`, a `demo.section` that enables it
//! against the simulator, and a `truth` in its simulator model (ARCHITECTURE.md, "How to add
//! a dataset").

#[path = "../common/mod.rs"]
mod common;
mod coverage;
mod crash;
mod docs;
mod extra;
mod series;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use common::registry::*;
use common::*;
use smartassist_export::app::App;
use smartassist_export::backfill::{backfill, BackfillRequest};
use smartassist_export::datasets::{self, Dataset, DatasetInfo};
use smartassist_export::metrics::Metrics;
use smartassist_export::pipeline::{run_snapshot, Outcome};
use smartassist_export::simulator::truth::{self, Truth, TruthQuery, TruthUnit};
use smartassist_export::simulator::SimulatorConfig;
use tokio_util::sync::CancellationToken;

/// The account zone of every check: a zone with DST, so local days are 23 and 25 hours long.
const ZONE: &str = "America/New_York";
const NY: Tz = chrono_tz::America::New_York;
/// Spring forward (23 h), an ordinary day, fall back (25 h).
const DAYS: [&str; 3] = ["2024-03-10", "2024-06-12", "2024-11-03"];

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

/// The simulator of every check: small, one hostile record in `malformed_every`, `now` frozen.
fn sim_config(d: &Dataset, now: DateTime<Utc>, malformed_every: Option<u64>) -> SimulatorConfig {
    let mut bots = entities(d);
    if bots.is_empty() {
        bots = SimulatorConfig::default().bots;
    }
    SimulatorConfig {
        seed: 18,
        agents: 5,
        bots,
        frozen_now: Some(now),
        malformed_every,
        ..SimulatorConfig::default()
    }
}

/// The model's answer for `info`'s unit; panics naming the dataset when it has none.
fn truth_of(
    cfg: &SimulatorConfig,
    info: &DatasetInfo,
    section: &toml::Table,
    unit: TruthUnit<'_>,
) -> Truth {
    let effective = effective_section(info, section);
    let query = TruthQuery {
        section: &effective,
        zone: zone_of(section, NY),
        unit,
    };
    truth::truth(cfg, info.name, &query)
        .unwrap_or_else(|| {
            panic!(
                "{}: no simulator model answers for it; give its model in src/simulator/ a \
                 `truth` (simulator::truth)",
                info.name
            )
        })
        .unwrap_or_else(|e| panic!("{}: {e}", info.name))
}

/// The truth of local `days` of a history dataset: one query per entity, or one for the
/// account.
fn history_truth(
    cfg: &SimulatorConfig,
    info: &DatasetInfo,
    d: &Dataset,
    section: &toml::Table,
    days: &[NaiveDate],
) -> Truth {
    let entities = entities(d);
    if entities.is_empty() {
        return truth_of(cfg, info, section, TruthUnit::Days { days, entity: None });
    }
    let mut all = Truth::default();
    for e in &entities {
        let t = truth_of(
            cfg,
            info,
            section,
            TruthUnit::Days {
                days,
                entity: Some(e),
            },
        );
        all.rows.extend(t.rows);
        all.rejects.extend(t.rejects);
    }
    all
}

/// Every reject row of the dataset: each has a reason and its raw record as JSON.
fn local_rejects(out: &Path, info: &DatasetInfo) -> usize {
    let mut n = 0;
    for (file, batches) in read_dataset(out, &format!("_rejects/{}", info.primary().name)) {
        for b in batches {
            use arrow::array::AsArray;
            let col = |c: &str| b.column_by_name(c).expect(c).as_string::<i32>().clone();
            let (reason, raw) = (col("reason"), col("raw_json"));
            for i in 0..b.num_rows() {
                assert!(
                    !reason.value(i).is_empty(),
                    "{}: a reject without reason in {file}",
                    info.name
                );
                serde_json::from_str::<serde_json::Value>(raw.value(i)).unwrap_or_else(|e| {
                    panic!(
                        "{}: reject raw_json is not JSON ({e}): {}",
                        info.name,
                        raw.value(i)
                    )
                });
                n += 1;
            }
        }
    }
    n
}

/// Files under the dataset's table folders that readers would see but are not complete
/// Parquet files of a partition.
fn local_stray_files(out: &Path, info: &DatasetInfo) -> Vec<String> {
    info.tables
        .iter()
        .flat_map(|t| {
            files_under(&out.join(t.name))
                .into_iter()
                .map(move |f| format!("{}/{f}", t.name))
        })
        .filter(|f| {
            visible_to_readers_and_stray(f.split_once('/').map_or(f.as_str(), |(_, rel)| rel))
        })
        .collect()
}

/// Every file of the dataset's tables and rejects (relative to the output root).
fn dataset_files(out: &Path, info: &DatasetInfo) -> Vec<String> {
    let mut dirs: Vec<String> = info.tables.iter().map(|t| t.name.to_string()).collect();
    dirs.push(format!("_rejects/{}", info.primary().name));
    dirs.iter()
        .flat_map(|d| {
            files_under(&out.join(d))
                .into_iter()
                .map(move |f| format!("{d}/{f}"))
        })
        .collect()
}

fn days() -> Vec<NaiveDate> {
    DAYS.iter().map(|d| date(d)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_datasets_export_dst_days_exactly_reject_hostile_records_and_rerun_identically() {
    let mut checked = Vec::new();
    for info in datasets::REGISTRY {
        let section = section(info, &[]);
        let d = enabled(info, &section);
        if !is_history(&d) {
            continue;
        }
        history_dataset(info, &d, &section).await;
        checked.push(info.name);
    }
    println!("history datasets checked: {checked:?}");
}

async fn history_dataset(info: &'static DatasetInfo, d: &Dataset, section: &toml::Table) {
    let name = info.name;
    let cfg = sim_config(d, utc("2024-11-05T12:00:00Z"), Some(7));
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
    series::assert_registered_at_zero(info, &entities(d), &at_start);

    let days = exported_days(d, zone_of(section, NY), &days());
    let export = || async {
        for &day in &days {
            let req = BackfillRequest {
                from: day,
                to: day,
                datasets: app.datasets().to_vec(),
                concurrency: 2,
                skip_existing: false,
            };
            let report = backfill(&app.cx, &req).await.and_then(|r| r.into_result());
            report.unwrap_or_else(|e| panic!("{name}: backfill of {day} failed: {e}"));
        }
    };
    export().await;

    let truth = history_truth(&cfg, info, d, section, &days);
    let want = expected_rows(&truth);
    for table in info.tables {
        let n = count_by_table(&want).get(table.name).copied().unwrap_or(0);
        assert!(
            n > 0,
            "{name}: the truth of {days:?} has no {table} rows; the check would prove nothing"
        );
    }
    assert!(
        !truth.rejects.is_empty(),
        "{name}: the simulator serves no hostile record of it"
    );
    let got = local_rows(&out, info);
    println!(
        "{name}: {days:?} in {ZONE}: rows {:?}, {} hostile records",
        count_by_table(&want),
        truth.rejects.len()
    );
    assert_rows(&format!("{name} {days:?} in {ZONE}"), &want, &got);
    coverage::assert_history_recorded(info, d, (&app.cx.state, &app.cx.account_id), &days, &want)
        .await;
    let days_found: BTreeSet<NaiveDate> = got.keys().map(|(_, dt, ..)| *dt).collect();
    assert_eq!(
        days_found,
        days.iter().copied().collect(),
        "{name}: partitions"
    );
    assert_eq!(
        local_rejects(&out, info),
        truth.rejects.len(),
        "{name}: one reject per hostile record"
    );
    assert_eq!(
        local_stray_files(&out, info),
        Vec::<String>::new(),
        "{name}: files readers would see"
    );

    let after = series::parse(&metrics.render());
    series::assert_no_series_appeared(name, &at_start, &after);
    let rejects = series::value(
        &after,
        smartassist_export::metrics::REJECTS,
        &[("dataset", name)],
    );
    assert_eq!(
        rejects,
        truth.rejects.len() as f64,
        "{name}: smartassist_rejects_total"
    );
    for (table, n) in count_by_table(&want) {
        let rows = series::value(
            &after,
            smartassist_export::metrics::ROWS_WRITTEN,
            &[("dataset", &table)],
        );
        assert_eq!(
            rows, n as f64,
            "{name}: smartassist_rows_written_total of {table}"
        );
    }

    // The same days again: the same rows in the same files.
    let files = dataset_files(&out, info);
    export().await;
    assert_eq!(
        local_rows(&out, info),
        got,
        "{name}: rows after exporting the days again"
    );
    assert_eq!(
        dataset_files(&out, info),
        files,
        "{name}: files after exporting the days again"
    );
    assert_eq!(
        local_rejects(&out, info),
        truth.rejects.len(),
        "{name}: rejects after a re-run"
    );
    app.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_datasets_write_each_record_once_across_overlapping_and_repeated_polls() {
    let mut checked = Vec::new();
    for info in datasets::REGISTRY {
        let section = section(info, &[]);
        let d = enabled(info, &section);
        if is_history(&d) {
            continue;
        }
        snapshot_dataset(info, &d, &section).await;
        checked.push(info.name);
    }
    println!("snapshot datasets checked: {checked:?}");
}

async fn snapshot_dataset(info: &'static DatasetInfo, d: &Dataset, section: &toml::Table) {
    let name = info.name;
    let entities = entities(d);
    assert!(
        !entities.is_empty(),
        "{name}: its demo section polls no entity"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    // Two simulators of the same data, the second ten sessions later (at the default
    // one-minute interval): its poll overlaps the first's.
    let t1 = utc("2024-11-03T15:00:00Z");
    let t2 = t1 + chrono::Duration::minutes(10);
    let mut want = Truth::default();
    let mut polls = Vec::new();
    let mut account_id = String::new();
    for (n, at) in [(1, t1), (2, t2), (3, t2)] {
        let cfg = sim_config(d, at, Some(5));
        let sim = start_sim(cfg.clone()).await;
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
        series::assert_registered_at_zero(info, &entities, &at_start);
        account_id.clone_from(&app.cx.account_id);
        let Some(Dataset::Snapshot(s)) = app.datasets().first().cloned() else {
            panic!("{name}: not a snapshot dataset");
        };
        for e in &entities {
            let run = run_snapshot(s.as_ref(), &app.cx, e, at).await;
            assert_eq!(
                run.outcome,
                Outcome::Success,
                "{name} poll {n} of {e}: {:?}",
                run.error
            );
            let t = truth_of(&cfg, info, section, TruthUnit::Poll { entity: e });
            want.rows.extend(t.rows);
            want.rejects.extend(t.rejects);
        }
        want.rows.sort();
        want.rows.dedup();
        want.rejects.sort();
        want.rejects.dedup();
        let got = local_rows(&out, info);
        assert_rows(
            &format!("{name} after poll {n}"),
            &expected_rows(&want),
            &got,
        );
        assert_eq!(
            local_rejects(&out, info),
            want.rejects.len(),
            "{name} after poll {n}: rejects"
        );
        assert_eq!(
            local_stray_files(&out, info),
            Vec::<String>::new(),
            "{name}: files readers would see"
        );
        let after = series::parse(&metrics.render());
        series::assert_no_series_appeared(name, &at_start, &after);
        polls.push((
            series::value(
                &after,
                smartassist_export::metrics::REJECTS,
                &[("dataset", name)],
            ),
            series::value(
                &after,
                smartassist_export::metrics::ROWS_WRITTEN,
                &[("dataset", name)],
            ),
        ));
        app.shutdown().await;
        sim.shutdown().await;
    }
    assert!(
        !want.rejects.is_empty(),
        "{name}: the simulator serves no hostile record of it"
    );
    println!(
        "{name}: three polls of {entities:?}: {} rows, {} hostile records",
        want.rows.len(),
        want.rejects.len()
    );
    let (rejects, rows) = polls
        .iter()
        .fold((0.0, 0.0), |(a, b), (r, w)| (a + r, b + w));
    assert_eq!(
        rejects,
        want.rejects.len() as f64,
        "{name}: smartassist_rejects_total over the polls"
    );
    assert_eq!(
        rows,
        want.rows.len() as f64,
        "{name}: rows written over the polls"
    );
    assert_eq!(polls[2].1, 0.0, "{name}: a repeated poll writes nothing");
    let output = smartassist_export::sink::Output::open(
        &smartassist_export::config::OutputLocation::Local(out.clone()),
    )
    .expect("output");
    let poll_day = smartassist_export::sources::window::local_date(zone_of(section, NY), t1);
    coverage::assert_polls_recorded(
        info,
        d,
        (&output.state, &account_id),
        poll_day,
        3,
        &expected_rows(&want),
    )
    .await;
}

#[test]
fn schema_formats_declare_every_table() {
    let arrow = run_bin(
        Path::new("/nonexistent/config.toml"),
        &["schema", "--format", "arrow"],
    );
    assert_success(&arrow);
    let arrow = String::from_utf8_lossy(&arrow.stdout).to_string();
    let athena = run_bin(
        Path::new("/nonexistent/config.toml"),
        &["schema", "--format", "athena"],
    );
    assert_success(&athena);
    let athena = String::from_utf8_lossy(&athena.stdout).to_string();
    let duckdb = run_bin(
        Path::new("/nonexistent/config.toml"),
        &["schema", "--format", "duckdb"],
    );
    assert_success(&duckdb);
    let duckdb = String::from_utf8_lossy(&duckdb.stdout).to_string();
    for info in datasets::REGISTRY {
        for table in info.tables {
            let what = format!("{}: table {table}", info.name);
            // arrow: a header with the partition columns, then one line per file column.
            let header = format!(
                "{} (partitioned by {})",
                table.name,
                table.partition_columns().join(", ")
            );
            let block = arrow
                .split("\n\n")
                .find(|b| b.lines().next() == Some(header.as_str()))
                .unwrap_or_else(|| {
                    panic!("{what}: no `{header}` in schema --format arrow:\n{arrow}")
                });
            for f in (table.schema)().fields() {
                assert!(
                    block
                        .lines()
                        .skip(1)
                        .any(|l| l.split_whitespace().next() == Some(f.name())),
                    "{what}: column {} missing from schema --format arrow:\n{block}",
                    f.name()
                );
            }
            // athena: a table of that name, or a view of it over the table of its files.
            let as_table = format!("CREATE EXTERNAL TABLE IF NOT EXISTS `{}` (", table.name);
            let as_view = format!("VIEW {} AS", table.name);
            assert!(
                athena.contains(&as_table) || athena.contains(&as_view),
                "{what}: neither `{as_table}` nor `{as_view}` in schema --format athena"
            );
            let partitioned = table
                .partition_columns()
                .iter()
                .map(|c| format!("`{c}` string"))
                .collect::<Vec<_>>()
                .join(", ");
            assert!(
                athena.contains(&format!("PARTITIONED BY ({partitioned})")),
                "{what}: no PARTITIONED BY ({partitioned}) in schema --format athena"
            );
            // duckdb: a view of that name reading the table's folder.
            let view = format!("CREATE OR REPLACE VIEW {} AS", table.name);
            assert!(
                duckdb.contains(&view),
                "{what}: no `{view}` in schema --format duckdb"
            );
            assert!(
                duckdb.contains(&format!("/{}/", table.name)),
                "{what}: no view reads its folder in schema --format duckdb"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probes_every_dataset_against_the_simulator() {
    for info in datasets::REGISTRY {
        let section = section(info, &[]);
        let d = enabled(info, &section);
        let cfg = sim_config(&d, Utc::now(), None);
        let sim = start_sim(cfg).await;
        let tmp = tempfile::tempdir().expect("tmp");
        let text = dataset_config_text(
            &sim.base_url(),
            ZONE,
            &OutputAt::Local(tmp.path().join("out")),
            info,
            &section,
        );
        let config = tmp.path().join("config.toml");
        std::fs::write(&config, text).expect("write config");
        let check = run_bin(&config, &["check"]);
        let stdout = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "{}: check failed:\n{stdout}\n{}",
            info.name,
            String::from_utf8_lossy(&check.stderr)
        );
        let probes = stdout
            .lines()
            .filter(|l| l.starts_with(info.name) && l.contains(": OK ("))
            .count();
        let want = entities(&d).len().max(1);
        assert_eq!(
            probes, want,
            "{}: one OK probe per unit owner expected:\n{stdout}",
            info.name
        );
        sim.shutdown().await;
    }
}
