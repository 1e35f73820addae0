#!/usr/bin/env bash
# Memory over a server's life: start on DATA_DIR (a fresh import makes the first start build
# the index), 10 s idle, 20 s of browsing, 60 s of varied searches; prints VmHWM, RSS and its
# anonymous and file-backed parts at each point. Usage: loadtest/memory.sh DATA_DIR
# For the C/C++ heap: prefix the server with `heaptrack -o /tmp/ht` (mimalloc's Rust heap is
# not visible to it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
DATA=${1:?usage: loadtest/memory.sh DATA_DIR}
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn \
  "$BIN/storefront" serve --data-dir "$DATA" --listen 127.0.0.1:18080 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
wait_ready http://127.0.0.1:18080
show() { echo "$1: $(grep -E '^(VmHWM|VmRSS|RssAnon|RssFile)' /proc/$PID/status | tr -s ' \t' ' ' | tr '\n' ' ')"; }
show "after start-up"
sleep 10
show "idle 10 s"
python3 "$here/browse_search.py" http://127.0.0.1:18080 20 60 >/dev/null
show "after browse and search"
