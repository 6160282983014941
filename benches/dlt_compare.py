#!/usr/bin/env python3
"""Side-by-side benchmark: smartassist-export against a dlt (dlthub.com) pipeline doing the same job.

The job: backfill UserStatus for N agents (default 200) at granularity PT15M, one UTC day per
request, from the built-in simulator (`smartassist-export simulate`, its own process on
127.0.0.1, no rate limit) into local Parquet. It runs twice: a short range (default 7 days,
2024-01-01..2024-01-07) and a long range (default 60 days from 2024-01-01) so that the peak
memory of a short and a long backfill can be compared for each tool.

Contenders, each in its own process so that its peak RSS is its own:

- ours:       `smartassist-export backfill --dataset user_status` (page_size 500, the client-side
              rate limit lifted, default `--concurrency 4`); output Hive-partitioned by day, ZSTD.
- dlt rows:   a `@dlt.resource` that, per day, POSTs the same body through dlt's RESTClient
              (OffsetPaginator on limit/offset, stopping when `hasMore` is false; a freshly signed
              HS256 JWT per request in the `auth` header, plus `IId` and `accountId`) and yields
              one dict per (agent, bucket, status entry) with our columns ("919 sec" -> 919);
              destination `filesystem`, `loader_file_format="parquet"`, ZSTD. This is dlt's
              default, most idiomatic path (rows go through its normalizer).
- dlt arrow:  the same resource yielding one pyarrow Table per page instead of dicts (dlt's
              documented fast path, which skips per-row normalization).

For every run it prints: process wall seconds, rows, rows/s, peak RSS (MB, `/usr/bin/time -f %M`
on the tool's process, i.e. wait4's ru_maxrss; for dlt this includes the Python interpreter and
the dlt import), Parquet bytes of the user_status table, and the requests the simulator served.
It then reads both outputs back with pyarrow and fails (exit 1) unless every contender wrote the
same number of rows and the same sum of duration_seconds as ours.

How to run (from the repository root; the release binary is built if missing), with the
benchmarks' pinned environment (dlt, pyarrow, pyjwt; built into target/bench-venv on first use,
never installed globally):

    PY=$(python3 tests/py/bootstrap.py target/bench-venv benches/py/requirements.txt)
    $PY benches/dlt_compare.py                   # 7 days + 60 days, all contenders
    $PY benches/dlt_compare.py --long-days 0     # short range only
    $PY benches/dlt_compare.py --dlt-modes rows  # only the dict-based dlt pipeline

benches/dlt_backfill.py compares every history dataset the same way (Call Details and the WFM
datasets too), with pre-rendered responses.

Needs /usr/bin/time (Debian: apt-get install time). Not part of the test suite.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, datetime, timedelta, timezone

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_BIN = os.path.join(REPO, "target", "release", "smartassist-export")

# What the simulator expects by default (src/simulator/mod.rs, `simulate` flags in src/cli.rs).
ACCOUNT_ID = "demo-account"
IID = "st-demo-stream"
CLIENT_ID = "cs-demo-client"
CLIENT_SECRET = "bench-simulator-secret"
USER_STATUS_PATH = "/agentassist/api/public/analytics/account/{account_id}/userstatus"
GRANULARITY = "PT15M"
PAGE_SIZE = 500


# --------------------------------------------------------------------------------------------
# The dlt pipeline (runs in a child process: `dlt_compare.py --dlt-child SPEC_JSON`).
# --------------------------------------------------------------------------------------------

def run_dlt_child(spec):
    """Runs one dlt backfill described by `spec` and prints one JSON line with its figures."""
    t_start = time.perf_counter()
    # No telemetry (this machine has no internet), quiet logs, ZSTD like ours (dlt's default is
    # snappy). The data_writer section applies to the extract and the normalize writers.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ["DATA_WRITER__COMPRESSION"] = "zstd"

    import uuid

    import dlt
    import jwt
    import pyarrow as pa
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
    from requests.auth import AuthBase

    mode = spec["mode"]

    class KoreJwtAuth(AuthBase):
        """`auth: <JWT>` (no Bearer), HS256 with the client secret, `appId` = client id; a fresh
        token with a new `jti` per request, so it also works with Enforce JTI."""

        def __init__(self, client_id, client_secret):
            self.client_id = client_id
            self.client_secret = client_secret

        def __call__(self, request):
            now = int(time.time())
            claims = {"appId": self.client_id, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
            request.headers["auth"] = jwt.encode(claims, self.client_secret, algorithm="HS256")
            return request

    client = RESTClient(
        base_url=spec["base_url"],
        headers={"IId": spec["iid"], "accountId": spec["account_id"]},
        auth=KoreJwtAuth(spec["client_id"], spec["client_secret"]),
    )
    path = USER_STATUS_PATH.format(account_id=spec["account_id"])
    account_id = spec["account_id"]
    exported_at = datetime.now(timezone.utc)

    ts_cache = {}

    def ts(s):
        v = ts_cache.get(s)
        if v is None:
            v = ts_cache[s] = datetime.fromisoformat(s)  # "2024-01-01T00:15:00Z" (3.11+)
        return v

    def seconds(s):
        return int(s[:-4]) if s.endswith(" sec") else int(s)

    def rows_of_page(agents, day):
        """One dict per data[].timeInterval[].status[] entry; buckets outside the UTC day are
        dropped (none are served for UTC days, but that is what a day window means)."""
        out = []
        for a in agents:
            ident = (
                a["userId"],
                a.get("email") or None,
                a.get("firstName") or None,
                a.get("lastName") or None,
                a.get("customId") or None,
            )
            for b in a.get("timeInterval") or ():
                status = b.get("status")
                if not status or not b["startTime"].startswith(day):
                    continue
                start, end = ts(b["startTime"]), ts(b["endTime"])
                for s in status:
                    out.append({
                        "account_id": account_id,
                        "user_id": ident[0],
                        "email": ident[1],
                        "first_name": ident[2],
                        "last_name": ident[3],
                        "custom_id": ident[4],
                        "bucket_start": start,
                        "bucket_end": end,
                        "granularity": GRANULARITY,
                        "metric": s["metric"],
                        "value": s["value"],
                        "duration_seconds": seconds(s["stats"]["sum"]),
                        "exported_at": exported_at,
                    })
        return out

    ts_type = pa.timestamp("ms", tz="UTC")
    arrow_schema = pa.schema([
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("email", pa.string()),
        pa.field("first_name", pa.string()),
        pa.field("last_name", pa.string()),
        pa.field("custom_id", pa.string()),
        pa.field("bucket_start", ts_type, nullable=False),
        pa.field("bucket_end", ts_type, nullable=False),
        pa.field("granularity", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("duration_seconds", pa.int64(), nullable=False),
        pa.field("exported_at", ts_type, nullable=False),
    ])

    def table_of_page(agents, day):
        """The same rows as `rows_of_page`, built column-wise as one Arrow table."""
        cols = {f.name: [] for f in arrow_schema}
        for a in agents:
            uid, email = a["userId"], a.get("email") or None
            first, last, custom = a.get("firstName") or None, a.get("lastName") or None, a.get("customId") or None
            for b in a.get("timeInterval") or ():
                status = b.get("status")
                if not status or not b["startTime"].startswith(day):
                    continue
                start, end = ts(b["startTime"]), ts(b["endTime"])
                for s in status:
                    cols["user_id"].append(uid)
                    cols["email"].append(email)
                    cols["first_name"].append(first)
                    cols["last_name"].append(last)
                    cols["custom_id"].append(custom)
                    cols["bucket_start"].append(start)
                    cols["bucket_end"].append(end)
                    cols["metric"].append(s["metric"])
                    cols["value"].append(s["value"])
                    cols["duration_seconds"].append(seconds(s["stats"]["sum"]))
        n = len(cols["user_id"])
        cols["account_id"] = [account_id] * n
        cols["granularity"] = [GRANULARITY] * n
        cols["exported_at"] = [exported_at] * n
        return pa.Table.from_pydict(cols, schema=arrow_schema)

    def ts_hint():  # a fresh dict per column: dlt fills in hints (e.g. "name") in place
        return {"data_type": "timestamp", "precision": 3, "timezone": True, "nullable": False}

    columns = {
        "account_id": {"data_type": "text", "nullable": False},
        "user_id": {"data_type": "text", "nullable": False},
        "email": {"data_type": "text", "nullable": True},
        "first_name": {"data_type": "text", "nullable": True},
        "last_name": {"data_type": "text", "nullable": True},
        "custom_id": {"data_type": "text", "nullable": True},
        "bucket_start": ts_hint(),
        "bucket_end": ts_hint(),
        "granularity": {"data_type": "text", "nullable": False},
        "metric": {"data_type": "text", "nullable": False},
        "value": {"data_type": "text", "nullable": False},
        "duration_seconds": {"data_type": "bigint", "nullable": False},
        "exported_at": ts_hint(),
    }

    rows_yielded = 0

    @dlt.resource(name="user_status", write_disposition="append", columns=columns)
    def user_status(days):
        nonlocal rows_yielded
        for day in days:
            body = {
                "filter": {"dateFilter": {"startDate": day, "endDate": day, "timeZoneOffSet": 0}},
                "granularity": GRANULARITY,
            }
            pages = client.paginate(
                path,
                method="POST",
                json=body,
                paginator=OffsetPaginator(limit=spec["page_size"], total_path=None, has_more_path="hasMore"),
                data_selector="data",
            )
            for page in pages:
                if mode == "arrow":
                    item = table_of_page(page, day)
                    rows_yielded += item.num_rows
                else:
                    item = rows_of_page(page, day)
                    rows_yielded += len(item)
                yield item

    first, last = date.fromisoformat(spec["from"]), date.fromisoformat(spec["to"])
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]

    pipeline = dlt.pipeline(
        pipeline_name=f"dlt_compare_{mode}",
        pipelines_dir=spec["pipelines_dir"],
        destination=dlt.destinations.filesystem(bucket_url=spec["out"]),
        dataset_name="smartassist",
    )
    t_run = time.perf_counter()
    pipeline.run(user_status(days), loader_file_format="parquet")
    t_end = time.perf_counter()
    normalized = pipeline.last_trace.last_normalize_info.row_counts.get("user_status", 0)
    print(json.dumps({
        "rows_yielded": rows_yielded,
        "rows_normalized": normalized,
        "setup_s": t_run - t_start,
        "run_s": t_end - t_run,
    }))


# --------------------------------------------------------------------------------------------
# The harness (parent process).
# --------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    """`smartassist-export simulate` in its own process; stop() kills and reaps it."""

    def __init__(self, binary, agents, workdir):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "simulator.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "--log-level", "warn", "simulate", "--listen", f"127.0.0.1:{self.port}",
             "--agents", str(agents), "--max-page-size", str(PAGE_SIZE),
             "--client-secret", CLIENT_SECRET],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"simulator exited with {self.proc.returncode}; see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("simulator did not start listening within 15 s")
                time.sleep(0.05)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def requests_served(self):
        with urllib.request.urlopen(f"{self.base_url}/_sim/stats") as r:
            return json.load(r)["total_requests"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def timed(cmd, env, workdir):
    """Runs `cmd` under /usr/bin/time -f %M; returns (wall s, peak RSS MB, stdout)."""
    rss_file = os.path.join(workdir, "maxrss.txt")
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd,
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"command failed with exit code {p.returncode}: {' '.join(cmd)}")
    with open(rss_file) as f:
        rss_kb = int(f.read().strip().splitlines()[-1])
    return wall, rss_kb / 1024.0, p.stdout


def parquet_files(root):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if f.endswith(".parquet") and not f.startswith(".")]
    return sorted(out)


def read_back(files):
    """(rows, sum of duration_seconds, compression codecs, compressed bytes of dlt's own `_dlt_*`
    columns) of a set of Parquet files."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows, total, codecs, dlt_cols = 0, 0, set(), 0
    for f in files:
        pf = pq.ParquetFile(f)
        rows += pf.metadata.num_rows
        for rg in range(pf.metadata.num_row_groups):
            g = pf.metadata.row_group(rg)
            for c in range(g.num_columns):
                cc = g.column(c)
                codecs.add(cc.compression)
                if cc.path_in_schema.startswith("_dlt_"):
                    dlt_cols += cc.total_compressed_size
        col = pf.read(columns=["duration_seconds"]).column(0)
        total += pc.sum(col).as_py() or 0
    return rows, total, codecs, dlt_cols


