"""Stand-ins for the outside providers only: an SMTP server (aiosmtpd) and
an HTTP SMS endpoint, both real servers on loopback that record what they got
and can be told to fail."""

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout=15.0, interval=0.05, what="the condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def readable(message):
    """Everything a reader of `message` sees, decoded: its headers, and the
    text of each of its parts (transfer encodings would hide words from a
    plain search of the raw message)."""
    texts = [f"{name}: {value}" for name, value in message.items()]
    texts += [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join(texts)


class Credentials:
    """An aiosmtpd authenticator that accepts one login and password."""

    def __init__(self, login, password):
        self.login, self.password = login.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        accepted = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.login,
            self.password,
        )
        return AuthResult(success=accepted, handled=False, auth_data=auth_data if accepted else None)


class SmtpSink:
    """A real SMTP server. `fail_with` = "451 ..." makes it refuse messages;
    `delay` (seconds) makes it slow to answer each one. Options for
    aiosmtpd's server (tls_context and require_starttls for STARTTLS,
    authenticator and auth_required for AUTH) pass through; `sessions`
    tells, for each message taken, whether it came over TLS and as whom,
    `connections` holds each SMTP connection that carried a message, and
    `refusals` and `quits` count refused messages and QUIT commands.
    Under eventlet every green thread shares one OS thread, and so one
    asyncio loop: only one SmtpSink may run at a time in a process."""

    def __init__(self, port=None, **server_options):
        self.messages = []
        self.sessions = []
        self.connections = []
        self.refusals = 0  # messages refused with `fail_with`
        self.quits = 0  # connections the client ended with QUIT
        self.quit_delay = 0  # seconds it takes to answer QUIT
        self.fail_with = None
        self.delay = 0
        self.running = False
        self.port = port or free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **server_options)

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with:
            self.refusals += 1
            return self.fail_with
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.rcpt_tos, message))
        login = session.auth_data.login.decode() if session.authenticated else None
        self.sessions.append({"tls": session.ssl is not None, "login": login})
        if not any(known is session for known in self.connections):  # aiosmtpd: a Session per connection
            self.connections.append(session)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        if self.quit_delay:
            await asyncio.sleep(self.quit_delay)
        return "221 Bye"

    def to(self, address):
        return [message for rcpts, message in self.messages if address in rcpts]

    def __enter__(self):
        self.controller.start()
        self.running = True
        return self

    def __exit__(self, *exc):
        """Stops the server (once: a test may stop it early, as an outage)."""
        if self.running:
            self.controller.stop()
            self.running = False


class SinkHttpServer(ThreadingHTTPServer):
    request_queue_size = 128  # the notifications service sends side by side


class Served:
    """An HTTP server (`self.server`) served from a thread of its own while in a `with` block."""

    # How often serve_forever looks whether shutdown() was called: at the
    # default 0.5 s, stopping a sink took 0.3 s of each test that used one.
    POLL_SECONDS = 0.02

    def __enter__(self):
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": self.POLL_SECONDS}, daemon=True
        )
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class HttpSink(Served):
    """A real HTTP server taking SMS as the `http` backend posts them.
    `status` sets the answer (a 5xx makes the backend retry); `delay`
    (seconds) makes it slow to answer; `posts` counts every request."""

    def __init__(self):
        self.received = []
        self.status = 200
        self.delay = 0
        self.posts = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.posts += 1
                if sink.delay:
                    time.sleep(sink.delay)
                if sink.status < 300:
                    sink.received.append(json.loads(body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = SinkHttpServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
