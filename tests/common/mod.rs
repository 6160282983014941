//! Shared helpers for integration tests: start the simulator in-process on loopback, write a
//! config pointing the built binary at it, run the binary (and the daemon, on a port of its
//! own), read Parquet output back with the parquet crate, and compute expected figures
//! independently from the simulator's generator. `python` holds the pinned Python environment,
//! `s3` moto and the S3 fault proxy, `disk_faults` full-disk and permission faults for the binary,
//! `loopback` hand-written API fakes on loopback and the app run in-process against them.
#![allow(dead_code)]

pub mod agent_status_details;
pub mod day_faults;
#[cfg(unix)]
pub mod disk_faults;
pub mod loopback;
pub mod recorder;
pub mod registry;
pub mod s3_faults;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::{self, user_status, RunningSimulator, SimulatorConfig};

mod python;
mod s3;
// Not every test crate uses every helper.
#[allow(unused_imports)]
pub use python::*;
#[allow(unused_imports)]
pub use s3::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_smartassist-export");

pub async fn start_sim(cfg: SimulatorConfig) -> RunningSimulator {
    simulator::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts")
}

/// A config file for the binary, talking to `base_url`, writing to `out`. `extra` is appended
/// inside the matching sections by simple string substitution: pass whole `[section]` blocks.
pub fn write_config(dir: &Path, base_url: &str, out: &Path, sections: &str) -> PathBuf {
    let sim = SimulatorConfig::default();
    let text = format!(
        r#"
[api]
base_url = "{base_url}"
account_id = "{account}"
iid = "{iid}"
client_id = "{client}"
retry_base_ms = 20
retry_max_backoff_seconds = 1
throttle_backoff_seconds = 0.05
timeout_seconds = 5
requests_per_minute = 100000

[output]
url = "{out}"

{sections}
"#,
        account = sim.account_id,
        iid = sim.iid,
        client = sim.client_id,
        out = out.display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Run the binary with the simulator's secret in the environment.
pub fn run_bin(config: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(args)
        .env(
            "SMARTASSIST_CLIENT_SECRET",
            SimulatorConfig::default().client_secret,
        )
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs");
    out
}

pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).expect("prefix").display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Read every Parquet file of a dataset; returns (relative path, batches).
pub fn read_dataset(root: &Path, dataset: &str) -> Vec<(String, Vec<RecordBatch>)> {
    files_under(&root.join(dataset))
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .map(|f| {
            let file = File::open(root.join(dataset).join(&f)).expect("open parquet");
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .expect("parquet footer")
                .build()
                .expect("reader");
            let batches = reader.map(|b| b.expect("batch")).collect();
            (f, batches)
        })
        .collect()
}

/// A UserStatus row reduced to what must be identical across runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusRow {
    pub dt: String,
    pub user_id: String,
    pub bucket_start: i64,
    pub bucket_end: i64,
    pub metric: String,
    pub value: String,
    pub seconds: i64,
    pub email: Option<String>,
}

pub fn user_status_rows(root: &Path) -> Vec<StatusRow> {
    status_rows_of(read_dataset(root, "user_status"))
}

/// [`StatusRow`]s of (path relative to the dataset, batches) pairs, sorted.
pub fn status_rows_of(files: Vec<(String, Vec<RecordBatch>)>) -> Vec<StatusRow> {
    let mut rows = Vec::new();
    for (file, batches) in files {
        let dt = file
            .split('/')
            .find_map(|s| s.strip_prefix("dt="))
            .expect("dt= segment")
            .to_string();
        for b in batches {
            let s = |n: &str| b.column_by_name(n).expect(n).as_string::<i32>().clone();
            let t = |n: &str| {
                b.column_by_name(n)
                    .expect(n)
                    .as_primitive::<TimestampMillisecondType>()
                    .clone()
            };
            let (user, metric, value, email) = (s("user_id"), s("metric"), s("value"), s("email"));
            let (start, end) = (t("bucket_start"), t("bucket_end"));
            let secs = b
                .column_by_name("duration_seconds")
                .expect("duration")
                .as_primitive::<Int64Type>()
                .clone();
            for i in 0..b.num_rows() {
                rows.push(StatusRow {
                    dt: dt.clone(),
                    user_id: user.value(i).to_string(),
                    bucket_start: start.value(i),
                    bucket_end: end.value(i),
                    metric: metric.value(i).to_string(),
                    value: value.value(i).to_string(),
                    seconds: secs.value(i),
                    email: (!email.is_null(i)).then(|| email.value(i).to_string()),
                });
            }
        }
    }
    rows.sort();
    rows
}

