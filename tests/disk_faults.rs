//! Local disk faults, injected without mounting anything (see `common::disk_faults` for how):
//! the built binary exports from a simulator into a temp dir
//!
//! - with `RLIMIT_FSIZE` below the size of an output file and SIGXFSZ ignored, so that write
//!   fails with EFBIG ("File too large") exactly as on a full disk: UserStatus backfills and
//!   `run --once`, and IntentRealtimeData polls failing at the partition index (the claim of new
//!   sessions), at the data file and at the merged file of a closed day;
//! - with a regular file where a partition directory must go (ENOTDIR);
//! - as a user that may not write a directory (EACCES): the output directory itself (no
//!   `_locks/`, then no `_state/`), an intent partition, and the folder of a bot's poll state
//!   (after the poll's data is published). Root ignores permission bits, so when the tests run
//!   as root the binary runs as `nobody` (checked by asking such a child who it is).
//!
//! Each time the run must exit 1, name the failing path on stderr, leave nothing a table reader
//! would see except complete Parquet files and not advance the state past data it did not
//! write; the next run without the fault completes the data exactly, each session once
//! (figures from the simulator's generator).

#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Output;

use common::disk_faults::*;
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

fn assert_only_complete_user_status(out: &Path, planted: &[&str]) {
    assert_only_complete_parquet(out, "user_status", planted);
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
    assert_only_complete_user_status(&out, &[]);
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
    assert_only_complete_user_status(&out, &[blocked]);
    assert_eq!(
        visible_files(&out).len(),
        3,
        "the two other days and the blocker"
    );

    std::fs::remove_file(out.join(blocked)).expect("remove blocker");
    assert_success(&backfill(&config, None));
    assert_only_complete_user_status(&out, &[]);
    assert_exact(&out);
}

/// The UserStatus watermark of the simulator config's account, `None` when absent.
fn watermark(out: &Path) -> Option<Vec<u8>> {
    std::fs::read(out.join("_state/user_status/account_id=acct.json")).ok()
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
    let said = said(&failed);
    assert_eq!(failed.status.code(), Some(1), "output:\n{said}");
    let partition_dir = out.join("user_status/account_id=acct/dt=");
    assert!(
        said.contains(&partition_dir.display().to_string()) && said.contains("File too large"),
        "the output must name the file and the cause:\n{said}"
    );
    assert_eq!(visible_files(&out), Vec::<String>::new());
    assert_eq!(watermark(&out), None, "the watermark advanced");

    assert_success(&run_limited(&config, &["run", "--once"], None));
    assert_only_complete_user_status(&out, &[]);
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

// ---------------------------------------------------------------------------------------------
// IntentRealtimeData polls (`run --once`) against an in-process simulator frozen in time
// ---------------------------------------------------------------------------------------------

const BOT: &str = "st-bot-1";
/// The local day of every session the intent simulators below return.
const INTENT_DAY: &str = "2024-05-01";
const INTENT_SECTIONS: &str = "[user_status]\nenabled = false\n\n[intent_realtime]\n\
     bot_ids = [\"st-bot-1\"]\ntimezone = \"UTC\"\n";

/// A simulator whose "now" is `minutes` after 2024-05-01T12:00Z, one session a minute: each
/// poll returns the 25 sessions that ended in the 24 minutes before, all on [`INTENT_DAY`], a
/// day closed long ago (so a successful poll that adds sessions to it also merges its files).
fn intent_sim(minutes: i64) -> SimulatorConfig {
    let noon = date(INTENT_DAY)
        .and_hms_opt(12, 0, 0)
        .expect("time")
        .and_utc();
    SimulatorConfig {
        bots: vec![BOT.into()],
        intent_interval: std::time::Duration::from_secs(60),
        intent_epoch: noon - chrono::TimeDelta::days(1),
        frozen_now: Some(noon + chrono::TimeDelta::minutes(minutes)),
        ..SimulatorConfig::default()
    }
}

/// The number of the newest session `sim` returns.
fn newest(sim: &SimulatorConfig) -> u64 {
    let now = sim.frozen_now.expect("frozen");
    smartassist_export::simulator::intent_realtime::latest_session_index(
        &smartassist_export::simulator::intent_realtime::feed(sim, BOT),
        now,
    )
    .expect("sessions")
}

/// The numbers of the sessions `sim` returns.
fn returned(sim: &SimulatorConfig) -> std::ops::RangeInclusive<u64> {
    newest(sim) - 24..=newest(sim)
}

/// A config (in its own folder `name` of `tmp`) polling the simulator at `base_url` into `out`.
fn intent_config(tmp: &Path, name: &str, base_url: &str, out: &Path) -> std::path::PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    write_config(&dir, base_url, out, INTENT_SECTIONS)
}

const RUN_ONCE: [&str; 2] = ["run", "--once"];
const ACCOUNT_STATE: &str = "_state/intent_realtime/account_id=demo-account";

