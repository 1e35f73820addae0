#!/usr/bin/env bash
# The performance baseline in one run and one table: for each hot path, the maximum
# throughput (closed loop, the same connections and threads) and p99 measured by wrk and by
# storefront-loadtest on identical requests, each as a ratio to the plain-hyper ceiling
# measured in the same run. Checkout is a journey (add to a new cart, then check out) that
# wrk cannot script, so only our tool measures it.
# Usage: loadtest/baseline.sh DATA_DIR [SECONDS]   (DATA_DIR: an imported catalog, e.g. the
#        Chorus import; THREADS=1 CONNS=32 by default). Rate limits are off for the run.
# Everything runs on 127.0.0.1 and stops on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$1"
SECS="${2:-10}"
THREADS="${THREADS:-1}"
CONNS="${CONNS:-32}"
source loadtest/common.sh
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
BASE=http://127.0.0.1:18080

"$BIN/storefront-loadtest" hello --listen 127.0.0.1:18081 --threads 2 2>/dev/null &
HELLO=$!
STOREFRONT__RATE_LIMIT__API_PER_SECOND=0 STOREFRONT__LOG__LEVEL=warn STOREFRONT__AUTH__ADMIN_API_KEY=$KEY \
  "$BIN/storefront" serve --listen 127.0.0.1:18080 --data-dir "$DATA" 2>/dev/null &
SERVER=$!
WORK=$(mktemp -d)
trap 'kill $HELLO $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
wait_ready "$BASE"

# Fixtures: a product, its ETag, a SKU with ample stock, and a guest cart of three lines.
read -r SLUG SKU < <(curl -sf "$BASE/api/v1/products?limit=1" | python3 -c "
import json, sys, urllib.request
slug = json.load(sys.stdin)['items'][0]['slug']
product = json.load(urllib.request.urlopen('$BASE/api/v1/products/' + slug))
print(slug, product['variants'][0]['sku'])")
curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"on_hand": 1000000000}' "$BASE/api/v1/inventory/$SKU"
ETAG=$(curl -sfI "$BASE/api/v1/products/$SLUG" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
TOKEN=$(curl -sfi -X POST -H 'Content-Type: application/json' -d "{\"sku\":\"$SKU\",\"quantity\":3}" \
  "$BASE/api/v1/cart/items" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cart-token"{print $2}')
ADD_BODY="{\"sku\":\"$SKU\",\"quantity\":1}"

# scenario NAME PATH [toml lines...]: a one-step scenario file for our tool.
scenario() {
  local file="$WORK/$1.toml"
  { echo "name = \"$1\""; for line in "${@:3}"; do [[ $line == scenario:* ]] && echo "${line#scenario:}"; done
    echo '[[steps]]'; echo "name = \"$1\""; echo "path = '$2'"
    for line in "${@:3}"; do [[ $line == scenario:* ]] || echo "$line"; done; } >"$file"
  echo "$file"
}
# wrk_run URL [wrk args...] -> "rps p99_ms"
wrk_run() {
  wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "${@:2}" "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
v, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text).groups()
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(rps, float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit], errors.group(1) if errors else 0)'
}
# ours_run BASE SCENARIO_FILE -> "rps p99_ms errors"
ours_run() {
  local out
  out=$("$BIN/storefront-loadtest" run --target "$1" --scenario "$2" --duration "${SECS}s" --warmup 1s \
    --connections "$CONNS" --threads "$THREADS" --label baseline --out "$OUT" | tail -1 | sed 's/^results: //; s/ and .*//')
  python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['total']; print(t['rps'], t['p99_us']/1000, t['errors'])" "$out"
}
cat >"$WORK/add.lua" <<LUA
wrk.method = "POST"
wrk.body = '$ADD_BODY'
wrk.headers["Content-Type"] = "application/json"
LUA

