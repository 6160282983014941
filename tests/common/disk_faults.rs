//! Local disk faults for the built binary, injected without mounting anything:
//!
//! - a full disk: `RLIMIT_FSIZE` set in the child with SIGXFSZ ignored, so every write past the
//!   limit fails with EFBIG ("File too large"), the error a full disk gives a writer;
//! - a permission error (EACCES): the child runs as an unprivileged user (`nobody`) when the
//!   tests run as root (root ignores permission bits), and a directory it must write into is
//!   owned by root with mode 0755; when the tests do not run as root, that directory is made
//!   read-only (0555) instead.
//!
//! It also looks at an output directory the way a table reader does (hidden `.`/`_` names are
//! skipped) and checks IntentRealtimeData output against the simulator's generator.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use smartassist_export::simulator::{intent_realtime, SimulatorConfig};

use super::{files_under, intent_rows, read_dataset, BIN};

/// The user and group the binary runs as when the tests run as root (`nobody`).
const UNPRIVILEGED: u32 = 65534;

/// How the binary is started: as the test's own user, or (when that is root) as `nobody`.
pub struct Runner {
    /// `Some` when the tests run as root: the unprivileged uid/gid and a binary path it can run.
    unprivileged: Option<(u32, PathBuf)>,
    /// HOME and working directory of the child.
    home: PathBuf,
}

impl Runner {
    /// A runner for a test whose files live under `tmp` (made traversable by everyone, so an
    /// unprivileged child can read its config).
    pub fn new(tmp: &Path) -> Runner {
        set_mode(tmp, 0o755);
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let unprivileged = root.then(|| (UNPRIVILEGED, runnable_binary(tmp)));
        if root {
            for dir in tmp.ancestors().skip(1) {
                let mode = std::fs::metadata(dir).expect("stat").permissions().mode();
                assert!(
                    mode & 0o001 != 0,
                    "{} is not traversable by others: an unprivileged child cannot read its config",
                    dir.display()
                );
            }
        }
        Runner {
            unprivileged,
            home: tmp.to_path_buf(),
        }
    }

    /// Runs the binary (unprivileged when the tests run as root) with `args`; with
    /// `max_file_bytes`, under that file size limit.
    pub fn run(&self, config: &Path, args: &[&str], max_file_bytes: Option<u64>) -> Output {
        let bin = self
            .unprivileged
            .as_ref()
            .map_or(PathBuf::from(BIN), |(_, b)| b.clone());
        self.spawn(command(&bin, config, args, max_file_bytes))
    }

    /// Runs `program` with `args` exactly as [`Runner::run`] runs the binary (same user, HOME
    /// and working directory), so a test can ask the child who it is.
    pub fn run_program(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args);
        self.spawn(cmd)
    }

    /// The one place a child gets its user, HOME and working directory, and runs.
    fn spawn(&self, mut cmd: Command) -> Output {
        cmd.env("HOME", &self.home).current_dir(&self.home);
        if let Some((id, _)) = &self.unprivileged {
            cmd.uid(*id).gid(*id);
        }
        cmd.output().expect("child runs")
    }

    /// Creates `out` and the directories `dirs` (relative to `out`), all writable by the
    /// binary except those in `denied`, which it may enter but not write into.
    pub fn prepare_output(&self, out: &Path, dirs: &[&str], denied: &[&str]) {
        for d in denied.iter().filter(|d| out.join(d).is_dir()) {
            set_mode(&out.join(d), 0o755);
        }
        std::fs::create_dir_all(out).expect("mkdir out");
        for d in dirs.iter().chain(denied) {
            std::fs::create_dir_all(out.join(d)).expect("mkdir");
        }
        let mut all = vec![out.to_path_buf()];
        all.extend(dirs_under(out));
        for dir in all {
            let deny = denied.iter().any(|d| out.join(d) == dir);
            match (&self.unprivileged, deny) {
                // Root-owned (as created), 0755: the unprivileged child may not write.
                (Some(_), true) => set_mode(&dir, 0o755),
                (Some((id, _)), false) => {
                    std::os::unix::fs::chown(&dir, Some(*id), Some(*id)).expect("chown")
                }
                (None, true) => set_mode(&dir, 0o555),
                (None, false) => {}
            }
        }
    }

    /// Makes the directories `denied` writable again (the test's own user writes them then).
    pub fn allow(&self, out: &Path, denied: &[&str]) {
        for d in denied {
            set_mode(&out.join(d), 0o755);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every directory under `dir`, recursively.
fn dirs_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(dirs_under(&p));
            out.push(p);
        }
    }
    out
}

