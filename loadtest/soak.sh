#!/usr/bin/env bash
# The soak: the browse mix at half the server's maximum rate for SECS (default 1800), open
# loop, with the server's RSS sampled every second; prints the maximum found, the soak's
# result file, and RSS at the start and end. Usage: loadtest/soak.sh DATA_DIR [SECS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
source "$here/common.sh"
DATA=${1:?usage: loadtest/soak.sh DATA_DIR [SECS]}
SOAK=${2:-1800}
BASE=http://127.0.0.1:18080
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn \
  "$BIN/storefront" serve --data-dir "$DATA" --listen 127.0.0.1:18080 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
wait_ready "$BASE"
rss() { grep -E '^(VmRSS|VmHWM)' /proc/$PID/status | tr -s ' \t' ' ' | tr '\n' ' '; }
max=$(rps "$(SECS=10 run_scenario "$BASE" browse soak-max)")
half=$(python3 -c "print(int($max / 2))")
echo "maximum $max rps; soaking at $half rps for ${SOAK}s"
echo "start: $(rss)"
result=$(SECS=$SOAK run_scenario "$BASE" browse soak-50pct --rate "$half" --server-pid "$PID")
echo "end:   $(rss)"
echo "result: $result"
