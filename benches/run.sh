#!/usr/bin/env bash
# Reproduces every figure of the README "Performance" section and prints a table.
#
#   benches/run.sh            # everything (~10 minutes on 2 cores after the release build)
#   python3 benches/dlt_backfill.py # separately: every history dataset against dlt (pinned venv)
#   SKIP_CPU=1 benches/run.sh # skip the Criterion + DuckDB comparison
#   BIN=/path/to/smartassist-export benches/run.sh # measure that build (no release build here)
#
# Needs: a Rust toolchain, /usr/bin/time (Debian: apt-get install time), python3 (the DuckDB
# comparison runs in the project's pinned environment, built by tests/py/bootstrap.py). Every server is the built-in simulator
# in its own process on 127.0.0.1, so the exporter's peak RSS is measured alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d)
PORT=${BENCH_PORT:-18931}
export SMARTASSIST_CLIENT_SECRET=bench-simulator-secret
. benches/sim.sh

if [[ -n "${BIN:-}" ]]; then
  BIN=$(realpath "$BIN")
else
  BIN="$ROOT/target/release/smartassist-export"
  cargo build --release --quiet
fi
[[ -x /usr/bin/time ]] || { echo "need /usr/bin/time (apt-get install time)" >&2; exit 1; }

# write_config FILE RPM PAGE_SIZE OUT_DIR
write_config() {
  cat >"$1" <<TOML
$(api_section "$2")
[output]
url = "$4"
[user_status]
granularity = "PT15M"
timezone = "UTC"
page_size = $3
[intent_realtime]
enabled = false
TOML
}

ROWS=()
row() { ROWS+=("$(printf '%-58s %s' "$1" "$2")"); }

# backfill NAME CONFIG FROM TO AGENTS: runs under /usr/bin/time -v, records figures.
backfill() {
  local name=$1 cfg=$2 from=$3 to=$4 agents=$5 conc=${6:-4}
  local before_req before_cpu
  before_req=$(sim_requests); before_cpu=$(sim_cpu_s)
  /usr/bin/time -v -o "$WORK/time.txt" "$BIN" -c "$cfg" --log-level warn \
    backfill --from "$from" --to "$to" --dataset user_status --concurrency "$conc" >"$WORK/out.txt"
  local line rss wall rows req days served simcpu
  line=$(grep '^Backfill' "$WORK/out.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$WORK/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$WORK/time.txt")
  cpu=$(awk -F': ' '/Percent of CPU/ {print $2}' "$WORK/time.txt")
  rows=$(sed -E 's/.*; ([0-9]+) rows.*/\1/' <<<"$line")
  req=$(sed -E 's/.* ([0-9]+) requests in.*/\1/' <<<"$line")
  days=$(sed -E 's/^Backfill [^:]+: ([0-9]+) day.*/\1/' <<<"$line")
  served=$(( $(sim_requests) - before_req ))  # /_sim/ calls are not counted
  simcpu=$(awk -v a="$(sim_cpu_s)" -v b="$before_cpu" 'BEGIN {printf "%.2f", a - b}')
  echo "$name: $line | peak RSS ${rss} MB, wall ${wall}s, exporter CPU $cpu, simulator CPU ${simcpu}s, requests served $served" >&2
  LAST_RSS=$rss; LAST_WALL=$wall; LAST_ROWS=$rows; LAST_REQ=$req; LAST_SERVED=$served; LAST_DAYS=$days
  LAST_CPU=$cpu; LAST_SIMCPU=$simcpu; LAST_AGENTS=$agents
}

# 1. CPU: JSON -> Parquet on one core, against DuckDB on the same JSON.
if [[ -z "${SKIP_CPU:-}" ]]; then
  cargo bench --bench user_status_encode 2>&1 | grep -E 'input:|^user_status/|thrpt' >&2
  "$(python3 tests/py/bootstrap.py)" benches/duckdb_compare.py "$ROOT" | tee "$WORK/duck.txt" >&2
  r=$(grep '^json_to_parquet_rows_per_s' "$WORK/duck.txt")
  s=$(grep parquet_bytes "$WORK/duck.txt")
  row "JSON->Parquet rows/s, 1 core (ours)" "$(sed -E 's/.*ours=([0-9]+).*/\1/' <<<"$r")"
  row "JSON->Parquet rows/s, 1 thread (DuckDB)" "$(sed -E 's/.*duckdb=([0-9]+).*/\1/' <<<"$r")"
  row "  speed ratio ours/DuckDB" "$(sed -E 's/.*ratio=([0-9.]+).*/\1/' <<<"$r")"
  row "  DuckDB left to infer the JSON schema, rows/s" "$(awk '/^duckdb_inferred_schema_rows_per_s/ {print $2}' "$WORK/duck.txt")"
  row "  Parquet size ratio ours/DuckDB (same rows)" "$(sed -E 's/.*ratio=([0-9.]+).*/\1/' <<<"$s")"
fi

