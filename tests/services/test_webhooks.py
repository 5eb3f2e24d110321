"""Webhooks on a real notifications container, real RabbitMQ and
PostgreSQL, and real HTTP receivers on loopback that check every signature
with the standardwebhooks library."""

import logging
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from services.notifications import endpoints, webhook_delivery, webhooks
from services.notifications.models import WebhookDelivery
from services.notifications.service import NotificationsService
from shared.contract import events
from shared.contract.errors import InvalidInput, NotFound
from shared.storage.db import Sessions
from shared.storage.sealing import WEBHOOK_SETTING, Sealer
from tests.conftest import WEBHOOK_SECRET_KEYS
from tests.support import data
from tests.support.receivers import Receiver
from tests.support.sinks import free_port, readable, wait_for

WEBHOOK_SEALER = Sealer.from_setting(WEBHOOK_SECRET_KEYS, WEBHOOK_SETTING)
FAST = {
    "WEBHOOK_ALLOW_PRIVATE": "1",
    "WEBHOOK_BACKOFF_SECONDS": "0.2",
    "WEBHOOK_TIMEOUT_SECONDS": "1",
    "WEBHOOK_SWEEP_SECONDS": "0.05",
    "RPC_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def hooks(start_notifications):
    """The notifications service's RPC, with webhooks allowed on loopback
    and retried within a second."""
    return start_notifications(**FAST)[1]


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def pair(agencies):
    sender = agencies("create_agency", data.agency(name="State Migration Service"))
    receiver = agencies("create_agency", data.agency(name="IOM Azerbaijan"))
    return sender, receiver


@pytest.fixture
def deliveries(engines):
    """A webhook's delivery rows, straight from the database."""

    def read(webhook_id):
        with Session(engines["NOTIFICATIONS_DATABASE_URL"]) as session:
            return session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.created_at)
            ).all()

    return read


def register(hooks, agency, url, events_=("referral.sent",), **extra):
    return hooks("create_webhook", agency["id"], {"url": url, "events": list(events_), **extra})


@pytest.fixture
def handled(engines):
    """Whether the notifications service has handled the event `event_id`."""

    def check(event_id):
        with engines["NOTIFICATIONS_DATABASE_URL"].connect() as conn:
            return (
                conn.execute(
                    text("SELECT count(*) FROM handled_events WHERE event_id = :id"), {"id": event_id}
                ).scalar()
                == 1
            )

    return check


def settled(rows, count=1):
    """`rows` once `count` of them exist and none is pending."""
    return rows if len(rows) >= count and all(row.status != "pending" for row in rows) else None


# --- registration -------------------------------------------------------------


