"""Coordinators' identities in the agencies service: contacts' stable ids,
one-time sign-in links kept as digests, sessions that end when idle, at
their end, at sign-out and when the contact leaves the directory."""

import hashlib
import secrets
import uuid

import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import text

from services.agencies.service import AgenciesService
from services.notifications.service import NotificationsService
from shared.contract.errors import InvalidInput
from tests.support import data
from tests.support.inbox import link_token
from tests.support.sinks import readable, wait_for


@pytest.fixture
def directory(container_factory, service_config):
    container = container_factory(AgenciesService, service_config)
    container.start()

    def call(method, *args):
        with entrypoint_hook(container, method) as entrypoint:
            return entrypoint(*args)

    return call


@pytest.fixture
def agencies_db(engines):
    engine = engines["AGENCIES_DATABASE_URL"]

    def run(statement, **values):
        with engine.begin() as conn:
            return conn.execute(text(statement), values)

    return run


def test_contacts_keep_their_ids_through_edits(directory):
    made = directory(
        "create_agency",
        data.agency(
            contacts=[
                data.contact(name="Leyla", email="leyla@example.org"),
                data.contact(name="Farid", email="farid@example.org"),
            ]
        ),
    )
    leyla, farid = made["contacts"]
    assert leyla["id"] and farid["id"] and leyla["id"] != farid["id"]
    # Sent back with ids (as read), by address without an id, renamed, reordered: the same people.
    renamed = dict(farid, name="Farid Mammadov")
    without_id = {key: value for key, value in leyla.items() if key != "id"}
    changed = directory("update_agency", made["id"], {"contacts": [renamed, without_id]}, False)
    assert [(c["id"], c["name"]) for c in changed["contacts"]] == [
        (farid["id"], "Farid Mammadov"),
        (leyla["id"], "Leyla"),
    ]
    newcomer = directory("update_agency", made["id"], {"contacts": [renamed, data.contact()]}, False)[
        "contacts"
    ][1]
    assert newcomer["id"] not in (leyla["id"], farid["id"])


def test_an_id_must_name_one_of_the_agency_s_own_contacts(directory):
    made = directory("create_agency", data.agency())
    other = directory("create_agency", data.agency())
    foreign = other["contacts"][0]
    with pytest.raises(InvalidInput) as refused:
        directory("update_agency", made["id"], {"contacts": [foreign]}, False)
    assert refused.value.errors == {"contacts.0.id": ["No such contact in this agency."]}
    own = made["contacts"][0]
    with pytest.raises(InvalidInput) as twice:
        directory("update_agency", made["id"], {"contacts": [own, dict(own, name="Again")]}, False)
    assert "contacts.1.id" in twice.value.errors
    assert directory("get_agency", made["id"])["contacts"] == made["contacts"]  # nothing half-written


def test_a_link_is_e_mailed_kept_as_a_digest_used_once_and_opens_a_session(
    directory, notifications, agencies_db, smtp_sink
):
    made = directory(
        "create_agency",
        data.agency(
            name="Ganja NGO", contacts=[data.contact(name="Leyla", email="Leyla@Example.org", language="ru")]
        ),
    )
    directory("request_sign_in", "leyla@example.ORG")  # an address matches whatever its case
    mail = wait_for(lambda: smtp_sink.to("Leyla@Example.org"), what="the sign-in e-mail")[0]
    assert "Ganja NGO" in readable(mail) and "15" in readable(mail)
    assert mail.get_body(("plain",)) and mail.get_body(("html",))  # a plain-text and an HTML part
    assert "Ваша ссылка" in mail["Subject"]  # in the contact's language
    token = link_token(mail)
    stored = agencies_db("SELECT digest FROM sign_in_tokens").scalars().all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert directory("sign_in_link_is_live", digest(token)) is True
    assert directory("sign_in_link_is_live", digest(token)) is True  # looking spends nothing
    session_id = "a-session-id-the-gateway-made"
    opened = directory("sign_in", digest(token), digest(session_id))
    assert set(opened) == {"coordinator"}  # no session id comes back over the broker
    assert opened["coordinator"] == {
        "contact_id": made["contacts"][0]["id"],
        "name": "Leyla",
        "email": "Leyla@Example.org",
        "language": "ru",
        "agency_id": made["id"],
        "agency_name": "Ganja NGO",
    }
    assert directory("sign_in", digest(token), digest("another")) is None
    assert directory("sign_in_link_is_live", digest(token)) is False
    assert directory("coordinator_session", digest(session_id)) == opened["coordinator"]
    sessions = agencies_db("SELECT digest FROM coordinator_sessions").scalars().all()
    assert sessions == [hashlib.sha256(session_id.encode()).hexdigest()]


