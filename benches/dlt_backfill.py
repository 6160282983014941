#!/usr/bin/env python3
"""The exporter's backfill against a dlt (dlthub.com) pipeline, side by side, per dataset.

For each dataset (call_details, user_status, contact_volume, agent_performance,
agent_activity) both tools backfill the same local days from the same server, the crate's
simulator (`smartassist-export simulate`, its own process on 127.0.0.1, no rate limit) with
`--cache-responses`: every answer is rendered once and its bytes are sent again to the same
request, so generating responses is not what is measured. Each tool first runs untimed (which
renders its requests' answers; ours until a run asks nothing new, since its Call Details
windows depend on which day finished first), then `--rounds` times measured, the two tools
alternated; the table shows the medians. The measured runs must be served from the cache (the
table's `render` column counts the answers they had to render).

Contenders, each in its own process so that its peak RSS is its own:

- ours: `smartassist-export backfill --dataset D --concurrency 4` with the dataset's defaults
  (page sizes, request windows), the client-side rate limit lifted; ZSTD Parquet.
- dlt:  a hand-written `@dlt.resource` per dataset on dlt's RESTClient (a fresh HS256 JWT per
  request in the `auth` header, plus `IId` and `accountId`), paging the same API the same
  way (same page sizes; per local day; Call Details in one-hour windows of at most 11 pages,
  Agent Activity in one-hour windows like ours) and yielding each page's records as the API
  sends them. dlt's normalizer flattens them (nested lists become child tables) and its
  `filesystem` destination writes Parquet (ZSTD). This is dlt's idiomatic path for a REST API.
  Where the bounds' inclusiveness is undocumented, the dlt resource asks for `[start, end - 1 s]`
  (the simulator reads both bounds inclusively and its times are whole seconds), which is exact
  here; ours asks the robust way (docs/datasets/*.md) and drops what lies outside the window.

Printed per dataset and tool: wall seconds, CPU seconds (user + sys), peak RSS (MB), MB of API
JSON served in the measured run (response bodies, from the simulator's `/_sim/stats`), rows
written, and ours/dlt ratios. Fairness check: DuckDB reads both outputs and compares the rows
of our main table with the matching dlt table (joined up from dlt's child tables where the
API nests them) by their identifying columns; the run fails (exit 1) unless both hold exactly
the same rows.

Run from the repository root (the release binary is built when missing; dlt, duckdb, pyarrow
and pyjwt are installed pinned from benches/py/requirements.txt into target/bench-venv by
tests/py/bootstrap.py on the first run, nothing is installed globally):

    python3 benches/dlt_backfill.py                          # every dataset, 7 local days
    python3 benches/dlt_backfill.py --datasets call_details  # one dataset

Needs /usr/bin/time (Debian: apt-get install time) and python3 >= 3.11 with venv. Not part of
the test suite.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, datetime, timedelta, timezone

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_BIN = os.path.join(REPO, "target", "release", "smartassist-export")
VENV = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "bench-venv")
REQUIREMENTS = os.path.join(REPO, "benches", "py", "requirements.txt")

# What the simulator expects by default (`simulate` flags in src/cli.rs).
ACCOUNT_ID = "demo-account"
IID = "st-demo-stream"
CLIENT_ID = "cs-demo-client"
CLIENT_SECRET = "bench-simulator-secret-of-32-bytes"
ORG_ID = "o-bench"
ANALYTICS = f"/agentassist/api/public/analytics/account/{ACCOUNT_ID}"
# Most untimed runs of ours before the measured ones (it stops earlier once one asked nothing new).
MAX_WARM = 8
DATASETS = ["call_details", "user_status", "contact_volume", "agent_performance", "agent_activity"]

# The exporter's config section per dataset (everything else at its default).
SECTIONS = {
    "user_status": 'granularity = "PT15M"',
    "call_details": "",
    "contact_volume": f'org_id = "{ORG_ID}"',
    "agent_performance": "",
    "agent_activity": "",
}


# --------------------------------------------------------------------------------------------
# The dlt pipeline (a child process: `dlt_backfill.py --dlt-child SPEC_JSON`).
# --------------------------------------------------------------------------------------------

def local_days(spec):
    """[(local date, UTC start, UTC end, JavaScript offset minutes)] of the spec's days."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(spec["timezone"])
    first = date.fromisoformat(spec["from"])
    out = []
    for i in range(spec["days"]):
        d = first + timedelta(days=i)
        start = datetime(d.year, d.month, d.day, tzinfo=tz)
        end = datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        if start.utcoffset() != end.utcoffset():
            raise SystemExit(f"{d} changes DST in {spec['timezone']}: pick other days")
        js_offset = -int(start.utcoffset().total_seconds() // 60)
        out.append((d, start.astimezone(timezone.utc), end.astimezone(timezone.utc), js_offset))
    return out


def hours(start, end):
    """One-hour UTC windows [t, t + 1 h) covering [start, end)."""
    t = start
    while t < end:
        yield t, t + timedelta(hours=1)
        t += timedelta(hours=1)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_user_status(client, spec):
    """Per local day, pages of agents (`limit`/`offset` in the query, `hasMore`)."""
    for d, _, _, js_offset in local_days(spec):
        body = {"filter": {"dateFilter": {"startDate": d.isoformat(), "endDate": d.isoformat(),
                                          "timeZoneOffSet": js_offset}},
                "granularity": "PT15M"}
        offset = 0
        while True:
            page = client.post(f"{ANALYTICS}/userstatus", params={"limit": 500, "offset": offset},
                               json=body).json()
            yield page["data"]
            offset += len(page["data"])
            if not page.get("hasMore") or not page["data"]:
                break


def fetch_call_details(client, spec):
    """Per local day, one-hour windows of at most 11 pages of 100 sessions (the API's caps)."""
    fields = ["skills", "customerinfo", "userleveltags", "sessionleveltags", "campaigninfo"]
    for _, start, end, js_offset in local_days(spec):
        for lo, hi in hours(start, end):
            local = lambda t: (t - timedelta(minutes=js_offset)).strftime("%Y-%m-%d %H:%M:%S")
            body = {"startDate": local(lo), "endDate": local(hi - timedelta(seconds=1)),
                    "timeZoneOffset": js_offset, "channels": [], "queues": [],
                    "selectedFields": fields}
            for page_no in range(11):
                data = client.post(f"{ANALYTICS}/v2/interactionDetails",
                                   params={"limit": 100, "offset": page_no}, json=body).json()["data"]
                yield data
                if len(data) < 100:
                    break
            else:
                raise SystemExit(f"more than 1,100 sessions in {lo}..{hi}: use shorter windows")


def skip_paged(client, spec, path, key, limit, extra):
    """Per local day, POST pages over `skip`/`limit` in the body until `hasMore` is false."""
    for _, start, end, _ in local_days(spec):
        skip = 0
        while True:
            body = {"fromTimeStamp": iso(start), "toTimeStamp": iso(end - timedelta(seconds=1)),
                    "skip": skip, "limit": limit, **extra}
            page = client.post(path, json=body).json()
            yield page[key]
            skip += len(page[key])
            if not page.get("hasMore") or not page[key]:
                break


def fetch_contact_volume(client, spec):
    yield from skip_paged(client, spec, f"{ANALYTICS}/callvolume", "CallVolumeUpdate", 500,
                          {"orgId": ORG_ID, "includeSkillBreakdown": True})


def fetch_agent_performance(client, spec):
    yield from skip_paged(client, spec, f"{ANALYTICS}/agentperformance", "AgentPerformance", 100, {})


def fetch_agent_activity(client, spec):
    """Per local day, one GET per one-hour window (the API has no paging)."""
    for _, start, end, _ in local_days(spec):
        for lo, hi in hours(start, end):
            params = {"fromTimeStamp": iso(lo), "toTimeStamp": iso(hi - timedelta(seconds=1))}
            yield client.get(f"{ANALYTICS}/agentactivity", params=params).json()["AgentUpdates"]


def run_dlt_child(spec):
    """Runs one dlt backfill described by `spec`; prints one JSON line with its row counts."""
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"  # no internet here
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ["DATA_WRITER__COMPRESSION"] = "zstd"  # like ours (dlt's default is snappy)
    import uuid

    import dlt
    import jwt
    from dlt.sources.helpers.rest_client import RESTClient
    from requests.auth import AuthBase

    class KoreJwtAuth(AuthBase):
        """`auth: <JWT>` (no Bearer), HS256, `appId` = client id, a fresh `jti` per request."""

        def __call__(self, request):
            now = int(time.time())
            claims = {"appId": CLIENT_ID, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
            request.headers["auth"] = jwt.encode(claims, CLIENT_SECRET, algorithm="HS256")
            return request

    client = RESTClient(base_url=spec["base_url"], auth=KoreJwtAuth(),
                        headers={"IId": IID, "accountId": ACCOUNT_ID})
    name = spec["dataset"]
    fetch = globals()[f"fetch_{name}"]
    resource = dlt.resource(lambda: fetch(client, spec), name=name, write_disposition="append")
    pipeline = dlt.pipeline(pipeline_name=f"bench_{name}", pipelines_dir=spec["pipelines_dir"],
                            destination=dlt.destinations.filesystem(bucket_url=spec["out"]),
                            dataset_name="bench")
    pipeline.run(resource(), loader_file_format="parquet")
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print(json.dumps({t: n for t, n in counts.items() if not t.startswith("_dlt")}))


# --------------------------------------------------------------------------------------------
# The fairness check: the same rows in both outputs (DuckDB).
# --------------------------------------------------------------------------------------------

# Per dataset: (our rows' identifying columns, the same from dlt's tables). `{o}` is our output
# directory, `{d}` dlt's dataset directory; `T('dir')` reads a table directory's Parquet files.
KEYS = {
    "call_details": (
        "SELECT session_id FROM T('{o}/call_details')",
        "SELECT session_id FROM T('{d}/call_details')"),
    "user_status": (
        "SELECT user_id, epoch(bucket_start)::BIGINT, metric, value FROM T('{o}/user_status')",
        "SELECT a.user_id, epoch(b.start_time::TIMESTAMPTZ)::BIGINT, s.metric, s.value "
        "FROM T('{d}/user_status') a JOIN T('{d}/user_status__time_interval') b "
        "ON b._dlt_parent_id = a._dlt_id JOIN T('{d}/user_status__time_interval__status') s "
        "ON s._dlt_parent_id = b._dlt_id"),
    "contact_volume": (
        "SELECT record_id FROM T('{o}/contact_volume')",
        "SELECT _id FROM T('{d}/contact_volume')"),
    "agent_performance": (
        "SELECT agent_id, epoch(interval_start)::BIGINT, queue_id FROM T('{o}/agent_performance')",
        "SELECT a.agent_id, epoch(i.interval_start_time_stamp::TIMESTAMPTZ)::BIGINT, q.queue_id "
        "FROM T('{d}/agent_performance') a JOIN T('{d}/agent_performance__intervals') i "
        "ON i._dlt_parent_id = a._dlt_id JOIN T('{d}/agent_performance__intervals__queues') q "
        "ON q._dlt_parent_id = i._dlt_id"),
    "agent_activity": (
        "SELECT agent_id, epoch(event_time)::BIGINT, activity FROM T('{o}/agent_activity')",
        "SELECT agent_id, epoch(strptime(event_time, '%m/%d/%Y %-H:%M:%S'))::BIGINT, activity "
        "FROM T('{d}/agent_activity')"),
}


def compare_rows(dataset, ours_dir, dlt_dir):
    """(our rows, dlt's matching rows, rows only ours hold, rows only dlt holds)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE MACRO T(dir) AS TABLE SELECT * FROM read_parquet(dir || '/**/*.parquet', "
                "union_by_name = true, hive_partitioning = false)")
    ours_sql, dlt_sql = (q.format(o=ours_dir, d=dlt_dir) for q in KEYS[dataset])
    count = lambda sql: con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    return (count(ours_sql), count(dlt_sql), count(f"{ours_sql} EXCEPT ALL {dlt_sql}"),
            count(f"{dlt_sql} EXCEPT ALL {ours_sql}"))


# --------------------------------------------------------------------------------------------
# The harness.
# --------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    """`smartassist-export simulate --cache-responses` in its own process."""

    def __init__(self, args, workdir):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "simulator.log"), "wb")
        cmd = [args.bin, "--log-level", "warn", "simulate", "--listen", f"127.0.0.1:{self.port}",
               "--agents", str(args.agents), "--max-page-size", "500", "--cache-responses",
               "--call-sessions-per-hour", str(args.call_sessions_per_hour),
               "--client-secret", CLIENT_SECRET]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"simulator exited with {self.proc.returncode}; see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("simulator did not start listening within 15 s")
                time.sleep(0.05)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(f"{self.base_url}/_sim/stats") as r:
            s = json.load(r)
        return {"requests": s["total_requests"], "bytes": sum(s["body_bytes_by_endpoint"].values()),
                "misses": s["cache_misses"], "errors": sum(
                    n for code, n in s["by_status"].items() if code != "200")}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def timed(cmd, env):
    """Runs `cmd` under /usr/bin/time; returns (wall s, CPU s, peak RSS MB, stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as f:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", f.name] + cmd,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stdout + p.stderr)
            raise SystemExit(f"exit code {p.returncode}: {' '.join(cmd)}")
        wall, user, system, rss_kb = f.read().split()[-4:]
    return float(wall), float(user) + float(system), int(rss_kb) / 1024, p.stdout


def measured(sim, cmd, env):
    """Runs `cmd` with the simulator's counters read around it."""
    before = sim.stats()
    wall, cpu, rss, stdout = timed(cmd, env)
    after = sim.stats()
    delta = {k: after[k] - before[k] for k in after}
    if delta["errors"]:
        raise SystemExit(f"{delta['errors']} non-200 answers during: {' '.join(cmd)}")
    return dict(wall=wall, cpu=cpu, rss=rss, requests=delta["requests"], bytes=delta["bytes"],
                rendered=delta["misses"], stdout=stdout)


def ours_command(args, dataset, sim, out, workdir):
    cfg = os.path.join(workdir, f"{dataset}.toml")
    disable_us = "" if dataset == "user_status" else "[user_status]\nenabled = false\n"
    section = "" if dataset == "user_status" else f"[{dataset}]\nenabled = true\n"
    with open(cfg, "w") as f:
        f.write(f"""[api]
base_url = "{sim.base_url}"
account_id = "{ACCOUNT_ID}"
iid = "{IID}"
client_id = "{CLIENT_ID}"
requests_per_minute = 1000000
[output]
url = "{out}"
[intent_realtime]
enabled = false
{disable_us}{section or f"[{dataset}]"}
timezone = "{args.timezone}"
{SECTIONS[dataset]}
""")
    last = date.fromisoformat(args.first) + timedelta(days=args.days - 1)
    return [args.bin, "-c", cfg, "--log-level", "warn", "backfill", "--from", args.first,
            "--to", last.isoformat(), "--dataset", dataset, "--concurrency", "4"]


def dlt_command(args, dataset, sim, out, workdir):
    spec = dict(dataset=dataset, base_url=sim.base_url, out=out, timezone=args.timezone,
                days=args.days, pipelines_dir=out + "-pipelines", **{"from": args.first})
    return [sys.executable, os.path.abspath(__file__), "--dlt-child", json.dumps(spec)]


def bench_dataset(args, sim, dataset, workdir):
    """Warm runs, then `args.rounds` measured rounds of both tools (ours, then dlt, in each);
    returns the medians of the measured runs and the row check of the last ones."""
    env = dict(os.environ, SMARTASSIST_CLIENT_SECRET=CLIENT_SECRET)

    def run(tool, phase):
        command = ours_command if tool == "ours" else dlt_command
        out = os.path.join(workdir, f"{dataset}-{tool}-{phase}")
        r = measured(sim, command(args, dataset, sim, out, workdir), env)
        r["out"] = out
        return r

    # Ours warms until a run asked nothing new (at least twice, at most MAX_WARM times): its
    # Call Details plan depends on which day finished first (a day's density profile plans the
    # later days), so one run may not have asked what the next one asks.
    for i in range(MAX_WARM):
        if run("ours", f"warm{i}")["rendered"] == 0 and i >= 1:
            break
    else:
        print(f"{dataset}: ours still asked new answers after {MAX_WARM} untimed runs; "
              "the measured runs may render some (see the render column)", file=sys.stderr)
    run("dlt", "warm0")
    rounds = {"ours": [], "dlt": []}
    for i in range(args.rounds):
        for tool in ("ours", "dlt"):
            rounds[tool].append(run(tool, f"measured{i}"))
    runs = {tool: median_run(rs) for tool, rs in rounds.items()}
    dlt_dir = os.path.join(runs["dlt"]["out"], "bench")
    ours_rows, dlt_rows, only_ours, only_dlt = compare_rows(dataset, runs["ours"]["out"], dlt_dir)
    if only_ours or only_dlt:
        raise SystemExit(f"{dataset}: MISMATCH: ours {ours_rows} rows, dlt {dlt_rows}; "
                         f"{only_ours} only in ours, {only_dlt} only in dlt's")
    runs["ours"]["rows"], runs["dlt"]["rows"] = ours_rows, dlt_rows
    runs["dlt"]["tables"] = json.loads(runs["dlt"]["stdout"].strip().splitlines()[-1])
    return runs


def median_run(rs):
    """The last run of `rs` with wall, CPU and peak RSS replaced by their medians over `rs`,
    `rendered` by the sum and `walls` listing every run's wall time."""
    r = dict(rs[-1])
    for k in ("wall", "cpu", "rss"):
        r[k] = statistics.median(x[k] for x in rs)
    r["rendered"] = sum(x["rendered"] for x in rs)
    r["walls"] = [x["wall"] for x in rs]
    return r


def print_table(results):
    head = (f"{'dataset':<18} {'tool':<5} {'wall s':>7} {'CPU s':>6} {'peak MB':>8} "
            f"{'JSON MB':>8} {'requests':>8} {'render':>6} {'rows':>8}   {'dlt/ours wall, CPU':>18}")
    print(head)
    print("-" * len(head))
    for dataset, runs in results:
        o, d = runs["ours"], runs["dlt"]
        for tool, r in (("ours", o), ("dlt", d)):
            ratio = f"{d['wall'] / o['wall']:.1f}x, {d['cpu'] / max(o['cpu'], 0.01):.1f}x" \
                if tool == "dlt" else ""
            print(f"{dataset:<18} {tool:<5} {r['wall']:>7.2f} {r['cpu']:>6.2f} {r['rss']:>8.1f} "
                  f"{r['bytes'] / 1e6:>8.1f} {r['requests']:>8} {r['rendered']:>6} "
                  f"{r['rows']:>8}   {ratio:>18}")
    print()
    print("wall, CPU, peak: medians of the measured rounds (each run's wall time: "
          + "; ".join(f"{dataset} {t} {', '.join(f'{w:.2f}' for w in runs[t]['walls'])}"
                      for dataset, runs in results for t in ("ours", "dlt")) + ");")
    print("render: answers the simulator rendered during the measured runs (0: all from its cache);")
    print("rows: our main table / dlt's matching rows; DuckDB found the same rows in both.")
    for dataset, runs in results:
        tables = ", ".join(f"{t} {n}" for t, n in sorted(runs["dlt"]["tables"].items()))
        print(f"  {dataset}: dlt wrote {tables}")


def ensure_environment():
    """Re-executes this script under the pinned benchmark environment's interpreter."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    boot = [sys.executable, os.path.join(REPO, "tests", "py", "bootstrap.py"), VENV, REQUIREMENTS]
    if subprocess.run(boot, stdout=subprocess.DEVNULL).returncode != 0:
        raise SystemExit("could not build the benchmark's Python environment (see above)")
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--dlt-child":
        run_dlt_child(json.loads(sys.argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=DEFAULT_BIN, help="smartassist-export binary (built if missing)")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma list (default: all)")
    ap.add_argument("--from", dest="first", default="2024-05-01", help="first local day")
    ap.add_argument("--days", type=int, default=7, help="local days (default 7)")
    ap.add_argument("--timezone", default="America/New_York", help="zone of the local days")
    ap.add_argument("--agents", type=int, default=200, help="agents the simulator serves")
    ap.add_argument("--call-sessions-per-hour", type=int, default=167,
                    help="Call Details density (default 167: about 4,000 sessions a day)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measured runs of each tool, alternated (default 3; medians shown)")
    ap.add_argument("--keep", action="store_true", help="keep the output directories")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds takes a number of at least 1")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if any(d not in DATASETS for d in datasets):
        ap.error(f"--datasets takes: {', '.join(DATASETS)}")
    if not os.path.exists("/usr/bin/time"):
        raise SystemExit("need /usr/bin/time (Debian: apt-get install time)")
    ensure_environment()
    if not os.path.exists(args.bin):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)

    root = tempfile.mkdtemp(prefix="dlt-backfill-")
    sim, results = None, []
    try:
        sim = Simulator(args, root)
        for dataset in datasets:
            print(f"{dataset}: {args.days} local days from {args.first} ({args.timezone})...",
                  file=sys.stderr)
            results.append((dataset, bench_dataset(args, sim, dataset, root)))
    finally:
        if sim is not None:
            sim.stop()
        if args.keep:
            print(f"outputs kept under {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    _, _, import_rss, _ = timed([sys.executable, "-c", "import dlt, duckdb, jwt, pyarrow.parquet; "
                                 "from dlt.sources.helpers.rest_client import RESTClient"],
                                dict(os.environ))
    print()
    print_table(results)
    print(f"Python with the dlt imports alone, doing nothing: peak RSS {import_rss:.1f} MB.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
