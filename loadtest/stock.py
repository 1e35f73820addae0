"""Gives every SKU of a running demo server ample stock, so a load run never buys or holds a
SKU dry. Usage: python3 loadtest/stock.py BASE_URL ADMIN_KEY"""
import json
import sys
import urllib.request

base, key = sys.argv[1], sys.argv[2]
page = json.load(urllib.request.urlopen(f"{base}/api/v1/products?limit=100"))
for item in page["items"]:
    product = json.load(urllib.request.urlopen(f"{base}/api/v1/products/{item['slug']}"))
    for v in product["variants"]:
        req = urllib.request.Request(
            f"{base}/api/v1/inventory/{v['sku']}",
            method="PUT",
            data=json.dumps({"on_hand": 1000000000}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        urllib.request.urlopen(req).read()
