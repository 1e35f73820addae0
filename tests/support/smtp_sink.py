"""A real SMTP server for the API tests (aiosmtpd): every message it receives is parsed and
appended as one JSON line to OUT: {from, to, subject, text, html, message_id}.

    smtp_sink.py OUT

Prints the port it listens on (127.0.0.1). It stops after 10 minutes in any case.
"""
import json
import socket
import sys
import time
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

out = sys.argv[1]


class Sink:
    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
time.sleep(600)
controller.stop()
