"""The gateway's /metrics: answers counted by route template (never the
path), open to Prometheus without a key, and, under gunicorn, the workers'
counts added up."""

import concurrent.futures
import os
import pathlib
import signal
import subprocess
import sys
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.sinks import free_port, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]


def samples(text):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_of(found, route, method, status):
    return found.get(
        ("gateway_requests_total", (("method", method), ("route", route), ("status", status))), 0
    )


def test_answers_are_counted_by_route_template_and_status(make_app):
    client = make_app().test_client()
    referral_id = str(uuid.uuid4())
    before = samples(client.get("/metrics").get_data(as_text=True))
    assert client.get(f"/v1/referrals/{referral_id}").status_code == 401  # no key
    assert client.get("/no/such/page/" + referral_id).status_code == 404
    assert client.open("/healthz", method="BREW").status_code == 405
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
    text = answer.get_data(as_text=True)
    after = samples(text)
    route = "/v1/referrals/<uuid:referral_id>"
    assert requests_of(after, route, "GET", "401") == requests_of(before, route, "GET", "401") + 1
    assert requests_of(after, "unmatched", "GET", "404") == requests_of(before, "unmatched", "GET", "404") + 1
    assert (
        requests_of(after, "unmatched", "other", "405")
        == requests_of(before, "unmatched", "other", "405") + 1
    )
    duration = ("gateway_request_duration_seconds_count", (("method", "GET"), ("route", route)))
    assert after[duration] == before.get(duration, 0) + 1
    assert referral_id not in text and "BREW" not in text
    assert not any(
        labels and dict(labels).get("route") == "/metrics" for _, labels in after
    )  # scrapes uncounted


def test_metrics_need_no_key_and_are_not_rate_limited(make_app):
    client = make_app(RATE_LIMIT="2/minute", RATE_LIMIT_STORAGE_URI="memory://").test_client()
    assert [client.get("/metrics").status_code for _ in range(5)] == [200] * 5


@pytest.fixture
def gunicorn_gateway(rabbit_config, tmp_path):
    """The gateway as `make run` serves it (gateway/gunicorn.conf.py), two
    workers, its metrics files in `tmp_path`; a stale file there from an
    earlier run, which it must clear."""
    (tmp_path / "counter_1.db").write_bytes(b"")
    port = free_port()
    env = dict(
        os.environ,
        GATEWAY_PORT=str(port),
        GATEWAY_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        AMQP_URI=rabbit_config["AMQP_URI"],
        SESSION_SECRET="metrics-" + uuid.uuid4().hex,
        RATE_LIMIT_STORAGE_URI="memory://",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gateway/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:  # once the socket is bound, waits for a worker: no request given up on and answered later
            return requests.get(url + "/healthz", timeout=60).status_code == 200
        except requests.ConnectionError:  # not yet bound
            return False

    try:
        wait_for(up, timeout=60, interval=0.2, what="gunicorn to answer")
        yield url, tmp_path
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.rules
def test_two_gunicorn_workers_counts_add_up(gunicorn_gateway):
    url, directory = gunicorn_gateway
    assert not (directory / "counter_1.db").exists()
    sent = 1  # the fixture's first /healthz

    def workers_counting():
        return {path.name for path in directory.glob("counter_*.db")}

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        # until both workers have answered some: each connection is new, and either worker may take it
        for _ in range(50):
            answers = list(
                pool.map(lambda _: requests.get(url + "/healthz", timeout=60).status_code, range(32))
            )
            assert answers == [200] * 32
            sent += 32
            if len(workers_counting()) == 2:
                break
    assert len(workers_counting()) == 2
    for _ in range(6):  # whichever worker answers the scrape, it tells the sum
        found = samples(requests.get(url + "/metrics", timeout=60).text)
        assert requests_of(found, "/healthz", "GET", "200") == sent
