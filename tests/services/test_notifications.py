"""Events in, e-mails and SMS out: the notifications service with the real
agencies service, a real SMTP server (aiosmtpd) and a real HTTP SMS sink."""
import uuid

import pytest
from nameko.standalone.events import event_dispatcher

from services.notifications.service import NotificationsService
from shared import events
from tests.services.conftest import caller_of
from tests.support import data
from tests.support.sinks import wait_for


@pytest.fixture
def notifications(container_factory, service_config, agencies):
    container = container_factory(NotificationsService, service_config)
    container.start()
    return caller_of(container)


@pytest.fixture
def dispatch(service_config):
    publish = event_dispatcher(service_config)

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
        publish(events.REFERRALS, event_type, payload)
        return payload

    return send


@pytest.fixture
def parties(agencies):
    sender = agencies("create_agency", data.agency(
        name="State Migration Service",
        contacts=[data.contact(language="ru", channels=["email", "sms"], phone="+994501112233")],
    ))
    receiver = agencies("create_agency", data.agency(
        name="IOM Azerbaijan", contacts=[data.contact(language="az"), data.contact(language="en")],
    ))
    return sender, receiver


def test_a_sent_referral_mails_each_receiver_contact_in_their_language(
    notifications, dispatch, parties, smtp_sink, sms_sink
):
    sender, receiver = parties
    dispatch(events.REFERRAL_SENT, sender, receiver)
    az, en = (contact["email"] for contact in receiver["contacts"])
    wait_for(lambda: smtp_sink.to(az) and smtp_sink.to(en), what="both e-mails")
    az_mail, en_mail = smtp_sink.to(az)[0], smtp_sink.to(en)[0]
    assert az_mail["Subject"] == "Yeni yönləndirmə REF-2026-000123: mənzil"
    assert en_mail["Subject"] == "New referral REF-2026-000123: housing"
    assert "State Migration Service" in en_mail.get_body(("plain",)).get_content()
    assert en_mail["Message-ID"] and en_mail["Date"]
    assert en_mail.get_body(("html",)) is not None
    assert smtp_sink.to(sender["contacts"][0]["email"]) == []  # the sender is not told
    assert sms_sink.received == []  # nobody there chose SMS


def test_an_accepted_referral_reaches_the_sender_by_email_and_sms(
    notifications, dispatch, parties, smtp_sink, sms_sink
):
    sender, receiver = parties
    dispatch(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted", from_status="sent")
    contact = sender["contacts"][0]
    wait_for(lambda: smtp_sink.to(contact["email"]) and sms_sink.received, what="e-mail and SMS")
    assert smtp_sink.to(contact["email"])[0]["Subject"] == "Направление REF-2026-000123 принято"
    assert sms_sink.received == [
        {"to": "+994501112233", "text": "«IOM Azerbaijan» приняла направление REF-2026-000123 (жильё)."}
    ]


def test_a_redelivered_event_sends_nothing_twice(notifications, dispatch, parties, smtp_sink):
    sender, receiver = parties
    first = dispatch(events.REFERRAL_SENT, sender, receiver)
    address = receiver["contacts"][0]["email"]
    wait_for(lambda: smtp_sink.to(address), what="the first e-mail")
    dispatch(events.REFERRAL_SENT, sender, receiver, event_id=first["event_id"])
    second = dispatch(events.REFERRAL_SENT, sender, receiver, reference="REF-2026-000124")
    wait_for(lambda: len(smtp_sink.to(address)) == 2, what="the other event's e-mail")
    subjects = sorted(message["Subject"] for message in smtp_sink.to(address))
    assert subjects == ["Yeni yönləndirmə REF-2026-000123: mənzil", "Yeni yönləndirmə REF-2026-000124: mənzil"]
    assert second["event_id"] != first["event_id"]


def test_a_failing_mail_server_is_retried_then_recorded(notifications, dispatch, parties, smtp_sink):
    sender, receiver = parties
    smtp_sink.fail_with = "451 4.3.0 try again later"
    made = dispatch(events.REFERRAL_SENT, sender, receiver)
    address = receiver["contacts"][0]["email"]

    def listed():
        return notifications("list_notifications", receiver["id"], {"referral_id": made["referral_id"]})

    wait_for(lambda: any(item["attempts"] >= 1 for item in listed()["items"]), what="a failed try")
    smtp_sink.fail_with = None
    wait_for(lambda: smtp_sink.to(address), what="the e-mail after the server recovered")
    mine = [item for item in listed()["items"] if item["recipient"] == address][0]
    assert mine["status"] == "sent" and mine["attempts"] >= 2


def test_after_the_last_attempt_a_message_is_failed(notifications, dispatch, parties, sms_sink):
    sender, receiver = parties
    sms_sink.status = 503
    made = dispatch(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted")

    def sms_rows():
        page = notifications("list_notifications", sender["id"], {"referral_id": made["referral_id"]})
        return [item for item in page["items"] if item["channel"] == "sms"]

    failed = wait_for(lambda: [r for r in sms_rows() if r["status"] == "failed"], what="failed")
    assert failed[0]["attempts"] == 3  # NOTIFICATION_MAX_ATTEMPTS in the tests
    assert "503" in failed[0]["last_error"]
    assert sms_sink.received == []


def test_messages_never_carry_personal_data(notifications, dispatch, parties, smtp_sink):
    """The service never has the returnee's data; a message cannot carry it."""
    sender, receiver = parties
    dispatch(events.REFERRAL_SENT, sender, receiver)
    address = receiver["contacts"][0]["email"]
    mail = wait_for(lambda: smtp_sink.to(address), what="the e-mail")[0]
    for value in data.PERSONAL_VALUES:
        assert value not in mail.as_string()
