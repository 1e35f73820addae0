"""Browse then search load for a memory profile: product pages and listings, then many
distinct searches of 1-3 title words with facets. Usage: browse_search.py BASE BROWSE_SECS SEARCH_SECS"""
import json, random, sys, threading, time, urllib.request, urllib.parse
base, browse, search = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
random.seed(7)
def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return json.loads(r.read() or b'null')
    except Exception:
        return None
slugs, words, cursor = [], set(), None
for _ in range(60):
    page = get('/api/v1/products?limit=100' + (f'&cursor={cursor}' if cursor else ''))
    if not page: break
    for p in page['items']:
        slugs.append(p['slug']); words.update(w.lower() for w in p['title'].split() if w.isalpha() and len(w) > 3)
    cursor = page.get('next_cursor')
    if not cursor: break
words = sorted(words)
print(f'{len(slugs)} slugs, {len(words)} words', flush=True)
counts = {'browse': 0, 'search': 0}
def worker(kind, until):
    while time.time() < until:
        if kind == 'browse':
            if random.random() < 0.8: get('/api/v1/products/' + random.choice(slugs))
            else: get(f'/api/v1/products?limit=20&sort=price_asc&cursor=')
        else:
            q = ' '.join(random.sample(words, random.randint(1, 3)))
            get('/api/v1/search?' + urllib.parse.urlencode({'q': q, 'facets': 'brand,category,price', 'limit': 20}))
        counts[kind] += 1
for kind, secs in (('browse', browse), ('search', search)):
    until = time.time() + secs
    ts = [threading.Thread(target=worker, args=(kind, until)) for _ in range(4)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(kind, counts[kind], flush=True)
