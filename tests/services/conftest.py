"""Services run as real nameko containers in the test process."""
import pytest
from nameko.testing.services import entrypoint_hook

from services.agencies.service import AgenciesService
from services.referrals.service import ReferralsService
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
