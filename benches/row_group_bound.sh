#!/usr/bin/env bash
# The page row-group bound (`[output] page_row_group_bytes`) against CPU and memory: a 7-day
# call_details backfill (4,000 sessions a day) and a 90-day user_status backfill (500 agents,
# PT15M, page_size 100), each at every bound given, under /usr/bin/time -v. Prints per run: MB
# of API JSON served per exporter CPU-second (user + sys), peak RSS, output bytes.
#
#   benches/row_group_bound.sh                  # bounds 1, 2 and 4 MiB, 3 rounds
#   BOUNDS="1048576 4194304" ROUNDS=5 benches/row_group_bound.sh
#   BINS="/tmp/before/smartassist-export target/release/smartassist-export" BOUNDS=1048576 \
#     DATASETS=user_status benches/row_group_bound.sh   # two builds alternated
#
# Rounds alternate the bounds (1, 2, 4, 1, 2, 4, ...) so a change in the machine's load hits
# each alike; the simulator (its own process, --cache-responses, warmed by one untimed run)
# is not measured.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(pwd)/target/release/smartassist-export"
BINS=${BINS:-$BIN}
DATASETS=${DATASETS:-"call_details user_status"}
WORK=$(mktemp -d)
PORT=${BENCH_PORT:-18947}
BOUNDS=${BOUNDS:-"1048576 2097152 4194304"}
ROUNDS=${ROUNDS:-3}
export SMARTASSIST_CLIENT_SECRET=bench-simulator-secret
. "$(dirname "$0")/sim.sh"
[[ -x "$BIN" ]] || cargo build --release --quiet
start_simulator "$BIN"

# config FILE OUT BOUND DATASET
config() {
  cat >"$1" <<TOML
$(api_section)
timezone = "UTC"
[output]
url = "$2"
page_row_group_bytes = $3
[user_status]
enabled = $([[ $4 == user_status ]] && echo true || echo false)
granularity = "PT15M"
page_size = 100
[call_details]
enabled = $([[ $4 == call_details ]] && echo true || echo false)
[intent_realtime]
enabled = false
TOML
}

# run NAME DATASET FROM TO BOUND [timed] (the binary: $BIN)
run() {
  local name=$1 ds=$2 from=$3 to=$4 bound=$5 timed=${6:-}
  rm -rf "$WORK/out"
  config "$WORK/c.toml" "$WORK/out" "$bound" "$ds"
  local before; before=$(served)
  /usr/bin/time -v -o "$WORK/time.txt" "$BIN" -c "$WORK/c.toml" --log-level error \
    backfill --from "$from" --to "$to" --dataset "$ds" --concurrency 4 >"$WORK/out.txt"
  [[ -z "$timed" ]] && return 0
  local json cpu rss bytes
  json=$(( $(served) - before ))
  cpu=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$WORK/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$WORK/time.txt")
  bytes=$(du -sb "$WORK/out/$ds" | cut -f1)
  printf '%s\tbound %s\tJSON %.1f MB\tCPU %s s\t%.0f MB/CPU-s\tpeak RSS %s MB\toutput %s bytes\n' \
    "$name" "$bound" "$(awk -v j="$json" 'BEGIN {print j / 1e6}')" "$cpu" \
    "$(awk -v j="$json" -v c="$cpu" 'BEGIN {print j / 1e6 / c}')" "$rss" "$bytes"
}

# one NAME DATASET BOUND [timed]: the dataset's range
one() {
  case $2 in
    call_details) run "$1 7d" call_details 2024-05-01 2024-05-07 "$3" ${4:-} ;;
    user_status) run "$1 90d" user_status 2024-01-01 2024-03-30 "$3" ${4:-} ;;
  esac
}

# Warm the response cache (every answer rendered once), untimed.
for ds in $DATASETS; do one warm "$ds" 1048576; done
for r in $(seq 1 "$ROUNDS"); do
  for b in $BOUNDS; do
    for BIN in $BINS; do
      for ds in $DATASETS; do one "$ds r$r $BIN" "$ds" "$b" timed; done
    done
  done
done
