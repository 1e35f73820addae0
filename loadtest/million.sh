#!/usr/bin/env bash
# The 1M-product profile: the Chorus catalog replicated to about 1M products (ids suffixed per
# copy), imported through `storefront import`, then served and measured: import time and
# on-disk size, start-up time (the first start builds the search index), RSS, and p50/p99 of
# product pages (cache hit and miss), listings at several page depths, search and
# autocomplete at a fixed open-loop rate.
# Usage: loadtest/million.sh [WORK_DIR=/tmp/million] [REPLICAS=52] [RATE=1000] [SECONDS=15]
# Needs ~6 GB free in WORK_DIR. Everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
source loadtest/common.sh
WORK=${1:-/tmp/million}
REPLICAS=${2:-52}
RATE=${3:-1000}
SECS=${4:-15}
DATA=$WORK/data
BASE=http://127.0.0.1:18090
mkdir -p "$WORK"
if [[ ! -s $WORK/products.jsonl ]]; then
  python3 loadtest/million.py ../shared/data/chorus-icecat/products.jsonl.gz "$WORK/products.jsonl" "$REPLICAS"
fi
if [[ ! -d $DATA ]]; then
  started=$(date +%s.%N)
  "$BIN/storefront" import --data-dir "$DATA" --format chorus "$WORK/products.jsonl" 2>&1 | tail -2
  echo "import: $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s, $(du -sh "$DATA" | cut -f1) on disk"
fi

started=$(date +%s.%N)
# The search cache is at its minimum (64 KiB), so the searches below are uncached.
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn STOREFRONT__SEARCH__CACHE_BYTES=0 \
  "$BIN/storefront" serve --data-dir "$DATA" --listen 127.0.0.1:18090 2>"$WORK/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
wait_ready_long() { for _ in $(seq 6000); do curl -sf -o /dev/null "$1/readyz" && return 0; sleep 0.1; done; return 1; }
wait_ready_long "$BASE"
echo "start-up to ready: $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s (search index $(du -sh "$DATA/search-index" | cut -f1))"
rss() { grep -E '^(VmHWM|VmRSS)' /proc/$PID/status | tr -s ' \t' ' ' | tr '\n' ' '; }
echo "after start-up: $(rss)"

# Listing pages at several depths: cursors collected by walking the newest-first listing.
SCEN=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$SCEN"' EXIT
python3 - "$BASE" "$SCEN" <<'PY'
import json, sys, urllib.request
base, out = sys.argv[1], sys.argv[2]
def get(path):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return json.load(r)
depths, cursor, page, cursors = {1, 10, 100, 1000}, None, 1, {}
while page <= max(depths):
    if page in depths:
        cursors[page] = cursor
    body = get("/api/v1/products?limit=100" + (f"&cursor={cursor}" if cursor else ""))
    cursor = body.get("next_cursor")
    page += 1
for depth, cursor in cursors.items():
    with open(f"{out}/listing_{depth}.toml", "w") as f:
        path = "/api/v1/products?limit=20" + (f"&cursor={cursor}" if cursor else "")
        f.write(f'name = "listing_{depth}"\n[[steps]]\nname = "listing at product {(depth - 1) * 100}"\npath = "{path}"\n')
category = get("/api/v1/categories")["items"][0]["slug"]
with open(f"{out}/category.toml", "w") as f:
    f.write(f'name = "category"\n[[steps]]\nname = "category page"\npath = "/api/v1/products?category={category}&limit=20"\n')
PY

# measure LABEL SCENARIO_FILE [args...]: p50/p99 at RATE (or $AT), open loop.
measure() {
  "$BIN/storefront-loadtest" run --target "$BASE" --scenario "$2" --rate "${AT:-$RATE}" --duration "${SECS}s" \
    --warmup 2s --connections 32 --label "million-$1" --out "$OUT" "${@:3}" >"$SCEN/out.txt"
  python3 - "$1" "$(tail -1 "$SCEN/out.txt" | sed 's/^results: //; s/ and .*//')" <<'PY'
import json, sys
t = json.load(open(sys.argv[2]))["total"]
print(f"{sys.argv[1]:<28} {t['rps']:>8.0f} rps  p50 {t['p50_us'] / 1000:.2f} ms  p99 {t['p99_us'] / 1000:.2f} ms  errors {t['errors']}")
PY
}
echo "--- open loop at $RATE rps, ${SECS} s each"
measure "product (cache hit)" loadtest/scenarios/product.toml --sample-products 2000
# The product cache holds a few percent of 1M pages: sampling 200k products makes most reads misses.
measure "product (mostly misses)" loadtest/scenarios/product.toml --sample-products 200000
for depth in 1 10 100 1000; do measure "listing, page at $(( (depth - 1) * 100 ))" "$SCEN/listing_$depth.toml"; done
measure "category page" "$SCEN/category.toml"
# Uncached search over many distinct 1-3 word queries is far slower than a page read, so it
# runs at 50 rps (its maximum is a few hundred); the first run also warms the spelling
# corrections of its words, the second (same queries) is the steady state.
AT=50 measure "search, first run, 50 rps" loadtest/scenarios/search_mix.toml --sample-products 20000 --seed 31
AT=50 measure "search, repeated, 50 rps" loadtest/scenarios/search_mix.toml --sample-products 20000 --seed 31
measure "autocomplete" loadtest/scenarios/suggest.toml --sample-products 5000
echo "at the end: $(rss)"
