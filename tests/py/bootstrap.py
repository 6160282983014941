"""Create the project's pinned Python environment once, then print its interpreter's path.

Usage: python3 tests/py/bootstrap.py [VENV_DIR [REQUIREMENTS]]
  VENV_DIR defaults to $CARGO_TARGET_DIR/py-venv, else <repo>/target/py-venv.
  REQUIREMENTS defaults to tests/py/requirements.txt; another file (benches/py/requirements.txt)
  names the modules to import-check in a `# import-check: a, b` line.
  Prints the absolute path of VENV_DIR's python on stdout; progress and errors go to stderr.

Callers: the integration tests (`python()` in tests/common), deploy/validate.sh,
benches/run.sh and benches/dlt_backfill.py (its own environment and requirements). One implementation for all three, standard library only, run by the python3
that will own the environment:

- Nothing is installed outside VENV_DIR: pip runs inside the new virtualenv, with the exact
  versions of tests/py/requirements.txt.
- An exclusive lock on VENV_DIR.lock (flock) makes parallel callers wait for one builder.
- VENV_DIR counts as complete only when VENV_DIR/.complete holds the fingerprint of the
  requirements file and the interpreter; anything else (missing, half-built by an interrupted
  run, built from older requirements or another python) is deleted and rebuilt.

Exit codes: 0 ready, 1 the build failed (pip's message above), 3 this python3 cannot build it
(too old, or no venv module: the message says what to install).
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
STAMP = ".complete"
# Imported once after installation, so a broken wheel fails here and not inside a test.
MODULES = ["pyarrow", "pyarrow.dataset", "pyarrow.fs", "duckdb", "moto", "flask", "flask_cors",
           "jwcrypto", "yaml"]
MIN_PYTHON = (3, 11)  # pyarrow 26 and duckdb 2 need it
INSTALL_HINT = "install python3 (3.11 or newer) with the venv module " \
               "(Debian/Ubuntu: apt-get install python3 python3-venv)"


def default_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    return Path(target) / "py-venv" if target else HERE.parent.parent / "target" / "py-venv"


def interpreter(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def modules(requirements: Path) -> list:
    """What to import once after installing `requirements`."""
    if requirements == REQUIREMENTS:
        return MODULES
    for line in requirements.read_text().splitlines():
        if line.startswith("# import-check:"):
            return [m.strip() for m in line.split(":", 1)[1].split(",") if m.strip()]
    return []


def fingerprint(requirements: Path) -> str:
    h = hashlib.sha256(requirements.read_bytes())
    h.update(f"\n{sys.version}\n{os.path.realpath(sys.executable)}\n".encode())
    return h.hexdigest()


def is_complete(env_dir: Path, want: str) -> bool:
    try:
        return (env_dir / STAMP).read_text().strip() == want and interpreter(env_dir).exists()
    except OSError:
        return False


def fail(code: int, message: str) -> None:
    print(f"bootstrap.py: {message}", file=sys.stderr)
    sys.exit(code)


def check_base_python() -> None:
    if sys.version_info < MIN_PYTHON:
        fail(3, f"{sys.executable} is Python {sys.version.split()[0]}; {INSTALL_HINT}")
    try:
        import ensurepip  # noqa: F401  (Debian ships venv without it unless python3-venv is in)
    except ImportError:
        fail(3, f"{sys.executable} has no working venv module (ensurepip is missing); {INSTALL_HINT}")


def build(env_dir: Path, want: str, requirements: Path) -> None:
    print(f"bootstrap.py: creating the pinned Python environment of {requirements.name} in "
          f"{env_dir} (first run only: ~100 MB download, ~400 MB on disk, 20-60 s)",
          file=sys.stderr)
    started = time.monotonic()
    if env_dir.exists():
        shutil.rmtree(env_dir)
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = str(interpreter(env_dir))
    # PIP_USER / PIP_TARGET / PIP_PREFIX from the caller's environment would send files
    # elsewhere; inside a virtualenv they must not apply.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PYTHONPATH", "PYTHONHOME")}
    steps = [
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
         "--require-virtualenv", "-r", str(requirements)],
    ]
    if modules(requirements):
        steps.append([python, "-c", "import " + ", ".join(modules(requirements))])
    for cmd in steps:
        if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode != 0:
            fail(1, f"failed: {' '.join(cmd)} (the environment stays incomplete and is rebuilt "
                    "on the next run)")
    tmp = env_dir / (STAMP + ".tmp")
    tmp.write_text(want + "\n")
    os.replace(tmp, env_dir / STAMP)
    print(f"bootstrap.py: ready in {time.monotonic() - started:.0f} s", file=sys.stderr)


def main() -> int:
    if len(sys.argv) > 3:
        fail(2, "usage: bootstrap.py [VENV_DIR [REQUIREMENTS]]")
    env_dir = Path(sys.argv[1]) if len(sys.argv) >= 2 else default_dir()
    env_dir = env_dir.absolute()
    requirements = Path(sys.argv[2]).resolve() if len(sys.argv) == 3 else REQUIREMENTS
    want = fingerprint(requirements)
    if not is_complete(env_dir, want):
        check_base_python()
        env_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(env_dir.parent / (env_dir.name + ".lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("bootstrap.py: waiting for another process building the environment",
                      file=sys.stderr)
                fcntl.flock(lock, fcntl.LOCK_EX)
            # Re-check under the lock: the process we waited for may have built it.
            if not is_complete(env_dir, want):
                build(env_dir, want, requirements)
    print(interpreter(env_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
