#!/usr/bin/env bash
# Measures the performance targets in one run, against the hello ceiling on the same machine:
#   1. closed-loop max throughput of the hello ceiling and of cached product GETs;
#   2. open-loop product, conditional (304) and listing GETs at 50% of the hello maximum;
#   3. the browse mix, with the server's RSS sampled.
# Usage: loadtest/baseline.sh DATA_DIR [SECONDS]   (DATA_DIR holds an imported catalog)
# Everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$1"
SECS="${2:-20}"
source loadtest/common.sh

"$BIN/storefront-loadtest" hello --listen 127.0.0.1:18081 --threads 2 2>/dev/null &
HELLO=$!
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn \
  "$BIN/storefront" serve --listen 127.0.0.1:18080 --data-dir "$DATA" 2>/dev/null &
SERVER=$!
trap 'kill $HELLO $SERVER 2>/dev/null || true' EXIT
sleep 3

run() { run_scenario "$@"; }

hello=$(run http://127.0.0.1:18081 hello hello-max)
product=$(run http://127.0.0.1:18080 product product-max --server-pid "$SERVER")
ceiling=$(rps "$hello")
half=$(python3 -c "print(round($ceiling / 2))")
echo "hello ceiling: $ceiling rps; product max: $(rps "$product") rps; ratio: $(python3 -c "print(round($(rps "$product") / $ceiling, 3))"); open-loop rate: $half rps"
run http://127.0.0.1:18080 product product-50pct --rate "$half" --server-pid "$SERVER" >/dev/null
run http://127.0.0.1:18080 product_304 product304-50pct --rate "$half" --server-pid "$SERVER" >/dev/null
run http://127.0.0.1:18080 listing listing-50pct --rate "$half" --server-pid "$SERVER" >/dev/null
run http://127.0.0.1:18080 browse browse-50pct --rate "$half" --server-pid "$SERVER" >/dev/null
"$BIN/storefront-loadtest" compare "$hello" "$product"
echo "all results: ls $OUT (summaries: storefront-loadtest compare A.json B.json)"
