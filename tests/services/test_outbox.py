"""The outbox relay: nothing lost while the broker is away, nothing
published twice by several relays."""

import os
import subprocess
import sys
from urllib.parse import urlparse

import eventlet
import pytest
from nameko.events import event_handler
from sqlalchemy import func, select

from services.referrals import cases
from services.referrals.models import Outbox
from shared.contract import events
from shared.contract.referrals import NewReferral
from shared.plumbing.outbox import Relay
from shared.storage.db import Sessions
from tests.conftest import SEALER
from tests.support import data
from tests.support.proxy_process import Proxy
from tests.support.sinks import wait_for


class Listener:
    name = "outbox_listener"
    received = []

    @event_handler(events.REFERRALS, events.REFERRAL_SENT)
    def on_sent(self, payload):
        Listener.received.append(payload["event_id"])


@pytest.fixture
def listener(container_factory, service_config):
    Listener.received = []
    container_factory(Listener, service_config).start()
    return Listener.received


@pytest.fixture
def sessions(engines):
    return Sessions(engines["REFERRALS_DATABASE_URL"])  # as the service's Database gives the relay


def save_referrals(sessions, count):
    """Referrals written as the service writes them: row and event in one
    transaction (the broker plays no part in this)."""
    body = NewReferral().load(data.referral("6f1c1b8e-0000-4000-8000-000000000001"))
    for _ in range(count):
        with sessions.begin() as session:
            cases.create(session, SEALER, "6f1c1b8e-0000-4000-8000-000000000002", body, 72)


def unpublished(sessions):
    with sessions.begin() as session:
        return session.scalar(select(func.count()).select_from(Outbox).where(Outbox.published_at.is_(None)))


@pytest.fixture
def broker_proxy(service_config):
    uri = urlparse(service_config["AMQP_URI"])
    proxy = Proxy(uri.hostname, uri.port or 5672)
    yield proxy, uri._replace(netloc=f"{uri.username}:{uri.password}@127.0.0.1:{proxy.port}").geturl()
    proxy.close()


def test_events_wait_in_the_outbox_while_the_broker_is_down(service_config, listener, sessions, broker_proxy):
    proxy, uri_through_proxy = broker_proxy
    relay = Relay(sessions, Outbox, dict(service_config, AMQP_URI=uri_through_proxy), events.REFERRALS)
    proxy.cut()
    save_referrals(sessions, 3)  # the referrals are saved while the broker is down
    assert relay.publish_pending() == 0
    assert unpublished(sessions) == 3
    proxy.restore()
    assert relay.publish_pending() == 0  # a failure pauses the relay: no try at once, none per 0.1 s round
    assert (
        wait_for(relay.publish_pending, timeout=Relay.MOST_PAUSE_SECONDS + 1, what="a try after the pause")
        == 3
    )
    assert unpublished(sessions) == 0
    wait_for(lambda: len(listener) == 3, what="the three events")
    assert len(set(listener)) == 3


RELAY_PROCESS = """
import sys
from shared.plumbing.green import patch
patch()
from services.referrals.models import Outbox
from shared import config
from shared.contract import events
from shared.storage.db import Sessions, make_engine
from shared.plumbing.outbox import Relay
settings = config.load()
sessions = Sessions(make_engine(settings["REFERRALS_DATABASE_URL"]))
relay = Relay(sessions, Outbox, settings, events.REFERRALS, batch_size=7)
print(sum(iter(relay.publish_pending, 0)))
"""


def test_several_relays_never_publish_a_row_twice(service_config, listener, sessions):
    """Four relays in four processes, as four replicas would run them."""
    save_referrals(sessions, 60)
    env = dict(
        os.environ,
        AMQP_URI=service_config["AMQP_URI"],
        REFERRALS_DATABASE_URL=service_config["REFERRALS_DATABASE_URL"],
    )
    relays = [
        subprocess.Popen([sys.executable, "-c", RELAY_PROCESS], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    counts = [int(relay.communicate(timeout=60)[0]) for relay in relays]
    assert sum(counts) == 60
    wait_for(lambda: len(listener) == 60, what="sixty events")
    eventlet.sleep(0.2)
    assert len(listener) == 60 and len(set(listener)) == 60


def test_an_event_no_consumer_listens_for_yet_is_kept(service_config, sessions):
    """Published with `mandatory`: with no queue bound the broker returns it,
    and the row stays in the outbox for a later round."""
    save_referrals(sessions, 1)
    relay = Relay(sessions, Outbox, service_config, events.REFERRALS)
    assert relay.publish_pending() == 0
    assert unpublished(sessions) == 1
