"""Rate limits per API key (flask-limiter): over the limit, 429 with
Retry-After. One budget per key across every /v1 call; /healthz, /readyz
and the docs are not limited.

The counts live in each gateway process's memory (`memory://`): with
several gunicorn workers or replicas, each keeps its own count, so a key
may make up to (processes x limit) calls. A shared count needs a shared
store (Redis, memcached), which the network does not run yet.
"""
import math
import time

from flask import request
from flask_limiter import Limiter, RateLimitExceeded

from gateway import auth
from gateway.problems import problem


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
        storage_uri="memory://",
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
