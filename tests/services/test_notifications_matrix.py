"""Every event of the API's list, to every contact of its audience, in
each of the three languages, on both channels: one network for the whole
module (the agencies and notifications services on real containers, the
broker, the database, an SMTP server and an SMS sink), one event of each
type published once, then one test per event, language and channel."""

import collections
import uuid
from urllib.parse import urlparse

import pytest
from nameko.containers import get_container_cls
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook
from sqlalchemy import text

from services.agencies.service import AgenciesService
from services.notifications import dispatch, sms_length
from services.notifications.messages import SERVICE_NAMES
from services.notifications.service import NotificationsService
from shared import config
from shared.contract import events
from tests.conftest import WEBHOOK_SECRET_KEYS, empty
from tests.support import data
from tests.support.sinks import HttpSink, SmtpSink, wait_for

LANGUAGES = ("az", "ru", "en")
CHANNELS = ("email", "sms")
SERVICE_TYPE = {  # a different service for each event, so each language's names are seen
    events.REFERRAL_SENT: "housing",
    events.REFERRAL_ACCEPTED: "employment",
    events.REFERRAL_DECLINED: "health",
    events.REFERRAL_STARTED: "psychosocial",
    events.REFERRAL_COMPLETED: "legal",
    events.REFERRAL_CANCELLED: "documentation",
    events.REFERRAL_OVERDUE: "financial",
    events.REFERRAL_ERASED: "education",
}
REFERENCES = {event_type: f"REF-2026-0004{n:02d}" for n, event_type in enumerate(events.REFERRAL_EVENTS)}
NAMES = {
    "sender": "Azərbaycan Respublikasının Dövlət Miqrasiya Xidməti",
    "receiver": "International Organization for Migration (IOM) Azerbaijan",
}


def coordinators(role):
    """One coordinator per language, each on both channels."""
    line = {"sender": "1", "receiver": "2"}[role]
    return [
        data.contact(
            language=language,
            channels=list(CHANNELS),
            phone=f"+9945020{line}{n}000",
            email=f"{role}-{language}-{uuid.uuid4().hex[:6]}@example.org",
        )
        for n, language in enumerate(LANGUAGES)
    ]


def start(service_class, settings):
    container = get_container_cls(settings)(service_class, settings)
    container.start()
    return container


@pytest.fixture(scope="module")
def network(request, vhost_pipeline, database_urls, engines):
    """Runs every event through one network, waits until every message is
    out, and yields what the SMTP server and the SMS sink received."""
    broker = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    with vhost_pipeline.get() as vhost, SmtpSink() as smtp, HttpSink() as sms:
        settings = config.load(
            AMQP_URI=f"{broker.scheme}://{broker.netloc}/{vhost}",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp.port),
            SMS_BACKEND="http",
            SMS_HTTP_URL=sms.url,
            DELIVERY_SWEEP_SECONDS="0.05",
            WEBHOOK_SECRET_KEYS=WEBHOOK_SECRET_KEYS,
            **database_urls,
        )
        containers = [start(AgenciesService, settings), start(NotificationsService, settings)]
        try:
            with entrypoint_hook(containers[0], "create_agency") as create_agency:
                parties = {
                    role: create_agency(data.agency(name=NAMES[role], contacts=coordinators(role)))
                    for role in ("sender", "receiver")
                }
            publish = event_dispatcher(settings)
            for event_type in events.REFERRAL_EVENTS:
                publish(
                    events.REFERRALS,
                    event_type,
                    {
                        "event_id": str(uuid.uuid4()),
                        "event_type": event_type,
                        "occurred_at": "2026-11-23T10:00:00+00:00",
                        "referral_id": str(uuid.uuid4()),
                        "reference": REFERENCES[event_type],
                        "service_type": SERVICE_TYPE[event_type],
                        "priority": "normal",
                        "status": "sent",
                        "from_status": None,
                        "sending_agency_id": parties["sender"]["id"],
                        "receiving_agency_id": parties["receiver"]["id"],
                        "acting_agency_id": None,
                    },
                )
            owed = sum(len(roles) for roles in dispatch.AUDIENCE.values()) * len(LANGUAGES)
            wait_for(
                lambda: len(smtp.messages) >= owed and len(sms.received) >= owed,
                timeout=30,
                what=f"{owed} e-mails and {owed} SMS",
            )
            # Every event was handled (`started` too) and nothing is left to send.
            notifications_db = engines["NOTIFICATIONS_DATABASE_URL"]
            handled = len(events.REFERRAL_EVENTS)
            wait_for(
                lambda: _scalar(notifications_db, "SELECT count(*) FROM handled_events") == handled,
                what=f"all {handled} events handled",
            )
            # A batch's outcomes are recorded once the whole batch is out.
            wait_for(
                lambda: (
                    _scalar(notifications_db, "SELECT count(*) FROM notifications WHERE status <> 'sent'")
                    == 0
                ),
                what="every message recorded as sent",
            )
            yield {"parties": parties, "smtp": smtp, "sms": sms}
        finally:
            for container in containers:
                container.kill()
            _empty(engines)


