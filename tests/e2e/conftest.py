"""The real network, started as `make run` starts it (bin/run), on a
RabbitMQ vhost and databases of its own, with stand-in mail and SMS
providers; driven over HTTP."""

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import uuid

import pytest
import requests

from shared.storage import migrate
from tests.conftest import DATA_ENCRYPTION_KEYS, WEBHOOK_SECRET_KEYS, own_databases
from tests.support.sinks import HttpSink, SmtpSink, free_port, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMIN_KEY = "e2e-admin-" + uuid.uuid4().hex


class Network:
    def __init__(self, process, url, log_path, smtp, sms):
        self.process = process
        self.url = url
        self.log_path = log_path
        self.smtp = smtp
        self.sms = sms

    def log(self):
        return pathlib.Path(self.log_path).read_text(errors="replace")

    def call(self, method, path, key=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def stop(self, timeout=30):
        """SIGTERM to bin/run, as Ctrl-C or `docker stop` would; True when
        every process it started has gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=timeout)
        try:
            wait_for(
                lambda: not _group_alive(self.process.pid), timeout=timeout, what="all processes to exit"
            )
        except AssertionError:
            return False
        return True


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def network(rabbit_manager):
    # DEBUG: each call's line too, with its request id (test_gateway_contract follows one through)
    with running_network(rabbit_manager, LOG_LEVEL="DEBUG") as running:
        yield running


@contextlib.contextmanager
def running_network(rabbit_manager, broker=None, replicas=None, **settings):
    """bin/run on a vhost and databases of its own; `broker(vhost_uri)`, if
    given, returns the AMQP URI the network's processes are to use instead
    (one through tests.support.proxy_process, say); `replicas` ({process:
    how many}) runs that many of those processes (honcho's concurrency, its
    lines prefixed `<process>.1`, `<process>.2`, ...); `settings` are more
    environment for it (over the defaults here)."""
    vhost = "e2e_" + uuid.uuid4().hex[:10]
    rabbit_manager.create_vhost(vhost)
    rabbit_manager.set_vhost_permissions(vhost, "guest", ".*", ".*", ".*")
    databases = own_databases("e2e" + vhost[-4:])
    port = free_port()
    metrics_ports = {service: free_port() for service in ("agencies", "referrals", "notifications")}
    log_file = tempfile.NamedTemporaryFile(prefix="network-", suffix=".log", delete=False)  # noqa: SIM115  (the process writes to it after this returns)
    amqp_uri = f"amqp://guest:guest@localhost:5672/{vhost}"
    with SmtpSink() as smtp, HttpSink() as sms:
        env = dict(
            os.environ,
            VENV=sys.prefix,
            AMQP_URI=broker(amqp_uri) if broker else amqp_uri,
            GATEWAY_PORT=str(port),
            BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp.port),
            SMS_BACKEND="http",
            SMS_HTTP_URL=sms.url,
            GATEWAY_WORKERS="1",
            RATE_LIMIT="100000/minute",  # limits have tests of their own (tests/gateway)
            SESSION_SECRET="e2e-" + uuid.uuid4().hex,
            DATA_ENCRYPTION_KEYS=DATA_ENCRYPTION_KEYS,
            WEBHOOK_SECRET_KEYS=WEBHOOK_SECRET_KEYS,
            RATE_LIMIT_KEY_PREFIX=vhost,  # counts of its own in Redis
            # ports of its own for the services' metrics (bin/run's are taken by `make run`'s)
            **{f"{service.upper()}_METRICS_PORT": str(each) for service, each in metrics_ports.items()},
            **databases,
        )
        env.update(settings)
        concurrency = (
            ["-c", ",".join(f"{name}={count}" for name, count in replicas.items())] if replicas else []
        )
        process = subprocess.Popen(
            [str(ROOT / "bin" / "run"), *concurrency],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        running = Network(process, f"http://127.0.0.1:{port}", log_file.name, smtp, sms)
        running.databases = databases
        running.vhost = vhost
        # each process's /metrics: the gateway's and each service's
        running.metrics_urls = dict(
            {service: f"http://127.0.0.1:{each}/metrics" for service, each in metrics_ports.items()},
            gateway=f"http://127.0.0.1:{port}/metrics",
        )
        try:
            wait_for(lambda: _ready(running), timeout=90, interval=0.5, what="the network to be ready")
            yield running
        finally:
            if not running.stop():
                os.killpg(process.pid, signal.SIGKILL)
            for url in databases.values():
                migrate.drop_database(url)
            rabbit_manager.delete_vhost(vhost)
            os.unlink(log_file.name)


def _ready(network):
    if network.process.poll() is not None:
        raise AssertionError("bin/run exited early:\n" + network.log()[-5000:])
    try:
        return network.call("GET", "/readyz").status_code == 200
    except requests.RequestException:
        return False
