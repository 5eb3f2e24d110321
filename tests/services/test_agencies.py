"""The agencies service through its RPC entrypoints, on a real container,
broker and database."""

import pytest

from services.agencies.service import AgenciesService
from shared.contract.digests import digest
from shared.contract.errors import Forbidden, InvalidInput, NotFound
from tests.services.conftest import caller_of
from tests.support import data

ADMIN_KEY = "bootstrap-admin-key-for-the-tests-of-agencies"


@pytest.fixture
def agencies(container_factory, service_config):
    container = container_factory(AgenciesService, dict(service_config, BOOTSTRAP_ADMIN_KEY=ADMIN_KEY))
    container.start()
    return caller_of(container)


def test_create_and_read_an_agency(agencies):
    made = agencies("create_agency", data.agency(name="IOM Azerbaijan", kind="international"))
    assert made["name"] == "IOM Azerbaijan"
    assert made["accepting_referrals"] is True
    assert agencies("get_agency", made["id"]) == made


def test_bad_values_are_refused_naming_each_field(agencies):
    body = data.agency(
        kind="club",
        regions=["AZ-XX"],
        languages=["xx"],
        contacts=[data.contact(email="not-an-email", phone="12345", channels=["sms", "fax"])],
    )
    with pytest.raises(InvalidInput) as refused:
        agencies("create_agency", body)
    errors = refused.value.errors
    assert set(errors) >= {
        "kind",
        "regions.0",
        "languages.0",
        "contacts.0.email",
        "contacts.0.phone",
        "contacts.0.channels.1",
    }
    assert "'AZ-XX'" in errors["regions.0"][0]


def test_unknown_agency_is_not_found(agencies):
    with pytest.raises(NotFound):
        agencies("get_agency", "6f1c1b8e-0000-4000-8000-000000000000")


def test_search_filters_and_pages(agencies):
    agencies("create_agency", data.agency(name="Ganja housing", services=["housing"], regions=["AZ-GA"]))
    agencies("create_agency", data.agency(name="Baku jobs", services=["employment"], regions=["AZ-BA"]))
    agencies("create_agency", data.agency(name="Closed", services=["housing"], accepting_referrals=False))
    housing = agencies("search_agencies", {"service": "housing"})
    assert [a["name"] for a in housing["items"]] == ["Closed", "Ganja housing"]
    assert housing["total"] == 2
    open_housing = agencies("search_agencies", {"service": "housing", "accepting": True})
    assert [a["name"] for a in open_housing["items"]] == ["Ganja housing"]
    page = agencies("search_agencies", {"per_page": 1, "page": 2})
    assert page["page"] == 2 and len(page["items"]) == 1 and page["total"] >= 3


def test_an_agency_changes_only_its_own_fields(agencies):
    made = agencies("create_agency", data.agency())
    changed = agencies("update_agency", made["id"], {"accepting_referrals": False}, False)
    assert changed["accepting_referrals"] is False
    with pytest.raises(Forbidden):
        agencies("update_agency", made["id"], {"name": "Renamed"}, False)
    assert agencies("update_agency", made["id"], {"name": "Renamed"}, True)["name"] == "Renamed"


def test_keys_authenticate_until_revoked(agencies):
    made = agencies("create_agency", data.agency())
    issued = agencies("issue_api_key", made["id"], "agency")
    assert issued["key"].startswith(issued["prefix"])
    who = agencies("authenticate", digest(issued["key"]))
    assert who == {
        "agency_id": made["id"],
        "role": "agency",
        "key_id": issued["id"],
        "prefix": issued["prefix"],
    }
    agencies("revoke_api_key", made["id"], issued["id"])
    assert agencies("authenticate", digest(issued["key"])) is None
    assert agencies("authenticate", digest("rnk_never-issued")) is None


def test_the_bootstrap_admin_key_works(agencies):
    assert agencies("authenticate", digest(ADMIN_KEY))["role"] == "admin"


def test_the_bootstrap_admin_key_is_made_once(container_factory, service_config, agencies, engines):
    """A second replica starting with the same key makes no second key."""
    from sqlalchemy import text

    container_factory(AgenciesService, dict(service_config, BOOTSTRAP_ADMIN_KEY=ADMIN_KEY)).start()
    with engines["AGENCIES_DATABASE_URL"].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM api_keys WHERE role = 'admin'")).scalar() == 1


def test_a_bootstrap_admin_key_shorter_than_32_characters_is_refused(container_factory, service_config):
    container = container_factory(AgenciesService, dict(service_config, BOOTSTRAP_ADMIN_KEY="x" * 31))
    with pytest.raises(ValueError, match="at least 32"):
        container.start()


def test_the_agencies_process_refuses_a_short_admin_key_in_one_line():
    import os
    import subprocess
    import sys

    env = dict(os.environ, BOOTSTRAP_ADMIN_KEY="short-admin-key")
    ran = subprocess.run(
        [sys.executable, "-m", "shared.commands.serve", "agencies"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode != 0
    assert "BOOTSTRAP_ADMIN_KEY has 15 characters" in ran.stderr and "Traceback" not in ran.stderr


def test_keys_are_stored_only_as_digests(agencies, engines):
    from sqlalchemy import text

    made = agencies("create_agency", data.agency())
    issued = agencies("issue_api_key", made["id"], "agency")
    with engines["AGENCIES_DATABASE_URL"].connect() as conn:
        stored = (
            conn.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": issued["id"]}).mappings().one()
        )
    assert issued["key"] not in [str(value) for value in stored.values()]
