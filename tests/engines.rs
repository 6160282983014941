//! The output verified by real engines, for every registered dataset: the built binary exports
//! them all (each enabled by its registry entry's demo section) from the in-process simulator
//! to a local directory and to S3 (moto), then `tests/py/verify_output.py` reads every table
//! with pyarrow (local and `pyarrow.fs.S3FileSystem`, with the partition columns its layout
//! declares), runs the ```` ```sql duckdb-check ```` blocks of the README and of every
//! dataset's page (`docs/datasets/*.md`) and every dataset's demo queries with DuckDB.
//! Expected row counts come from the simulator's truth; the expected sums of the integer
//! columns from reading the same files with the parquet crate, so the engines must read the
//! values the files hold.
//!
//! Python runs in the pinned environment of `common::python()` (built on first use): the test
//! FAILS when it cannot be built unless `SMARTASSIST_SKIP_PY=1`; the S3 part is left out only
//! with `SMARTASSIST_SKIP_S3=1`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use chrono::{DateTime, NaiveDate, Utc};
use common::registry::*;
use common::*;
use serde_json::{json, Value};
use smartassist_export::datasets::{self, Dataset, DatasetInfo};
use smartassist_export::simulator::truth::{self, Truth, TruthQuery, TruthUnit};
use smartassist_export::simulator::SimulatorConfig;

const DAYS: [&str; 2] = ["2026-06-01", "2026-06-02"];

/// Every registered dataset, its section (its demo section, with the simulator's default bot
/// renamed `bot` when given) and the dataset it enables.
fn every_dataset(bot: Option<&str>) -> Vec<(&'static DatasetInfo, toml::Table, Dataset)> {
    let default_bot = &SimulatorConfig::default().bots[0];
    datasets::REGISTRY
        .iter()
        .map(|info| {
            let mut section = section(info, &[]);
            if let Some(bot) = bot {
                let renamed = section.to_string().replace(default_bot.as_str(), bot);
                section = renamed.parse().expect("the renamed section is TOML");
            }
            let d = enabled(info, &section);
            (*info, section, d)
        })
        .collect()
}

fn sim_config(
    seed: u64,
    agents: usize,
    all: &[(&DatasetInfo, toml::Table, Dataset)],
) -> SimulatorConfig {
    let now: DateTime<Utc> = "2026-06-03T12:00:00Z".parse().expect("instant");
    let mut bots: Vec<String> = all.iter().flat_map(|(_, _, d)| entities(d)).collect();
    bots.dedup();
    if bots.is_empty() {
        bots = SimulatorConfig::default().bots;
    }
    SimulatorConfig {
        seed,
        agents,
        max_page_size: 50,
        bots,
        intent_interval: Duration::from_secs(900),
        intent_epoch: now - chrono::Duration::days(2),
        frozen_now: Some(now),
        malformed_every: None,
        ..SimulatorConfig::default()
    }
}

/// Rows per table the truth expects of a backfill of `days` (UTC) of every dataset.
fn expected_counts(
    cfg: &SimulatorConfig,
    all: &[(&DatasetInfo, toml::Table, Dataset)],
    days: &[NaiveDate],
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (info, section, d) in all {
        let effective = effective_section(info, section);
        let ask = |unit| {
            let q = TruthQuery {
                section: &effective,
                zone: zone_of(section, chrono_tz::UTC),
                unit,
            };
            truth::truth(cfg, info.name, &q)
                .unwrap_or_else(|| panic!("{}: no simulator model answers for it", info.name))
                .unwrap_or_else(|e| panic!("{}: {e}", info.name))
        };
        let mut truth = Truth::default();
        let es = entities(d);
        match d {
            Dataset::History(_) if es.is_empty() => {
                let days = exported_days(d, zone_of(section, chrono_tz::UTC), days);
                truth = ask(TruthUnit::Days {
                    days: &days,
                    entity: None,
                })
            }
            Dataset::History(_) => {
                for e in &es {
                    truth.rows.extend(
                        ask(TruthUnit::Days {
                            days,
                            entity: Some(e),
                        })
                        .rows,
                    );
                }
            }
            Dataset::Snapshot(_) => {
                for e in &es {
                    truth.rows.extend(ask(TruthUnit::Poll { entity: e }).rows);
                }
            }
        }
        for table in info.tables {
            counts.insert(table.name.to_string(), 0);
        }
        for (table, n) in count_by_table(&expected_rows(&truth)) {
            counts.insert(table, n);
        }
    }
    counts
}

/// `{"partitions", "rows", "sums"}` of every table: its layout's partition columns, the rows
/// the truth expects, and the sum of each integer column holding a value, read with the
/// parquet crate.
fn table_spec(out: &Path, counts: &BTreeMap<String, usize>) -> Value {
    let mut tables = serde_json::Map::new();
    for table in datasets::tables() {
        let rows = counts[table.name];
        assert!(rows > 0, "{table}: the fixture must have rows");
        let mut sums: BTreeMap<String, Option<i64>> = BTreeMap::new();
        for (_, batches) in read_dataset(out, table.name) {
            for b in batches {
                for (f, col) in b.schema().fields().iter().zip(b.columns()) {
                    if f.data_type() != &DataType::Int64 {
                        continue;
                    }
                    let col = col.as_primitive::<Int64Type>();
                    let entry = sums.entry(f.name().clone()).or_default();
                    for i in (0..col.len()).filter(|&i| !col.is_null(i)) {
                        *entry = Some(entry.unwrap_or(0) + col.value(i));
                    }
                }
            }
        }
        let sums: serde_json::Map<String, Value> = sums
            .into_iter()
            .filter_map(|(c, s)| Some((c, json!(s?))))
            .collect();
        tables.insert(
            table.name.to_string(),
            json!({"partitions": table.partition_columns(), "rows": rows, "sums": sums}),
        );
    }
    Value::Object(tables)
}

