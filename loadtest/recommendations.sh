#!/usr/bin/env bash
# p50/p99 of each recommendation list at a fixed open-loop rate, on a store with a purchase
# history (the online-retail import), and the cached product GET before and after the view
# recording it now does (SERVER_BIN=... measures another build the same way, for an A/B).
# Usage: loadtest/recommendations.sh DATA_DIR [RATE] [SECONDS]
# DATA_DIR: storefront import --data-dir DATA_DIR --format online-retail online_retail.csv.gz
# Everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$1"
RATE="${2:-2000}"
SECS="${3:-20}"
source loadtest/common.sh
SERVER_BIN="${SERVER_BIN:-$BIN/storefront}"

STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn STOREFRONT__AUTH__ADMIN_API_KEY=$KEY \
  "$SERVER_BIN" serve --listen 127.0.0.1:18080 --data-dir "$DATA" 2>/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:18080/readyz >/dev/null && break; sleep 1; done
# A signed-in shopper with a history: registered here, with a few product views.
EMAIL="reco-$(date +%s)@example.com"
export RECO_TOKEN=$(curl -fs -X POST http://127.0.0.1:18080/api/v1/auth/register -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"loadtest-password-1\",\"name\":\"Load\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for slug in $(curl -fs "http://127.0.0.1:18080/api/v1/products?limit=20" | python3 -c 'import json,sys; print(" ".join(p["slug"] for p in json.load(sys.stdin)["items"]))'); do
  curl -fs -o /dev/null -H "authorization: Bearer $RECO_TOKEN" "http://127.0.0.1:18080/api/v1/products/$slug"
done
sleep 2
reco=$(run_scenario http://127.0.0.1:18080 recommendations reco-$RATE --rate "$RATE" --server-pid "$SERVER")
product=$(run_scenario http://127.0.0.1:18080 product product-max --server-pid "$SERVER")
python3 - "$reco" "$product" <<'PY'
import json, sys
r, p = (json.load(open(f)) for f in sys.argv[1:3])
print(f"recommendations at {r['settings'].get('rate')} rps:")
for s in r["steps"]:
    print(f"  {s['name']:<28} n={s['count']:>7}  p50={s['p50_us']/1000:.3f} ms  p99={s['p99_us']/1000:.3f} ms  statuses={s['statuses']}")
print(f"cached product GET, closed loop: {p['total']['rps']:.0f} rps, p99 {p['total']['p99_us']/1000:.3f} ms")
PY