def test_a_webhook_shows_its_secret_once_and_only_to_its_agency(hooks, pair, receiver, engines):
    sender, other = pair
    made = register(
        hooks,
        sender,
        receiver.url,
        ("referral.accepted", "referral.declined", "referral.accepted"),
        description="IOM case system",
    )
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert made["events"] == ["referral.accepted", "referral.declined"] and made["active"] is True
    listed = hooks("list_webhooks", sender["id"], {})
    assert [item["id"] for item in listed["items"]] == [made["id"]] and listed["total"] == 1
    assert "secret" not in listed["items"][0] and "secret" not in hooks(
        "get_webhook", sender["id"], made["id"]
    )
    assert hooks("list_webhooks", other["id"], {})["total"] == 0
    with engines["NOTIFICATIONS_DATABASE_URL"].connect() as conn:  # sealed at rest: no secret in a dump
        stored = " ".join(conn.scalars(text("SELECT t::text FROM webhooks AS t")))
    secret_bytes = made["secret"].encode()
    assert made["secret"] not in stored and secret_bytes.hex() not in stored
    assert made["secret"][6:] not in stored and made["secret"][6:].encode().hex() not in stored
    for call in (
        ("get_webhook", other["id"], made["id"]),
        ("delete_webhook", other["id"], made["id"]),
        ("rotate_webhook_secret", other["id"], made["id"]),
        ("test_webhook", other["id"], made["id"]),
        ("change_webhook", other["id"], made["id"], {"active": False}),
        ("list_webhook_deliveries", other["id"], made["id"], {}),
    ):
        with pytest.raises(NotFound):
            hooks(*call)
    changed = hooks(
        "change_webhook", sender["id"], made["id"], {"events": ["referral.sent"], "active": False}
    )
    assert changed["events"] == ["referral.sent"] and changed["active"] is False
    rotated = hooks("rotate_webhook_secret", sender["id"], made["id"])
    assert rotated["secret"] != made["secret"] and rotated["secret"].startswith("whsec_")
    hooks("delete_webhook", sender["id"], made["id"])
    with pytest.raises(NotFound):
        hooks("get_webhook", sender["id"], made["id"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"events": ["referral.sent"]}, "url"),
        ({"url": "https://example.org/x"}, "events"),
        ({"url": "https://example.org/x", "events": []}, "events"),
        ({"url": "https://example.org/x", "events": ["referral.lost"]}, "events.0"),
        ({"url": "ftp://example.org/x", "events": ["referral.sent"]}, "url"),
        ({"url": "https://user:pw@example.org/x", "events": ["referral.sent"]}, "url"),
    ],
)
def test_a_webhook_that_is_not_valid_is_refused_naming_the_field(hooks, pair, body, field):
    with pytest.raises(InvalidInput) as refused:
        hooks("create_webhook", pair[0]["id"], body)
    assert field in refused.value.errors
    assert hooks("list_webhooks", pair[0]["id"], {})["total"] == 0


@pytest.fixture
def dns(monkeypatch):
    """The answers DNS gives (the outside world's, so a stand-in): name -> addresses."""
    answers = {
        "partner.example.org": ["93.184.215.14"],
        "inward.example.org": ["10.1.2.3"],
        "mixed.example.org": ["93.184.215.14", "169.254.169.254"],
    }

    real = endpoints.resolve

    def resolve(host, port):
        return answers[host] if host in answers else real(host, port)

    monkeypatch.setattr(endpoints, "resolve", resolve)
    return answers


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.0.0.7/hooks",
        "https://192.168.1.20:8443/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://[::ffff:10.0.0.1]/hooks",
        "https://inward.example.org/hooks",
        "https://mixed.example.org/hooks",
        "https://0.0.0.0/hooks",
        "https://2130706433/hooks",
        "https://0x7f.1/hooks",
        "https://[::7f00:1]/hooks",
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "https://[2002:a00:1::]/hooks",
        "http://partner.example.org/hooks",
    ],
)
def test_without_allow_private_only_https_to_public_addresses_is_accepted(
    start_notifications, pair, dns, url
):
    hooks = start_notifications(WEBHOOK_ALLOW_PRIVATE="0")[1]
    with pytest.raises(InvalidInput) as refused:
        register(hooks, pair[0], url)
    assert list(refused.value.errors) == ["url"]
    assert register(hooks, pair[0], "https://partner.example.org/hooks")["active"] is True


def test_a_delivery_whose_name_turns_to_a_private_address_is_refused_and_failed(
    start_notifications, pair, publish, dns, deliveries
):
    hooks = start_notifications(**dict(FAST, WEBHOOK_ALLOW_PRIVATE="0"))[1]
    sender, receiving = pair
    made = register(hooks, receiving, "https://partner.example.org/hooks")
    dns["partner.example.org"] = ["10.9.8.7"]  # after registration, the name points inward
    publish(events.REFERRAL_SENT, sender, receiving)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery to be settled")
    assert row.status == "failed" and row.attempts == 1 and row.last_response_status is None
    assert row.last_error.startswith("refused") and "does not resolve to a public address" in row.last_error
    assert "10.9.8.7" not in row.last_error  # an agency learns nothing of the network's own addresses