# 2. Memory: 1 day vs 90 days of 500 agents at PT15M, limit lifted (also the saturation run),
#    at page_size 500 (one page, one row group per day) and 100 (five of each).
start_simulator "$BIN" --agents 500 --max-page-size 500
write_config "$WORK/mem.toml" 1000000 500 "$WORK/out-mem"
backfill "1 day" "$WORK/mem.toml" 2024-01-01 2024-01-01 500
rss1=$LAST_RSS
rm -rf "$WORK/out-mem"
backfill "90 days" "$WORK/mem.toml" 2024-01-01 2024-03-30 500
rss90=$LAST_RSS
bytes500=$(du -sb "$WORK/out-mem/user_status" | cut -f1)
row "Peak RSS, 500 agents, page_size 500: 1 day / 90 days (MB)" "$rss1 / $rss90"
row "  90-day / 1-day (--concurrency 4; target <= 1.20)" "$(awk -v a="$rss90" -v b="$rss1" 'BEGIN {printf "%.2f", a / b}')"
SAT_REQ=$LAST_REQ; SAT_WALL=$LAST_WALL; SAT_ROWS=$LAST_ROWS; SAT_CPU=$LAST_CPU; SAT_SIMCPU=$LAST_SIMCPU; SAT_SERVED=$LAST_SERVED; SAT_DAYS=$LAST_DAYS
write_config "$WORK/mem100.toml" 1000000 100 "$WORK/out-mem"
rm -rf "$WORK/out-mem"; backfill "1 day p100" "$WORK/mem100.toml" 2024-01-01 2024-01-01 500; a=$LAST_RSS
rm -rf "$WORK/out-mem"; backfill "90 days p100" "$WORK/mem100.toml" 2024-01-01 2024-03-30 500
bytes100=$(du -sb "$WORK/out-mem/user_status" | cut -f1)
row "Peak RSS, 500 agents, page_size 100: 1 day / 90 days (MB)" "$a / $LAST_RSS"
row "  90-day / 1-day (--concurrency 4; target <= 1.20)" "$(awk -v a="$LAST_RSS" -v b="$a" 'BEGIN {printf "%.2f", a / b}')"
row "Output bytes, 90 days: page_size 100 / page_size 500" "$bytes100 / $bytes500 = $(awk -v a="$bytes100" -v b="$bytes500" 'BEGIN {printf "%.2f", a / b}')x"
LAST_REQ=$SAT_REQ; LAST_WALL=$SAT_WALL; LAST_ROWS=$SAT_ROWS; LAST_CPU=$SAT_CPU; LAST_SIMCPU=$SAT_SIMCPU; LAST_SERVED=$SAT_SERVED; LAST_DAYS=$SAT_DAYS
row "Unlimited: requests/s (500 agents, 90 days, 0 ms latency)" "$(awk -v r="$LAST_REQ" -v w="$LAST_WALL" 'BEGIN {printf "%.1f", r / w}')"
row "Unlimited: rows/s" "$(awk -v r="$LAST_ROWS" -v w="$LAST_WALL" 'BEGIN {printf "%.0f", r / w}')"
row "Unlimited: exporter CPU / simulator CPU-s per wall-s" "$LAST_CPU / $(awk -v c="$LAST_SIMCPU" -v w="$LAST_WALL" 'BEGIN {printf "%.0f%%", 100 * c / w}')"
row "Requests per agent-day (page_size 500)" "$(awk -v r="$LAST_REQ" -v a="$LAST_AGENTS" -v d="$LAST_DAYS" 'BEGIN {printf "%.4f (%d requests, %d served)", r / (a * d), r, '"$LAST_SERVED"'}')"
stop_simulator

# 3. The issue's check scenario: 7 days of 200 agents, limit lifted.
start_simulator "$BIN" --agents 200 --max-page-size 500
write_config "$WORK/seven.toml" 1000000 500 "$WORK/out-seven"
backfill "7 days x 200 agents" "$WORK/seven.toml" 2024-01-01 2024-01-07 200
row "200 agents x 7 days: wall s / rows/s / peak RSS MB" "$LAST_WALL / $(awk -v r="$LAST_ROWS" -v w="$LAST_WALL" 'BEGIN {printf "%.0f", r / w}') / $LAST_RSS"
stop_simulator

# 4. Wall time = the rate limit: 60 requests/minute, 100 ms latency, R = 100 requests.
start_simulator "$BIN" --agents 200 --max-page-size 500 --latency-ms 100
write_config "$WORK/rl.toml" 60 500 "$WORK/out-rl"
backfill "rate-limited" "$WORK/rl.toml" 2024-01-01 2024-04-09 200
row "Rate-limited: R requests / wall s / R/60 min in s" "$LAST_REQ / $LAST_WALL / $(awk -v r="$LAST_REQ" 'BEGIN {printf "%.1f", r}')"
row "  wall / (R/60 min)  (target <= 1.05)" "$(awk -v r="$LAST_REQ" -v w="$LAST_WALL" 'BEGIN {printf "%.3f", w / r}')"

# 5. The same simulator (100 ms latency) with the limit lifted: does the exporter keep
#    `--concurrency` requests outstanding, i.e. reach the simulator's bound of concurrency/latency?
write_config "$WORK/fast.toml" 1000000 500 "$WORK/out-fast"
for c in 4 8 16; do
  rm -rf "$WORK/out-fast"
  backfill "latency 100 ms, c$c" "$WORK/fast.toml" 2024-01-01 2024-03-30 200 "$c"
  row "Limit lifted, 100 ms latency, --concurrency $c: req/s (bound $((c * 10))) / rows/s" "$(awk -v r="$LAST_REQ" -v w="$LAST_WALL" 'BEGIN {printf "%.1f", r / w}') / $(awk -v r="$LAST_ROWS" -v w="$LAST_WALL" 'BEGIN {printf "%.0f", r / w}')"
done
stop_simulator

echo
printf '%s\n' "${ROWS[@]}"
