"""The directory in full: search, values checked against the standards,
events, concurrency, key bookkeeping."""

import eventlet
import pytest
from nameko.events import event_handler
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text

from shared.contract import events
from shared.contract.digests import digest
from shared.contract.errors import InvalidInput
from tests.support import data
from tests.support.sinks import wait_for


def names(page):
    return [agency["name"] for agency in page["items"]]


def test_name_search_ignores_case_and_accents(agencies):
    agencies("create_agency", data.agency(name="Gəncə Şəhər Sosial Müdafiə Mərkəzi"))
    agencies("create_agency", data.agency(name="Gence Youth Union"))
    agencies("create_agency", data.agency(name="Государственная миграционная служба"))
    agencies("create_agency", data.agency(name="100% Help_Desk"))
    assert names(agencies("search_agencies", {"q": "Gence"})) == [
        "Gence Youth Union",
        "Gəncə Şəhər Sosial Müdafiə Mərkəzi",
    ]
    assert names(agencies("search_agencies", {"q": "GƏNCƏ ŞƏHƏR"})) == ["Gəncə Şəhər Sosial Müdafiə Mərkəzi"]
    assert names(agencies("search_agencies", {"q": "МИГРАЦИОННАЯ"})) == [
        "Государственная миграционная служба"
    ]
    assert names(agencies("search_agencies", {"q": "100%"})) == ["100% Help_Desk"]
    assert names(agencies("search_agencies", {"q": "0%"})) == ["100% Help_Desk"]
    assert names(agencies("search_agencies", {"q": "p_d"})) == ["100% Help_Desk"]
    assert names(agencies("search_agencies", {"q": "%"})) == ["100% Help_Desk"]  # not a wildcard


def test_filters_combine(agencies):
    agencies("create_agency", data.agency(name="A", services=["health"], regions=["AZ-GA"], languages=["ru"]))
    agencies("create_agency", data.agency(name="B", services=["health"], regions=["AZ-BA"], languages=["ru"]))
    agencies("create_agency", data.agency(name="C", services=["health"], regions=["AZ-GA"], languages=["en"]))
    agencies("create_agency", data.agency(name="D", services=["legal"], regions=["AZ-GA"], languages=["ru"]))
    found = agencies("search_agencies", {"service": "health", "region": "AZ-GA", "language": "ru"})
    assert names(found) == ["A"] and found["total"] == 1


@pytest.mark.parametrize(
    "query, field",
    [
        ({"service": "cooking"}, "service"),
        ({"region": "Baku"}, "region"),
        ({"language": "azerbaijani"}, "language"),
        ({"page": 0}, "page"),
        ({"per_page": 101}, "per_page"),
        ({"accepting": "perhaps"}, "accepting"),
    ],
)
def test_bad_searches_name_the_field(agencies, query, field):
    with pytest.raises(InvalidInput) as refused:
        agencies("search_agencies", query)
    assert field in refused.value.errors