# --- delivery -----------------------------------------------------------------


def test_a_delivery_is_signed_and_says_no_more_than_the_contract(hooks, pair, publish, receiver, deliveries):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    event = publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts, row.last_response_status) == ("delivered", 1, 200)
    [(webhook_id, payload)] = receiver.verified(made["secret"])
    assert webhook_id == event["event_id"]
    assert payload == {
        "type": "referral.sent",
        "timestamp": "2026-11-23T10:00:00+00:00",
        "data": {
            "referral_id": event["referral_id"],
            "reference": "REF-2026-000123",
            "status": "sent",
            "service_type": "housing",
            "sending_agency_id": sender["id"],
            "receiving_agency_id": receiving["id"],
            "version": 1,
        },
    }
    [request] = receiver.requests
    assert request.headers["Content-Type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    listed = hooks("list_webhook_deliveries", receiving["id"], made["id"], {"status": "delivered"})
    assert [(item["event_id"], item["event"], item["attempts"]) for item in listed["items"]] == [
        (event["event_id"], "referral.sent", 1)
    ]
    assert hooks("list_webhook_deliveries", receiving["id"], made["id"], {"status": "failed"})["total"] == 0


def test_an_agency_hears_only_its_referrals_and_the_events_it_chose(
    hooks, pair, agencies, publish, deliveries, handled
):
    sender, receiving = pair
    outsider = agencies("create_agency", data.agency(name="Outsider NGO"))
    with Receiver() as at_sender, Receiver() as at_receiver, Receiver() as at_outsider:
        to_sender = register(hooks, sender, at_sender.url, ("referral.accepted",))
        to_receiver = register(hooks, receiving, at_receiver.url, ("referral.sent", "referral.accepted"))
        to_outsider = register(
            hooks, outsider, at_outsider.url, ("referral.sent", "referral.accepted", "referral.declined")
        )
        referral_id = str(uuid.uuid4())
        sent = publish(events.REFERRAL_SENT, sender, receiving, referral_id=referral_id, version=1)
        accepted = publish(
            events.REFERRAL_ACCEPTED, sender, receiving, referral_id=referral_id, status="accepted", version=2
        )
        wait_for(lambda: settled(deliveries(to_receiver["id"]), 2), what="the receiver's deliveries")
        wait_for(lambda: settled(deliveries(to_sender["id"]), 1), what="the sender's delivery")
        assert handled(sent["event_id"]) and handled(accepted["event_id"])  # so all they owe is recorded
        assert deliveries(to_outsider["id"]) == [] and len(deliveries(to_sender["id"])) == 1
        assert [wid for wid, _ in at_sender.verified(to_sender["secret"])] == [accepted["event_id"]]
        assert sorted(wid for wid, _ in at_receiver.verified(to_receiver["secret"])) == sorted(
            [sent["event_id"], accepted["event_id"]]
        )
        assert at_outsider.requests == []


def test_5xx_is_retried_under_the_same_webhook_id_until_delivered(
    hooks, pair, publish, receiver, deliveries, caplog
):
    caplog.set_level(logging.DEBUG, logger=webhook_delivery.__name__)
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    receiver.answer(503, 503)
    event = publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts, row.last_response_status) == ("delivered", 3, 200)
    assert [request.status for request in receiver.requests] == [503, 503, 200]
    assert {request.headers["webhook-id"] for request in receiver.requests} == {event["event_id"]}
    assert len({request.body for request in receiver.requests}) == 1  # the same bytes every time
    [listed] = hooks("list_webhook_deliveries", receiving["id"], made["id"], {})["items"]
    assert (listed["status"], listed["attempts"], listed["last_response_status"]) == ("delivered", 3, 200)
    # each try's line: a retry at INFO, the delivery at DEBUG (as an e-mail sent)
    said = [
        (record.levelname, record.args[2])
        for record in caplog.records
        if record.name == webhook_delivery.__name__ and record.msg.startswith("webhook delivery")
    ]
    assert said == [("INFO", "pending"), ("INFO", "pending"), ("DEBUG", "delivered")]


