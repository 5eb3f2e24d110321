"""The request id: one partner request, followed through the gateway and
every service's log lines.

The gateway gives each request an id (`X-Request-ID`) and puts it in the
worker context data of its RPC proxy; nameko sends context data as AMQP
headers (`nameko.request_id`) and hands it to the service's worker as
`worker_ctx.data`, and a service's own `RpcProxy` passes it on to the next
service. `RequestId` puts it where `RequestIdFilter` finds it for each log
line the worker writes. A context variable holds it: each eventlet green
thread, like each real thread, sees its own.
"""

import contextvars
import logging
import re
import time
import uuid

from nameko.extensions import DependencyProvider

from shared import config
from shared.plumbing import json_logs

CONTEXT_KEY = "request_id"  # in nameko's worker context data
HEADER = "X-Request-ID"
LOG_FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"
# What a caller's id may look like to be kept: it ends up in log lines,
# so nothing that could break a line or pass for another field.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

current = contextvars.ContextVar("request_id", default=None)
log = logging.getLogger(__name__)


def new():
    return uuid.uuid4().hex


def accept(value):
    """The caller's id if it looks sane, else a new one."""
    if value and _SANE.fullmatch(value):
        return value
    return new()


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` ("-" outside a request); attach it
    to a handler so that records from every logger get it."""

    def filter(self, record):
        record.request_id = current.get() or "-"
        return True


OWN_LOGGERS = ("shared", "services", "gateway", "bench")  # the network's code, not its libraries


def configure_logging(service, level=None, text_format=LOG_FORMAT):
    """Log to stderr with the request id in each line: text lines, or JSON
    lines naming `service` where LOG_FORMAT=json (shared/plumbing/json_logs.py).

    `level` (LOG_LEVEL's, if not given) is the network's own loggers'; the
    libraries' never goes below INFO: at DEBUG nameko writes each RPC call's
    arguments and result (API keys, returnees' data), py-amqp every frame."""
    level = logging.getLevelName(str(level or config.load()["LOG_LEVEL"]).strip().upper())
    if not isinstance(level, int):
        raise ValueError("LOG_LEVEL: one of DEBUG, INFO, WARNING, ERROR")
    logging.basicConfig(level=max(level, logging.INFO), format=text_format)
    for own in OWN_LOGGERS:
        logging.getLogger(own).setLevel(level)
    for handler in logging.getLogger().handlers:
        with_request_id(handler, service)
    if json_logs.wanted():
        logging.captureWarnings(True)  # a Python warning is a JSON line too, not raw text on stderr


def with_request_id(handler, service):
    """`handler` gives each line the request id, and writes JSON lines where
    LOG_FORMAT=json."""
    if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
        handler.addFilter(RequestIdFilter())
    if json_logs.wanted():
        handler.setFormatter(json_logs.JsonLines(service))


class RequestId(DependencyProvider):
    """The id of the request a worker serves (None for timers and events).

    While the worker runs, its log lines carry the id; at its end it writes
    one line naming the call and how it went (the method's name and the
    error's type only: arguments and messages may hold personal data): at
    DEBUG for an answer, a line every call being a cost every call pays
    (`make bench`), at INFO for a failure.
    """

    def __init__(self):
        self.started = {}

    @staticmethod
    def _of(worker_ctx):
        value = worker_ctx.data.get(CONTEXT_KEY)
        return value if isinstance(value, str) and _SANE.fullmatch(value) else None

    def get_dependency(self, worker_ctx):
        return self._of(worker_ctx)

    def worker_setup(self, worker_ctx):
        request_id = self._of(worker_ctx)
        if request_id:
            current.set(request_id)  # this worker's green thread only
            self.started[worker_ctx] = time.monotonic()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        if started is None:
            return
        took = (time.monotonic() - started) * 1000
        call = f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}"
        if exc_info:
            log.info("%s failed (%s) after %.1f ms", call, exc_info[0].__name__, took)
        else:
            log.debug("%s answered in %.1f ms", call, took)

    def worker_teardown(self, worker_ctx):
        self.started.pop(worker_ctx, None)
        current.set(None)