rows=()
row() { rows+=("$1 $2 $3"); echo "measured $1 ($2)" >&2; }
row ceiling wrk "$(wrk_run http://127.0.0.1:18081/)"
row ceiling ours "$(ours_run http://127.0.0.1:18081 "$(scenario ceiling /)")"
row product wrk "$(wrk_run "$BASE/api/v1/products/$SLUG")"
row product ours "$(ours_run "$BASE" "$(scenario product "/api/v1/products/$SLUG")")"
row product_304 wrk "$(wrk_run "$BASE/api/v1/products/$SLUG" -H "If-None-Match: $ETAG")"
row product_304 ours "$(ours_run "$BASE" "$(scenario product_304 "/api/v1/products/$SLUG" "headers = { \"if-none-match\" = '$ETAG' }")")"
row listing wrk "$(wrk_run "$BASE/api/v1/products?limit=20")"
row listing ours "$(ours_run "$BASE" "$(scenario listing '/api/v1/products?limit=20')")"
row search wrk "$(wrk_run "$BASE/api/v1/search?q=laptop&limit=20")"
row search ours "$(ours_run "$BASE" "$(scenario search '/api/v1/search?q=laptop&limit=20')")"
row get_cart wrk "$(wrk_run "$BASE/api/v1/cart" -H "X-Cart-Token: $TOKEN")"
row get_cart ours "$(ours_run "$BASE" "$(scenario get_cart /api/v1/cart "headers = { \"x-cart-token\" = '$TOKEN' }")")"
row add_to_cart wrk "$(wrk_run "$BASE/api/v1/cart/items" -s "$WORK/add.lua")"
row add_to_cart ours "$(ours_run "$BASE" "$(scenario add_to_cart /api/v1/cart/items 'scenario:new_cart_each_request = true' 'method = "POST"' "body = '$ADD_BODY'")")"
row checkout ours "$(ours_run "$BASE" loadtest/scenarios/checkout.toml)"

printf '%s\n' "${rows[@]}" >"$WORK/rows.txt"
PLOT="$OUT/baseline-$(date +%s).svg"
python3 - "$WORK/rows.txt" "$SECS" "$CONNS" "$THREADS" "$PLOT" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, tool, rps, p99, errors = line.split()
    rows[(name, tool)] = (float(rps), float(p99), int(float(errors)))
names = list(dict.fromkeys(n for n, _ in rows))
ceiling = {t: rows[("ceiling", t)][0] for t in ("wrk", "ours")}
print(f"closed loop, {sys.argv[3]} connections, {sys.argv[4]} thread(s), {sys.argv[2]} s per cell; ratio = rps / the ceiling's rps with the same tool")
print(f"| {'endpoint':<12} | {'wrk rps':>9} | {'wrk p99':>8} | {'ratio':>6} | {'ours rps':>9} | {'ours p99':>8} | {'ratio':>6} | {'errors':>6} |")
print(f"|{'-'*14}|{'-'*11}|{'-'*10}|{'-'*8}|{'-'*11}|{'-'*10}|{'-'*8}|{'-'*8}|")
for n in names:
    cells, errors = [], 0
    for t in ("wrk", "ours"):
        if (n, t) in rows:
            rps, p99, e = rows[(n, t)]
            errors += e
            cells += [f"{rps:>9.0f}", f"{p99:>6.2f}ms", f"{rps / ceiling[t]:>6.3f}"]
        else:
            cells += [f"{'-':>9}", f"{'-':>8}", f"{'-':>6}"]
    print(f"| {n:<12} | " + " | ".join(cells) + f" | {errors:>6} |")

# The plot: each endpoint's rps as a fraction of the ceiling, one bar per tool.
bar_h, gap, left, width = 14, 12, 110, 520
height = 40 + len(names) * (2 * bar_h + gap)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" font-family="sans-serif" font-size="12">',
       f'<text x="{left}" y="16">rps / ceiling rps (same tool, same run): wrk (dark), storefront-loadtest (light)</text>']
for i in range(0, 11, 2):
    x = left + width * i / 10
    svg.append(f'<line x1="{x}" y1="24" x2="{x}" y2="{height - 4}" stroke="#ddd"/><text x="{x - 8}" y="{height}" font-size="10">{i / 10:.1f}</text>')
for k, n in enumerate(names):
    y = 28 + k * (2 * bar_h + gap)
    svg.append(f'<text x="4" y="{y + bar_h + 4}">{n}</text>')
    for j, (t, colour) in enumerate((("wrk", "#1f4e79"), ("ours", "#7fb3e0"))):
        if (n, t) not in rows:
            continue
        rps = rows[(n, t)][0]
        w = width * min(rps / ceiling[t], 1.05)
        svg.append(f'<rect x="{left}" y="{y + j * bar_h}" width="{w:.1f}" height="{bar_h - 2}" fill="{colour}"/>')
        svg.append(f'<text x="{left + w + 4:.1f}" y="{y + j * bar_h + bar_h - 4}" font-size="10">{rps:,.0f}/s</text>')
svg.append('</svg>')
open(sys.argv[5], "w").write("\n".join(svg) + "\n")
print(f"plot: {sys.argv[5]}")
PY
echo "our tool's results (JSON and SVG plots): $OUT"
