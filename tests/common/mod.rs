//! Shared helpers for integration tests: start the simulator in-process on loopback, write a
//! config pointing the built binary at it, run the binary, read Parquet output back with the
//! parquet crate, and compute expected figures independently from the simulator's generator.
#![allow(dead_code)]

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
use smartassist_export::simulator::{self, generator, RunningSimulator, SimulatorConfig};

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
                for st in generator::bucket_statuses_with_malformed(seed, a, t, g, malformed_every)
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
// The pinned Python environment
// ---------------------------------------------------------------------------------------------

/// What to install when `python3` is missing or cannot build the environment.
pub const PYTHON_HINT: &str = "install python3 (3.11 or newer) with the venv module \
     (Debian/Ubuntu: apt-get install python3 python3-venv)";

/// The interpreter of the project's pinned Python environment, `<target dir>/py-venv`, which
/// `tests/py/bootstrap.py` builds with `python3` from `tests/py/requirements.txt` on first use
/// (later calls, in this process or the next run, reuse it; the script's lock and completion
/// stamp make parallel test processes wait for one build). Every test that runs Python uses
/// this interpreter, never a global one. Panics, saying what to install, when `python3` is
/// missing or the build fails; call it only after the `SMARTASSIST_SKIP_*` opt-out checks.
pub fn python() -> &'static Path {
    static PYTHON: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    match PYTHON.get_or_init(bootstrap_python) {
        Ok(path) => path,
        Err(why) => panic!("{why}"),
    }
}

