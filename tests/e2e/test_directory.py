"""The directory and API keys as partners meet them over HTTP."""

import pytest

from tests.e2e.conftest import ADMIN_KEY
from tests.support import data


@pytest.fixture(scope="module")
def member(network):
    agency = network.call("POST", "/v1/agencies", ADMIN_KEY, json=data.agency(name="Member NGO")).json()
    key = network.call("POST", f"/v1/agencies/{agency['id']}/api-keys", ADMIN_KEY, json={"role": "agency"})
    assert key.status_code == 201
    return agency, key.json()


def test_only_admins_create_agencies_and_issue_keys(network, member):
    agency, key = member
    assert network.call("POST", "/v1/agencies", key["key"], json=data.agency()).status_code == 403
    issued = network.call(
        "POST", f"/v1/agencies/{agency['id']}/api-keys", key["key"], json={"role": "agency"}
    )
    assert issued.status_code == 403
    assert issued.headers["Content-Type"] == "application/problem+json"


def test_an_agency_edits_its_own_contacts_languages_and_intake(network, member):
    agency, key = member
    path = f"/v1/agencies/{agency['id']}"
    changed = network.call(
        "PATCH",
        path,
        key["key"],
        json={"contacts": [data.contact(language="ru")], "languages": ["ru"], "accepting_referrals": False},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["languages"] == ["ru"] and changed.json()["accepting_referrals"] is False
    for field, value in (
        ("name", "Renamed"),
        ("kind", "private"),
        ("services", ["legal"]),
        ("regions", ["AZ-GA"]),
    ):
        refused = network.call("PATCH", path, key["key"], json={field: value})
        assert refused.status_code == 403, field
    assert network.call("GET", path, key["key"]).json()["name"] == "Member NGO"
    assert (
        network.call("PATCH", path, ADMIN_KEY, json={"name": "Member NGO (Ganja)"}).json()["name"]
        == "Member NGO (Ganja)"
    )


def test_an_agency_cannot_edit_another(network, member):
    _, key = member
    other = network.call("POST", "/v1/agencies", ADMIN_KEY, json=data.agency()).json()
    refused = network.call(
        "PATCH", f"/v1/agencies/{other['id']}", key["key"], json={"accepting_referrals": False}
    )
    assert refused.status_code == 403


def test_search_and_read_with_any_key(network, member):
    agency, key = member
    found = network.call("GET", "/v1/agencies", key["key"], params={"q": "member ngo", "per_page": 5})
    assert found.status_code == 200
    assert agency["id"] in [item["id"] for item in found.json()["items"]]
    assert found.json()["per_page"] == 5 and found.json()["page"] == 1
    assert (
        network.call("GET", "/v1/agencies/00000000-0000-4000-8000-00000000abcd", key["key"]).status_code
        == 404
    )
    bad = network.call("GET", "/v1/agencies", key["key"], params={"region": "Ganja"})
    assert bad.status_code == 422 and "region" in bad.json()["errors"]


def test_a_revoked_key_stops_at_once_and_no_key_is_logged(network):
    agency = network.call("POST", "/v1/agencies", ADMIN_KEY, json=data.agency()).json()
    issued = network.call(
        "POST", f"/v1/agencies/{agency['id']}/api-keys", ADMIN_KEY, json={"role": "agency"}
    ).json()
    assert set(issued) >= {"id", "key", "role", "created_at"}
    assert network.call("GET", "/v1/agencies", issued["key"]).status_code == 200
    gone = network.call("DELETE", f"/v1/agencies/{agency['id']}/api-keys/{issued['id']}", ADMIN_KEY)
    assert gone.status_code == 204
    assert network.call("GET", "/v1/agencies", issued["key"]).status_code == 401
    again = network.call("DELETE", f"/v1/agencies/{agency['id']}/api-keys/{issued['id']}", ADMIN_KEY)
    assert again.status_code == 204  # revoking twice changes nothing
    missing = network.call(
        "DELETE", f"/v1/agencies/{agency['id']}/api-keys/00000000-0000-4000-8000-00000000abcd", ADMIN_KEY
    )
    assert missing.status_code == 404
    log = network.log()
    assert issued["key"] not in log and ADMIN_KEY not in log
