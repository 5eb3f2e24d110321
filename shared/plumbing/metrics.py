"""Prometheus metrics of a service process (the gateway's: gateway/metrics.py).

Each service class holds a `Metrics` dependency. It counts and times every
RPC call and every event handled (timers are not counted: they fire many
times a second and do their own logging), and, when Prometheus scrapes,
reads the gauges that live in the database and the broker: the outbox rows
not yet published and the age of the oldest, the messages set aside in the
service's dead-letter queue, the database pool's connections in use and
idle. Those are read at scrape time only, one query each, so that nothing
is added to a call's own work. A process serves them on METRICS_PORT
(`serve`, started by shared.commands.serve); empty, the default, serves none.

No label carries personal data, a key or an id: only the service's name,
a method or event name, and an outcome.
"""

import logging
import threading
import time
import weakref
from wsgiref.simple_server import WSGIRequestHandler, make_server

from nameko.extensions import DependencyProvider
from prometheus_client import REGISTRY, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy import func, select

from shared.plumbing import amqp_uri, queues

log = logging.getLogger(__name__)

RPC_CALLS = Counter(
    "rpc_calls_total",
    "RPC calls a service answered: ok, refused (an expected error, a 4xx for the partner) or error",
    ["service", "method", "outcome"],
)
RPC_DURATION = Histogram(
    "rpc_call_duration_seconds", "How long a service took to answer an RPC call", ["service", "method"]
)
EVENTS_HANDLED = Counter(
    "events_handled_total",
    "Events a service's handlers took: ok, or error (requeued, or set aside after too many tries)",
    ["service", "event", "outcome"],
)
OUTCOMES = ("ok", "refused", "error")


def rpc_outcome(entrypoint, exc_info):
    """ok; refused for an error the method declares it may raise and that
    the partner gets as a 4xx (a ServiceError's status); else error."""
    if exc_info is None:
        return "ok"
    error = exc_info[1]
    expected = getattr(entrypoint, "expected_exceptions", ()) or ()
    if isinstance(error, expected) and getattr(error, "status", 500) < 500:
        return "refused"
    return "error"


class Metrics(DependencyProvider):
    """Counts and times the container's RPC calls and events, and lends its
    database and outbox to the gauges read at scrape time. `readings` are
    more of those: each a function of the service's `Sessions` returning
    GaugeMetricFamily objects (one query each)."""

    def __init__(self, *readings):
        self.readings = readings
        self.started = weakref.WeakKeyDictionary()  # worker -> when it started

    def setup(self):
        from nameko.events import EventHandler
        from nameko.rpc import Rpc

        self.service = self.container.service_name
        self.kinds = (Rpc, EventHandler)
        # every method's series from the start, at 0: a rate needs two samples
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, Rpc):
                for outcome in OUTCOMES:
                    RPC_CALLS.labels(self.service, entrypoint.method_name, outcome)
            elif isinstance(entrypoint, EventHandler):
                for outcome in ("ok", "error"):
                    EVENTS_HANDLED.labels(self.service, entrypoint.event_type, outcome)

    def start(self):
        SERVICE_GAUGES.add(self)

    def stop(self):
        SERVICE_GAUGES.remove(self)

    kill = stop

    def worker_setup(self, worker_ctx):
        if isinstance(worker_ctx.entrypoint, self.kinds):
            self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        if started is None:
            return
        entrypoint = worker_ctx.entrypoint
        if isinstance(entrypoint, self.kinds[0]):
            RPC_CALLS.labels(self.service, entrypoint.method_name, rpc_outcome(entrypoint, exc_info)).inc()
            RPC_DURATION.labels(self.service, entrypoint.method_name).observe(time.perf_counter() - started)
        else:
            EVENTS_HANDLED.labels(self.service, entrypoint.event_type, "error" if exc_info else "ok").inc()

    def dependency(self, kind):
        return next((dep for dep in self.container.dependencies if isinstance(dep, kind)), None)

    def gauges(self):
        """The gauges of this container, read now."""
        from shared.plumbing.outbox import OutboxRelay
        from shared.storage.db import Database

        database, relay = self.dependency(Database), self.dependency(OutboxRelay)
        found = []
        if database is not None:
            pool = database.engine.pool
            connections = GaugeMetricFamily(
                "db_pool_connections",
                "The service's database connections, in use by a worker or idle in its pool",
                labels=["service", "state"],
            )
            connections.add_metric([self.service, "in_use"], pool.checkedout())
            connections.add_metric([self.service, "idle"], pool.checkedin())
            found.append(connections)
        if database is not None and relay is not None:
            found += self._read(outbox_gauges, database.sessions, relay.Outbox)
        found += self._read(dead_letter_gauge, self.container.config["AMQP_URI"])
        for reading in self.readings:
            found += self._read(reading, database.sessions)
        return found

    def _read(self, reading, *args):
        """A reading's gauges, or none while its server is away (no sample
        is better than a wrong 0): the scrape itself never fails."""
        try:
            return list(reading(self.service, *args))
        except Exception as error:
            log.warning(
                "metrics: %s could not be read (%s: %s)", reading.__name__, type(error).__name__, error
            )
            return []