def run_ours(args, sim, first, last, workdir):
    out = os.path.join(workdir, "ours")
    cfg = os.path.join(workdir, "ours.toml")
    with open(cfg, "w") as f:
        f.write(f"""[api]
base_url = "{sim.base_url}"
account_id = "{ACCOUNT_ID}"
iid = "{IID}"
client_id = "{CLIENT_ID}"
requests_per_minute = 1000000
[output]
url = "{out}"
[user_status]
granularity = "{GRANULARITY}"
timezone = "UTC"
page_size = {PAGE_SIZE}
[intent_realtime]
enabled = false
""")
    env = dict(os.environ, SMARTASSIST_CLIENT_SECRET=CLIENT_SECRET)
    before = sim.requests_served()
    wall, rss, stdout = timed(
        [args.bin, "-c", cfg, "--log-level", "warn", "backfill", "--from", first.isoformat(),
         "--to", last.isoformat(), "--dataset", "user_status", "--concurrency", str(args.concurrency)],
        env, workdir)
    requests = sim.requests_served() - before
    files = parquet_files(os.path.join(out, "user_status"))
    rows, total, codecs, _ = read_back(files)
    reported = None
    for line in stdout.splitlines():
        if line.startswith("Backfill") and " rows" in line:
            reported = int(line.split(" rows")[0].rsplit(" ", 1)[-1])
    if reported is not None and reported != rows:
        raise SystemExit(f"ours: the backfill reported {reported} rows but its files hold {rows}")
    return dict(tool=f"ours (concurrency {args.concurrency})", wall=wall, rss=rss, rows=rows,
                sum=total, bytes=sum(os.path.getsize(f) for f in files), files=len(files),
                requests=requests, codecs=codecs, extra_bytes=0, note="")