def test_an_endpoint_that_hangs_past_the_timeout_is_tried_again(hooks, pair, publish, receiver, deliveries):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    receiver.answer(("hang", 2.5))  # the timeout is 1 s
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 2  # the hung one was answered, but too late to count


def test_429_waits_as_long_as_retry_after_says(hooks, pair, publish, receiver, deliveries):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    receiver.answer((429, {"Retry-After": "2"}))
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts) == ("delivered", 2)
    first, second = receiver.requests
    assert second.at - first.at >= 1.9  # not the 0.2 s backoff


def test_410_fails_the_delivery_and_turns_the_webhook_off(
    hooks, pair, publish, receiver, deliveries, handled
):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    receiver.answer(410)
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts, row.last_response_status) == ("failed", 1, 410)
    assert hooks("get_webhook", receiving["id"], made["id"])["active"] is False
    later = publish(events.REFERRAL_SENT, sender, receiving, version=1)
    wait_for(lambda: handled(later["event_id"]), what="the later event to be handled")
    assert (
        len(deliveries(made["id"])) == 1 and len(receiver.requests) == 1
    )  # an inactive webhook is owed nothing


def test_any_other_4xx_fails_at_once_and_leaves_the_webhook_on(hooks, pair, publish, receiver, deliveries):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    receiver.answer(400)
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts, row.last_response_status) == ("failed", 1, 400)
    assert hooks("get_webhook", receiving["id"], made["id"])["active"] is True


def test_retries_end_in_failed_once_the_retry_window_is_over(
    start_notifications, pair, publish, receiver, deliveries
):
    hooks = start_notifications(**dict(FAST, WEBHOOK_RETRY_HOURS=str(1.5 / 3600)))[1]  # 1.5 s
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    receiver.status = 503
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery to give up")
    assert row.status == "failed" and row.attempts >= 2 and row.last_response_status == 503
    assert row.last_error.startswith("HTTP 503")


def test_a_redirect_is_not_followed(hooks, pair, publish, receiver, deliveries):
    sender, receiving = pair
    with Receiver() as elsewhere:
        made = register(hooks, receiving, receiver.url)
        receiver.answer((307, {"Location": elsewhere.url}))
        publish(events.REFERRAL_SENT, sender, receiving, version=1)
        [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
        assert (row.status, row.last_response_status) == ("failed", 307) and "redirect" in row.last_error
        assert elsewhere.requests == []


def test_during_a_rotation_both_secrets_sign(hooks, pair, publish, receiver, deliveries):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    rotated = hooks("rotate_webhook_secret", receiving["id"], made["id"])
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert len(receiver.verified(made["secret"])) == len(receiver.verified(rotated["secret"])) == 1
    assert len(receiver.requests[0].headers["webhook-signature"].split(" ")) == 2


def test_the_test_call_delivers_a_ping(hooks, pair, receiver, deliveries):
    made = register(hooks, pair[0], receiver.url)
    sent = hooks("test_webhook", pair[0]["id"], made["id"])
    wait_for(lambda: settled(deliveries(made["id"])), what="the ping")
    [(webhook_id, payload)] = receiver.verified(made["secret"])
    assert webhook_id == sent["event_id"]
    assert payload["type"] == "ping" and payload["data"] == {"webhook_id": made["id"]}


def test_three_days_of_failures_turn_a_webhook_off_and_tell_the_agency(
    start_notifications, pair, publish, receiver, deliveries, engines, smtp_sink
):
    hooks = start_notifications(**dict(FAST, WEBHOOK_RETRY_HOURS=str(1 / 3600)))[1]  # a delivery's tries: 1 s
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    with engines["NOTIFICATIONS_DATABASE_URL"].begin() as conn:  # failing since before the limit
        conn.execute(
            text("UPDATE webhooks SET failing_since = now() - interval '73 hours' WHERE id = :id"),
            {"id": made["id"]},
        )
    receiver.status = 503
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery to fail")
    assert row.status == "failed" and row.last_response_status == 503
    assert hooks("get_webhook", receiving["id"], made["id"])["active"] is False
    [contact] = receiving["contacts"]
    [mail] = wait_for(
        lambda: [mail for mail in smtp_sink.to(contact["email"]) if receiver.url in readable(mail)],
        what="the e-mail to the agency",
    )
    assert "turned off" in mail["Subject"] or "söndürüldü" in mail["Subject"]


def test_a_transient_failure_of_a_quiet_webhook_that_failed_long_ago_does_not_turn_it_off(
    hooks, pair, publish, receiver, deliveries, engines
):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    with engines["NOTIFICATIONS_DATABASE_URL"].begin() as conn:
        conn.execute(
            text("UPDATE webhooks SET failing_since = now() - interval '73 hours' WHERE id = :id"),
            {"id": made["id"]},
        )
    receiver.answer(503)  # then 200
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts) == ("delivered", 2)
    assert hooks("get_webhook", receiving["id"], made["id"])["active"] is True