/// The bot's poll state, `None` when absent.
fn poll_state(out: &Path) -> Option<Vec<u8>> {
    std::fs::read(out.join(format!("{ACCOUNT_STATE}/bot_id={BOT}.json"))).ok()
}

/// The partition index of [`INTENT_DAY`] (absolute).
fn index_path(out: &Path) -> String {
    out.join(format!("{ACCOUNT_STATE}/bot_id={BOT}/dt={INTENT_DAY}.json"))
        .display()
        .to_string()
}

/// The partition folder of [`INTENT_DAY`], relative to the output.
fn partition() -> String {
    format!("intent_realtime/account_id=demo-account/bot_id={BOT}/dt={INTENT_DAY}")
}

/// Exit code 1, and the output says each of `needles`.
fn assert_failed_saying(output: &Output, needles: &[&str]) {
    let said = said(output);
    assert_eq!(output.status.code(), Some(1), "output:\n{said}");
    for n in needles {
        assert!(said.contains(n), "the output must say {n:?}:\n{said}");
    }
}

/// First poll on a full disk: the claim of the 25 new sessions in the partition index (about
/// 14 KB of JSON, larger than their Parquet file) cannot be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_an_intent_poll_at_the_partition_index_and_the_next_poll_completes() {
    let cfg = intent_sim(0);
    let sim = start_sim(cfg.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config = intent_config(tmp.path(), "a", &sim.base_url(), &out);

    let failed = run_limited(&config, &RUN_ONCE, Some(4096));
    assert_failed_saying(&failed, &[&index_path(&out), "File too large"]);
    assert_eq!(visible_files(&out), Vec::<String>::new());
    assert!(!Path::new(&index_path(&out)).exists(), "the index changed");
    assert_eq!(poll_state(&out), None, "the poll state advanced");

    assert_success(&run_limited(&config, &RUN_ONCE, None));
    assert_only_complete_parquet(&out, "intent_realtime", &[]);
    assert_intent_exact(&out, &cfg, BOT, returned(&cfg));
    sim.shutdown().await;
}

/// Polls 25 sessions, then (three minutes later) polls three new ones under `max_file_bytes`:
/// that poll must fail naming a Parquet file of the partition and "File too large", leave the
/// poll state as it was and show `visible_after` sessions, each once, in complete files (25:
/// the files are unchanged); the next poll completes the 28 sessions, each once, in one file.
async fn second_intent_poll_on_a_full_disk(max_file_bytes: u64, visible_after: usize) {
    let (first, second) = (intent_sim(0), intent_sim(3));
    let (sim_a, sim_b) = (
        start_sim(first.clone()).await,
        start_sim(second.clone()).await,
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let config_a = intent_config(tmp.path(), "a", &sim_a.base_url(), &out);
    let config_b = intent_config(tmp.path(), "b", &sim_b.base_url(), &out);
    assert_success(&run_limited(&config_a, &RUN_ONCE, None));
    let (files, state) = (visible_contents(&out), poll_state(&out));
    assert!(state.is_some(), "the first poll stores its state");

    let failed = run_limited(&config_b, &RUN_ONCE, Some(max_file_bytes));
    let file_prefix = out.join(partition()).join("part-").display().to_string();
    assert_failed_saying(&failed, &[&file_prefix, ".parquet: ", "File too large"]);
    assert_eq!(poll_state(&out), state, "the poll state changed");
    assert_only_complete_parquet(&out, "intent_realtime", &[]);
    let ids = intent_session_ids(&out);
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!((unique.len(), ids.len()), (visible_after, visible_after));
    if visible_after == 25 {
        assert_eq!(visible_contents(&out), files, "the exported files changed");
    }

    assert_success(&run_limited(&config_b, &RUN_ONCE, None));
    assert_only_complete_parquet(&out, "intent_realtime", &[]);
    assert_intent_exact(
        &out,
        &second,
        BOT,
        *returned(&first).start()..=newest(&second),
    );
    assert_eq!(visible_files(&out).len(), 1, "the closed day is one file");
    sim_a.shutdown().await;
    sim_b.shutdown().await;
}

/// The claim of three sessions (2.1 KB of index) fits; their Parquet file (5.6 KB) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_an_intent_poll_at_the_data_file_without_losing_its_claimed_sessions() {
    second_intent_poll_on_a_full_disk(3800, 25).await;
}

/// The three sessions' file (5.6 KB) fits; the file merging the closed day's two files into one
/// (7.6 KB) does not: both inputs stay, nothing is visible twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_merge_of_a_closed_intent_day_and_the_next_poll_finishes_it() {
    second_intent_poll_on_a_full_disk(6700, 28).await;
}

// ---------------------------------------------------------------------------------------------
// Permission errors (EACCES): the binary runs as `nobody` when the tests run as root
// ---------------------------------------------------------------------------------------------

