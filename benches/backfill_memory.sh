#!/usr/bin/env bash
# Two builds of the exporter side by side: a 7-day backfill of each history dataset given
# (default agent_performance and call_details), 500 agents, `--concurrency 4`, the client-side
# rate limits (the account's and the per-bot ones) lifted, under /usr/bin/time -v. Prints per
# run: CPU seconds (user + sys), MB of API JSON served per CPU-second and peak RSS.
#
#   benches/backfill_memory.sh OLD_BINARY NEW_BINARY
#   ROUNDS=5 DATASETS=agent_performance benches/backfill_memory.sh old new
#
# Rounds alternate the builds (old, new, old, new, ...) so a change in the machine's load hits
# both alike; the simulator (its own process, OLD_BINARY's, --cache-responses, warmed by one
# untimed run of each dataset) is not measured.
set -euo pipefail
OLD=$(realpath "$1")
NEW=$(realpath "$2")
WORK=$(mktemp -d)
PORT=${BENCH_PORT:-18951}
ROUNDS=${ROUNDS:-3}
DATASETS=${DATASETS:-"agent_performance call_details"}
export SMARTASSIST_CLIENT_SECRET=bench-simulator-secret
. "$(dirname "$0")/sim.sh"
start_simulator "$OLD"

# config FILE OUT DATASET
config() {
  cat >"$1" <<TOML
$(api_section)
[output]
url = "$2"
$([[ $3 == user_status ]] || printf '[user_status]\nenabled = false')
[intent_realtime]
enabled = false
[$3]
enabled = true
timezone = "America/New_York"
$(case $3 in
  bot_sessions) echo 'bot_ids = ["st-demo-bot"]' ;;
  contact_volume) echo 'org_id = "o-demo-org"' ;;
esac)
TOML
}

# run NAME BINARY DATASET [timed]
run() {
  local name=$1 bin=$2 ds=$3 timed=${4:-}
  rm -rf "$WORK/out"
  config "$WORK/c.toml" "$WORK/out" "$ds"
  local before; before=$(served)
  /usr/bin/time -v -o "$WORK/time.txt" "$bin" -c "$WORK/c.toml" --log-level error \
    backfill --from 2024-05-01 --to 2024-05-07 --dataset "$ds" --concurrency 4 >"$WORK/out.txt"
  [[ -z "$timed" ]] && return 0
  local json cpu rss
  json=$(( $(served) - before ))
  cpu=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$WORK/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$WORK/time.txt")
  printf '%s\t%s\tJSON %.1f MB\tCPU %s s\t%.0f MB/CPU-s\tpeak RSS %s MB\n' "$name" "$ds" \
    "$(awk -v j="$json" 'BEGIN {print j / 1e6}')" "$cpu" \
    "$(awk -v j="$json" -v c="$cpu" 'BEGIN {print j / 1e6 / c}')" "$rss"
}

for ds in $DATASETS; do run warm "$OLD" "$ds"; done
for r in $(seq 1 "$ROUNDS"); do
  for ds in $DATASETS; do
    run "old r$r" "$OLD" "$ds" timed
    run "new r$r" "$NEW" "$ds" timed
  done
done
uptime