def test_a_webhook_turned_off_is_told_of_even_across_a_restart(start_notifications, pair, engines, smtp_sink):
    """The notice is owed in the database (owes_notice), not in memory: a
    service that stopped before telling tells once it starts again."""
    receiving = pair[1]
    with engines["NOTIFICATIONS_DATABASE_URL"].begin() as conn:
        conn.execute(
            text("""
            INSERT INTO webhooks (id, agency_id, url, events, description, secret, active, owes_notice)
            VALUES (gen_random_uuid(), :agency, 'https://cases.example.org/gone', ARRAY['referral.sent'], '',
                    :secret, false, true)"""),
            {"agency": receiving["id"], "secret": WEBHOOK_SEALER.seal_text("x")},
        )
    start_notifications(**FAST)
    [contact] = receiving["contacts"]
    wait_for(
        lambda: [m for m in smtp_sink.to(contact["email"]) if "cases.example.org/gone" in readable(m)],
        what="the notice",
    )
    with engines["NOTIFICATIONS_DATABASE_URL"].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM webhooks WHERE owes_notice")).scalar() == 0
    time.sleep(0.5)
    assert len([m for m in smtp_sink.to(contact["email"]) if "cases.example.org/gone" in readable(m)]) == 1


def test_a_success_ends_a_run_of_failures(hooks, pair, publish, receiver, deliveries, engines):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    with engines["NOTIFICATIONS_DATABASE_URL"].begin() as conn:
        conn.execute(
            text("UPDATE webhooks SET failing_since = now() - interval '71 hours' WHERE id = :id"),
            {"id": made["id"]},
        )
    receiver.answer(503)
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    with engines["NOTIFICATIONS_DATABASE_URL"].begin() as conn:
        assert (
            conn.execute(
                text("SELECT failing_since FROM webhooks WHERE id = :id"), {"id": made["id"]}
            ).scalar()
            is None
        )


# --- one endpoint holds up no one else ----------------------------------------


