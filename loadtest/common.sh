# Shared by the measurement scripts (sourced, after `cd` to the project root): where the release
# binaries and results live, and the helpers that run a scenario and read a result.
BIN="${CARGO_TARGET_DIR:-$HOME/.cache/storefront-target}/release"
OUT=loadtest/results
CONNS="${CONNS:-64}"
KEY=loadtest-admin-key-0123456789abcdef

# run_scenario TARGET SCENARIO LABEL [extra args...]: prints the path of the JSON result.
run_scenario() {
  "$BIN/storefront-loadtest" run --target "$1" --scenario "loadtest/scenarios/$2.toml" \
    --duration "${SECS}s" --warmup 3s --connections "$CONNS" --threads "${THREADS:-1}" --label "$3" --out "$OUT" "${@:4}" \
    | tail -1 | sed 's/^results: //; s/ and .*//'
}

# rps RESULT.json: the run's total requests per second.
rps() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['total']['rps'])" "$1"; }

# wait_ready BASE_URL: waits (up to 60 s) until the server's /readyz answers 200.
wait_ready() {
  for _ in $(seq 600); do
    curl -sf -o /dev/null "$1/readyz" && return 0
    sleep 0.1
  done
  echo "$1 did not become ready" >&2
  return 1
}