/// [`BIN`] when `nobody` can run it; otherwise (it lies under a directory only root may
/// enter, such as /root) a hard link to it or a copy of it in `tmp`.
fn runnable_binary(tmp: &Path) -> PathBuf {
    let probe = Command::new(BIN)
        .arg("--version")
        .uid(UNPRIVILEGED)
        .gid(UNPRIVILEGED)
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        return PathBuf::from(BIN);
    }
    let local = tmp.join("smartassist-export");
    if std::fs::hard_link(BIN, &local).is_err() {
        std::fs::copy(BIN, &local).expect("copy the binary");
    }
    set_mode(&local, 0o755);
    local
}

/// The binary with the simulator's secret in the environment; with `max_file_bytes`, under that
/// file size limit.
fn command(bin: &Path, config: &Path, args: &[&str], max_file_bytes: Option<u64>) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("-c")
        .arg(config)
        .args(args)
        .env(
            "SMARTASSIST_CLIENT_SECRET",
            SimulatorConfig::default().client_secret,
        )
        .env_remove("RUST_LOG");
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
    cmd
}

/// Runs the built binary as the test's own user; with `max_file_bytes`, under that file size
/// limit.
pub fn run_limited(config: &Path, args: &[&str], max_file_bytes: Option<u64>) -> Output {
    command(Path::new(BIN), config, args, max_file_bytes)
        .output()
        .expect("binary runs")
}

/// Stdout and stderr of a run, for messages and assertions on what it said.
pub fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Files under `out` a table reader would list: no path segment starts with `.` or `_`.
pub fn visible_files(out: &Path) -> Vec<String> {
    files_under(out)
        .into_iter()
        .filter(|f| {
            !f.split('/')
                .any(|s| s.starts_with('.') || s.starts_with('_'))
        })
        .collect()
}

/// Every visible file with its bytes.
pub fn visible_contents(out: &Path) -> Vec<(String, Vec<u8>)> {
    visible_files(out)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(out.join(&f)).expect("read");
            (f, bytes)
        })
        .collect()
}

/// Every visible file is a Parquet file of `dataset` that reads back whole (`read_dataset`
/// panics on a truncated file), except the paths in `planted` (the test's own blockers).
pub fn assert_only_complete_parquet(out: &Path, dataset: &str, planted: &[&str]) {
    for f in visible_files(out) {
        if planted.contains(&f.as_str()) {
            continue;
        }
        assert!(
            f.starts_with(&format!("{dataset}/")) && f.ends_with(".parquet"),
            "unexpected visible file {f}"
        );
    }
    let _ = read_dataset(out, dataset);
}

/// The intent sessions the output holds for `bot` are exactly the generator's sessions `ks` of
/// that bot under `sim`, each once, with the generator's end time, user and handling time.
pub fn assert_intent_exact(
    out: &Path,
    sim: &SimulatorConfig,
    bot: &str,
    ks: std::ops::RangeInclusive<u64>,
) {
    let feed = intent_realtime::feed(sim, bot);
    let want: BTreeMap<String, intent_realtime::GeneratedSession> = ks
        .map(|k| intent_realtime::session(&feed, k))
        .map(|s| (s.session_id.clone(), s))
        .collect();
    let mut seen = HashSet::new();
    for (file, batches) in read_dataset(out, "intent_realtime") {
        assert!(file.contains(&format!("/bot_id={bot}/")), "{file}");
        for b in &batches {
            for (id, end, user, handled) in intent_rows(b) {
                let s = want
                    .get(&id)
                    .unwrap_or_else(|| panic!("{file}: session {id} is not expected"));
                assert_eq!(end, s.end_time.timestamp_millis(), "{id} end_time");
                assert_eq!(user, s.user_id, "{id} user_id");
                assert_eq!(handled, s.time_handled_seconds, "{id} time_handled");
                assert!(seen.insert(id.clone()), "{file}: session {id} stored twice");
            }
        }
    }
    let missing: Vec<_> = want.keys().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "sessions missing: {missing:?}");
}
