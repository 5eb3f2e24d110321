"""Rate limits per API key: over the limit, 429 with Retry-After and a
problem body; other keys and the health checks are not held back."""

import logging
import threading
import time

import pytest
from limits.storage import storage_from_string

from gateway.limits import ProcessCounts
from tests.gateway.conftest import ADMIN_KEY, bearer
from tests.support.sinks import free_port


def test_a_key_over_its_limit_gets_a_429_problem_with_retry_after(make_app, services, new_agency):
    client = make_app(RATE_LIMIT="3/minute").test_client()
    _, key = new_agency(http=make_app().test_client())  # made through a gateway without a tight limit
    mine = bearer(key["key"])

    answers = [client.get("/v1/agencies", headers=mine).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    held = client.get(f"/v1/agencies/{key['id']}", headers={**mine, "X-Request-ID": "over-the-limit"})
    assert held.status_code == 429
    assert held.mimetype == "application/problem+json"
    assert 1 <= int(held.headers["Retry-After"]) <= 60
    body = held.get_json()
    assert body["status"] == 429 and body["request_id"] == "over-the-limit"
    assert "3 per 1 minute" in body["detail"]

    # One budget per key, across calls; another key has its own.
    assert client.get("/v1/agencies", headers=bearer(ADMIN_KEY)).status_code == 200


def test_health_checks_are_never_limited(make_app, services):
    client = make_app(RATE_LIMIT="1/minute").test_client()
    assert [client.get("/healthz").status_code for _ in range(5)] == [200] * 5
    assert [client.get("/readyz").status_code for _ in range(3)] == [200] * 3
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/openapi.json").status_code == 200


@pytest.mark.rules
def test_counting_hits_does_not_start_a_thread_for_each(monkeypatch):
    """limits' own memory storage starts a 0.01 s timer thread on a hit
    once the last has ended (one per hit here), and two request threads
    could start the same one: a 500. The gateway's starts one a second."""
    started = []

    class CountingTimer(threading.Timer):
        def start(self):
            started.append(self)
            super().start()

    monkeypatch.setattr(threading, "Timer", CountingTimer)
    counts = storage_from_string("gateway-memory://")
    assert isinstance(counts, ProcessCounts)
    for _ in range(20):
        counts.incr("key:digest", 60)
        time.sleep(0.02)
    assert counts.get("key:digest") == 20
    assert len(started) <= 2


def test_every_gateway_process_counts_against_one_budget_in_redis(make_app, services, new_agency):
    """Two gateways (two gunicorn workers, or two replicas) share the count."""
    first, second = (make_app(RATE_LIMIT="3/minute").test_client() for _ in range(2))
    _, key = new_agency(http=make_app().test_client())
    mine = bearer(key["key"])
    answers = [http.get("/v1/agencies", headers=mine).status_code for http in (first, second, first, second)]
    assert answers == [200, 200, 200, 429]


def test_with_redis_away_the_gateway_answers_and_says_so_once(make_app, services, new_agency, caplog):
    _, key = new_agency(http=make_app().test_client())
    away = make_app(
        RATE_LIMIT="2/minute", RATE_LIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}"
    ).test_client()
    with caplog.at_level(logging.WARNING, logger="gateway.limits"):
        answers = [away.get("/v1/agencies", headers=bearer(key["key"])).status_code for _ in range(4)]
    assert answers == [200] * 4  # fail open: not counted, never refused
    assert sum("Redis is away" in record.getMessage() for record in caplog.records) == 1


def test_memory_counts_where_the_setting_says_so(make_app, services, new_agency):
    first, second = (
        make_app(RATE_LIMIT="2/minute", RATE_LIMIT_STORAGE_URI="memory://").test_client() for _ in range(2)
    )
    _, key = new_agency(http=make_app().test_client())
    mine = bearer(key["key"])
    assert [http.get("/v1/agencies", headers=mine).status_code for http in (first, first, second, first)] == [
        200,
        200,
        200,
        429,
    ]  # each process its own count
