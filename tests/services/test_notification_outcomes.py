"""How sends are recorded: the outcomes of sends that finish together are
written in one statement (services.notifications.together), each only
where its claim still holds. Real PostgreSQL and a real SMTP server (aiosmtpd)."""

import uuid

import eventlet
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.notifications import dispatch
from services.notifications.models import Notification
from services.notifications.transports import Mailer, sms_backend
from shared.storage.models import utcnow
from tests.services.conftest import statements_run


def claimed(sessions, policy, count):
    """`count` e-mails recorded and claimed as the event handler claims them."""
    rows = []
    with sessions.begin() as session:
        for number in range(count):
            row = Notification(
                id=uuid.uuid4(),
                event_id=uuid.uuid4(),
                event="referral_sent",
                referral_id=uuid.uuid4(),
                agency_id=uuid.uuid4(),
                channel="email",
                recipient=f"coordinator{number}@example.org",
                language="en",
                subject=f"Referral REF-2026-{number}",
                text_body="text",
                html_body="<p>html</p>",
                status="pending",
                created_at=utcnow(),
            )
            dispatch._take_lease(row, policy)
            session.add(row)
            rows.append(row)
    return rows


def test_outcomes_that_finish_together_are_written_in_one_statement(
    service_config, notification_sessions, smtp_sink, engines
):
    sessions = notification_sessions
    policy = dispatch.RetryPolicy.from_settings(service_config)
    mailer, sms = Mailer(service_config), sms_backend(service_config)
    rows = claimed(sessions, policy, 24)
    # as 24 events' handlers do, each sending its own message at about the same time
    with statements_run(sessions, "UPDATE notifications AS n") as written:
        list(
            eventlet.GreenPool(24).imap(
                lambda row: dispatch.send_claimed(sessions, [row], mailer, sms, policy), rows
            )
        )
    settles = [len(parameters["ids"]) for _, parameters in written]
    mailer.close()
    with Session(engines["NOTIFICATIONS_DATABASE_URL"]) as session:
        stored = session.scalars(select(Notification)).all()
    assert sorted(row.status for row in stored) == ["sent"] * 24
    assert all(row.sent_at and row.last_error is None and row.attempts == 1 for row in stored)
    assert len(smtp_sink.messages) == 24
    assert sum(settles) == 24 and len(settles) < 24 / 4, settles  # batched, each outcome once


def test_an_outcome_whose_claim_was_taken_over_is_not_written(
    service_config, notification_sessions, smtp_sink, engines, caplog
):
    sessions = notification_sessions
    policy = dispatch.RetryPolicy.from_settings(service_config)
    mailer, sms = Mailer(service_config), sms_backend(service_config)
    kept, lost = claimed(sessions, policy, 2)
    # the lease of `lost` ended and another replica claimed it again (its attempt counted)
    with sessions.begin() as session:
        session.execute(update(Notification).where(Notification.id == lost.id).values(attempts=2))
    dispatch.send_claimed(sessions, [kept, lost], mailer, sms, policy)
    mailer.close()
    with Session(engines["NOTIFICATIONS_DATABASE_URL"]) as session:
        stored = {row.id: row for row in session.scalars(select(Notification))}
    assert stored[kept.id].status == "sent"
    assert (
        stored[lost.id].status == "pending" and stored[lost.id].attempts == 2
    )  # the other replica's to record
    assert f"notification {lost.id}: lease lost" in caplog.text


def test_a_refused_message_is_scheduled_again_and_a_last_try_fails(
    service_config, notification_sessions, smtp_sink, engines
):
    sessions = notification_sessions
    policy = dispatch.RetryPolicy.from_settings(service_config)  # 3 attempts at most (service_config)
    mailer, sms = Mailer(service_config), sms_backend(service_config)
    again, last = claimed(sessions, policy, 2)
    last.attempts = policy.max_attempts
    with sessions.begin() as session:
        session.execute(update(Notification).where(Notification.id == last.id).values(attempts=last.attempts))
    smtp_sink.fail_with = "451 4.3.0 try again later"
    before = utcnow()
    dispatch.send_claimed(sessions, [again, last], mailer, sms, policy)
    mailer.close()
    with Session(engines["NOTIFICATIONS_DATABASE_URL"]) as session:
        stored = {row.id: row for row in session.scalars(select(Notification))}
    assert stored[again.id].status == "pending" and "451" in stored[again.id].last_error
    assert before < stored[again.id].next_attempt_at < again.next_attempt_at  # its backoff, not the lease
    assert stored[again.id].sent_at is None
    assert stored[last.id].status == "failed" and "451" in stored[last.id].last_error
    assert stored[last.id].sent_at is None
