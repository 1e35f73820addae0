#!/usr/bin/env bash
# Checks the instrument: wrk and storefront-loadtest against the same two servers, alternating,
# with the same connections and threads, in one run. Prints requests/s and p99 of each and the
# ratios (ours / wrk: is our generator the bottleneck?; product / hello: the server's share of
# the plain-hyper ceiling, seen by each tool).
#   hello    plain hyper with a fixed ~1.5 KB JSON body (`storefront-loadtest hello`)
#   product  one cached product page, GET /api/v1/products/{slug}, the same URL for both tools
# Usage: loadtest/compare-wrk.sh DATA_DIR [SECONDS] [ROUNDS]   (THREADS=1 CONNS=32 by default)
# Everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$1"
SECS="${2:-10}"
ROUNDS="${3:-2}"
THREADS="${THREADS:-1}"
CONNS="${CONNS:-32}"
source loadtest/common.sh
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

"$BIN/storefront-loadtest" hello --listen 127.0.0.1:18081 --threads 2 2>/dev/null &
HELLO=$!
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn \
  "$BIN/storefront" serve --listen 127.0.0.1:18080 --data-dir "$DATA" 2>/dev/null &
SERVER=$!
SCN=$(mktemp -d)
trap 'kill $HELLO $SERVER 2>/dev/null || true; rm -rf "$SCN"' EXIT
wait_ready http://127.0.0.1:18080

slug=$(curl -sf 'http://127.0.0.1:18080/api/v1/products?limit=1' | python3 -c "import json,sys; print(json.load(sys.stdin)['items'][0]['slug'])")
PRODUCT="/api/v1/products/$slug"
printf 'name = "product-one"\n[[steps]]\nname = "product"\npath = "%s"\n' "$PRODUCT" >"$SCN/product-one.toml"
printf 'name = "hello"\n[[steps]]\nname = "hello"\npath = "/"\n' >"$SCN/hello.toml"
curl -sf -o /dev/null "http://127.0.0.1:18080$PRODUCT"   # warm the page cache

# wrk URL -> "rps p99_ms"
wrk_run() {
  wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
v, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()
print(rps, float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit])'
}
# ours BASE SCENARIO -> "rps p99_ms"
ours_run() {
  local out
  out=$("$BIN/storefront-loadtest" run --target "$1" --scenario "$2" --duration "${SECS}s" --warmup 1s \
    --connections "$CONNS" --threads "$THREADS" --label compare --out "$SCN" | tail -1 | sed 's/^results: //; s/ and .*//')
  python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['total']; print(t['rps'], t['p99_us']/1000)" "$out"
}

results=()
for round in $(seq "$ROUNDS"); do
  results+=("wrk hello $(wrk_run http://127.0.0.1:18081/)")
  results+=("ours hello $(ours_run http://127.0.0.1:18081 "$SCN/hello.toml")")
  results+=("wrk product $(wrk_run "http://127.0.0.1:18080$PRODUCT")")
  results+=("ours product $(ours_run http://127.0.0.1:18080 "$SCN/product-one.toml")")
  echo "round $round done" >&2
done

printf '%s\n' "${results[@]}" >"$SCN/results.txt"
python3 - "$SCN/results.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tool, server, rps, p99 = line.split()
    rows.setdefault((tool, server), []).append((float(rps), float(p99)))
def mean(tool, server, i=0):
    return statistics.mean(r[i] for r in rows[(tool, server)])
print(f"{'tool':<6} {'server':<8} {'rps (each round)':<30} {'mean rps':>10} {'p99 ms':>8}")
for tool, server in [("wrk", "hello"), ("ours", "hello"), ("wrk", "product"), ("ours", "product")]:
    each = " ".join(f"{r[0]:.0f}" for r in rows[(tool, server)])
    print(f"{tool:<6} {server:<8} {each:<30} {mean(tool, server):>10.0f} {mean(tool, server, 1):>8.2f}")
print()
print(f"ours / wrk, hello:      {mean('ours', 'hello') / mean('wrk', 'hello'):.3f}")
print(f"ours / wrk, product:    {mean('ours', 'product') / mean('wrk', 'product'):.3f}")
print(f"product / hello, wrk:   {mean('wrk', 'product') / mean('wrk', 'hello'):.3f}")
print(f"product / hello, ours:  {mean('ours', 'product') / mean('ours', 'hello'):.3f}")
PY
