"""A partner's webhook receiver for tests: a real HTTP server on loopback
that records every request and answers as it is told."""

import collections
import threading
import time
from http.server import BaseHTTPRequestHandler

from standardwebhooks.webhooks import Webhook as Verifier

from tests.support.sinks import Served, SinkHttpServer

Request = collections.namedtuple("Request", "at headers body status")


class Receiver(Served):
    """`answers` is consumed one per request, then `status` answers: an item
    is a status (503), (status, headers) (429, {"Retry-After": "1"}),
    ("hang", seconds) to answer 200 only after that long, or ("slow body",
    seconds) to answer 200 at once and send its body that much later. `requests` holds
    each request as it came."""

    def __init__(self, status=200, port=0):
        self.status = status
        self.answers = collections.deque()
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    answer = receiver.answers.popleft() if receiver.answers else receiver.status
                status, headers = (answer, {}) if isinstance(answer, int) else answer
                hang, slow_body, arrived = 0, 0, time.monotonic()
                if status == "hang":
                    hang, status, headers = headers, 200, {}
                elif status == "slow body":
                    slow_body, status, headers = headers, 200, {}
                receiver.requests.append(Request(arrived, dict(self.headers), body, status))  # as it comes
                time.sleep(hang)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.flush()
                time.sleep(slow_body)
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = SinkHttpServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def answer(self, *answers):
        self.answers.extend(answers)
        return self

    def delivered(self):
        """The requests answered 2xx."""
        return [request for request in self.requests if 200 <= request.status < 300]

    def verified(self, secret):
        """Every delivered request's body as the standardwebhooks library
        reads it after checking its signature under `secret` (it raises on
        a bad one), with its webhook-id: [(webhook_id, payload)]."""
        verifier = Verifier(secret)
        return [
            (request.headers["webhook-id"], verifier.verify(request.body, request.headers))
            for request in self.delivered()
        ]
