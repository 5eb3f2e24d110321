"""Events in, e-mails and SMS out: the notifications service on real nameko
containers with the real agencies service, RabbitMQ and PostgreSQL, a real
SMTP server (aiosmtpd) and a real HTTP SMS sink. Delivery, retries and
their schedule across a restart, replicas, duplicates, who sees what, and
a referral's whole life without a word of the returnee's data."""

import collections
import datetime
import logging
import time
import uuid

import eventlet
import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.notifications.models import Notification
from services.referrals.service import ReferralsService
from shared.contract import events
from shared.storage.models import utcnow
from tests.services.conftest import caller_of
from tests.support import data
from tests.support.sinks import SmtpSink, readable, wait_for


@pytest.fixture
def parties(agencies):
    """The sender's coordinator reads Russian and chose e-mail and SMS; the
    receiver's two read Azerbaijani and English, by e-mail only."""
    sender = agencies(
        "create_agency",
        data.agency(
            name="State Migration Service",
            contacts=[data.contact(language="ru", channels=["email", "sms"], phone="+994501112233")],
        ),
    )
    receiver = agencies(
        "create_agency",
        data.agency(
            name="IOM Azerbaijan",
            contacts=[data.contact(language="az"), data.contact(language="en")],
        ),
    )
    return sender, receiver


@pytest.fixture
def stored(engines):
    """The notification rows of a referral, read straight from the database."""

    def read(referral_id, channel=None):
        query = select(Notification).where(Notification.referral_id == referral_id)
        if channel:
            query = query.where(Notification.channel == channel)
        with Session(engines["NOTIFICATIONS_DATABASE_URL"]) as session:
            return session.scalars(query.order_by(Notification.recipient)).all()

    return read


def emails(contacts):
    return [contact["email"] for contact in contacts]


def all_sent(rows):
    """`rows` once every one of them is sent (for wait_for), else None."""
    return rows if rows and all(row.status == "sent" for row in rows) else None


def test_a_sent_referral_mails_each_receiver_contact_in_their_language(
    notifications, publish, parties, smtp_sink, sms_sink
):
    sender, receiver = parties
    publish(events.REFERRAL_SENT, sender, receiver)
    az, en = emails(receiver["contacts"])
    wait_for(lambda: smtp_sink.to(az) and smtp_sink.to(en), what="both e-mails")
    az_mail, en_mail = smtp_sink.to(az)[0], smtp_sink.to(en)[0]
    assert az_mail["Subject"] == "Yeni yönləndirmə REF-2026-000123: mənzil təminatı"
    assert en_mail["Subject"] == "New referral REF-2026-000123: housing"
    assert "State Migration Service" in en_mail.get_body(("plain",)).get_content()
    assert "State Migration Service" in az_mail.get_body(("html",)).get_content()
    assert en_mail["From"] == "Referral network <no-reply@referrals.example.org>"
    assert en_mail["Message-ID"] and en_mail["Date"]
    assert smtp_sink.to(sender["contacts"][0]["email"]) == []  # the sender is not told
    assert sms_sink.received == []  # nobody there chose SMS


