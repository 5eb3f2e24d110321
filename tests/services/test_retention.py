"""What outlives its time goes by itself: referrals erased RETENTION_DAYS
after their final status (replicas sharing the work), notification
recipients masked, spent sign-in links and sessions and old
Idempotency-Keys deleted. Time passes by moving dates back in the database."""

import uuid

import eventlet
import pytest
from sqlalchemy import text

from services.agencies.service import AgenciesService
from services.notifications.retention import mask
from services.notifications.service import NotificationsService
from services.referrals.service import ReferralsService
from tests.services.conftest import caller_of
from tests.support import data
from tests.support.sinks import wait_for

QUICK = {"RETENTION_SWEEP_SECONDS": "0.05"}


def start(container_factory, service_class, config, replicas=1):
    made = [container_factory(service_class, config) for _ in range(replicas)]
    for container in made:
        container.start()
    return [caller_of(container) for container in made]


def run(engine, sql, **values):
    with engine.begin() as conn:
        return conn.execute(text(sql), values)


def scalar(engine, sql, **values):
    with engine.connect() as conn:
        return conn.execute(text(sql), values).scalar()


def test_a_move_to_a_final_status_starts_the_retention(referrals, pair, engines):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    closed_at = "SELECT closed_at FROM referrals WHERE id = :id"
    db = engines["REFERRALS_DATABASE_URL"]
    referrals("move_referral", receiver, made["id"], "accept", {})
    assert scalar(db, closed_at, id=made["id"]) is None
    referrals("move_referral", sender, made["id"], "cancel", {"reason": "Moved abroad"})
    gap = scalar(
        db,
        "SELECT abs(extract(epoch FROM closed_at - updated_at)) FROM referrals WHERE id = :id",
        id=made["id"],
    )
    assert gap is not None and gap < 1  # closed when it was cancelled


def test_referrals_are_erased_once_their_retention_is_over(
    container_factory, service_config, agencies, pair, engines
):
    config = dict(service_config, RETENTION_DAYS="365")
    referrals = start(container_factory, ReferralsService, config)[
        0
    ]  # timer at its default: fired once at start
    sender, receiver, _ = pair
    db = engines["REFERRALS_DATABASE_URL"]
    finals = {"completed": ["accept", "start", "complete"], "declined": ["decline"], "cancelled": ["cancel"]}
    bodies = {"complete": {"outcome": "Housed"}, "decline": {"reason": "Full"}, "cancel": {"reason": "Moved"}}
    due, kept = [], []
    for _status, moves in finals.items():
        for age_days, into in ((366, due), (364, kept)):
            made = referrals("create_referral", sender, data.referral(receiver))
            for move in moves:
                referrals(
                    "move_referral",
                    sender if move == "cancel" else receiver,
                    made["id"],
                    move,
                    bodies.get(move, {}),
                )
            run(
                db,
                "UPDATE referrals SET closed_at = now() - make_interval(days => :days) WHERE id = :id",
                days=age_days,
                id=made["id"],
            )
            into.append(made["id"])
    open_ = referrals("create_referral", sender, data.referral(receiver))  # never final: kept however old
    referrals("move_referral", receiver, open_["id"], "accept", {})
    run(db, "UPDATE referrals SET created_at = now() - interval '3 years' WHERE id = :id", id=open_["id"])
    kept.append(open_["id"])

    # Three replicas sweep at once: each referral is erased once.
    start(container_factory, ReferralsService, dict(config, **QUICK), replicas=3)
    wait_for(
        lambda: scalar(db, "SELECT count(*) FROM referrals WHERE erased_at IS NOT NULL") == len(due),
        what="the due referrals erased",
    )
    eventlet.sleep(0.5)  # every replica sweeps several more times
    for referral_id in due:
        shown = referrals("get_referral", sender, referral_id)
        assert shown["returnee"] is None and shown["reason"] is None and shown["outcome"] is None
        history = referrals("referral_history", sender, referral_id)["items"]
        assert [entry["event"] for entry in history].count("erased") == 1
        assert history[-1]["actor"] == {"type": "system", "id": None, "name": "retention timer"}
        assert history[-1]["agency_id"] is None
        log = referrals("referral_access_log", sender, referral_id, {})["items"]
        assert [(item["action"], item["agency_id"]) for item in log if item["action"] == "erase"] == [
            ("erase", None)
        ]
        assert (
            scalar(
                db,
                "SELECT count(*) FROM outbox WHERE event_type = 'referral_erased' "
                "AND payload->>'referral_id' = :id AND payload->>'acting_agency_id' IS NULL",
                id=referral_id,
            )
            == 1
        )
    for referral_id in kept:
        assert referrals("get_referral", sender, referral_id)["returnee"] is not None


def test_retention_days_is_a_setting(container_factory, service_config, pair, engines):
    referrals = start(
        container_factory, ReferralsService, dict(service_config, RETENTION_DAYS="30", **QUICK)
    )[0]
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    referrals("move_referral", receiver, made["id"], "decline", {"reason": "Full"})
    db = engines["REFERRALS_DATABASE_URL"]
    run(db, "UPDATE referrals SET closed_at = now() - interval '31 days' WHERE id = :id", id=made["id"])
    wait_for(lambda: referrals("get_referral", sender, made["id"])["erased_at"], what="erased after 30 days")


