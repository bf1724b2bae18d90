"""A webhook receiver for the webhook tests: Python's http.server, verifying every request's
Standard Webhooks signature with the `standardwebhooks` package (an implementation nobody
here wrote), and answering by a script.

    webhook_receiver.py SECRET LOG SCRIPT [CERT KEY]

SECRET is the whsec_ secret; LOG a file where each request is written as one JSON line
({"n", "id", "signature_ok", "answer", "events"}) when it arrives; SCRIPT the answers, one
word per request in order, the last one repeated: `ok` (204), `fail` (500), `hang` (no
answer for 5 s, past the sender's timeout, then 204), `slow` (204 after 1 s). The port
it listens on (127.0.0.1) is printed on the first line of standard output. With CERT and
KEY (PEM files) it speaks HTTPS.
"""

import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET, LOG, SCRIPT = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
MAX_BODY = 4 * 1024 * 1024
lock = threading.Lock()
count = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        length = int(self.headers.get("content-length", "0"))
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        with lock:
            n = count
            count += 1
        answer = SCRIPT[min(n, len(SCRIPT) - 1)]
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            Webhook(SECRET).verify(body, headers)
            signature_ok = True
        except WebhookVerificationError:
            signature_ok = False
        payload = json.loads(body)
        line = {
            "n": n,
            "id": headers.get("webhook-id"),
            "signature_ok": signature_ok,
            "answer": answer,
            "type": payload.get("type"),
            "events": payload.get("events"),
        }
        with lock, open(LOG, "a") as log:
            log.write(json.dumps(line) + "\n")
        if not signature_ok:
            self.send_error(401)
            return
        if answer == "fail":
            self.send_error(500)
            return
        if answer == "hang":
            time.sleep(5)
        if answer == "slow":
            time.sleep(1)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
if len(sys.argv) > 5:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
