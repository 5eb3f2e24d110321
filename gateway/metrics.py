"""The gateway's Prometheus metrics, served at /metrics (no key, no rate
limit: Prometheus scrapes it; the services' own are shared.plumbing.metrics).

Every answer is counted by route, method and status, and timed: the route
is Flask's URL rule (`/v1/referrals/<uuid:referral_id>`), never the path,
so no label holds an id or a token; a path no rule matches counts as
`unmatched`. The scrapes of /metrics itself are not counted; /healthz and
/readyz are, under their own routes (the dashboard shows /v1 and /inbox).

Under gunicorn every worker writes its counts to files in
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode, set up by
gateway/gunicorn.conf.py) and /metrics adds them up, whichever worker
answers; without that setting (tests, `flask run`) the process's own.
"""

import os
import time

from flask import Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "gateway_requests_total",
    "Answers of the gateway, by route, method and status",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "gateway_request_duration_seconds",
    "How long the gateway took to answer, by route and method",
    ["route", "method"],
)
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ENDPOINT = "metrics"


def init_app(app):
    """Before any other hook, so that every answer is timed from the start."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_count)
    app.add_url_rule("/metrics", ENDPOINT, exposition, methods=["GET"])


def _start():
    g.metrics_started = time.perf_counter()


def _count(response):
    if request.endpoint == ENDPOINT:
        return response
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    method = request.method if request.method in METHODS else "other"  # a method is the client's to name
    REQUESTS.labels(route, method, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        DURATION.labels(route, method).observe(time.perf_counter() - started)
    return response


def registry():
    """Every gunicorn worker's counts, or this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)
        return workers
    return REGISTRY


def exposition():
    return Response(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
