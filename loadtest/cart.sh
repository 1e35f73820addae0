#!/usr/bin/env bash
# Measures cart performance: the cart scenario (many distinct guest shoppers adding in-stock SKUs
# and reading their repriced cart) at maximum throughput (closed loop) and at 50% of it (open
# loop), with `sync_writes` on (fsync per acknowledged write, group-committed) and off.
# Usage: loadtest/cart.sh [SECONDS]   (a fresh demo catalog in a temporary data dir each time)
# Everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
BASE=http://127.0.0.1:18090
source loadtest/common.sh
run() { run_scenario "$BASE" "$@"; }

for SYNC in true false; do
  DATA=$(mktemp -d)
  STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn STOREFRONT__AUTH__ADMIN_API_KEY=$KEY \
  STOREFRONT__STORAGE__SYNC_WRITES=$SYNC \
    "$BIN/storefront" serve --demo --listen 127.0.0.1:18090 --data-dir "$DATA" 2>/dev/null &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  sleep 3
  # Ample stock, so holds never run a SKU dry during the run.
  python3 loadtest/stock.py "$BASE" "$KEY"
  max=$(run cart "cart-max-sync-$SYNC" --server-pid "$SERVER")
  half=$(python3 -c "print(round($(rps "$max") / 2))")
  echo "sync_writes=$SYNC: cart max $(rps "$max") rps; open loop at $half rps:"
  run cart "cart-50pct-sync-$SYNC" --rate "$half" --server-pid "$SERVER" >/dev/null
  kill $SERVER; wait $SERVER 2>/dev/null || true
  rm -rf "$DATA"
done
echo "all results: ls $OUT (summaries: storefront-loadtest compare A.json B.json)"
