#!/usr/bin/env bash
# Offline validation of the deployment files (called by .ci/run; needs systemd-analyze, promtool,
# python3, and a built binary passed as $1). PyYAML comes from the project's pinned Python
# environment (tests/py/bootstrap.py, shared with the tests), never from a global install.
# Then the daemon's status page in a real browser: Debian's headless Chromium (installed here
# with apt-get when missing; skipped with a message only where apt-get is unavailable) loads
# the page of a daemon running the shipped config against the built-in simulator, takes a
# screenshot (target/validate/status-page.png) and dumps the DOM, which must show every job (and
# the realtime capture rows and per-bot budgets status.json lists, when the config enables them).
# Fails on any problem, warnings included.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:?usage: deploy/validate.sh path/to/smartassist-export}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
work="$(mktemp -d)"
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- systemd unit (systemd-analyze verify; warnings are errors)"
# verify checks that ExecStart's binary exists: point it at the freshly built one.
sed "s#/usr/local/bin/smartassist-export#${BIN}#" deploy/smartassist-export.service \
  > "$work/smartassist-export.service"
out="$(systemd-analyze verify "$work/smartassist-export.service" 2>&1)" || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "$out"; exit 1; fi

echo "-- Prometheus rules (promtool check rules, then the unit tests of every alert)"
promtool check rules deploy/prometheus-rules.yml
promtool test rules deploy/prometheus-rules.test.yml

echo "-- Grafana dashboard (JSON syntax, then every panel's PromQL through promtool)"
python3 -m json.tool deploy/grafana/smartassist-export.json > /dev/null
# Grafana's variables are replaced by what they stand for ($__rate_interval by a range, a
# template variable by the regex of "All"), so promtool parses exactly the expressions Grafana
# sends. The metric names in them are checked against /metrics by tests/grafana.rs.
python3 - "$work" <<'PY'
import json, pathlib, re, sys
work = pathlib.Path(sys.argv[1])
dashboard = json.loads(pathlib.Path("deploy/grafana/smartassist-export.json").read_text())
exprs = []
def walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                exprs.append(value)
            else:
                walk(value)
    elif isinstance(node, list):
        for value in node:
            walk(value)
walk(dashboard["panels"])
assert exprs, "the dashboard's panels have no expr"
def promql(expr):
    for var, value in (("__rate_interval", "5m"), ("__interval", "1m"), ("__range", "1d")):
        expr = expr.replace("${" + var + "}", value).replace("$" + var, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)
rules = [{"record": f"dashboard:expr_{i}", "expr": promql(e)} for i, e in enumerate(exprs)]
# JSON is YAML, so promtool reads this without PyYAML.
(work / "dashboard-rules.yml").write_text(
    json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=1))
PY
promtool check rules "$work/dashboard-rules.yml"

