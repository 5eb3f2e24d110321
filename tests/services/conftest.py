"""Services run as real nameko containers in the test process."""

import contextlib
import uuid

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook
from sqlalchemy import event

from services.agencies.service import AgenciesService
from services.notifications.service import NotificationsService
from services.referrals.service import ReferralsService
from shared.contract import events
from shared.storage.db import Sessions, make_engine
from tests.support import data


def caller_of(container):
    def call(method, *args):
        with entrypoint_hook(container, method) as entrypoint:
            return entrypoint(*args)

    return call


@pytest.fixture
def agencies(container_factory, service_config):
    container = container_factory(AgenciesService, service_config)
    container.start()
    return caller_of(container)


@pytest.fixture
def referrals(container_factory, service_config, agencies):
    container = container_factory(ReferralsService, service_config)
    container.start()
    return caller_of(container)


@pytest.fixture
def pair(agencies):
    """Two agencies that can refer to each other, and a third, unrelated one."""
    sender = agencies("create_agency", data.agency(name="Sender NGO"))
    receiver = agencies("create_agency", data.agency(name="Receiver NGO"))
    outsider = agencies("create_agency", data.agency(name="Outsider NGO"))
    return sender["id"], receiver["id"], outsider["id"]


@pytest.fixture
def start_notifications(container_factory, service_config, agencies):
    """Starts a notifications container (settings changed by keyword) and
    returns it with a caller of its RPC methods."""

    def start(**overrides):
        container = container_factory(NotificationsService, dict(service_config, **overrides))
        container.start()
        return container, caller_of(container)

    return start


@pytest.fixture
def notifications(start_notifications):
    return start_notifications()[1]


@pytest.fixture
def publish(service_config):
    """Announces a referral event as the referrals service does."""
    dispatcher = event_dispatcher(service_config)

    def send(event_type, sender, receiver, **overrides):
        payload = {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "occurred_at": "2026-11-23T10:00:00+00:00",
            "referral_id": str(uuid.uuid4()),
            "reference": "REF-2026-000123",
            "service_type": "housing",
            "priority": "normal",
            "status": "sent",
            "from_status": None,
            "sending_agency_id": sender["id"],
            "receiving_agency_id": receiver["id"],
            "acting_agency_id": sender["id"],
        }
        payload.update(overrides)
        dispatcher(events.REFERRALS, event_type, payload)
        return payload

    return send


@pytest.fixture
def notification_sessions(service_config):
    """The notifications database's `Sessions`, as the service's Database gives them."""
    engine = make_engine(service_config["NOTIFICATIONS_DATABASE_URL"], pool_size=20)
    yield Sessions(engine)
    engine.dispose()


@contextlib.contextmanager
def statements_run(sessions, fragment):
    """[(statement, parameters)] that `sessions` runs meanwhile whose SQL holds `fragment`."""
    seen = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if fragment in statement:
            seen.append((statement, parameters))

    engine = sessions.autocommit_engine.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
