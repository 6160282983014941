//! Local disk faults, injected without mounting anything (the tests run as root, so permissions
//! cannot stop a write): the built binary backfills from its built-in simulator into a temp dir
//!
//! - with `RLIMIT_FSIZE` set below the size of any output file and SIGXFSZ ignored, so every
//!   data write fails with EFBIG ("File too large") exactly as on a full disk;
//! - with a regular file where a partition directory must go, so that partition cannot be
//!   written (ENOTDIR), while the others can.
//!
//! Each time the run must exit 1, name the failing path on stderr and leave nothing a table
//! reader would see except complete Parquet files; the next run without the fault completes the
//! data exactly (figures from the simulator's generator).

#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use smartassist_export::model::Granularity;
use smartassist_export::simulator::SimulatorConfig;

const DAYS: [&str; 3] = ["2026-05-01", "2026-05-02", "2026-05-03"];

/// A config for the built-in simulator (default seed and agents) writing to `out`.
fn simulator_config(dir: &Path, out: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"
[api]
base_url = "simulator"
account_id = "acct"
iid = "st-1"
client_id = "cs-1"
requests_per_minute = 100000

[output]
url = "{}"

[user_status]
granularity = "PT30M"
timezone = "UTC"

[intent_realtime]
enabled = false
"#,
        out.display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs `backfill` over [`DAYS`]; with `max_file_bytes`, under that file size limit.
fn backfill(config: &Path, max_file_bytes: Option<u64>) -> Output {
    run_limited(
        config,
        &["backfill", "--from", DAYS[0], "--to", DAYS[2]],
        max_file_bytes,
    )
}

/// Runs the binary with `args`; with `max_file_bytes`, under that file size limit.
fn run_limited(config: &Path, args: &[&str], max_file_bytes: Option<u64>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(config).args(args).env_remove("RUST_LOG");
    if let Some(limit) = max_file_bytes {
        // SAFETY: between fork and exec the closure only calls signal(2) and setrlimit(2),
        // which are async-signal-safe, and touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(move || {
                // Ignored (and inherited through exec), so an oversized write fails with EFBIG
                // instead of killing the process.
                if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
                let rlim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &rlim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.output().expect("binary runs")
}

/// Files under `out` a table reader would list: no path segment starts with `.` or `_`.
fn visible_files(out: &Path) -> Vec<String> {
    files_under(out)
        .into_iter()
        .filter(|f| {
            !f.split('/')
                .any(|s| s.starts_with('.') || s.starts_with('_'))
        })
        .collect()
}

/// Every visible file is a `part-00000.parquet` that reads back whole (`read_dataset` panics
/// on a truncated file), except the paths in `planted` (the test's own blockers).
fn assert_only_complete_parquet(out: &Path, planted: &[&str]) {
    for f in visible_files(out) {
        if planted.contains(&f.as_str()) {
            continue;
        }
        assert!(
            f.ends_with("/part-00000.parquet"),
            "unexpected visible file {f}"
        );
    }
    let _ = read_dataset(out, "user_status");
}

/// Rows and duration sums per day equal the generator's, without duplicates.
fn assert_exact(out: &Path) {
    let sim = SimulatorConfig::default();
    let days: Vec<_> = DAYS.iter().map(|d| date(d)).collect();
    let expected = expected_user_status(
        sim.seed,
        sim.agents,
        chrono_tz::UTC,
        &days,
        Granularity::PT30M,
        None,
    );
    let rows = user_status_rows(out);
    let actual = actual_per_day(&rows);
    for (day, (exp_rows, exp_sum, _)) in &expected {
        assert_eq!(actual.get(day), Some(&(*exp_rows, *exp_sum)), "day {day}");
    }
    assert_eq!(actual.len(), expected.len(), "{actual:?}");
    let keys: HashSet<_> = rows
        .iter()
        .map(|r| (&r.user_id, r.bucket_start, &r.metric, &r.value))
        .collect();
    assert_eq!(keys.len(), rows.len(), "duplicate rows");
}

fn partition_file(out: &Path, day: &str) -> String {
    out.join(format!(
        "user_status/account_id=acct/dt={day}/part-00000.parquet"
    ))
    .display()
    .to_string()
}

#[test]
fn a_full_disk_fails_the_run_naming_the_file_and_the_next_run_completes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = simulator_config(tmp.path(), &out);

    // Each day's file is about 10 KB; 4 KiB is not enough for any of them.
    let failed = backfill(&config, Some(4096));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&partition_file(&out, DAYS[0])),
        "stderr must name the file:\n{stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    assert_eq!(visible_files(&out), Vec::<String>::new());

    assert_success(&backfill(&config, None));
    assert_only_complete_parquet(&out, &[]);
    assert_exact(&out);
}