def outbox_gauges(service, sessions, Outbox):
    waiting = Outbox.published_at.is_(None)  # the partial index ix_outbox_unpublished
    with sessions.single() as session:
        count, age = session.execute(
            select(
                func.count(),
                func.coalesce(func.extract("epoch", func.now() - func.min(Outbox.created_at)), 0),
            ).where(waiting)
        ).one()
    rows = GaugeMetricFamily("outbox_waiting", "Outbox rows not yet published", labels=["service"])
    rows.add_metric([service], count)
    oldest = GaugeMetricFamily(
        "outbox_oldest_age_seconds",
        "Age of the oldest outbox row not yet published (0 when none waits)",
        labels=["service"],
    )
    oldest.add_metric([service], float(age))
    return [rows, oldest]


def dead_letter_gauge(service, uri):
    """Messages waiting in dead-letters.<service> (0 where the service has
    no such queue: it handles no events), asked of the first node of
    AMQP_URI that answers."""
    with amqp_uri.connect(uri, connect_timeout=2) as connection:
        try:
            waiting = connection.default_channel.queue_declare(
                queues.dead_letter_queue_name(service), passive=True
            ).message_count
        except connection.channel_errors:  # 404: no such queue
            waiting = 0
    gauge = GaugeMetricFamily(
        "dead_letters",
        "Messages set aside in the service's dead-letter queue (python -m shared.commands.dead_letters list)",
        labels=["service"],
    )
    gauge.add_metric([service], waiting)
    return [gauge]


class ServiceGauges:
    """The gauges of every service container running in this process, as
    one Prometheus collector (a test process may run several services)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.providers = []

    def add(self, provider):
        with self.lock:
            self.providers.append(provider)

    def remove(self, provider):
        with self.lock:
            if provider in self.providers:
                self.providers.remove(provider)

    def describe(self):
        return []  # read only when scraped, never at registration

    def collect(self):
        with self.lock:
            providers = list(self.providers)
        families = {}
        for provider in providers:
            for family in provider.gauges():
                if family.name in families:
                    families[family.name].samples.extend(family.samples)
                else:
                    families[family.name] = family
        return list(families.values())


SERVICE_GAUGES = ServiceGauges()
REGISTRY.register(SERVICE_GAUGES)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # a line every scrape would drown the log
        pass


def metrics_and_liveness(registry=REGISTRY):
    """/healthz answers from this very process, without the broker or a
    database: what a liveness probe asks (a service's health check pings the
    service, which any replica may answer). Any other path is the metrics."""
    metrics_app = make_wsgi_app(registry)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return metrics_app(environ, start_response)

    return app


def serve(port, address="0.0.0.0"):
    """Serve /metrics and /healthz on `port` from a thread of this process (a
    green one under eventlet, so it answers while the workers wait on I/O)."""
    server = make_server(
        address, int(port), metrics_and_liveness(), ThreadingWSGIServer, handler_class=QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on :%d/metrics", server.server_port)
    return server