def run_dlt(args, mode, sim, first, last, workdir):
    out = os.path.join(workdir, f"dlt-{mode}")
    spec = dict(mode=mode, base_url=sim.base_url, account_id=ACCOUNT_ID, iid=IID,
                client_id=CLIENT_ID, client_secret=CLIENT_SECRET, page_size=PAGE_SIZE,
                out=out, pipelines_dir=os.path.join(workdir, f"dlt-{mode}-pipelines"),
                **{"from": first.isoformat(), "to": last.isoformat()})
    before = sim.requests_served()
    wall, rss, stdout = timed([sys.executable, os.path.abspath(__file__), "--dlt-child", json.dumps(spec)],
                              dict(os.environ), workdir)
    requests = sim.requests_served() - before
    child = json.loads(stdout.strip().splitlines()[-1])
    table_dir = os.path.join(out, "smartassist", "user_status")
    files = parquet_files(table_dir)
    rows, total, codecs, dlt_cols = read_back(files)
    if not (child["rows_yielded"] == child["rows_normalized"] == rows):
        raise SystemExit(f"dlt {mode}: yielded {child['rows_yielded']}, normalized "
                         f"{child['rows_normalized']}, files hold {rows} rows")
    all_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    data_bytes = sum(os.path.getsize(f) for f in files)
    note = f"import+setup {child['setup_s']:.2f} s, pipeline.run() {child['run_s']:.2f} s"
    if dlt_cols:
        note += f"; {dlt_cols} of the Parquet bytes are dlt's _dlt_load_id/_dlt_id columns"
    return dict(tool=f"dlt {mode}", wall=wall, rss=rss, rows=rows, sum=total, bytes=data_bytes,
                files=len(files), requests=requests, codecs=codecs,
                extra_bytes=all_bytes - data_bytes, note=note)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--dlt-child":
        run_dlt_child(json.loads(sys.argv[2]))
        return 0

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=DEFAULT_BIN, help="smartassist-export binary (built if missing)")
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--from", dest="first", default="2024-01-01", help="first UTC day")
    ap.add_argument("--to", dest="last", default="2024-01-07", help="last UTC day of the short range")
    ap.add_argument("--long-days", type=int, default=60, help="days of the long range (0: skip it)")
    ap.add_argument("--dlt-modes", default="rows,arrow", help="comma list of: rows, arrow")
    ap.add_argument("--concurrency", type=int, default=4, help="our --concurrency (default: ours)")
    ap.add_argument("--keep", action="store_true", help="keep the output directories")
    args = ap.parse_args()

    modes = [m.strip() for m in args.dlt_modes.split(",") if m.strip()]
    if any(m not in ("rows", "arrow") for m in modes):
        ap.error("--dlt-modes takes rows and/or arrow")
    if not os.path.exists("/usr/bin/time"):
        raise SystemExit("need /usr/bin/time (Debian: apt-get install time)")
    try:
        import dlt  # noqa: F401
        import jwt  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"{e}: run me with the pinned environment (see the top of this file)")
    if not os.path.exists(args.bin):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)

    first = date.fromisoformat(args.first)
    ranges = [(first, date.fromisoformat(args.last))]
    if args.long_days > 0:
        ranges.append((first, first + timedelta(days=args.long_days - 1)))

    results = []
    root = tempfile.mkdtemp(prefix="dlt-compare-")
    # The floor under dlt's peak RSS: the interpreter with the same imports, doing nothing.
    _, import_rss, _ = timed([sys.executable, "-c", "import dlt, jwt, pyarrow.parquet; "
                              "from dlt.sources.helpers.rest_client import RESTClient"], dict(os.environ), root)
    sim = None
    try:
        sim = Simulator(args.bin, args.agents, root)
        for lo, hi in ranges:
            label = f"{(hi - lo).days + 1} d"
            runs = []
            work = os.path.join(root, label.replace(" ", ""))
            os.makedirs(work)
            print(f"{label} x {args.agents} agents ({lo}..{hi}):", file=sys.stderr)
            for run in [lambda: run_ours(args, sim, lo, hi, work)] + [
                    (lambda m=m: run_dlt(args, m, sim, lo, hi, work)) for m in modes]:
                r = run()
                r["range"] = label
                print(f"  {r['tool']}: {r['rows']} rows in {r['wall']:.2f} s, peak RSS {r['rss']:.1f} MB"
                      + (f" ({r['note']})" if r["note"] else ""), file=sys.stderr)
                runs.append(r)
            ours = runs[0]
            for r in runs[1:]:
                if (r["rows"], r["sum"]) != (ours["rows"], ours["sum"]):
                    raise SystemExit(
                        f"MISMATCH over {label}: ours {ours['rows']} rows / sum(duration_seconds) "
                        f"{ours['sum']}, {r['tool']} {r['rows']} rows / {r['sum']}")
            results += runs
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if sim is not None:
            sim.stop()
        if args.keep:
            print(f"outputs kept under {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)

    print()
    head = f"{'tool':<22} {'range':>5} {'wall s':>7} {'rows':>9} {'rows/s':>9} {'peak RSS MB':>11} {'Parquet bytes':>13} {'files':>5} {'requests':>8}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['tool']:<22} {r['range']:>5} {r['wall']:>7.2f} {r['rows']:>9} {r['rows'] / r['wall']:>9.0f} "
              f"{r['rss']:>11.1f} {r['bytes']:>13} {r['files']:>5} {r['requests']:>8}")
    print()
    print("Row counts and sum(duration_seconds) match ours in every range.")
    print(f"Python + dlt/pyarrow/jwt imports alone, doing nothing: peak RSS {import_rss:.1f} MB.")
    for r in results:
        codecs = ",".join(sorted(r["codecs"]))
        extra = f"; +{r['extra_bytes']} bytes of dlt state/metadata files" if r["extra_bytes"] else ""
        print(f"  {r['tool']} {r['range']}: codecs {codecs}{extra}" + (f"; {r['note']}" if r["note"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