/// Every dataset's demo queries.
fn demo_queries() -> Value {
    datasets::REGISTRY
        .iter()
        .flat_map(|d| {
            d.demo
                .queries
                .iter()
                .map(move |q| json!({"dataset": d.name, "about": q.about, "sql": q.sql}))
        })
        .collect()
}

fn backfill_args() -> Vec<&'static str> {
    vec!["backfill", "--from", DAYS[0], "--to", DAYS[1]]
}

/// The config of every dataset at `out`, for the account `account` when given.
fn write_all_config(
    dir: &Path,
    base_url: &str,
    out: &OutputAt,
    all: &[(&DatasetInfo, toml::Table, Dataset)],
    account: Option<&str>,
) -> std::path::PathBuf {
    let on: Vec<(&DatasetInfo, &toml::Table)> = all.iter().map(|(i, s, _)| (*i, s)).collect();
    let mut text = config_text(base_url, "UTC", out, &on);
    if let Some(account) = account {
        let default = format!("account_id = \"{}\"", SimulatorConfig::default().account_id);
        assert!(text.contains(&default));
        text = text.replace(&default, &format!("account_id = \"{account}\""));
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_and_duckdb_read_every_registered_dataset() {
    if opted_out(SKIP_PY_ENV, "the pyarrow/DuckDB engine checks") {
        return;
    }
    // Builds the pinned environment on first use, before the simulator starts.
    python();
    let all = every_dataset(None);
    let cfg = sim_config(31, 5, &all);
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let local = write_all_config(
        &tmp.path().join("local"),
        &sim.base_url(),
        &OutputAt::Local(out.clone()),
        &all,
        None,
    );
    assert_success(&run_bin(&local, &backfill_args()));

    let moto = moto_or_skip();
    let s3 = match &moto {
        Some(moto) => {
            moto.create_bucket("engines").await;
            let at = OutputAt::S3 {
                endpoint: moto.endpoint(),
                bucket: "engines".into(),
                prefix: "lake".into(),
            };
            let config = write_all_config(&tmp.path().join("s3"), &sim.base_url(), &at, &all, None);
            let run = Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .args(backfill_args())
                .env(
                    "SMARTASSIST_CLIENT_SECRET",
                    SimulatorConfig::default().client_secret,
                )
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env_remove("AWS_ENDPOINT_URL")
                .env_remove("RUST_LOG")
                .output()
                .expect("binary runs");
            assert_success(&run);
            json!({"endpoint": format!("127.0.0.1:{}", moto.port), "bucket": "engines", "prefix": "lake"})
        }
        None => Value::Null,
    };

    let days: Vec<NaiveDate> = DAYS.iter().map(|d| date(d)).collect();
    let spec = json!({
        "local": out,
        "s3": s3,
        "tables": table_spec(&out, &expected_counts(&cfg, &all, &days)),
        "ids": {"account_id": cfg.account_id, "bot_id": cfg.bots[0]},
        "infer_hive": true,
        "markdown": markdown(),
        "queries": demo_queries(),
        // The pages' "ids joined to names" queries: the simulator's WFM ids are all in its
        // agents and queues lists, so no name may fall back to an id.
        "names_not_ids": {"agent": "a-", "queue": "qu-"},
    });
    verify(tmp.path(), &spec);
    sim.shutdown().await;
}

/// Ids that look like numbers (`0042`, bot `7`) keep their text in DuckDB and through the
/// README's pyarrow reader (plain `partitioning="hive"` would infer int32 and fail to merge with
/// the files' string column, which is why the README gives the partition schema explicitly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_looking_ids_keep_their_text_in_duckdb_and_pyarrow() {
    if opted_out(SKIP_PY_ENV, "the pyarrow/DuckDB engine checks") {
        return;
    }
    // Builds the pinned environment on first use, before the simulator starts.
    python();
    let (account, bot) = ("0042", "7");
    let all = every_dataset(Some(bot));
    let cfg = SimulatorConfig {
        account_id: account.into(),
        ..sim_config(37, 3, &all)
    };
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = write_all_config(
        tmp.path(),
        &sim.base_url(),
        &OutputAt::Local(out.clone()),
        &all,
        Some(account),
    );
    assert_success(&run_bin(
        &config,
        &["backfill", "--from", DAYS[0], "--to", DAYS[0]],
    ));
    let spec = json!({
        "local": out,
        "s3": null,
        "tables": table_spec(&out, &expected_counts(&cfg, &all, &[date(DAYS[0])])),
        "ids": {"account_id": account, "bot_id": bot},
        "infer_hive": false,
        "markdown": markdown(),
        "queries": demo_queries(),
    });
    verify(tmp.path(), &spec);
    sim.shutdown().await;
}

/// The markdown whose ```` ```sql duckdb-check ```` blocks DuckDB runs, in this order: README
/// (the shared examples), then every dataset's page, `docs/datasets/*.md` (its views, then its
/// queries), sorted by name.
fn markdown() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<_> = std::fs::read_dir(root.join("docs/datasets"))
        .expect("docs/datasets")
        .map(|entry| entry.expect("docs/datasets entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    std::iter::once(root.join("README.md"))
        .chain(pages)
        .collect()
}

/// Runs tests/py/verify_output.py on `spec` (written into `dir`).
fn verify(dir: &Path, spec: &Value) {
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("write spec");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_output.py");
    let verify = Command::new(python())
        .arg(script)
        .arg(&spec_path)
        .output()
        .expect("python runs");
    println!("{}", String::from_utf8_lossy(&verify.stdout));
    assert!(
        verify.status.success(),
        "verify_output.py failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
