#!/usr/bin/env bash
# A 7-day Call Details backfill (2024-05-01..07, America/New_York, --concurrency 4, no rate
# limit) against the simulator of benches/dlt_backfill.py, pre-rendered answers
# (--cache-responses), timed with /usr/bin/time: wall, CPU (user+sys), CPU / wall, peak RSS.
# Builds are run interleaved, RUNS times each after WARM untimed rounds; medians are printed.
#
#   benches/call_details_cores.sh BIN [BIN...]
#
# Each BIN is a smartassist-export binary, optionally followed by `@BYTES` to set
# api.page_memory_bytes (e.g. target/release/smartassist-export@1024 reads one page at a time).
# The first binary also runs the simulator. Needs /usr/bin/time and python3.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,11p "$0"; exit 2; }
RUNS=${RUNS:-5}
WARM=${WARM:-2}
export SMARTASSIST_CLIENT_SECRET=bench-simulator-secret-of-32-bytes
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
. "$(dirname "$0")/sim.sh"
start_simulator "${1%@*}" --agents 200 --max-page-size 500 --cache-responses \
  --call-sessions-per-hour 167

# one BIN[@BYTES] LABEL: one timed backfill into a fresh output; appends "LABEL wall cpu rss_kb".
one() {
  local bin=${1%@*} bytes="" out="$WORK/out.$RANDOM"
  [[ $1 == *@* ]] && bytes=${1##*@}
  cat >"$out.toml" <<TOML
$(api_section)
${bytes:+page_memory_bytes = $bytes}
[output]
url = "$out"
[intent_realtime]
enabled = false
[user_status]
enabled = false
[call_details]
enabled = true
timezone = "America/New_York"
TOML
  /usr/bin/time -f "%e %U %S %M" -o "$out.time" \
    "$bin" -c "$out.toml" --log-level warn backfill --from 2024-05-01 --to 2024-05-07 \
    --dataset call_details --concurrency 4 >"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
  read -r wall user sys rss <"$out.time"
  echo "$2 $wall $(python3 -c "print($user + $sys)") $rss" >>"$WORK/runs"
  rm -rf "$out" "$out.toml" "$out.time" "$out.log"
}

for _ in $(seq "$WARM"); do for b in "$@"; do one "$b" warm; done; done
: >"$WORK/runs"
for _ in $(seq "$RUNS"); do for b in "$@"; do one "$b" "$b"; done; done
python3 - "$WORK/runs" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, wall, cpu, rss = line.split()
    runs.setdefault(label, []).append((float(wall), float(cpu), int(rss) / 1024))
for label, r in runs.items():
    med = lambda i: statistics.median(x[i] for x in r)
    util = statistics.median(x[1] / x[0] for x in r)
    span = lambda i, f: f"{min(x[i] for x in r):{f}}-{max(x[i] for x in r):{f}}"
    print(f"{label}: {len(r)} runs, medians: wall {med(0):.2f} s, CPU {med(1):.2f} s, "
          f"CPU/wall {util:.2f}, peak RSS {med(2):.1f} MB (ranges: wall {span(0, '.2f')} s, "
          f"CPU {span(1, '.2f')} s, peak RSS {span(2, '.1f')} MB)")
EOF