fn bootstrap_python() -> Result<PathBuf, String> {
    use std::io::{BufRead, Write};
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/bootstrap.py");
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`, so this honours CARGO_TARGET_DIR.
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target tmp dir has a parent")
        .join("py-venv");
    let skip = format!("or set {SKIP_PY_ENV}=1 {SKIP_S3_ENV}=1 to skip the tests that need it");
    let mut child = match Command::new("python3")
        .arg(&script)
        .arg(&venv)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "python3 is not on PATH; the Python interoperability tests need it: {PYTHON_HINT}, {skip}"
            ))
        }
        Err(e) => return Err(format!("cannot run python3: {e}")),
    };
    // Progress goes straight to the terminal (past the test harness's capture) so a first run
    // does not look hung; it is kept for the panic message too.
    let mut said = String::new();
    for line in std::io::BufReader::new(child.stderr.take().expect("piped")).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(std::io::stderr(), "{line}");
        said.push_str(&line);
        said.push('\n');
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{} could not prepare {} ({}):\n{said}If python3 is the problem: {PYTHON_HINT}, {skip}",
            script.display(),
            venv.display(),
            out.status
        ));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "bootstrap.py printed {path:?}, which does not exist"
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// S3 (moto) helpers
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

/// moto's S3 server on a loopback port, killed on drop.
pub struct MotoServer {
    child: std::process::Child,
    pub port: u16,
}

impl MotoServer {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start `python -m moto.server` (the pinned interpreter of [`python()`]) on a free port
    /// and return once it serves HTTP. moto reports its bind on stderr: " * Running on ..."
    /// once the port is its own, "Address already in use" when another process took the port
    /// first, in which case it is started again on a fresh one. Panics when moto cannot start:
    /// tests that need it must fail, not skip, unless the developer opted out.
    pub fn start() -> MotoServer {
        let limit = std::time::Duration::from_secs(60);
        for _ in 0..PORT_ATTEMPTS {
            let port = free_addr().port();
            let mut child = Command::new(python())
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start moto: {e}"));
            let verdict = moto_bind_verdict(child.stderr.take().expect("piped stderr"));
            match verdict.recv_timeout(limit) {
                Ok(Ok(())) => {}
                Ok(Err(output)) if output.contains("Address already in use") => {
                    let _ = child.wait();
                    eprintln!(
                        "NOTE: port {port} was taken before moto bound it; retrying on another."
                    );
                    continue;
                }
                Ok(Err(output)) => {
                    let status = child.wait().expect("wait");
                    panic!("moto exited at startup with {status} (set {SKIP_S3_ENV}=1 to skip the S3 tests):\n{output}");
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("moto did not report listening within {limit:?}");
                }
            }
            let server = MotoServer { child, port };
            let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = std::time::Instant::now() + limit;
            while http_get(addr, "/").is_none() {
                if std::time::Instant::now() > deadline {
                    panic!("moto did not answer on {addr} within {limit:?}");
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            return server;
        }
        panic!("every one of {PORT_ATTEMPTS} free ports was taken before moto bound it");
    }

    /// Create a bucket (path-style `PUT /bucket`; moto does not check signatures).
    pub async fn create_bucket(&self, bucket: &str) {
        let resp = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint()))
            .send()
            .await
            .expect("PUT bucket");
        assert!(
            resp.status().is_success(),
            "create bucket: {}",
            resp.status()
        );
    }

    /// Keys of the multipart uploads still in progress in `bucket`.
    pub async fn open_multipart_uploads(&self, bucket: &str) -> Vec<String> {
        let body = reqwest::Client::new()
            .get(format!("{}/{bucket}?uploads", self.endpoint()))
            .send()
            .await
            .expect("ListMultipartUploads")
            .text()
            .await
            .expect("body");
        body.split("<Upload>")
            .skip(1)
            .filter_map(|u| {
                let start = u.find("<Key>")? + 5;
                let end = u.find("</Key>")?;
                Some(u[start..end].to_string())
            })
            .collect()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads moto's stderr on a thread: sends `Ok(())` on werkzeug's " * Running on" line (the
/// socket is bound), or `Err(everything printed)` if stderr closes first (moto exited). Keeps
/// draining afterwards, since moto logs every request there and a full pipe would stall it.
fn moto_bind_verdict(
    stderr: std::process::ChildStderr,
) -> std::sync::mpsc::Receiver<Result<(), String>> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut reported = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !reported {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains("Running on http://") {
                    let _ = tx.send(Ok(()));
                    reported = true;
                }
            }
        }
        if !reported {
            let _ = tx.send(Err(seen));
        }
    });
    rx
}

/// moto, or `None` when the developer set `SMARTASSIST_SKIP_S3=1`.
pub fn moto_or_skip() -> Option<MotoServer> {
    if opted_out(SKIP_S3_ENV, "the S3 tests against moto") {
        return None;
    }
    Some(MotoServer::start())
}

/// An object_store client for `bucket` at `endpoint` with moto's dummy credentials, built
/// independently of the exporter's `Sink::open`.
pub fn s3_client(endpoint: &str, bucket: &str) -> std::sync::Arc<dyn object_store::ObjectStore> {
    std::sync::Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("S3 client"),
    )
}

/// Every object key under `prefix`, sorted.
pub async fn s3_keys(store: &dyn object_store::ObjectStore, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let prefix = object_store::path::Path::from(prefix);
    let mut keys: Vec<String> = store
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    keys.sort();
    keys
}

/// Read every Parquet object of `dataset` under `prefix`; returns (path relative to the
/// dataset, batches), like [`read_dataset`].
pub async fn read_s3_dataset(
    store: &dyn object_store::ObjectStore,
    prefix: &str,
    dataset: &str,
) -> Vec<(String, Vec<RecordBatch>)> {
    use object_store::ObjectStoreExt;
    let base = format!("{prefix}/{dataset}/");
    let mut out = Vec::new();
    for key in s3_keys(store, &format!("{prefix}/{dataset}")).await {
        if !key.ends_with(".parquet") {
            continue;
        }
        let bytes = store
            .get(&object_store::path::Path::from(key.as_str()))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet footer")
            .build()
            .expect("reader");
        let rel = key.strip_prefix(&base).expect("under dataset").to_string();
        out.push((rel, reader.map(|b| b.expect("batch")).collect()));
    }
    out
}

/// A fault the [`FaultProxy`] injects: the matching requests get a non-retryable S3 error
/// (400) after their body has been read; everything else is forwarded to moto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Every PUT (PutObject or UploadPart) whose path contains this string.
    PutPathContains(String),
    /// UploadPart requests with this `partNumber`.
    UploadPart(u32),
    /// UploadPart requests with this `partNumber` get no answer until [`FaultProxy::release`],
    /// then a 400; [`FaultProxy::stalled`] resolves once one arrived.
    StallUploadPart(u32),
}

/// `%XX` escapes decoded (object_store percent-encodes `=` in keys); invalid escapes kept.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP proxy on loopback in front of moto that fails chosen requests, so uploads break
/// mid-way without stopping moto (whose in-memory state would be lost on restart).
pub struct FaultProxy {
    pub addr: std::net::SocketAddr,
    fault: std::sync::Arc<std::sync::Mutex<Option<Fault>>>,
    injected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stalled: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: String) -> FaultProxy {
        use axum::body::Body;
        use axum::extract::{Request, State};
        use axum::response::Response;

        #[derive(Clone)]
        struct Shared {
            upstream: String,
            client: reqwest::Client,
            fault: std::sync::Arc<std::sync::Mutex<Option<Fault>>>,
            injected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
            stalled: std::sync::Arc<tokio::sync::Notify>,
            release: std::sync::Arc<tokio::sync::Notify>,
        }

        async fn handle(State(s): State<Shared>, req: Request) -> Response {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("request body");
            let path_and_query = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            let is_put = parts.method == axum::http::Method::PUT;
            let is_part = |n: &u32| {
                is_put
                    && parts
                        .uri
                        .query()
                        .is_some_and(|q| q.split('&').any(|kv| kv == format!("partNumber={n}")))
            };
            let fault = s.fault.lock().expect("lock").clone();
            let fail = match &fault {
                Some(Fault::PutPathContains(needle)) => {
                    is_put && percent_decode(parts.uri.path()).contains(needle.as_str())
                }
                Some(Fault::UploadPart(n)) => is_part(n),
                Some(Fault::StallUploadPart(n)) if is_part(n) => {
                    s.injected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let released = s.release.notified();
                    s.stalled.notify_waiters();
                    released.await;
                    true
                }
                Some(Fault::StallUploadPart(_)) => false,
                None => false,
            };
            if fail {
                s.injected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Response::builder()
                    .status(400)
                    .header("content-type", "application/xml")
                    .body(Body::from(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidRequest</Code><Message>injected fault</Message></Error>",
                    ))
                    .expect("response");
            }
            let mut fwd = s
                .client
                .request(
                    parts.method.clone(),
                    format!("{}{path_and_query}", s.upstream),
                )
                .body(body);
            for (name, value) in &parts.headers {
                if name != axum::http::header::CONTENT_LENGTH
                    && name != axum::http::header::TRANSFER_ENCODING
                    && name != axum::http::header::CONNECTION
                {
                    fwd = fwd.header(name, value);
                }
            }
            let resp = fwd.send().await.expect("forward to moto");
            let mut builder = Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                if name != axum::http::header::CONTENT_LENGTH
                    && name != axum::http::header::TRANSFER_ENCODING
                    && name != axum::http::header::CONNECTION
                {
                    builder = builder.header(name, value);
                }
            }
            let bytes = resp.bytes().await.expect("moto body");
            builder.body(Body::from(bytes)).expect("response")
        }

        let fault = std::sync::Arc::new(std::sync::Mutex::new(None));
        let injected = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stalled = std::sync::Arc::new(tokio::sync::Notify::new());
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let shared = Shared {
            upstream,
            client: reqwest::Client::new(),
            fault: fault.clone(),
            injected: injected.clone(),
            stalled: stalled.clone(),
            release: release.clone(),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy {
            addr,
            fault,
            injected,
            stalled,
            release,
            task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Set (or clear with `None`) the fault.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.fault.lock().expect("lock") = fault;
    }

    /// A future that resolves when the next stalled request arrives (create it before the
    /// request can be sent).
    pub fn stalled(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.stalled.notified()
    }

    /// Lets every stalled request go on (with its 400).
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    /// How many requests were failed (or stalled) so far.
    pub fn injected(&self) -> usize {
        self.injected.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
