"""A webhook receiver for the API tests: verifies every delivery with the reference
Standard Webhooks library and records it.

    webhook_receiver.py SECRET [--fail-first N] [--always-fail] [--hang-ms MS]

Prints the port it listens on (127.0.0.1), then serves:
  POST /hook       a delivery: answers 500 while failing, else 204
  GET  /received   every delivery answered so far: [{id, timestamp, verified, body, status}]
  GET  /calls      how many deliveries arrived (answered or not yet)
  POST /mode       {"fail_first": N, "always_fail": bool, "hang_ms": MS} changes behaviour
  POST /verify     {"headers": {...}, "body": "..."} -> {"verified": bool}
It stops after 10 minutes in any case.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

secret = sys.argv[1]
args = sys.argv[2:]
mode = {"fail_first": 0, "always_fail": False, "hang_ms": 0}
for i, a in enumerate(args):
    if a == "--fail-first":
        mode["fail_first"] = int(args[i + 1])
    elif a == "--always-fail":
        mode["always_fail"] = True
    elif a == "--hang-ms":
        mode["hang_ms"] = int(args[i + 1])

hook = Webhook(secret)
received = []
lock = threading.Lock()
calls = {"n": 0}


def verified(headers, body):
    try:
        hook.verify(body, headers)
        return True
    except Exception:
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, payload=None):
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-length", str(len(data)))
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("content-length", "0"))
        return self.rfile.read(n).decode()

    def do_GET(self):
        with lock:
            if self.path == "/calls":
                return self.reply(200, calls["n"])
            self.reply(200, list(received))

    def do_POST(self):
        body = self.body()
        if self.path == "/mode":
            with lock:
                mode.update(json.loads(body))
            return self.reply(200, mode)
        if self.path == "/verify":
            req = json.loads(body)
            return self.reply(200, {"verified": verified(req["headers"], req["body"])})
        headers = {k.lower(): v for k, v in self.headers.items()}
        with lock:
            calls["n"] += 1
            n = calls["n"]
            fail = mode["always_fail"] or n <= mode["fail_first"]
            hang = mode["hang_ms"]
        if hang:
            time.sleep(hang / 1000)
        status = 500 if fail else 204
        with lock:
            received.append({
                "id": headers.get("webhook-id"),
                "timestamp": headers.get("webhook-timestamp"),
                "signature": headers.get("webhook-signature"),
                "verified": verified(headers, body),
                "body": body,
                "status": status,
            })
        self.reply(status)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer (a killed server) is expected here.
        pass


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Timer(600, server.shutdown).start()
server.serve_forever()
