# Varnish 7 in front of storefront, with the xkey vmod (Debian: varnish, varnish-modules).
#
#   varnishd -a :80 -f /etc/varnish/storefront.vcl -s malloc,1g
#   # storefront: [cdn] purge_url = "http://127.0.0.1:80/"  (purge_method "POST" or "PURGE")
#
# - Public reads (products, listings, categories, search, suggest, reviews, recommendations)
#   are cached as the origin's Cache-Control says (s-maxage), and served stale for its
#   stale-while-revalidate while the origin is slow or down (Varnish turns it into grace).
# - Anything per caller (an Authorization header, carts, accounts, checkout, orders, admin)
#   goes to the origin every time; the origin also marks those answers private.
# - Purges: POST or PURGE with `xkey-purge: <tags>` from an address in `purgers` removes
#   every object tagged with any of the tags (the origin tags answers with `xkey`). The
#   purger keeps each header under [cdn] purge_max_header_bytes (4000), well within
#   Varnish's default http_req_hdr_len of 8 KiB; raise both together if you must.
vcl 4.1;

import xkey;

backend storefront {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;
}

# Who may purge: the storefront host(s).
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE" || (req.method == "POST" && req.http.xkey-purge)) {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "xkey-purge header required"));
        }
        set req.http.n-gone = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged " + req.http.n-gone));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.http.Authorization) {
        return (pass);
    }
    if (req.url ~ "^/api/v1/(cart|me|auth|checkout|orders|returns|admin)(/|\?|$)") {
        return (pass);
    }
    if (req.url ~ "^/(healthz|readyz|metrics)") {
        return (pass);
    }
    # The guest cart token only links a guest's page views for recommendations; public pages
    # are the same for everyone, so it must not split the cache.
    return (hash);
}

sub vcl_backend_response {
    if (beresp.http.Cache-Control ~ "(private|no-store)") {
        set beresp.uncacheable = true;
        set beresp.ttl = 0s;
        return (deliver);
    }
    # Errors (a 503 while search is starting, a 404) are not kept beyond what they say.
    if (beresp.status >= 500) {
        set beresp.ttl = 0s;
        set beresp.uncacheable = true;
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # The tags are for purging, not for browsers.
    unset resp.http.xkey;
}