echo "-- Kubernetes manifests (YAML parse and shape) and the ConfigMap's config.toml"
py="$(python3 tests/py/bootstrap.py)"
"$py" - "$work" <<'PY'
import sys, yaml, pathlib
work = pathlib.Path(sys.argv[1])
kinds = {}
for path in sorted(pathlib.Path("deploy/kubernetes").glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path
        assert doc["metadata"]["name"] == "smartassist-export", path
        kinds[doc["kind"]] = doc
for kind in ("Deployment", "ConfigMap", "Secret", "CronJob"):
    assert kind in kinds, f"missing {kind}"
c = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
job = kinds["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
assert job["args"][-2:] == ["run", "--once"], job["args"]
(work / "config.toml").write_text(kinds["ConfigMap"]["data"]["config.toml"])
print("parsed:", ", ".join(sorted(kinds)))
PY
# The shipped ConfigMap config must pass the binary's own validation (`token` loads and
# validates the config and mints a token offline).
SMARTASSIST_CLIENT_SECRET=validation-only "$BIN" -c "$work/config.toml" token > /dev/null
echo "deploy files: OK"

echo "-- Status page in headless Chromium (a daemon of the shipped config.toml against the simulator)"
if ! command -v chromium >/dev/null; then
  if ! command -v apt-get >/dev/null; then
    echo "SKIPPED: chromium is not installed and apt-get is not available to install it;"
    echo "         the status page was not loaded in a browser (install Debian's chromium to check it)."
    exit 0
  fi
  as_root=()
  if [ "$(id -u)" != 0 ]; then as_root=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update
  "${as_root[@]}" apt-get install -y --no-install-recommends chromium
fi
chromium --version
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
addr="127.0.0.1:$port"
sed -e "s#^url = \"out\"#url = \"$work/out\"#" -e "s#^listen = \"127.0.0.1:9464\"#listen = \"$addr\"#" \
  config.toml > "$work/daemon.toml"
grep -q "^listen = \"$addr\"" "$work/daemon.toml" || { echo "config.toml: no [server] listen line to point at $addr"; exit 1; }
"$BIN" -c "$work/daemon.toml" run 2> "$work/daemon.log" &
daemon_pid=$!
# Wait (at most 90 s) until every job has finished a run, so the page shows last runs.
python3 - "$addr" "$work/status.json" <<'PY' || { cat "$work/daemon.log"; exit 1; }
import json, sys, time, urllib.request
addr, out = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 90
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
while True:
    try:
        with direct.open(f"http://{addr}/status.json", timeout=5) as r:
            page = json.load(r)
        if page["jobs"] and all(j["last_run"] is not None for j in page["jobs"]):
            open(out, "w").write(json.dumps(page))
            print("jobs:", ", ".join(f'{j["name"]} ({j["last_run"]["outcome"]})' for j in page["jobs"]))
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the daemon's jobs did not all finish a run within 90 s")
    time.sleep(0.2)
PY
# --no-sandbox: CI runs this as root, where Chromium's sandbox refuses to start.
browser=(chromium --headless --no-sandbox --disable-gpu --no-proxy-server --hide-scrollbars
  --window-size=1400,2000)
mkdir -p target/validate
"${browser[@]}" --screenshot="$work/status-page.png" "http://$addr/" 2> "$work/chromium.log" \
  || { cat "$work/chromium.log"; exit 1; }
test -s "$work/status-page.png" || { echo "no screenshot"; cat "$work/chromium.log"; exit 1; }
cp "$work/status-page.png" target/validate/status-page.png
"${browser[@]}" --dump-dom "http://$addr/" > "$work/dom.html" 2> "$work/chromium.log" \
  || { cat "$work/chromium.log"; exit 1; }
python3 - "$work/status.json" "$work/dom.html" <<'PY'
import json, sys
from html.parser import HTMLParser
page = json.load(open(sys.argv[1]))
class Hooks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.jobs, self.datasets, self.cells, self.scripts = set(), set(), 0, 0
        self.capture, self.capture_rows, self.bot_budgets = False, set(), set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "tr" and "job" in classes:
            self.jobs.add(a.get("data-job"))
        if tag == "section" and "dataset" in classes:
            self.datasets.add(a.get("data-dataset"))
        if tag == "td" and "unit" in classes:
            self.cells += 1
        if tag == "script":
            self.scripts += 1
        if tag == "section" and a.get("id") == "capture":
            self.capture = True
        if tag == "tr" and "capture" in classes:
            self.capture_rows.add((a.get("data-bot"), a.get("data-day")))
        if tag == "tr" and "bot-budget" in classes:
            self.bot_budgets.add(a.get("data-bot"))
dom = Hooks()
dom.feed(open(sys.argv[2]).read())
want_jobs = {j["name"] for j in page["jobs"]}
want_datasets = {d["dataset"] for d in page["datasets"]}
assert dom.jobs == want_jobs, f"jobs in the DOM {sorted(dom.jobs)} != {sorted(want_jobs)}"
assert dom.datasets == want_datasets, f"datasets in the DOM {sorted(dom.datasets)} != {sorted(want_datasets)}"
assert dom.cells >= 30 * len(want_datasets), f"coverage cells: {dom.cells}"
assert dom.scripts == 0, "the page runs no script"
# The realtime capture and the per-bot budgets, when the config enables what they need.
capture = page.get("capture")
assert dom.capture == (capture is not None), f"capture section in the DOM: {dom.capture}"
want_rows = {(d["bot_id"], d["day"]) for d in (capture or {}).get("days", [])}
assert dom.capture_rows == want_rows, f"capture rows {sorted(dom.capture_rows)} != {sorted(want_rows)}"
want_bots = {b["bot_id"] for b in page["bot_budgets"]}
assert dom.bot_budgets == want_bots, f"bot budgets {sorted(dom.bot_budgets)} != {sorted(want_bots)}"
print(f"DOM: {len(dom.jobs)} job(s), {len(dom.datasets)} dataset(s), {dom.cells} coverage cells")
PY
kill -TERM "$daemon_pid"
wait "$daemon_pid" || { echo "the daemon did not stop cleanly"; cat "$work/daemon.log"; exit 1; }
daemon_pid=""
echo "status page: OK (screenshot: target/validate/status-page.png)"