/// `[start, end)` of a local day, computed directly with chrono-tz (independent of the
/// exporter's window planner).
pub fn day_bounds(tz: Tz, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start_of = |d: NaiveDate| {
        let mut t = d.and_hms_opt(0, 0, 0).expect("midnight");
        loop {
            if let Some(x) = tz.from_local_datetime(&t).earliest() {
                return x.with_timezone(&Utc);
            }
            t += chrono::Duration::minutes(15);
        }
    };
    (start_of(day), start_of(day.succ_opt().expect("next day")))
}

/// Expected per-day (rows, duration sum, malformed entries) from the generator, for bucket
/// grids aligned to the local day start (valid for granularities up to PT1H and whole-hour zone
/// offsets).
pub fn expected_user_status(
    seed: u64,
    agents: usize,
    tz: Tz,
    days: &[NaiveDate],
    g: Granularity,
    malformed_every: Option<u64>,
) -> BTreeMap<String, (usize, i64, usize)> {
    let mut out = BTreeMap::new();
    for &day in days {
        let (start, end) = day_bounds(tz, day);
        let mut rows = 0;
        let mut sum = 0;
        let mut bad = 0;
        for a in 0..agents {
            let mut t = start;
            while t < end {
                for st in
                    user_status::bucket_statuses_with_malformed(seed, a, t, g, malformed_every)
                {
                    if st.malformed {
                        bad += 1;
                    } else {
                        rows += 1;
                        sum += st.seconds;
                    }
                }
                t += g.duration();
            }
        }
        out.insert(day.to_string(), (rows, sum, bad));
    }
    out
}