@pytest.mark.parametrize(
    "change, field, value",
    [
        ({"name": ""}, "name", None),
        ({"name": None}, "name", None),
        ({"kind": "club"}, "kind", "'club'"),
        ({"services": ["cooking"]}, "services.0", "'cooking'"),
        ({"services": ["housing", "housing"]}, "services", None),
        ({"regions": ["AZ-XX"]}, "regions.0", "'AZ-XX'"),
        ({"regions": ["Baku"]}, "regions.0", "'Baku'"),
        ({"languages": ["zz"]}, "languages.0", "'zz'"),
        ({"languages": ["aze"]}, "languages.0", "'aze'"),
        ({"accepting_referrals": "maybe"}, "accepting_referrals", None),
        ({"contacts": "nobody"}, "contacts", None),
        ({"contacts": [data.contact(name="")]}, "contacts.0.name", None),
        ({"contacts": [data.contact(email="leyla@")]}, "contacts.0.email", "'leyla@'"),
        ({"contacts": [data.contact(phone="+99450")]}, "contacts.0.phone", "'+99450'"),
        ({"contacts": [data.contact(phone="0501234567")]}, "contacts.0.phone", "'0501234567'"),
        ({"contacts": [data.contact(language="de")]}, "contacts.0.language", "'de'"),
        ({"contacts": [data.contact(channels=[])]}, "contacts.0.channels", None),
        ({"contacts": [data.contact(channels=["fax"])]}, "contacts.0.channels.0", "'fax'"),
        ({"contacts": [data.contact(channels=["sms"], phone=None)]}, "contacts.0.phone", None),
        ({"contacts": [data.contact(channels=["email"], email=None)]}, "contacts.0.email", None),
        ({"contacts": [dict(data.contact(), fax="+994")]}, "contacts.0.fax", None),
        ({"id": "mine"}, "id", None),
        ({"created_at": "2026-01-01T00:00:00Z"}, "created_at", None),
    ],
)
def test_every_bad_field_is_named_with_its_value(agencies, change, field, value):
    with pytest.raises(InvalidInput) as refused:
        agencies("create_agency", dict(data.agency(), **change))
    assert field in refused.value.errors, refused.value.errors
    if value:
        assert value in " ".join(refused.value.errors[field])
    assert agencies("search_agencies", {})["total"] == 0  # nothing half-written


def test_concurrent_creates_all_land(agencies, service_config):
    """Twenty clients at once, each over its own RPC connection."""

    def create(number):
        with ClusterRpcProxy(service_config, timeout=30) as rpc:
            return rpc.agencies.create_agency(data.agency(name=f"Agency {number:02d}"))

    made = list(eventlet.GreenPool().imap(create, range(20)))
    assert len({agency["id"] for agency in made}) == 20
    page = agencies("search_agencies", {"per_page": 100})
    assert page["total"] == 20 and names(page) == [f"Agency {n:02d}" for n in range(20)]


class DirectoryListener:
    name = "directory_listener"
    received = []

    @event_handler(events.AGENCIES, events.AGENCY_CREATED)
    def on_created(self, payload):
        DirectoryListener.received.append(payload)

    @event_handler(events.AGENCIES, events.AGENCY_UPDATED)
    def on_updated(self, payload):
        DirectoryListener.received.append(payload)


def test_changes_are_announced_without_secrets(container_factory, service_config, agencies):
    DirectoryListener.received = []
    container_factory(DirectoryListener, service_config).start()
    made = agencies("create_agency", data.agency(name="Announced"))
    issued = agencies("issue_api_key", made["id"], "agency")
    agencies("update_agency", made["id"], {"accepting_referrals": False}, False)
    wait_for(lambda: len(DirectoryListener.received) == 2, what="two agency events")
    # One queue per handler: the two events may be taken in either order
    # (the copies kept from them go by updated_at, not by arrival).
    received = {
        payload["event_type"]: events.agency_event.load(payload) for payload in DirectoryListener.received
    }
    created, updated = received["agency_created"], received["agency_updated"]
    assert created["event_type"] == "agency_created" and created["agency"]["name"] == "Announced"
    assert updated["event_type"] == "agency_updated" and updated["agency"]["accepting_referrals"] is False
    everything = str(DirectoryListener.received)
    assert issued["key"] not in everything and issued["prefix"] not in everything


def test_a_key_records_when_it_was_last_used(agencies, engines):
    made = agencies("create_agency", data.agency())
    issued = agencies("issue_api_key", made["id"], "agency")

    def last_used():
        with engines["AGENCIES_DATABASE_URL"].connect() as conn:
            return conn.execute(
                text("SELECT last_used_at FROM api_keys WHERE id = :id"), {"id": issued["id"]}
            ).scalar()

    assert last_used() is None
    agencies("authenticate", digest(issued["key"]))
    assert last_used() is not None