def test_an_endpoint_that_hangs_delays_neither_other_agencies_nor_the_emails(
    start_notifications, agencies, publish, deliveries, smtp_sink
):
    hooks = start_notifications(**dict(FAST, WEBHOOK_TIMEOUT_SECONDS="8"))[1]
    sender = agencies("create_agency", data.agency(name="State Migration Service"))
    slow_agency = agencies("create_agency", data.agency(name="Slow NGO"))
    quick_agency = agencies("create_agency", data.agency(name="Quick NGO"))
    with Receiver(status=("hang", 6)) as slow, Receiver() as quick:
        register(hooks, slow_agency, slow.url)
        to_quick = register(hooks, quick_agency, quick.url)
        for _ in range(10):
            publish(events.REFERRAL_SENT, sender, slow_agency, version=1)
        wait_for(lambda: len(slow.requests) >= 2, what="the slow endpoint to be hanging")
        started = time.monotonic()
        for _ in range(10):
            publish(events.REFERRAL_SENT, sender, quick_agency, version=1)
        wait_for(lambda: settled(deliveries(to_quick["id"]), 10), what="the quick endpoint's deliveries")
        [quick_contact] = quick_agency["contacts"]
        wait_for(lambda: len(smtp_sink.to(quick_contact["email"])) == 10, what="the quick agency's e-mails")
        took = time.monotonic() - started
        assert took < 4, f"{took:.1f} s: held up by the hanging endpoint"
        # two at a time to one endpoint, no more: never three requests within one hang
        arrivals = [request.at for request in slow.requests]
        assert max(sum(1 for other in arrivals if at - 5.9 < other <= at) for at in arrivals) == 2


def test_no_more_is_claimed_than_the_pool_has_room_for(service_config, databases, engines, receiver):
    """Thousands pending for hanging endpoints: the deliverer holds at most
    its pool's size, the rest wait in the database."""
    settings = webhook_delivery.Settings.from_settings(
        dict(service_config, **dict(FAST, WEBHOOK_CONCURRENCY="6", WEBHOOK_TIMEOUT_SECONDS="5"))
    )
    receiver.status = ("hang", 3)
    engine = engines["NOTIFICATIONS_DATABASE_URL"]
    with engine.begin() as conn:
        webhook_ids = (
            conn.execute(
                text("""
            INSERT INTO webhooks (id, agency_id, url, events, description, secret, active)
            SELECT gen_random_uuid(), gen_random_uuid(), :url, ARRAY['referral.sent'], '', :secret, true
            FROM generate_series(1, 10) RETURNING id"""),
                {"url": receiver.url, "secret": WEBHOOK_SEALER.seal_text("whsec_" + "A" * 43)},
            )
            .scalars()
            .all()
        )
        conn.execute(
            text("""
            INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, body, status, attempts)
            SELECT gen_random_uuid(), webhook_id, gen_random_uuid(), 'referral.sent', '{}', 'pending', 0
            FROM unnest(CAST(:ids AS uuid[])) AS webhook_id, generate_series(1, 300)"""),
            {"ids": webhook_ids},
        )
    deliverer = webhook_delivery.Deliverer(Sessions(engine), settings, WEBHOOK_SEALER)
    try:
        assert deliverer.sweep() == 6
        assert deliverer.sweep() == 0  # no room
        assert deliverer.pool.running() == 6 and sum(deliverer.in_flight.values()) == 6
        assert max(deliverer.in_flight.values()) <= 2
        with engine.begin() as conn:
            assert (
                conn.execute(text("SELECT count(*) FROM webhook_deliveries WHERE attempts > 0")).scalar() == 6
            )
    finally:
        deliverer.stop(grace=5)


