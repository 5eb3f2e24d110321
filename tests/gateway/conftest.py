"""The gateway in this process (Flask's test client) over the real services:
nameko containers on the test's own RabbitMQ vhost and databases."""

import uuid

import pytest

from gateway.app import create_app
from services.agencies.service import AgenciesService
from services.notifications.service import NotificationsService
from services.referrals.service import ReferralsService
from tests.support import data

ADMIN_KEY = "gateway-admin-" + uuid.uuid4().hex
SERVICES = {
    "agencies": AgenciesService,
    "referrals": ReferralsService,
    "notifications": NotificationsService,
}


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def settings(service_config):
    """The settings of the services and of the gateways over them."""
    return dict(
        service_config,
        BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
        RPC_TIMEOUT_SECONDS="5",
        SESSION_SECRET="gateway-tests-" + uuid.uuid4().hex,
        RATE_LIMIT_KEY_PREFIX="gateway-tests-" + uuid.uuid4().hex,
    )  # the test's own counts in Redis


@pytest.fixture
def start_service(container_factory, settings):
    """Start one service (by name) as a nameko container; returns it."""

    def start(name):
        container = container_factory(SERVICES[name], settings)
        container.start()
        return container

    return start


@pytest.fixture
def services(start_service):
    return {name: start_service(name) for name in SERVICES}


@pytest.fixture
def make_app(settings):
    """A gateway over this test's services; settings changed by keyword."""
    made = []

    def make(**overrides):
        app = create_app(dict(settings, **overrides))
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["rpc"].close()
        app.extensions["readiness_rpc"].close()


@pytest.fixture
def client(make_app, services):
    return make_app().test_client()


@pytest.fixture
def new_agency(client):
    """Make an agency through the API (admin key) and an agency key for it:
    `agency, key = new_agency(name=...)`."""

    def make(http=None, **fields):
        http = http or client
        made = http.post("/v1/agencies", headers=bearer(ADMIN_KEY), json=data.agency(**fields))
        assert made.status_code == 201, made.get_data(as_text=True)
        agency = made.get_json()
        issued = http.post(
            f"/v1/agencies/{agency['id']}/api-keys", headers=bearer(ADMIN_KEY), json={"role": "agency"}
        )
        assert issued.status_code == 201, issued.get_data(as_text=True)
        return agency, issued.get_json()

    return make
