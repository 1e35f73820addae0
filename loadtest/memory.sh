#!/usr/bin/env bash
# Memory over a server's whole life: start on DATA_DIR (right after an import the first start
# builds the search index), 10 s idle, BROWSE_SECS of the browse mix at the maximum rate, then
# SEARCH_SECS of many distinct faceted searches at the maximum rate (search_mix). Prints VmHWM
# (the peak over the whole life), RSS and its anonymous and file-backed parts at each point.
# Usage: loadtest/memory.sh DATA_DIR [BROWSE_SECS=60] [SEARCH_SECS=300]
# Config can be varied through the environment (STOREFRONT__CACHE__PRODUCT_BYTES=...).
# Heap profile: build with `--features storefront/system-alloc` (so the Rust heap goes through
# malloc too), set SERVER_BIN to that binary and WRAP="heaptrack -o /tmp/ht".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
source "$here/common.sh"
DATA=${1:?usage: loadtest/memory.sh DATA_DIR [BROWSE_SECS] [SEARCH_SECS]}
BROWSE=${2:-60}
SEARCH=${3:-300}
TARGET=http://127.0.0.1:18080
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn \
  ${WRAP:-} "${SERVER_BIN:-$BIN/storefront}" serve --data-dir "$DATA" --listen 127.0.0.1:18080 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
wait_ready $TARGET
# With a wrapper the server is its child.
SERVER=$(pgrep -P $PID -f "storefront serve" || echo $PID)
show() { echo "$1: $(grep -E '^(VmHWM|VmRSS|RssAnon|RssFile)' /proc/$SERVER/status | tr -s ' \t' ' ' | tr '\n' ' ')"; }
show "after start-up"
sleep 10
show "idle 10 s"
SECS=$BROWSE run_scenario $TARGET browse memory-browse --server-pid "$SERVER" >/dev/null
show "after ${BROWSE} s of browsing"
SECS=$SEARCH run_scenario $TARGET search_mix memory-search --server-pid "$SERVER" --sample-products 20000 >/dev/null
show "after ${SEARCH} s of searching"