def test_a_notice_owed_while_a_sweep_looks_is_told_at_the_next_sweep(
    service_config, databases, engines, receiver
):
    """A sweep that looks for notices owed while a delivery is turning its
    webhook off (its transaction not yet committed) finds none; the notice
    is still told at the next sweep, not left until a restart."""
    settings = webhook_delivery.Settings.from_settings(
        dict(service_config, **dict(FAST, WEBHOOK_RETRY_HOURS="0"))
    )
    receiver.status = 503
    engine = engines["NOTIFICATIONS_DATABASE_URL"]
    with engine.begin() as conn:
        [webhook_id] = (
            conn.execute(
                text("""
            INSERT INTO webhooks (id, agency_id, url, events, description, secret, active, failing_since)
            VALUES (gen_random_uuid(), gen_random_uuid(), :url, ARRAY['referral.sent'], '', :secret, true,
                    now() - interval '73 hours') RETURNING id"""),
                {"url": receiver.url, "secret": WEBHOOK_SEALER.seal_text("whsec_" + "A" * 43)},
            )
            .scalars()
            .all()
        )
        conn.execute(
            text("""
            INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, body, status, attempts)
            VALUES (gen_random_uuid(), :id, gen_random_uuid(), 'referral.sent', '{}', 'pending', 0)"""),
            {"id": webhook_id},
        )
    deliverer = webhook_delivery.Deliverer(Sessions(engine), settings, WEBHOOK_SEALER)
    told, looked = [], []

    def sweep_meanwhile(session):  # the timer's sweep, just before the delivery's outcome commits
        if not looked and session.query(webhooks.Webhook).filter_by(id=webhook_id, active=False).count():
            looked.append(True)
            deliverer.tell_turned_off(lambda _, agency_id, url: told.append(url))

    event.listen(Session, "before_commit", sweep_meanwhile)
    try:
        deliverer.tell_turned_off(
            lambda _, agency_id, url: told.append(url)
        )  # the first, at start: none owed
        assert deliverer.sweep() == 1
        deliverer.stop(grace=5)
    finally:
        event.remove(Session, "before_commit", sweep_meanwhile)
    assert looked and told == []  # the sweep meanwhile saw nothing owed yet
    deliverer.tell_turned_off(lambda _, agency_id, url: told.append(url))
    assert told == [receiver.url]


# --- a restart ----------------------------------------------------------------


def serve_notifications(service_config, log):
    """The notifications service in a process of its own, as `make run` starts it."""
    settings = {key: str(value) for key, value in dict(service_config, **FAST).items() if key.isupper()}
    env = dict(os.environ, PYTHONUNBUFFERED="1", **settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.commands.serve", "notifications"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for(lambda: answers(service_config), timeout=30, what="the notifications service to answer")
    return process


def answers(service_config):
    try:
        with ServiceRpcProxy("notifications", service_config, timeout=1) as notifications:
            return notifications.ping() == "pong"
    except Exception:
        return False


def test_deliveries_pending_when_the_service_is_killed_all_arrive_after_its_restart(
    service_config, engines, pair, publish, receiver, deliveries, tmp_path
):
    sender, receiving = pair
    with open(tmp_path / "notifications.log", "wb") as log:
        process = serve_notifications(service_config, log)
        try:
            with Session(engines["NOTIFICATIONS_DATABASE_URL"]) as session:
                made = webhook_delivery.webhooks.create(
                    session,
                    WEBHOOK_SEALER,
                    receiving["id"],
                    {"url": receiver.url, "events": ["referral.sent"]},
                    allow_private=True,
                )
                session.commit()
            receiver.status = 503  # the partner is down: everything stays pending
            sent = [
                publish(events.REFERRAL_SENT, sender, receiving, version=1)["event_id"] for _ in range(20)
            ]
            wait_for(
                lambda: (
                    len(deliveries(made["id"])) == 20
                    and len({r.headers["webhook-id"] for r in receiver.requests}) == 20
                ),
                timeout=60,
                what="every delivery to be tried once",
            )
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            assert all(row.status == "pending" for row in deliveries(made["id"]))
            receiver.status = 200  # the partner is back while the service is away
            process = serve_notifications(service_config, log)
            rows = wait_for(
                lambda: settled(deliveries(made["id"]), 20),
                timeout=60,
                what="every delivery after the restart",
            )
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert {row.status for row in rows} == {"delivered"}
    assert sorted({webhook_id for webhook_id, _ in receiver.verified(made["secret"])}) == sorted(sent)


def test_the_service_does_not_start_without_keys_for_the_secrets(container_factory, service_config):
    with pytest.raises(Exception, match="WEBHOOK_SECRET_KEYS is not set"):
        container_factory(NotificationsService, dict(service_config, WEBHOOK_SECRET_KEYS="")).start()


def test_an_erasure_is_heard_as_referral_erased(hooks, pair, publish, receiver, deliveries):
    sender, receiving = pair
    made = register(hooks, sender, receiver.url, ("referral.erased",))
    event = publish(events.REFERRAL_ERASED, sender, receiving, status="accepted", version=3)
    wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    [(webhook_id, payload)] = receiver.verified(made["secret"])
    assert webhook_id == event["event_id"] and payload["type"] == "referral.erased"
    assert payload["data"]["version"] == 3 and payload["data"]["status"] == "accepted"


def test_a_retry_after_past_the_retry_window_fails_the_delivery_at_once(
    hooks, pair, publish, receiver, deliveries
):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    receiver.answer((429, {"Retry-After": "300000000000"}))
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts, row.last_response_status) == ("failed", 1, 429)