def test_an_unknown_address_gets_nothing_and_a_contact_at_most_three_live_links(
    directory, notifications, agencies_db, smtp_sink
):
    made = directory("create_agency", data.agency())
    address = made["contacts"][0]["email"]
    assert directory("request_sign_in", "nobody@example.org") is None
    for _ in range(5):  # each made after its answer, side by side: the cap still holds
        directory("request_sign_in", address)
    wait_for(lambda: len(smtp_sink.to(address)) == 3, what="three e-mails")
    assert agencies_db("SELECT count(*) FROM sign_in_tokens").scalar() == 3
    assert not smtp_sink.to("nobody@example.org")


def test_an_expired_link_signs_nobody_in(directory, notifications, agencies_db, smtp_sink):
    made = directory("create_agency", data.agency())
    directory("request_sign_in", made["contacts"][0]["email"])
    token = link_token(wait_for(lambda: smtp_sink.to(made["contacts"][0]["email"]), what="the e-mail")[0])
    agencies_db("UPDATE sign_in_tokens SET expires_at = now() - interval '1 second'")
    assert (
        directory("sign_in_link_is_live", digest(token)) is False
        and directory("sign_in", digest(token), digest("late")) is None
    )


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE coordinator_sessions SET last_seen_at = now() - interval '8 hours 1 minute'",  # idle
        "UPDATE coordinator_sessions SET expires_at = now() - interval '1 second'",  # 12 hours are over
    ],
)
def test_a_session_ends_when_idle_too_long_or_at_its_end(directory, agencies_db, change):
    made = directory("create_agency", data.agency())
    clear = open_session(directory, agencies_db, made)
    assert directory("coordinator_session", digest(clear))
    agencies_db(change)
    assert directory("coordinator_session", digest(clear)) is None


def test_a_session_ends_at_sign_out_and_when_the_contact_is_removed_or_readdressed(directory, agencies_db):
    made = directory("create_agency", data.agency(contacts=[data.contact() for _ in range(4)]))
    leaving, renamed, readdressed, staying = (open_session(directory, agencies_db, made, n) for n in range(4))
    kept = made["contacts"]
    directory(
        "update_agency",
        made["id"],
        {
            "contacts": [
                dict(kept[1], name="Leyla Aliyeva-Huseynova"),  # the same person, renamed: still signed in
                dict(kept[2], email="someone-else@example.org"),  # the contact is now somebody else
                kept[3],
            ]
        },
        False,
    )
    assert directory("coordinator_session", digest(leaving)) is None
    assert directory("coordinator_session", digest(readdressed)) is None
    assert directory("coordinator_session", digest(renamed))["name"] == "Leyla Aliyeva-Huseynova"
    assert directory("coordinator_session", digest(staying))["contact_id"] == kept[3]["id"]
    directory("sign_out", digest(staying))
    assert directory("coordinator_session", digest(staying)) is None


def open_session(directory, agencies_db, agency, contact=0):
    """A session for the agency's `contact`, through a link made here as the
    service makes them (the e-mail is not what this test is about)."""
    token = secrets.token_urlsafe(32)
    agencies_db(
        "INSERT INTO sign_in_tokens (digest, agency_id, contact_id, expires_at) "
        "VALUES (:digest, :agency, :contact, now() + interval '15 minutes')",
        digest=hashlib.sha256(token.encode()).hexdigest(),
        agency=agency["id"],
        contact=agency["contacts"][contact]["id"],
    )
    session_id = uuid.uuid4().hex
    assert directory("sign_in", digest(token), digest(session_id))
    return session_id


def digest(secret):
    """What the gateway sends for a link's token or a session id."""
    return hashlib.sha256(secret.encode()).hexdigest()


@pytest.fixture
def notifications(container_factory, service_config):
    container = container_factory(NotificationsService, service_config)
    container.start()
    return container


def test_sign_in_links_wait_in_a_queue_that_keeps_nothing_on_disk(
    notifications, rabbit_manager, rabbit_config
):
    """A quorum queue writes every message to its log on disk: the links'
    queue is a classic one that is not durable (its messages transient)."""
    vhost = rabbit_config["vhost"]
    links = rabbit_manager.get_queue(vhost, "evt-agencies-sign_in_link--notifications.on_sign_in_link")
    assert links["durable"] is False and links.get("type", "classic") == "classic"
    sent = rabbit_manager.get_queue(vhost, "evt-referrals-referral_sent--notifications.on_sent")
    assert sent["durable"] is True and sent["type"] == "quorum"  # every other queue of the service
