"""Rate limits per API key (flask-limiter): over the limit, 429 with
Retry-After. One budget per key across every /v1 call; /healthz, /readyz
and the docs are not limited.

Where the counts live is RATE_LIMIT_STORAGE_URI: Redis (`redis://...`, the
default), shared by every gateway process and replica, or each process's
memory (`memory://`, where a key may make up to processes x limit calls).
Redis going away does not stop the gateway: the limits are not counted
meanwhile (they fail open), which the log says once, and once more when
Redis is back.
"""

import functools
import logging
import math
import threading
import time

from flask import request
from flask_limiter import Limiter, RateLimitExceeded
from limits.storage import MemoryStorage, RedisStorage
from redis.exceptions import RedisError

from gateway import auth
from gateway.problems import problem

log = logging.getLogger(__name__)


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


def _fail_open(method, answer_when_away):
    @functools.wraps(method)
    def counted(self, *args, **kwargs):
        try:
            result = method(self, *args, **kwargs)
        except RedisError as error:
            self.went_away(error)
            return answer_when_away()
        self.is_back()
        return result

    return counted


class SharedCounts(RedisStorage):
    """limits' Redis storage, failing open: while Redis cannot be reached
    every count answers "nothing counted yet" (so every call passes), after
    a wait of at most half a second."""

    STORAGE_SCHEME = ["gateway-redis"]

    def __init__(self, uri, **options):
        options.setdefault("socket_timeout", 0.5)
        options.setdefault("socket_connect_timeout", 0.5)
        super().__init__(uri.replace("gateway-redis://", "redis://", 1), **options)
        self.away_lock, self.away = threading.Lock(), False

    def went_away(self, error):
        with self.away_lock:
            if not self.away:
                log.warning("Redis is away (%s): rate limits are not counted until it is back", error)
            self.away = True

    def is_back(self):
        if self.away:
            with self.away_lock:
                if self.away:
                    log.warning("Redis is back: rate limits are counted again")
                self.away = False

    incr = _fail_open(RedisStorage.incr, lambda: 0)
    get = _fail_open(RedisStorage.get, lambda: 0)
    get_expiry = _fail_open(RedisStorage.get_expiry, time.time)
    acquire_entry = _fail_open(RedisStorage.acquire_entry, lambda: True)
    get_moving_window = _fail_open(RedisStorage.get_moving_window, lambda: (time.time(), 0))
    check = _fail_open(RedisStorage.check, lambda: False)


def storage_uri(settings):
    """The limits storage for RATE_LIMIT_STORAGE_URI: ours in place of limits' own."""
    uri = settings["RATE_LIMIT_STORAGE_URI"]
    for scheme, ours in (("redis://", "gateway-redis://"), ("memory://", "gateway-memory://")):
        if uri.startswith(scheme):
            return ours + uri[len(scheme) :]
    raise ValueError(f"RATE_LIMIT_STORAGE_URI must be redis://... or memory://, not {uri!r}")


def storage_options(settings):
    return (
        {"key_prefix": settings["RATE_LIMIT_KEY_PREFIX"]}
        if settings["RATE_LIMIT_STORAGE_URI"].startswith("redis://")
        else {}
    )


def caller_key():
    """The bearer key's digest (never the clear key, even in memory), or
    the caller's address where no key was sent."""
    key = auth.bearer_key()
    if key:
        return "key:" + auth.digest(key)
    return "addr:" + (request.remote_addr or "unknown")


def _not_v1():
    return not request.path.startswith("/v1/")


def init_app(app, settings):
    limiter = Limiter(
        caller_key,
        app=app,
        application_limits=[settings["RATE_LIMIT"]],
        application_limits_exempt_when=_not_v1,
        storage_uri=storage_uri(settings),
        storage_options=storage_options(settings),
        strategy="fixed-window",
        headers_enabled=False,
    )

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(error):
        breached = limiter.current_limit
        reset_time = breached.window[0] if breached else time.time()
        wait = max(1, math.ceil(reset_time - time.time()))
        response = problem(
            429,
            "Too Many Requests",
            f"This API key is over its limit of {error.description}; try again in {wait} s.",
        )
        response.headers["Retry-After"] = str(wait)
        return response

    return limiter