def test_a_2xx_whose_body_is_slow_to_follow_is_delivered(hooks, pair, publish, receiver, deliveries):
    sender, receiving = pair
    made = register(hooks, receiving, receiver.url)
    receiver.answer(("slow body", 3))  # the timeout is 1 s
    publish(events.REFERRAL_SENT, sender, receiving, version=1)
    [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery")
    assert (row.status, row.attempts, row.last_response_status) == ("delivered", 1, 200)


def test_failing_webhooks_hold_at_most_half_the_pool(service_config, engines, receiver):
    """However many endpoints hang, healthy webhooks find room."""
    settings = webhook_delivery.Settings.from_settings(
        dict(service_config, **dict(FAST, WEBHOOK_CONCURRENCY="6", WEBHOOK_TIMEOUT_SECONDS="5"))
    )
    receiver.status = ("hang", 3)
    engine = engines["NOTIFICATIONS_DATABASE_URL"]
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO webhooks (id, agency_id, url, events, description, secret, active, failing_since)
            SELECT gen_random_uuid(), gen_random_uuid(), :url, ARRAY['referral.sent'], '', :secret, true,
                CASE WHEN n <= 10 THEN now() - interval '1 hour' END
            FROM generate_series(1, 11) AS n"""),
            {"url": receiver.url, "secret": WEBHOOK_SEALER.seal_text("whsec_" + "A" * 43)},
        )
        conn.execute(
            text("""
            INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, body, status, attempts)
            SELECT gen_random_uuid(), id, gen_random_uuid(), 'referral.sent', '{}', 'pending', 0
            FROM webhooks, generate_series(1, 5)""")
        )
    deliverer = webhook_delivery.Deliverer(Sessions(engine), settings, WEBHOOK_SEALER)
    try:
        assert deliverer.sweep() == 2 + 3  # the healthy one's two, then failing ones up to half of 6
        assert deliverer.failing_in_flight == 3 and deliverer.sweep() == 0
    finally:
        deliverer.stop(grace=5)


def test_a_refused_connection_is_tried_again_until_the_endpoint_listens(hooks, pair, publish, deliveries):
    sender, receiving = pair
    port = free_port()  # nothing listens there yet
    made = register(hooks, receiving, f"http://127.0.0.1:{port}/hooks")
    event = publish(events.REFERRAL_SENT, sender, receiving, version=1)
    wait_for(lambda: [row for row in deliveries(made["id"]) if row.attempts >= 2], what="two refused tries")
    [row] = deliveries(made["id"])
    assert row.status == "pending" and "refused" in row.last_error.lower()
    with Receiver(port=port) as receiver:
        [row] = wait_for(lambda: settled(deliveries(made["id"])), what="the delivery once it listens")
        assert row.status == "delivered" and row.attempts >= 3
        assert [webhook_id for webhook_id, _ in receiver.verified(made["secret"])] == [event["event_id"]]