def _scalar(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _empty(engines):
    """What the module's network left in this run's databases goes."""
    for key in ("AGENCIES_DATABASE_URL", "NOTIFICATIONS_DATABASE_URL"):
        empty(engines[key])


def contact_of(network, role, language):
    [contact] = [c for c in network["parties"][role]["contacts"] if c["language"] == language]
    return contact


CASES = [
    (event_type, role, language, channel)
    for event_type, roles in dispatch.AUDIENCE.items()
    for role in roles
    for language in LANGUAGES
    for channel in CHANNELS
]


@pytest.mark.parametrize("event_type,role,language,channel", CASES)
def test_each_event_reaches_each_contact_in_their_language(network, event_type, role, language, channel):
    contact = contact_of(network, role, language)
    reference = REFERENCES[event_type]
    service = SERVICE_NAMES[language][SERVICE_TYPE[event_type]]
    other = "sender" if role == "receiver" else "receiver"
    foreign = [
        SERVICE_NAMES[other_language][SERVICE_TYPE[event_type]]
        for other_language in LANGUAGES
        if other_language != language
    ]
    if channel == "email":
        [mail] = [m for m in network["smtp"].to(contact["email"]) if reference in m["Subject"]]
        assert mail["From"] == "Referral network <no-reply@referrals.example.org>"
        assert mail["Message-ID"] and mail["Date"]
        plain, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
        for body in (plain, html):
            assert reference in body and service in body and NAMES[other] in body
            assert not [name for name in foreign if name in body]
        assert f'<html lang="{language}">' in html
    else:
        [sms] = [s for s in network["sms"].received if s["to"] == contact["phone"] and reference in s["text"]]
        assert service in sms["text"] and sms_length.fits(sms["text"])
        assert not [name for name in foreign if name in sms["text"]]


def test_nobody_else_is_told_anything(network):
    """Exactly one message per audience contact, event and channel; nothing
    for `started`, and nothing to the agency an event is not for."""
    expected_mail = collections.Counter()
    expected_sms = collections.Counter()
    for event_type, role, language, channel in CASES:
        contact = contact_of(network, role, language)
        if channel == "email":
            expected_mail[(contact["email"], REFERENCES[event_type])] += 1
        else:
            expected_sms[(contact["phone"], REFERENCES[event_type])] += 1
    got_mail = collections.Counter(
        (rcpts[0], reference)
        for rcpts, message in network["smtp"].messages
        for reference in REFERENCES.values()
        if reference in message["Subject"]
    )
    got_sms = collections.Counter(
        (sms["to"], reference)
        for sms in network["sms"].received
        for reference in REFERENCES.values()
        if reference in sms["text"]
    )
    assert got_mail == expected_mail and len(network["smtp"].messages) == sum(expected_mail.values())
    assert got_sms == expected_sms and len(network["sms"].received) == sum(expected_sms.values())