/// A simulator frozen at [`intent_sim`]`(0)`, a temp dir with a config for it, the output
/// folder path and a runner for the binary.
struct PermissionCase {
    cfg: SimulatorConfig,
    sim: smartassist_export::simulator::RunningSimulator,
    tmp: tempfile::TempDir,
    out: std::path::PathBuf,
    config: std::path::PathBuf,
    runner: Runner,
}

impl PermissionCase {
    async fn start() -> PermissionCase {
        let cfg = intent_sim(0);
        let sim = start_sim(cfg.clone()).await;
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("out");
        let config = intent_config(tmp.path(), "a", &sim.base_url(), &out);
        let runner = Runner::new(tmp.path());
        PermissionCase {
            cfg,
            sim,
            tmp,
            out,
            config,
            runner,
        }
    }

    /// A poll by the binary (unprivileged when the tests run as root) must fail saying `path`
    /// (relative to the output) and "Permission denied".
    fn assert_poll_fails_naming(&self, path: &str) {
        let failed = self.runner.run(&self.config, &RUN_ONCE, None);
        let path = self.out.join(path).display().to_string();
        assert_failed_saying(&failed, &[&path, "Permission denied"]);
    }

    /// Makes `denied` writable, polls as the test's own user and checks the poll's 25
    /// sessions are stored, each once, in one complete file.
    async fn assert_next_poll_completes(self, denied: &str) {
        self.runner.allow(&self.out, &[denied]);
        assert_success(&run_limited(&self.config, &RUN_ONCE, None));
        assert_only_complete_parquet(&self.out, "intent_realtime", &[]);
        assert_intent_exact(&self.out, &self.cfg, BOT, returned(&self.cfg));
        assert_eq!(visible_files(&self.out).len(), 1);
        self.sim.shutdown().await;
        drop(self.tmp);
    }
}

/// Without write access to the output folder the binary can create neither `_locks/` (the
/// lock files of conditional writes) nor, once `_locks/` exists, `_state/`: each time the error
/// names that folder and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_folder_the_exporter_may_not_write_fails_the_run_naming_the_folder_it_needed() {
    let case = PermissionCase::start().await;
    let root = "";
    case.runner.prepare_output(&case.out, &[], &[root]);
    case.assert_poll_fails_naming("_locks/_state/");
    assert_eq!(files_under(&case.out), Vec::<String>::new());

    case.runner.prepare_output(&case.out, &["_locks"], &[root]);
    case.assert_poll_fails_naming("_state/");
    assert_eq!(visible_files(&case.out), Vec::<String>::new());
    assert_eq!(poll_state(&case.out), None, "the poll state advanced");
    case.assert_next_poll_completes(root).await;
}

/// A partition folder the binary may not write: the data file fails, nothing is visible, the
/// poll state is not stored (the claimed sessions wait in the index for the next writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_partition_the_exporter_may_not_write_fails_the_poll_naming_it() {
    let case = PermissionCase::start().await;
    let denied = partition();
    case.runner.prepare_output(&case.out, &[], &[&denied]);
    case.assert_poll_fails_naming(&format!("{denied}/"));
    assert_eq!(visible_files(&case.out), Vec::<String>::new());
    assert_eq!(poll_state(&case.out), None, "the poll state advanced");
    case.assert_next_poll_completes(&denied).await;
}

/// The lock file of the bot's poll state cannot be created: the poll's data is published
/// (complete), its state is not stored, and the next poll (which finds those sessions in the
/// partition) adds none of them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_state_the_exporter_may_not_write_fails_the_poll_and_the_next_adds_nothing_twice() {
    let case = PermissionCase::start().await;
    let denied = format!("_locks/{ACCOUNT_STATE}");
    let index_locks = format!("{denied}/bot_id={BOT}");
    case.runner
        .prepare_output(&case.out, &[&index_locks], &[&denied]);
    case.assert_poll_fails_naming(&format!("{denied}/bot_id={BOT}.json.lock"));
    assert_only_complete_parquet(&case.out, "intent_realtime", &[]);
    assert_intent_exact(&case.out, &case.cfg, BOT, returned(&case.cfg));
    assert_eq!(poll_state(&case.out), None, "the poll state was stored");
    case.assert_next_poll_completes(&denied).await;
}

/// The permission tests' children really run as `nobody` (uid and gid 65534) when the tests run
/// as root (root ignores permission bits), and as the test's own user otherwise: the child says
/// who it is (`id`), started the way the binary is.
#[test]
fn permission_tests_run_the_binary_unprivileged_when_the_tests_run_as_root() {
    let tmp = tempfile::tempdir().expect("tmp");
    let runner = Runner::new(tmp.path());
    // SAFETY: geteuid(2) and getegid(2) have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let want = if uid == 0 {
        "65534 65534".to_string()
    } else {
        format!("{uid} {gid}")
    };
    let out = runner.run_program("sh", &["-c", "echo $(id -u) $(id -g)"]);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
}