#[test]
fn an_unwritable_partition_fails_the_run_naming_it_and_the_next_run_completes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = simulator_config(tmp.path(), &out);
    let blocked = "user_status/account_id=acct/dt=2026-05-02";
    std::fs::create_dir_all(out.join("user_status/account_id=acct")).expect("mkdir");
    std::fs::write(out.join(blocked), b"not a directory").expect("plant blocker");

    let failed = backfill(&config, None);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&out.join(blocked).display().to_string()),
        "stderr must name the path:\n{stderr}"
    );
    assert_only_complete_parquet(&out, &[blocked]);
    assert_eq!(
        visible_files(&out).len(),
        3,
        "the two other days and the blocker"
    );

    std::fs::remove_file(out.join(blocked)).expect("remove blocker");
    assert_success(&backfill(&config, None));
    assert_only_complete_parquet(&out, &[]);
    assert_exact(&out);
}

/// The UserStatus watermark of the simulator config's account, `None` when absent.
fn watermark(out: &Path) -> Option<Vec<u8>> {
    std::fs::read(out.join("_state/user_status/account_id=acct.json")).ok()
}

/// Every visible file with its bytes.
fn visible_contents(out: &Path) -> Vec<(String, Vec<u8>)> {
    visible_files(out)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(out.join(&f)).expect("read");
            (f, bytes)
        })
        .collect()
}

/// `run --once` (lookback: yesterday and today) on a full disk: exit 1 naming the file, nothing
/// visible, no watermark; the next run exports and stores the watermark; a later run on a full
/// disk leaves the files and the watermark exactly as they were.
#[test]
fn a_full_disk_fails_run_once_without_advancing_the_watermark_and_the_next_run_completes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = simulator_config(tmp.path(), &out);

    let failed = run_limited(&config, &["run", "--once"], Some(4096));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(failed.status.code(), Some(1), "output:\n{said}");
    let partition_dir = out.join("user_status/account_id=acct/dt=");
    assert!(
        said.contains(&partition_dir.display().to_string()) && said.contains("File too large"),
        "the output must name the file and the cause:\n{said}"
    );
    assert_eq!(visible_files(&out), Vec::<String>::new());
    assert_eq!(watermark(&out), None, "the watermark advanced");

    assert_success(&run_limited(&config, &["run", "--once"], None));
    assert_only_complete_parquet(&out, &[]);
    let mark = watermark(&out).expect("the watermark is stored");
    let mark_json: serde_json::Value = serde_json::from_slice(&mark).expect("json");
    let today = date(mark_json["through_day"].as_str().expect("through_day"));
    let yesterday = today.pred_opt().expect("date");
    let sim = SimulatorConfig::default();
    let want = expected_user_status(
        sim.seed,
        sim.agents,
        chrono_tz::UTC,
        &[yesterday],
        Granularity::PT30M,
        None,
    );
    let (rows, sum, _) = want[&yesterday.to_string()];
    let actual = actual_per_day(&user_status_rows(&out));
    assert_eq!(actual.get(&yesterday.to_string()), Some(&(rows, sum)));

    let before = visible_contents(&out);
    let failed = run_limited(&config, &["run", "--once"], Some(4096));
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(watermark(&out), Some(mark), "the watermark changed");
    assert_eq!(visible_contents(&out), before, "the exported files changed");
}
