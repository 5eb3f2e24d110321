"""Rate limits per API key (flask-limiter): over the limit, 429 with
Retry-After. One budget per key across every /v1 call; /healthz, /readyz
and the docs are not limited.

The counts live in each gateway process's memory (`ProcessCounts`): with
several gunicorn workers or replicas, each keeps its own count, so a key
may make up to (processes x limit) calls. A shared count needs a shared
store (Redis, memcached), which the network does not run yet.
"""
import math
import threading
import time

from flask import request
from flask_limiter import Limiter, RateLimitExceeded
from limits.storage import MemoryStorage

from gateway import auth
from gateway.problems import problem


class ProcessCounts(MemoryStorage):
    """limits' in-memory storage, with its expiry timer tamed.

    Upstream (limits 5.8.0) starts a `threading.Timer` of 0.01 s on a hit
    whenever the last one has ended: under steady traffic nearly a thread
    per request, and two request threads can start the same Timer at once
    ("RuntimeError: threads can only be started once": a 500 for the
    caller; fixed by alisaifee/limits#352, not yet released). Here at most
    one timer runs, started under a lock, once a second. The timer only
    frees the memory of counts no one uses any more: a count is expired when
    it is read, and `incr` reads it first."""

    STORAGE_SCHEME = ["gateway-memory"]
    PURGE_SECONDS = 1.0

    def __init__(self, uri=None, **options):
        super().__init__(uri, **options)
        self.timer_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self):  # replaces the name-mangled private method
        with self.timer_lock:
            if not self.timer.is_alive():
                self.timer = threading.Timer(self.PURGE_SECONDS, self._MemoryStorage__expire_events)
                self.timer.daemon = True
                self.timer.start()


def caller_key():
    """The bearer key's digest (never the clear key, even in memory), or
    the caller's address where no key was sent."""
    key = auth.bearer_key()
    if key:
        return "key:" + auth.digest(key)
    return "addr:" + (request.remote_addr or "unknown")


def _not_v1():
    return not request.path.startswith("/v1/")


def init_app(app, rate):
    limiter = Limiter(
        caller_key,
        app=app,
        application_limits=[rate],
        application_limits_exempt_when=_not_v1,
        storage_uri="gateway-memory://",  # ProcessCounts
        strategy="fixed-window",
        headers_enabled=False,
    )

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(error):
        breached = limiter.current_limit
        reset_time = breached.window[0] if breached else time.time()
        wait = max(1, math.ceil(reset_time - time.time()))
        response = problem(
            429, "Too Many Requests",
            f"This API key is over its limit of {error.description}; try again in {wait} s.",
        )
        response.headers["Retry-After"] = str(wait)
        return response

    return limiter
