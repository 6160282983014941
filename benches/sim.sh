# Sourced by the benchmark scripts: the simulator they measure against, in its own process, and
# what it served. Needs WORK (a temporary folder, removed on exit), PORT and
# SMARTASSIST_CLIENT_SECRET set.

SIM_PID=""
cleanup() {
  if [[ -n "$SIM_PID" ]]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_simulator BIN [OPTION...]: starts BIN's simulator on PORT and waits until it accepts
# connections (exits with its log if it does not within 10 s). OPTIONs are `simulate` options;
# without any, the backfill benchmarks' model: 500 agents, Call Details at 167 sessions an hour,
# pre-rendered answers.
start_simulator() {
  local bin=$1; shift
  (($#)) || set -- --agents 500 --max-page-size 500 --cache-responses --call-sessions-per-hour 167
  "$bin" --log-level warn simulate --listen "127.0.0.1:$PORT" "$@" \
    --client-secret "$SMARTASSIST_CLIENT_SECRET" >"$WORK/sim.log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0; sleep 0.1; done
  echo "simulator did not start" >&2; cat "$WORK/sim.log" >&2; exit 1
}

# api_section [REQUESTS_PER_MINUTE]: the `[api]` lines of a config for the simulator on PORT (its
# demo account), the client-side rate limits (the account's and the per-bot ones) lifted unless
# a limit is given.
api_section() {
  printf '[api]\nbase_url = "http://127.0.0.1:%s"\naccount_id = "demo-account"\n' "$PORT"
  printf 'iid = "st-demo-stream"\nclient_id = "cs-demo-client"\nrequests_per_minute = %s\n' \
    "${1:-1000000}"
  [[ -n "${1:-}" ]] || printf 'bot_requests_per_minute = 1000000\nbot_requests_per_hour = 60000000\n'
}

# stop_simulator: stops the simulator started last.
stop_simulator() { kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=""; }

# served: bytes of response bodies the simulator has sent so far.
served() {
  python3 -c "import json,urllib.request;print(sum(json.load(urllib.request.urlopen('http://127.0.0.1:$PORT/_sim/stats'))['body_bytes_by_endpoint'].values()))"
}

# sim_requests: requests the simulator has answered so far (its /_sim/ calls not counted).
sim_requests() {
  python3 -c "import json,urllib.request;print(json.load(urllib.request.urlopen('http://127.0.0.1:$PORT/_sim/stats'))['total_requests'])"
}

# sim_cpu_s: CPU seconds (user + sys) the running simulator has used so far.
sim_cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$SIM_PID/stat"; }
