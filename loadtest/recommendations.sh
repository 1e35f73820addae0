#!/usr/bin/env bash
# p50/p99 of each recommendation list at a fixed open-loop rate, on a store with a purchase
# history (the online-retail import); then the cached product GET (closed loop) with view
# recording on and off, alternating, two rounds each.
# Usage: loadtest/recommendations.sh DATA_DIR [RATE] [SECONDS]
# DATA_DIR: storefront import --data-dir DATA_DIR --format online-retail online_retail.csv.gz
# Everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$1"
RATE="${2:-2000}"
SECS="${3:-20}"
source loadtest/common.sh
SERVER=""
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null || true' EXIT

start() { # start RECORD_BEHAVIOUR
  STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn \
    STOREFRONT__RECOMMENDATIONS__RECORD_BEHAVIOUR="$1" \
    "$BIN/storefront" serve --listen 127.0.0.1:18080 --data-dir "$DATA" 2>>"$OUT/recommendations-server.log" &
  SERVER=$!
  for _ in $(seq 1 60); do curl -fs http://127.0.0.1:18080/readyz >/dev/null && return; sleep 1; done
  echo "server did not get ready" >&2; exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""; }

start true
# A signed-in shopper with a history: registered here, with a few product views.
export RECO_TOKEN=$(curl -fs -X POST http://127.0.0.1:18080/api/v1/auth/register -H 'content-type: application/json' \
  -d "{\"email\":\"reco-$(date +%s%N)@example.com\",\"password\":\"loadtest-password-1\",\"name\":\"Load\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"]["access_token"])')
test -n "$RECO_TOKEN"
for slug in $(curl -fs "http://127.0.0.1:18080/api/v1/products?limit=20" | python3 -c 'import json,sys; print(" ".join(p["slug"] for p in json.load(sys.stdin)["items"]))'); do
  curl -fs -o /dev/null -H "authorization: Bearer $RECO_TOKEN" "http://127.0.0.1:18080/api/v1/products/$slug"
done
sleep 2
reco=$(run_scenario http://127.0.0.1:18080 recommendations "reco-$RATE" --rate "$RATE" --server-pid "$SERVER")
stop
products=()
for round in 1 2; do
  for record in true false; do
    start "$record"
    products+=("$record=$(run_scenario http://127.0.0.1:18080 product "product-record-$record-$round")")
    stop
  done
done
python3 - "$reco" "${products[@]}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"recommendations at {r['settings'].get('rate')} rps:")
for s in r["steps"]:
    print(f"  {s['name']:<28} n={s['count']:>7}  p50={s['p50_us']/1000:.3f} ms  p99={s['p99_us']/1000:.3f} ms  statuses={s['statuses']}")
for arg in sys.argv[2:]:
    record, path = arg.split("=", 1)
    p = json.load(open(path))
    print(f"cached product GET, closed loop, recording {record:<5}: {p['total']['rps']:.0f} rps, p99 {p['total']['p99_us']/1000:.3f} ms")
PY
