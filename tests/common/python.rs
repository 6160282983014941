//! The project's pinned Python environment for the tests that check the output with
//! independent Python tools: [`python()`] returns its interpreter, built on first use by
//! `tests/py/bootstrap.py`. Callers check their `SMARTASSIST_SKIP_*` opt-out first.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{SKIP_PY_ENV, SKIP_S3_ENV};

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
