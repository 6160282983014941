# Sourced by the backfill benchmarks: the simulator they measure against, in its own process
# (500 agents, Call Details at 167 sessions an hour, pre-rendered answers), and what it served.
# Needs WORK (a temporary folder, removed on exit), PORT and SMARTASSIST_CLIENT_SECRET set.

SIM_PID=""
cleanup() {
  if [[ -n "$SIM_PID" ]]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_simulator BIN: starts BIN's simulator on PORT and waits until it accepts connections.
start_simulator() {
  "$1" --log-level warn simulate --listen "127.0.0.1:$PORT" --agents 500 --max-page-size 500 \
    --cache-responses --call-sessions-per-hour 167 --client-secret "$SMARTASSIST_CLIENT_SECRET" \
    >"$WORK/sim.log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
}

# served: bytes of response bodies the simulator has sent so far.
served() {
  python3 -c "import json,urllib.request;print(sum(json.load(urllib.request.urlopen('http://127.0.0.1:$PORT/_sim/stats'))['body_bytes_by_endpoint'].values()))"
}