def test_idempotency_keys_go_after_24_hours(container_factory, service_config, pair, engines):
    referrals = start(container_factory, ReferralsService, service_config)[0]
    sender, receiver, _ = pair
    old = referrals("create_referral", sender, data.referral(receiver), "key-old")
    referrals("create_referral", sender, data.referral(receiver), "key-new")
    db = engines["REFERRALS_DATABASE_URL"]
    run(db, "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'key-old'")
    start(container_factory, ReferralsService, dict(service_config, **QUICK))
    wait_for(
        lambda: scalar(db, "SELECT count(*) FROM idempotency_keys WHERE key = 'key-old'") == 0,
        what="the old key deleted",
    )
    assert scalar(db, "SELECT count(*) FROM idempotency_keys WHERE key = 'key-new'") == 1
    assert referrals("get_referral", sender, old["id"])["id"] == old["id"]  # the referral stays


@pytest.mark.parametrize(
    "recipient, masked",
    [
        ("aysel.mammadova@example.org", "a***@example.org"),
        ("+994501234567", "+99450*****67"),
        ("a***@example.org", "a***@example.org"),
        ("+99450*****67", "+99450*****67"),
    ],
)
@pytest.mark.rules
def test_a_recipient_is_masked_enough_to_tell_not_to_reach(recipient, masked):
    assert mask(recipient) == masked


def test_notification_recipients_are_masked_after_their_retention(container_factory, service_config, engines):
    db = engines["NOTIFICATIONS_DATABASE_URL"]
    event_id, referral_id, agency_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rows = [
        ("old-a@example.org", "email", 91, "sent", None),
        ("old-b@example.org", "email", 91, "failed", "550 no mailbox <Old-B@Example.org> (old-b)"),
        ("+994501234567", "sms", 91, "sent", None),
        ("new@example.org", "email", 89, "sent", None),
        ("old-c@example.org", "email", 91, "pending", None),
    ]  # still being sent: left alone
    for recipient, channel, days, status, error in rows:
        run(
            db,
            "INSERT INTO notifications (id, event_id, event, referral_id, agency_id, channel, recipient, "
            "language, text_body, status, attempts, last_error, next_attempt_at, created_at) VALUES "
            "(gen_random_uuid(), :event_id, 'referral_sent', :referral_id, :agency_id, :channel, :recipient, "
            "'en', 'body', :status, 1, :error, now() + interval '1 day', "
            "now() - make_interval(days => :days))",
            event_id=event_id,
            referral_id=referral_id,
            agency_id=agency_id,
            channel=channel,
            recipient=recipient,
            status=status,
            error=error,
            days=days,
        )
    start(
        container_factory,
        NotificationsService,
        dict(service_config, NOTIFICATION_RETENTION_DAYS="90", **QUICK),
        replicas=2,
    )
    wait_for(
        lambda: scalar(db, "SELECT count(*) FROM notifications WHERE recipient_masked_at IS NOT NULL") == 3,
        what="three recipients masked",
    )
    with db.connect() as conn:
        recipients = sorted(conn.execute(text("SELECT recipient FROM notifications")).scalars())
    assert recipients == sorted(
        ["o***@example.org", "o***@example.org", "+99450*****67", "new@example.org", "old-c@example.org"]
    )
    assert (
        scalar(db, "SELECT last_error FROM notifications WHERE status = 'failed'")
        == "550 no mailbox <o***@example.org> (o***)"
    )  # as the server quoted it, in any case


def test_spent_sign_in_links_and_sessions_are_deleted(container_factory, service_config, agencies, engines):
    agency = agencies("create_agency", data.agency())
    contact_id = agency["contacts"][0]["id"]
    db = engines["AGENCIES_DATABASE_URL"]
    links = {"expired": "now() - interval '1 minute'", "live": "now() + interval '10 minutes'"}
    for name, expires in links.items():
        run(
            db,
            f"INSERT INTO sign_in_tokens (digest, agency_id, contact_id, expires_at) "
            f"VALUES (:digest, :agency, :contact, {expires})",
            digest=name,
            agency=agency["id"],
            contact=contact_id,
        )
    sessions = {
        "ended": ("now()", "now() + interval '1 hour'", "now()"),
        "idle": ("now() - interval '9 hours'", "now() + interval '1 hour'", None),
        "past its end": ("now()", "now() - interval '1 minute'", None),
        "live": ("now()", "now() + interval '1 hour'", None),
    }
    for name, (seen, expires, ended) in sessions.items():
        run(
            db,
            f"INSERT INTO coordinator_sessions (digest, agency_id, contact_id, last_seen_at, expires_at, "
            f"ended_at) VALUES (:digest, :agency, :contact, {seen}, {expires}, {ended or 'NULL'})",
            digest=name,
            agency=agency["id"],
            contact=contact_id,
        )
    start(container_factory, AgenciesService, dict(service_config, **QUICK))
    wait_for(
        lambda: (
            scalar(db, "SELECT count(*) FROM coordinator_sessions") == 1
            and scalar(db, "SELECT count(*) FROM sign_in_tokens") == 1
        ),
        what="spent links and sessions deleted",
    )
    assert scalar(db, "SELECT digest FROM coordinator_sessions") == "live"
    assert scalar(db, "SELECT digest FROM sign_in_tokens") == "live"
