//! Check 7: a crash just before the state commit, then a re-run. The built binary runs
//! `run --once` for one dataset on S3 (moto, behind the fault proxy of `tests/common/s3.rs`);
//! the proxy holds the PUT of the dataset's commit object (a history dataset's watermark, a
//! snapshot entity's poll state: the last state object a complete run writes, leases and
//! coverage records aside, found by a run into a scratch prefix) and reports it, and the test SIGKILLs the process
//! right then, after every data file of the run is durable and before its state is. Readers must then see
//! no partial file and no row twice; the re-run (no fault) must leave exactly the truth's rows,
//! only complete Parquet files under the table folders, and the state committed.
//! A dataset whose row key holds the moment of the poll (`polled_at`, stamped by the
//! exporter's clock) is compared with that part left out: each run polls its own moment.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use smartassist_export::coverage::is_coverage_object;
use smartassist_export::datasets::{self, Dataset, DatasetInfo};
use smartassist_export::simulator::truth::{local_date, Truth, TruthUnit};
use smartassist_export::simulator::SimulatorConfig;

use super::common::registry::*;
use super::common::*;
use super::{history_truth, sim_config, truth_of, NY, ZONE};

const BUCKET: &str = "compliance";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_state_commit_then_a_rerun_leaves_exact_rows_and_no_stray_files() {
    let Some(moto) = moto_or_skip() else {
        return;
    };
    moto.create_bucket(BUCKET).await;
    let proxy = FaultProxy::start(moto.endpoint()).await;
    let store = s3_client(&moto.endpoint(), BUCKET);
    for info in datasets::REGISTRY {
        let section = section(info, &[]);
        let d = enabled(info, &section);
        crash_then_rerun(info, &d, &section, &proxy, store.as_ref()).await;
    }
}

/// The `_state/` object (its name under `_state/`) whose write ends a run of `config` (written
/// for `prefix`): the last state object a complete run writes, leases and coverage records
/// aside (a coverage record describes data already committed). Found by a run into a scratch
/// prefix through the proxy, so the suite needs to know no dataset's state.
async fn commit_object(
    name: &str,
    config: &str,
    prefix: &str,
    dir: &Path,
    proxy: &FaultProxy,
) -> String {
    let scratch = format!("scratch-{name}");
    let path = dir.join("scratch.toml");
    std::fs::write(
        &path,
        config.replace(&format!("/{prefix}\""), &format!("/{scratch}\"")),
    )
    .expect("config");
    let before = proxy.puts().len();
    assert_success(&run_once_command(&path).output().expect("binary runs"));
    let state = format!("/{BUCKET}/{scratch}/_state/");
    proxy.puts()[before..]
        .iter()
        .filter_map(|p| p.strip_prefix(&state))
        .rfind(|p| !p.starts_with("lease/") && !is_coverage_object(p))
        .unwrap_or_else(|| panic!("{name}: a run of it writes no state object"))
        .to_string()
}

async fn crash_then_rerun(
    info: &'static DatasetInfo,
    d: &Dataset,
    section: &toml::Table,
    proxy: &FaultProxy,
    store: &dyn object_store::ObjectStore,
) {
    let name = info.name;
    let cfg = sim_config(d, Utc::now(), None);
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let prefix = format!("crash-{name}");
    let out = OutputAt::S3 {
        endpoint: proxy.endpoint(),
        bucket: BUCKET.into(),
        prefix: prefix.clone(),
    };
    let config = tmp.path().join("config.toml");
    let text = dataset_config_text(&sim.base_url(), ZONE, &out, info, section);
    std::fs::write(&config, &text).expect("config");
    let commit = format!(
        "{prefix}/_state/{}",
        commit_object(name, &text, &prefix, tmp.path(), proxy).await
    );
    let first_day = local_date(zone_of(section, NY), Utc::now());

    // The run, killed while its commit object is being written.
    proxy.set_fault(Some(Fault::StallPutPathContains(commit.clone())));
    let stalled = proxy.stalled();
    tokio::pin!(stalled);
    let log = tmp.path().join("killed.log");
    let mut child = run_once_command(&config)
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("binary starts");
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = &mut stalled => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    panic!("{name}: run --once ended ({status}) without writing {commit}:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default());
                }
                assert!(started.elapsed() < Duration::from_secs(120), "{name}: no write of {commit}");
            }
        }
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{name}: killed by SIGKILL");
    }
    proxy.set_fault(None);
    proxy.release();

    let keys = s3_keys(store, &prefix).await;
    assert!(
        !keys.iter().any(|k| percent_decode(k) == commit),
        "{name}: the state was committed"
    );
    // What the killed run published is complete, each row once, nothing the API lacks.
    let truth = truth_for(
        &cfg,
        info,
        d,
        section,
        first_day,
        local_date(zone_of(section, NY), Utc::now()),
    );
    let want = without_poll_time(info, &expected_rows(&truth));
    let got = s3_rows(store, &prefix, info).await;
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(3).collect();
    assert!(
        twice.is_empty(),
        "{name}: after the crash, rows twice: {twice:?}"
    );
    let got = without_poll_time(info, &got);
    let unexpected: Vec<_> = got
        .iter()
        .filter(|(k, _)| !want.contains_key(*k))
        .take(3)
        .collect();
    assert!(
        unexpected.is_empty(),
        "{name}: after the crash: {unexpected:?}"
    );
    assert!(
        !got.is_empty(),
        "{name}: the killed run published nothing before its commit"
    );

    // The re-run.
    let rerun = run_once_command(&config).output().expect("binary runs");
    assert_success(&rerun);
    let truth = truth_for(
        &cfg,
        info,
        d,
        section,
        first_day,
        local_date(zone_of(section, NY), Utc::now()),
    );
    let got = s3_rows(store, &prefix, info).await;
    println!(
        "{name}: killed while writing {commit}; after the re-run {} rows",
        got.len()
    );
    if stamped_by_poll_time(info) {
        // Each run is a poll of its own moment: rows of both runs, each once, and of every
        // entity the truth names, nothing else.
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(3).collect();
        assert!(
            twice.is_empty(),
            "{name}: after the re-run, rows twice: {twice:?}"
        );
        let want = without_poll_time(info, &expected_rows(&truth));
        let got = without_poll_time(info, &got);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{name} after a crash and a re-run (poll time aside)"
        );
    } else {
        assert_rows(
            &format!("{name} after a crash and a re-run"),
            &expected_rows(&truth),
            &got,
        );
    }
    let keys = s3_keys(store, &prefix).await;
    let stray: Vec<String> = keys
        .iter()
        .map(|k| percent_decode(k))
        .filter_map(|k| {
            let rel = k.strip_prefix(&format!("{prefix}/"))?.to_string();
            let (table, rest) = rel.split_once('/')?;
            let ours = info.tables.iter().any(|t| t.name == table);
            (ours && visible_to_readers_and_stray(rest)).then_some(rel)
        })
        .collect();
    assert_eq!(
        stray,
        Vec::<String>::new(),
        "{name}: objects readers would see"
    );
    assert!(
        keys.iter().any(|k| percent_decode(k) == commit),
        "{name}: the re-run committed no state"
    );
    sim.shutdown().await;
}

