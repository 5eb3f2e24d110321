"""gunicorn settings for the gateway (`gunicorn -c gateway/gunicorn.conf.py`)."""

import os
import shutil
import tempfile

import gunicorn.util

bind = f"0.0.0.0:{os.environ.get('GATEWAY_PORT') or '8000'}"
wsgi_app = "gateway.wsgi:app"
worker_class = "gthread"
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("GATEWAY_THREADS", "8"))
graceful_timeout = 10
accesslog = "-"
logger_class = "gateway.access_log.AccessLog"  # hides sign-in tokens in paths
# the request's id, as the gateway answered it in X-Request-ID
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms [%({x-request-id}o)s]'


def on_starting(server):
    """The workers' metrics files (gateway/metrics.py) in a directory of
    this run's own: PROMETHEUS_MULTIPROC_DIR emptied if given, else a new
    one, removed on exit. Set before any worker imports prometheus-client,
    which reads the setting once."""
    global _made_metrics_dir
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
    else:
        _made_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="gateway-metrics-"
        )


_made_metrics_dir = None


def child_exit(server, worker):
    """A worker gone: its live gauges go (its counts stay in the sum)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)


def _problem_instead_of_html(sock, status_int, reason, mesg):
    """gunicorn's own refusals (a request line or headers too large, a request
    it cannot parse) as application/problem+json, like the gateway's: it
    answers them before the app sees the request, so they get an id here."""
    import json
    import uuid

    request_id = uuid.uuid4().hex
    body = json.dumps(
        {
            "type": "about:blank",
            "title": reason,
            "status": status_int,
            "detail": mesg or reason,
            "request_id": request_id,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n\r\n"
    ).encode("latin-1")
    gunicorn.util.write_nonblock(sock, head + body)


gunicorn.util.write_error = _problem_instead_of_html