/// Per-day (rows, sum) of exported rows.
pub fn actual_per_day(rows: &[StatusRow]) -> BTreeMap<String, (usize, i64)> {
    let mut out: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for r in rows {
        let e = out.entry(r.dt.clone()).or_default();
        e.0 += 1;
        e.1 += r.seconds;
    }
    out
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// (session_id, end_time ms, user_id, time_handled_seconds) of every row of an
/// `intent_realtime` batch.
pub fn intent_rows(b: &RecordBatch) -> Vec<(String, i64, String, i64)> {
    let s = |n: &str| b.column_by_name(n).expect(n).as_string::<i32>().clone();
    let (id, user) = (s("session_id"), s("user_id"));
    let end = b
        .column_by_name("end_time")
        .expect("end_time")
        .as_primitive::<TimestampMillisecondType>()
        .clone();
    let handled = b
        .column_by_name("time_handled_seconds")
        .expect("handled")
        .as_primitive::<Int64Type>()
        .clone();
    (0..b.num_rows())
        .map(|i| {
            assert!(!handled.is_null(i));
            (
                id.value(i).to_string(),
                end.value(i),
                user.value(i).to_string(),
                handled.value(i),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Daemon (`run`) helpers
// ---------------------------------------------------------------------------------------------

/// `session_id` of every exported intent row, in file order (duplicates kept).
pub fn intent_session_ids(root: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for (_, batches) in read_dataset(root, "intent_realtime") {
        for b in batches {
            let sid = b
                .column_by_name("session_id")
                .expect("session_id")
                .as_string::<i32>()
                .clone();
            for i in 0..b.num_rows() {
                ids.push(sid.value(i).to_string());
            }
        }
    }
    ids
}

/// A loopback address with a port that was free a moment ago. Another process may take the
/// port before the caller binds it, so only pass it to something that reports a failed bind and
/// retry then: [`spawn_daemon_on_free_port`] and [`MotoServer::start`] do. In-process servers
/// bind `127.0.0.1:0` themselves and keep the listener instead.
fn free_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// How many fresh ports a child server gets before a port collision fails the test.
const PORT_ATTEMPTS: usize = 5;

/// Start `run` with `[server] listen` on a free loopback port; `config_for(addr)` writes the
/// config for that address and returns its path. Returns once the daemon has logged that it
/// serves, so the port is its own. A daemon that lost its port to another process between
/// [`free_addr`] and its bind exits with "Address already in use"; it is started again on a
/// fresh port (with a fresh config), at most [`PORT_ATTEMPTS`] times.
pub fn spawn_daemon_on_free_port(
    config_for: impl Fn(std::net::SocketAddr) -> PathBuf,
    log: &Path,
) -> (std::process::Child, std::net::SocketAddr) {
    spawn_daemon_on_free_port_with(config_for, log, &[], &[])
}

/// [`spawn_daemon_on_free_port`] with extra global `flags` (e.g. `-q`) and `env` variables.
/// The log must still show the INFO line "Serving /healthz" (so `-q` needs `RUST_LOG`).
pub fn spawn_daemon_on_free_port_with(
    config_for: impl Fn(std::net::SocketAddr) -> PathBuf,
    log: &Path,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, std::net::SocketAddr) {
    let limit = std::time::Duration::from_secs(60);
    for _ in 0..PORT_ATTEMPTS {
        let addr = free_addr();
        let mut child = spawn_daemon_with(&config_for(addr), log, flags, env);
        let deadline = std::time::Instant::now() + limit;
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("Serving /healthz") {
                return (child, addr);
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                if text.contains("Address already in use") {
                    eprintln!(
                        "NOTE: port {} was taken before the daemon bound it; retrying on another.",
                        addr.port()
                    );
                    break;
                }
                panic!("daemon exited at startup with {status}; log:\n{text}");
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not start serving within {limit:?}; log:\n{text}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    panic!("every one of {PORT_ATTEMPTS} free ports was taken before the daemon bound it");
}

/// Start `run` in the background with the simulator's secret in the environment (stderr, the
/// log, goes to `log`). Use [`spawn_daemon_on_free_port`] when the config has a `[server]`.
pub fn spawn_daemon(config: &Path, log: &Path) -> std::process::Child {
    spawn_daemon_with(config, log, &[], &[])
}

fn spawn_daemon_with(
    config: &Path,
    log: &Path,
    flags: &[&str],
    env: &[(&str, &str)],
) -> std::process::Child {
    let log = File::create(log).expect("log file");
    Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(["--log-format", "json"])
        .args(flags)
        .arg("run")
        .env(
            "SMARTASSIST_CLIENT_SECRET",
            SimulatorConfig::default().client_secret,
        )
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("daemon starts")
}

/// `GET http://addr/path` → (status, body); `None` while nothing listens.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    smartassist_export::server::http_get(addr, path).ok()
}

/// Value of one series in a Prometheus text body, e.g.
/// `metric(&text, "smartassist_runs_total{dataset=\"user_status\",outcome=\"success\"}")`.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Poll `/metrics` (every 100 ms, at most `limit`) until `done` holds; returns the last body.
pub fn wait_for_metrics(
    addr: std::net::SocketAddr,
    child: &mut std::process::Child,
    limit: std::time::Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("daemon exited early with {status}");
        }
        if let Some((200, body)) = http_get(addr, "/metrics") {
            if done(&body) {
                return body;
            }
            if std::time::Instant::now() > deadline {
                panic!("condition not reached within {limit:?}; metrics:\n{body}");
            }
        } else if std::time::Instant::now() > deadline {
            panic!("/metrics never answered within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Send SIGTERM and wait for the exit (a hang guard of `limit`, not a timing assertion).
#[cfg(unix)]
pub fn sigterm_and_wait(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions; the pid is
    // our own child's, not yet reaped (try_wait has not returned its status), so it cannot
    // have been reused. Calling it directly spares the tests a dependency on procps' `kill`.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill(SIGTERM): {}", std::io::Error::last_os_error());
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("daemon did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Developer opt-outs
// ---------------------------------------------------------------------------------------------

/// Env var a developer sets to `1` to skip the S3 tests when moto is not installed locally.
pub const SKIP_S3_ENV: &str = "SMARTASSIST_SKIP_S3";
/// Env var a developer sets to `1` to skip the Python engine tests (pyarrow, duckdb).
pub const SKIP_PY_ENV: &str = "SMARTASSIST_SKIP_PY";

/// Whether the developer opted out with `name=1` (prints a note when so).
pub fn opted_out(name: &str, what: &str) -> bool {
    let skip = std::env::var(name).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("NOTE: {name}=1 is set: skipping {what}.");
    }
    skip
}

/// The current time, taken clear of local midnight in `tz`: a test that freezes the simulator's
/// clock at this instant and then runs the binary on the real clock expects both to see the
/// same local day. Within `margin` before midnight it waits for the day to turn (a known
/// instant, not a guess) and returns a time just after it.
pub async fn now_clear_of_midnight(tz: Tz, margin: chrono::Duration) -> DateTime<Utc> {
    let now = Utc::now();
    let next_midnight = now
        .with_timezone(&tz)
        .date_naive()
        .succ_opt()
        .and_then(|d| {
            tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc));
    match next_midnight {
        Some(m) if m - now < margin => {
            let wait = (m - now + chrono::Duration::seconds(1))
                .to_std()
                .unwrap_or_default();
            tokio::time::sleep(wait).await;
            Utc::now()
        }
        _ => now,
    }
}