/// What runs between `first_day` and `last_day` (local, in the account zone) must export: the
/// days from the first run's `today` less the section's `lookback_days` through the re-run's
/// `today`, or one poll of every entity.
fn truth_for(
    cfg: &SimulatorConfig,
    info: &DatasetInfo,
    d: &Dataset,
    section: &toml::Table,
    first_day: chrono::NaiveDate,
    last_day: chrono::NaiveDate,
) -> Truth {
    match d {
        Dataset::History(_) => {
            let lookback = match d.snapshot_day(Utc::now()) {
                // Only today's snapshot day: no lookback.
                Some(_) => 0,
                None => effective_section(info, section)
                    .get("lookback_days")
                    .and_then(toml::Value::as_integer)
                    .unwrap_or_else(|| {
                        panic!("{}: a history section has lookback_days", info.name)
                    }),
            };
            let from = first_day - chrono::Duration::days(lookback);
            let days: Vec<_> = from.iter_days().take_while(|x| *x <= last_day).collect();
            history_truth(cfg, info, d, section, &days)
        }
        Dataset::Snapshot(s) => {
            let mut all = Truth::default();
            for e in s.entities() {
                let t = truth_of(cfg, info, section, TruthUnit::Poll { entity: e });
                all.rows.extend(t.rows);
            }
            all
        }
    }
}

/// Every row of `info`'s tables under `prefix`.
async fn s3_rows(store: &dyn object_store::ObjectStore, prefix: &str, info: &DatasetInfo) -> Rows {
    let mut rows = Rows::new();
    for table in info.tables {
        let files = read_s3_dataset(store, prefix, table.name)
            .await
            .into_iter()
            .map(|(rel, batches)| (percent_decode(&rel), batches))
            .collect();
        rows_of(table, files, &mut rows);
    }
    rows
}

/// `run --once` of `config`, with the simulator's secret and moto's credentials.
fn run_once_command(config: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("-c")
        .arg(config)
        .args(["run", "--once"])
        .env(
            "SMARTASSIST_CLIENT_SECRET",
            SimulatorConfig::default().client_secret,
        )
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null());
    cmd
}

/// The key column that holds the moment of the poll, stamped by the exporter's clock
/// (`queue_stats`): a frozen simulator's truth names the moment it was frozen at, and the
/// killed run and the re-run are two polls of their own moments.
const POLL_TIME_COLUMN: &str = "polled_at";

fn stamped_by_poll_time(info: &DatasetInfo) -> bool {
    info.tables
        .iter()
        .any(|t| t.key.contains(&POLL_TIME_COLUMN))
}

/// `rows` with the poll time left out of the key (and the `dt` it decides) of every table whose
/// key holds it; the counts of rows that then share a key add up.
fn without_poll_time(info: &DatasetInfo, rows: &Rows) -> Rows {
    let mut out = Rows::new();
    for ((table, dt, entity, key), n) in rows {
        let position = info
            .tables
            .iter()
            .find(|t| t.name == table)
            .and_then(|t| t.key.iter().position(|c| *c == POLL_TIME_COLUMN));
        let id = match position {
            Some(i) => {
                let parts: Vec<&str> = key
                    .split('|')
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| p)
                    .collect();
                let day = chrono::NaiveDate::default();
                (table.clone(), day, entity.clone(), parts.join("|"))
            }
            None => (table.clone(), *dt, entity.clone(), key.clone()),
        };
        *out.entry(id).or_default() += n;
    }
    out
}
