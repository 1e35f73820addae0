"""Writes the Chorus/Icecat catalog replicated to about 1M products as Chorus JSONL, for
`storefront import --format chorus`: copy r of each row gets the id "<id>-r<r>" (so its SKU,
slug and import key are its own) and its price moved by a few percent, so sorting and price
facets see a spread rather than 52 ties. Usage: million.py SOURCE.jsonl.gz OUT.jsonl [REPLICAS=52]"""
import gzip, json, sys

source, out = sys.argv[1], sys.argv[2]
replicas = int(sys.argv[3]) if len(sys.argv) > 3 else 52
with gzip.open(source, "rt", encoding="utf-8") as f:
    rows = [json.loads(line) for line in f if line.strip()]
written = 0
with open(out, "w", encoding="utf-8") as w:
    for r in range(replicas):
        for row in rows:
            copy = dict(row)
            copy["id"] = f"{row['id']}-r{r:02d}"
            price = row.get("price")
            if isinstance(price, int) and price > 0:
                copy["price"] = max(1, price + price * ((r * 7) % 11 - 5) // 100)
            w.write(json.dumps(copy, separators=(",", ":")))
            w.write("\n")
            written += 1
print(f"{written} products ({len(rows)} x {replicas}) in {out}")
