#!/usr/bin/env bash
# Measures webhook dispatch: how fast queued events reach a local receiver (the loadtest
# `sink`, a plain hyper server answering 204), and product-page latency during such a storm
# against the same open-loop load without it.
#   Usage: loadtest/notify.sh [EVENTS] [RATE] [SECONDS]   (defaults 60000, 2000 requests/s, 10 s)
#   SERVER_BIN=path/to/storefront measures another build (A/B runs side by side).
# A fresh demo catalog in a temp dir; everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-60000}"
RATE="${2:-2000}"
SECS="${3:-10}"
BASE=http://127.0.0.1:18096
SINK=http://127.0.0.1:18097
source loadtest/common.sh
CONNS="${CONNS:-32}"

DATA=$(mktemp -d)
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn STOREFRONT__AUTH__ADMIN_API_KEY=$KEY \
STOREFRONT__WEBHOOKS__ALLOW_PRIVATE_TARGETS=true STOREFRONT__NOTIFICATIONS__CONCURRENCY_PER_SINK=${PER_SINK:-64} \
  "${SERVER_BIN:-$BIN/storefront}" serve --demo --listen 127.0.0.1:18096 --data-dir "$DATA" 2>/dev/null &
SERVER=$!
"$BIN/storefront-loadtest" sink --listen 127.0.0.1:18097 --duration 10m 2>/dev/null &
SINKPID=$!
trap 'kill $SERVER $SINKPID 2>/dev/null || true; rm -rf "$DATA"' EXIT
sleep 3
# The endpoint subscribes to nothing the catalog load makes; pings reach it anyway.
hook=$(curl -fsS -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d "{\"url\":\"$SINK/hook\",\"events\":[\"order_placed\"]}" "$BASE/api/v1/admin/webhooks")
HOOK=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['id'])" "$hook")
count() { curl -fsS "$SINK/" | python3 -c "import json,sys; print(json.load(sys.stdin)['count'])"; }
# storm N: queues N ping events (10 000 per request) in the background.
storm() {
  local left=$1
  while [ "$left" -gt 0 ]; do
    local n=$(( left < 10000 ? left : 10000 ))
    curl -fsS -o /dev/null -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
      -d "{\"count\":$n}" "$BASE/api/v1/admin/webhooks/$HOOK/ping"
    left=$(( left - n ))
  done
}
# wait_for N: until the sink counted N deliveries (at most 180 s).
wait_for() { for _ in $(seq 1800); do [ "$(count)" -ge "$1" ] && return 0; sleep 0.1; done; echo "timed out"; return 1; }

echo "== dispatch: $EVENTS events queued at once"
start=$(python3 -c 'import time; print(int(time.time()*1000))')
storm "$EVENTS"
queued=$(python3 -c 'import time; print(int(time.time()*1000))')
wait_for "$EVENTS"
curl -fsS "$SINK/" | python3 -c "
import json, sys
s = json.load(sys.stdin); start, queued = $start, $queued
print(f'queued in {queued-start} ms; {s[\"count\"]} delivered, the last {s[\"last_ms\"]-start} ms after the first ping request')
print(f'dispatch rate: {s[\"count\"]*1000/max(1, s[\"last_ms\"]-start):.0f} events/s end to end (queueing included), '
      f'{s[\"count\"]*1000/max(1, s[\"last_ms\"]-s[\"first_ms\"]):.0f} events/s first to last delivery')
"

echo "== product pages at $RATE requests/s, $SECS s: quiet"
quiet=$(run_scenario "$BASE" product notify-quiet --rate "$RATE" --server-pid "$SERVER")
echo "== the same during a dispatch storm"
before=$(count)
( storm "$EVENTS" ) &
STORM=$!
busy=$(run_scenario "$BASE" product notify-storm --rate "$RATE" --server-pid "$SERVER")
wait $STORM
during=$(( $(count) - before ))
echo "deliveries during the measured storm run: $during"
python3 - "$quiet" "$busy" <<'PY'
import json, sys
q, b = (json.load(open(p))["total"] for p in sys.argv[1:3])
for k in ("rps", "p50_us", "p99_us"):
    print(f"{k:>7}: quiet {q[k]:>9.1f}  storm {b[k]:>9.1f}  ratio {b[k]/q[k]:.2f}")
PY