def test_an_accepted_referral_reaches_the_sender_by_email_and_sms(
    notifications, publish, parties, smtp_sink, sms_sink
):
    sender, receiver = parties
    publish(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted", from_status="sent")
    contact = sender["contacts"][0]
    wait_for(lambda: smtp_sink.to(contact["email"]) and sms_sink.received, what="e-mail and SMS")
    assert smtp_sink.to(contact["email"])[0]["Subject"] == "Направление REF-2026-000123 принято"
    assert sms_sink.received == [
        {"to": "+994501112233", "text": "«IOM Azerbaijan»: направление REF-2026-000123 (жильё) принято."}
    ]
    assert smtp_sink.to(receiver["contacts"][0]["email"]) == []


def test_a_redelivered_event_sends_nothing_twice(
    start_notifications, publish, parties, smtp_sink, stored, caplog
):
    container, _ = start_notifications()
    sender, receiver = parties
    first = publish(events.REFERRAL_SENT, sender, receiver)
    wait_for(lambda: len(smtp_sink.messages) == 2, what="the first e-mails")

    # The broker brings the same event again (say its ack was lost)...
    with caplog.at_level(logging.INFO, logger="services.notifications.service"):
        publish(
            events.REFERRAL_SENT, sender, receiver, event_id=first["event_id"], reference="REF-2026-999999"
        )
        wait_for(
            lambda: any(first["event_id"] in line and "handled before" in line for line in caplog.messages),
            what="the redelivery to be handled",
        )
    # ...and two replicas get the same event at the same moment.
    twin = dict(first, event_id=str(uuid.uuid4()), referral_id=str(uuid.uuid4()), reference="REF-2026-000124")

    def handle_twin():
        with entrypoint_hook(container, "on_sent") as on_sent:
            on_sent(twin)

    for worker in [eventlet.spawn(handle_twin) for _ in range(2)]:
        worker.wait()

    assert len(stored(first["referral_id"])) == 2
    assert len(stored(twin["referral_id"])) == 2
    wait_for(lambda: len(smtp_sink.messages) == 4, what="the twin's e-mails")
    eventlet.sleep(0.3)  # several delivery sweeps: nothing more may go out
    subjects = collections.Counter(message["Subject"] for _, message in smtp_sink.messages)
    assert subjects == {
        "Yeni yönləndirmə REF-2026-000123: mənzil təminatı": 1,
        "New referral REF-2026-000123: housing": 1,
        "Yeni yönləndirmə REF-2026-000124: mənzil təminatı": 1,
        "New referral REF-2026-000124: housing": 1,
    }


def test_a_refusing_mail_server_is_retried_until_it_takes_the_message(
    start_notifications, publish, parties, smtp_sink, stored
):
    start_notifications(NOTIFICATION_MAX_ATTEMPTS="10")
    sender, receiver = parties
    smtp_sink.fail_with = "451 4.3.0 try again later"
    made = publish(events.REFERRAL_SENT, sender, receiver)
    wait_for(
        lambda: (
            len(stored(made["referral_id"])) == 2
            and all(row.last_error and "451" in row.last_error for row in stored(made["referral_id"]))
        ),
        what="a refused try of each e-mail",
    )
    smtp_sink.fail_with = None
    wait_for(lambda: len(smtp_sink.messages) == 2, what="the e-mails once the server takes them")
    rows = wait_for(lambda: all_sent(stored(made["referral_id"])), what="both rows sent")
    assert all(row.attempts >= 2 and row.last_error is None and row.sent_at for row in rows)


def test_a_mail_server_that_is_down_is_retried_until_it_is_up(
    start_notifications, publish, parties, smtp_sink, stored
):
    smtp_sink.__exit__()  # the mail server is down: its port refuses connections
    start_notifications(NOTIFICATION_MAX_ATTEMPTS="10")
    sender, receiver = parties
    made = publish(events.REFERRAL_SENT, sender, receiver)
    rows = wait_for(
        lambda: [row for row in stored(made["referral_id"]) if row.attempts >= 2 and row.last_error],
        what="refused connections",
    )
    assert "refused" in rows[0].last_error.lower() and rows[0].status == "pending"
    with SmtpSink(port=smtp_sink.port) as revived:
        wait_for(lambda: len(revived.messages) == 2, what="the e-mails once the server is up")
        wait_for(lambda: all_sent(stored(made["referral_id"])), what="both rows sent")


def test_after_the_last_attempt_a_message_is_failed_and_listed(
    notifications, publish, parties, sms_sink, stored
):
    sender, receiver = parties
    sms_sink.status = 503
    made = publish(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted")
    [row] = wait_for(
        lambda: [r for r in stored(made["referral_id"], "sms") if r.status == "failed"], what="the SMS failed"
    )
    assert row.attempts == 3  # NOTIFICATION_MAX_ATTEMPTS in the tests
    assert "503" in row.last_error
    assert sms_sink.posts == 3 and sms_sink.received == []
    listed = notifications("list_notifications", sender["id"], {"status": "failed"})
    assert [(item["id"], item["attempts"], item["status"]) for item in listed["items"]] == [
        (str(row.id), 3, "failed")
    ]
    assert "503" in listed["items"][0]["last_error"]
    eventlet.sleep(0.5)
    assert sms_sink.posts == 3  # a failed message is not tried again


def test_a_refusal_by_the_sms_provider_fails_at_once(notifications, publish, parties, sms_sink, stored):
    sender, receiver = parties
    sms_sink.status = 400
    made = publish(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted")
    [row] = wait_for(
        lambda: [r for r in stored(made["referral_id"], "sms") if r.status == "failed"], what="the SMS failed"
    )
    assert row.attempts == 1 and "400" in row.last_error
    eventlet.sleep(0.5)  # more than the backoff of the tests
    assert sms_sink.posts == 1
    assert [r.status for r in stored(made["referral_id"], "email")] == ["sent"]


def test_a_provider_that_times_out_is_retried(start_notifications, publish, parties, sms_sink, stored):
    start_notifications(NOTIFICATION_SEND_TIMEOUT_SECONDS="0.3", NOTIFICATION_MAX_ATTEMPTS="10")
    sender, receiver = parties
    sms_sink.delay = 1
    made = publish(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted")
    [row] = wait_for(
        lambda: [r for r in stored(made["referral_id"], "sms") if r.last_error], what="a timed-out try"
    )
    assert "timed out" in row.last_error.lower() and row.status == "pending"
    sms_sink.delay = 0
    [row] = wait_for(
        lambda: [r for r in stored(made["referral_id"], "sms") if r.status == "sent"],
        what="the SMS once the provider is quick again",
    )
    assert row.attempts >= 2


def test_no_transaction_is_held_open_while_a_message_is_sent(
    notifications, publish, parties, smtp_sink, stored, engines
):
    """The row is claimed with a lease, then sent with no lock held: a slow
    SMTP conversation blocks nobody, and the lease keeps replicas off it."""
    sender, receiver = parties
    smtp_sink.delay = 1.0
    made = publish(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted")
    [row] = wait_for(
        lambda: [r for r in stored(made["referral_id"], "email") if r.attempts == 1],
        what="the e-mail being sent",
    )
    assert row.status == "pending" and not smtp_sink.messages  # the server is still answering
    assert row.next_attempt_at > utcnow() + datetime.timedelta(seconds=10)  # leased
    time.sleep(0.3)  # well into the 1 s conversation, which is still going on
    assert not smtp_sink.messages
    with engines["NOTIFICATIONS_DATABASE_URL"].connect() as conn:
        conn.execute(text("SET lock_timeout = '100ms'"))
        locked = conn.execute(
            text("SELECT id FROM notifications WHERE id = :id FOR UPDATE NOWAIT"), {"id": row.id}
        ).all()
        # A transaction held through the send would be idle since before it
        # began; the delivery sweep's own short ones (every 0.25 s) are not.
        idle = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND xact_start < now() - interval '250 milliseconds'"
            )
        ).scalar()
        conn.rollback()
    assert len(locked) == 1 and idle == 0
    [row] = wait_for(
        lambda: [r for r in stored(made["referral_id"], "email") if r.status == "sent"],
        what="the e-mail sent",
    )
    assert row.attempts == 1


def test_the_retry_schedule_survives_a_restart(
    start_notifications, publish, parties, smtp_sink, sms_sink, stored
):
    settings = {"NOTIFICATION_BACKOFF_SECONDS": "3", "NOTIFICATION_MAX_ATTEMPTS": "4"}
    first, _ = start_notifications(**settings)
    sender, receiver = parties
    sms_sink.status = 503
    made = publish(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted")
    wait_for(lambda: [r for r in stored(made["referral_id"], "sms") if r.last_error], what="a failed try")
    first.kill()  # as a crash would: no clean shutdown

    [before] = stored(made["referral_id"], "sms")
    assert (before.status, before.attempts) == ("pending", 1)
    assert before.next_attempt_at > utcnow()  # the next try is scheduled, in the database
    # While no notifications service runs, another event arrives: the broker keeps it.
    later = publish(
        events.REFERRAL_DECLINED, sender, receiver, status="declined", reference="REF-2026-000200"
    )
    sms_sink.status = 200

    start_notifications(**settings)  # a fresh container: nothing of the first one's memory
    [after] = wait_for(
        lambda: [r for r in stored(made["referral_id"], "sms") if r.status == "sent"],
        timeout=20,
        what="the SMS sent by the new container",
    )
    assert after.attempts == 2  # counted on from the stored attempts
    assert after.sent_at >= before.next_attempt_at  # and not before the stored time
    wait_for(lambda: all_sent(stored(later["referral_id"])), what="the later event's messages")
    assert {
        "to": "+994501112233",
        "text": "«IOM Azerbaijan»: направление REF-2026-000200 (жильё) отклонено.",
    } in (sms_sink.received)


def test_replicas_share_the_work_and_never_send_a_message_twice(
    start_notifications, publish, agencies, smtp_sink, sms_sink, stored
):
    contacts = [
        data.contact(language=language, channels=["email", "sms"], phone=f"+99450100000{n}")
        for n, language in enumerate(["az", "ru", "en"] * 3)
    ]
    receiver = agencies("create_agency", data.agency(name="Receiver NGO", contacts=contacts))
    sender = agencies("create_agency", data.agency(name="Sender NGO"))
    for _ in range(3):
        start_notifications()
    smtp_sink.delay = sms_sink.delay = 0.02  # sends overlap with the other replicas' sweeps
    made = [publish(events.REFERRAL_SENT, sender, receiver, reference=f"REF-2026-00030{n}") for n in range(3)]
    expected = 3 * len(contacts) * 2
    wait_for(
        lambda: len(smtp_sink.messages) + len(sms_sink.received) >= expected, timeout=30, what="every message"
    )
    eventlet.sleep(0.3)
    mails = collections.Counter((tuple(rcpts), message["Subject"]) for rcpts, message in smtp_sink.messages)
    texts = collections.Counter((sms["to"], sms["text"]) for sms in sms_sink.received)
    assert len(mails) == len(texts) == expected // 2
    assert set(mails.values()) == set(texts.values()) == {1}
    assert sms_sink.posts == expected // 2
    rows = [row for event in made for row in stored(event["referral_id"])]
    assert len(rows) == expected and {(row.status, row.attempts) for row in rows} == {("sent", 1)}


def test_an_agency_sees_only_the_messages_to_its_own_contacts(
    notifications, publish, parties, agencies, smtp_sink, sms_sink, stored
):
    sender, receiver = parties
    outsider = agencies("create_agency", data.agency(name="Outsider NGO"))
    accepted = publish(events.REFERRAL_ACCEPTED, sender, receiver, status="accepted")
    overdue = publish(events.REFERRAL_OVERDUE, sender, receiver, referral_id=accepted["referral_id"])
    wait_for(
        lambda: len(stored(accepted["referral_id"])) == 6 and all_sent(stored(accepted["referral_id"])),
        what="all six messages",
    )

    def listed(agency, **filters):
        return notifications("list_notifications", agency["id"], filters)

    mine = listed(sender)
    assert mine["total"] == 4
    assert {item["recipient"] for item in mine["items"]} == {sender["contacts"][0]["email"], "+994501112233"}
    theirs = listed(receiver)
    assert theirs["total"] == 2
    assert {item["recipient"] for item in theirs["items"]} == set(emails(receiver["contacts"]))
    assert {item["event"] for item in theirs["items"]} == {overdue["event_type"]}
    assert listed(outsider)["total"] == 0
    assert listed(outsider, referral_id=accepted["referral_id"])["total"] == 0
    assert listed(receiver, referral_id=accepted["referral_id"], status="sent")["total"] == 2


def test_a_referral_s_whole_life_notifies_everyone_without_the_returnee_s_data(
    container_factory, service_config, notifications, agencies, smtp_sink, sms_sink, caplog
):
    """Through the real referrals service, its outbox and the broker: every
    event of the API's list reaches its audience, and no e-mail, SMS or log
    line carries the returnee's data, even where the agencies' free text
    (reason, outcome) names the returnee."""
    caplog.set_level(logging.INFO)
    referrals = container_factory(
        ReferralsService, dict(service_config, REFERRAL_RESPONSE_HOURS="0.001", OVERDUE_SWEEP_SECONDS="0.1")
    )
    referrals.start()
    referral = caller_of(referrals)
    sender = agencies(
        "create_agency",
        data.agency(
            name="State Migration Service",
            contacts=[data.contact(language="ru", channels=["email", "sms"], phone="+994501112233")],
        ),
    )
    receiver = agencies(
        "create_agency",
        data.agency(
            name="IOM Azerbaijan",
            contacts=[
                data.contact(language="az", channels=["email", "sms"], phone="+994501112244"),
                data.contact(language="en"),
            ],
        ),
    )
    personal = "Aysel Mammadova (1990-04-12, +994552223344, single parent)"

    def new():
        return referral(
            "create_referral", sender["id"], data.referral(receiver["id"], reason=f"{personal} needs a flat.")
        )

    def move(made, name, body=None, by=receiver):
        referral("move_referral", by["id"], made["id"], name, body)

    completed, declined, cancelled, overdue = new(), new(), new(), new()
    for name, body in (("accept", None), ("start", None), ("complete", {"outcome": f"{personal} housed."})):
        move(completed, name, body)
    move(declined, "decline", {"reason": f"{personal} lives outside our region."})
    move(cancelled, "cancel", {"reason": f"{personal} moved abroad."}, by=sender)

    # Receiver: 4 sent, 1 cancelled, 1 overdue, to 2 contacts by e-mail and 1 by SMS.
    # Sender: accepted, completed, declined, overdue, by e-mail and SMS.
    wait_for(
        lambda: len(smtp_sink.messages) == 12 + 4 and len(sms_sink.received) == 6 + 4,
        timeout=30,
        what="every message of the four referrals' lives",
    )
    eventlet.sleep(0.3)
    assert len(smtp_sink.messages) == 16 and len(sms_sink.received) == 10  # nothing more, nothing for `start`

    sender_subjects = sorted(message["Subject"] for message in smtp_sink.to(sender["contacts"][0]["email"]))
    assert sender_subjects == sorted(
        [
            f"Направление {completed['reference']} принято",
            f"Направление {completed['reference']} выполнено",
            f"Направление {declined['reference']} отклонено",
            f"Нет ответа на направление {overdue['reference']}",
        ]
    )
    en_subjects = sorted(message["Subject"] for message in smtp_sink.to(receiver["contacts"][1]["email"]))
    assert en_subjects == sorted(
        [f"New referral {made['reference']}: housing" for made in (completed, declined, cancelled, overdue)]
        + [
            f"Referral {cancelled['reference']} cancelled",
            f"Referral {overdue['reference']} is waiting for your answer",
        ]
    )

    everything = [readable(message) for _, message in smtp_sink.messages]
    everything += [sms["text"] for sms in sms_sink.received]
    everything += [record.getMessage() for record in caplog.records]
    for value in data.PERSONAL_VALUES:
        assert not [text for text in everything if value in text], value


def test_a_changed_contact_is_told_from_the_copy_the_directory_keeps_current(
    notifications, publish, parties, agencies, smtp_sink, engines
):
    """The service keeps its own copy of the agencies' contacts, updated by
    the directory's events: a coordinator changed in the directory is the one
    told next, and the copy was made without asking the directory per event."""
    sender, receiver = parties
    publish(events.REFERRAL_SENT, sender, receiver)
    wait_for(lambda: smtp_sink.to(emails(receiver["contacts"])[0]), what="the first e-mail")
    newcomer = data.contact(language="en")
    agencies("update_agency", receiver["id"], {"contacts": [newcomer]}, False)

    def copied_contacts():
        with engines["NOTIFICATIONS_DATABASE_URL"].connect() as conn:
            return conn.execute(
                text("SELECT contacts FROM known_agencies WHERE id = :id"), {"id": receiver["id"]}
            ).scalar()

    def without_ids(contacts):
        return [{key: value for key, value in contact.items() if key != "id"} for contact in contacts or []]

    wait_for(lambda: without_ids(copied_contacts()) == [newcomer], what="the copy to take the new contact")
    assert copied_contacts()[0]["id"]  # the directory's stable id, copied too
    publish(events.REFERRAL_SENT, sender, receiver, reference="REF-2026-000124")
    mail = wait_for(lambda: smtp_sink.to(newcomer["email"]), what="the newcomer's e-mail")[0]
    assert "REF-2026-000124" in mail["Subject"]
    assert not any("REF-2026-000124" in m["Subject"] for m in smtp_sink.to(emails(receiver["contacts"])[0]))
