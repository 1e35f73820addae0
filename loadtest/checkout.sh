#!/usr/bin/env bash
# Measures checkout: guests who add 1-3 lines, then check out with the `test` provider at zero
# latency (loadtest/scenarios/checkout.toml), with `sync_writes` on (an fsync per acknowledged
# write, group-committed): the maximum checkouts/s (closed loop), then p50/p99 in an open loop
# at 50% of it. Usage: loadtest/checkout.sh [SECONDS]   (a fresh demo catalog in a temp dir)
# SERVER_BIN=path/to/storefront measures another build (A/B runs side by side).
# Everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
BASE=http://127.0.0.1:18095
source loadtest/common.sh
run() { run_scenario "$BASE" checkout "$@"; }
# The checkout step of a result: "rps p50_ms p99_ms statuses", and the run's total rps.
step() { python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = next(s for s in r["steps"] if s["name"] == "checkout")
print(f"{c['rps']:.0f} checkouts/s, p50 {c['p50_us']/1000:.2f} ms, p99 {c['p99_us']/1000:.2f} ms, statuses {c['statuses']}")
PY
}

DATA=$(mktemp -d)
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn STOREFRONT__AUTH__ADMIN_API_KEY=$KEY \
STOREFRONT__STORAGE__SYNC_WRITES=true STOREFRONT__PAYMENTS__TEST_LATENCY_MS=0 \
  "${SERVER_BIN:-$BIN/storefront}" serve --demo --listen 127.0.0.1:18095 --data-dir "$DATA" 2>/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
sleep 3
python3 loadtest/stock.py "$BASE" "$KEY"
max=$(run checkout-max --server-pid "$SERVER")
echo "max (closed loop, $CONNS connections): $(step "$max")"
half=$(python3 -c "print(round($(rps "$max") / 2))")
at_half=$(run checkout-50pct --rate "$half" --server-pid "$SERVER")
echo "open loop at 50% ($half requests/s in all): $(step "$at_half")"
echo "all results: ls $OUT (summaries: storefront-loadtest compare A.json B.json)"
