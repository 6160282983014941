#!/usr/bin/env bash
# Offline validation of the deployment files (called by .ci/run; needs systemd-analyze, promtool,
# python3, and a built binary passed as $1). PyYAML comes from the project's pinned Python
# environment (tests/py/bootstrap.py, shared with the tests), never from a global install.
# Fails on any problem, warnings included.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:?usage: deploy/validate.sh path/to/smartassist-export}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

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
