"""Poison messages: an event the notifications service fails on every time
(here: it names an agency the directory does not have) is tried
DELIVERY_LIMIT times, then set aside in `dead-letters.notifications`, said
once in the log, listed by the operator's command, and handled when
replayed after the cause is fixed. And a classic queue from before is made
a quorum queue by the preflight without losing its messages."""

import logging
import uuid

from kombu import Connection, Exchange, Queue
from nameko.standalone.events import event_dispatcher
from sqlalchemy.orm import Session

from services.agencies import directory
from services.notifications.service import NotificationsService
from shared.commands import dead_letters
from shared.contract import events
from shared.plumbing import queues
from tests.support import data
from tests.support.sinks import wait_for


def referral_sent(sender_id, receiver_id):
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": events.REFERRAL_SENT,
        "occurred_at": "2026-11-29T10:00:00+00:00",
        "referral_id": str(uuid.uuid4()),
        "reference": "REF-2026-000777",
        "service_type": "housing",
        "priority": "normal",
        "status": "sent",
        "from_status": None,
        "sending_agency_id": sender_id,
        "receiving_agency_id": receiver_id,
        "acting_agency_id": sender_id,
    }


def test_an_event_that_always_fails_is_set_aside_listed_and_replayed_once_fixed(
    container_factory, service_config, agencies, engines, smtp_sink, caplog
):
    container_factory(NotificationsService, dict(service_config, DELIVERY_LIMIT="2")).start()
    sender = agencies("create_agency", data.agency())
    missing = str(uuid.uuid4())  # no such agency, yet
    event = referral_sent(sender["id"], missing)
    with caplog.at_level(logging.ERROR, logger="shared.plumbing.messaging"):
        event_dispatcher(service_config)(events.REFERRALS, events.REFERRAL_SENT, event)
        with Connection(service_config["AMQP_URI"]) as connection:
            aside = wait_for(
                lambda: dead_letters.listing(connection, ["notifications"]),
                timeout=30,
                what="the event set aside",
            )
    assert [(item["event_id"], item["event_type"], item["queue"]) for item in aside] == [
        (event["event_id"], events.REFERRAL_SENT, "evt-referrals-referral_sent--notifications.on_sent")
    ]
    said = [record.getMessage() for record in caplog.records if "set aside" in record.getMessage()]
    assert (
        len(said) == 1 and event["event_id"] in said[0] and "3 times" in said[0]
    )  # the limit, then one more
    with Connection(service_config["AMQP_URI"]) as connection:
        assert len(dead_letters.listing(connection, ["notifications"])) == 1  # listing leaves it there

    receiver = data.agency(contacts=[data.contact(email="fixed@example.org")])
    with Session(engines["AGENCIES_DATABASE_URL"]) as session, session.begin():
        directory.ensure(session, uuid.UUID(missing), receiver)  # the cause, fixed
    with Connection(service_config["AMQP_URI"]) as connection:
        replayed = dead_letters.replay(connection, ["notifications"])
        assert [item["event_id"] for item in replayed] == [event["event_id"]]
        mail = wait_for(
            lambda: smtp_sink.to("fixed@example.org"), timeout=20, what="the replayed event's e-mail"
        )
        assert "REF-2026-000777" in mail[0]["Subject"]
        assert dead_letters.listing(connection, ["notifications"]) == []


def test_a_classic_queue_from_before_becomes_a_quorum_queue_with_its_messages(service_config):
    name = "evt-referrals-referral_sent--notifications.on_sent"
    exchange = Exchange("referrals.events", type="topic", durable=True)
    with Connection(service_config["AMQP_URI"]) as connection:
        Queue(name, exchange, routing_key=events.REFERRAL_SENT, durable=True)(connection.channel()).declare()
        producer = connection.Producer()
        for number in range(3):
            producer.publish(
                {"n": number}, exchange=exchange, routing_key=events.REFERRAL_SENT, serializer="json"
            )
        queues.ensure(connection, service_config, NotificationsService)
        assert connection.channel().queue_declare(name, passive=True).message_count == 3  # none lost
        again = Queue(
            name,
            exchange,
            routing_key=events.REFERRAL_SENT,
            durable=True,
            queue_arguments=queues.arguments(service_config, name),
        )
        again(connection.channel()).declare()  # the quorum queue's arguments: accepted as they are now
        producer.publish({"n": 3}, exchange=exchange, routing_key=events.REFERRAL_SENT, serializer="json")
        wait_for(
            lambda: connection.channel().queue_declare(name, passive=True).message_count == 4,
            what="a fourth message: the new queue is bound as the old one was",
        )
