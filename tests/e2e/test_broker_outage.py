"""The network rides out its broker going away: every process of `make run`
reaches RabbitMQ through a TCP proxy that the test cuts (every connection
dropped, new ones refused) while a partner keeps creating referrals, then
restores. No process exits, no call is answered 500, /readyz says what is
down meanwhile, and every referral made is announced and its e-mail sent."""

import contextlib
import threading
import time
from urllib.parse import urlparse

import psycopg
import pytest
import requests

from shared import config
from tests.e2e.conftest import ADMIN_KEY, running_network
from tests.support import data
from tests.support.proxy_process import Proxy
from tests.support.sinks import wait_for

OUTAGE_SECONDS = 8


@pytest.fixture(scope="module")
def proxied(rabbit_manager):
    proxies = []

    def through_proxy(uri):
        parts = urlparse(uri)
        proxies.append(Proxy(parts.hostname, parts.port or 5672))
        return parts._replace(
            netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxies[0].port}"
        ).geturl()

    try:
        with running_network(rabbit_manager, broker=through_proxy) as network:
            yield network, proxies[0]
    finally:
        for proxy in proxies:
            proxy.close()


@contextlib.contextmanager
def held_referrals(network):
    """Locks the network's referrals table until the block ends: a referral's
    write waits meanwhile. Yields a check that one is waiting."""
    url = config.sqlalchemy_url(network.databases["REFERRALS_DATABASE_URL"]).replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE referrals IN SHARE ROW EXCLUSIVE MODE")
        with psycopg.connect(url, autocommit=True) as watcher:
            yield (
                lambda: (
                    watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
                        (conn.info.dbname,),
                    ).fetchone()[0]
                    > 0
                )
            )
        conn.commit()


def test_no_process_exits_and_nothing_is_lost_while_the_broker_is_away(proxied):
    network, proxy = proxied
    keys = {}
    for role in ("sender", "receiver"):
        agency = network.call("POST", "/v1/agencies", ADMIN_KEY, json=data.agency(name=f"{role} NGO")).json()
        keys[role] = (
            agency,
            network.call(
                "POST", f"/v1/agencies/{agency['id']}/api-keys", ADMIN_KEY, json={"role": "agency"}
            ).json()["key"],
        )
    receiver, _ = keys["receiver"]
    answers, made, stop = [], [], threading.Event()

    def partner():
        """Creates referrals without pause, retrying each with its Idempotency-Key as API.md invites."""
        while not stop.is_set():
            key = f"outage-{len(made)}-{time.monotonic()}"
            for _ in range(60):
                try:
                    answer = network.call(
                        "POST",
                        "/v1/referrals",
                        keys["sender"][1],
                        json=data.referral(receiver["id"]),
                        headers={"Idempotency-Key": key},
                    )
                except requests.RequestException as error:
                    answers.append(type(error).__name__)
                    continue
                answers.append(answer.status_code)
                if answer.status_code == 201:
                    made.append(answer.json())
                    break
                time.sleep(0.2)

    worker = threading.Thread(target=partner)
    worker.start()
    try:
        wait_for(lambda: len(made) >= 3, timeout=30, what="referrals before the outage")
        # Work in flight when the broker goes: an e-mail being sent (its event not yet acked) and
        # a referral being written (its RPC reply not yet sent), both held up by the test.
        network.smtp.delay = 3
        with held_referrals(network) as waiting:
            stuck = threading.Thread(
                target=lambda: answers.append(
                    network.call(
                        "POST", "/v1/referrals", keys["sender"][1], json=data.referral(receiver["id"])
                    ).status_code
                )
            )
            stuck.start()
            wait_for(waiting, what="a referral's write waiting for the test's lock")
            proxy.cut()
        stuck.join(30)
        network.smtp.delay = 0
        during = network.call("GET", "/readyz")
        assert during.status_code == 503 and "rabbitmq" in during.json()["down"]
        time.sleep(OUTAGE_SECONDS)
        proxy.restore()
        wait_for(
            lambda: network.call("GET", "/readyz").status_code == 200,
            timeout=60,
            interval=0.5,
            what="the network ready again",
        )
        after = len(made)
        wait_for(lambda: len(made) >= after + 3, timeout=30, what="referrals after the outage")
    finally:
        stop.set()
        worker.join(60)
    assert network.process.poll() is None, network.log()[-3000:]  # bin/run (honcho) and all it runs
    assert 500 not in answers
    assert "Traceback" not in network.log() and "CRITICAL" not in network.log()
    address = receiver["contacts"][0]["email"]
    for referral in made:
        wait_for(
            lambda: any(referral["reference"] in mail["Subject"] for mail in network.smtp.to(address)),
            timeout=60,
            what=f"the e-mail of {referral['reference']}",
        )
    references = [referral["reference"] for referral in made]
    assert len(references) == len(set(references))
