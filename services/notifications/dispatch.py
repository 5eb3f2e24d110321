"""Which events reach whom, the rows that record each message, and their
delivery with retries whose schedule lives in the database."""
import datetime
import logging
import random

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.notifications.models import HandledEvent, Notification
from services.notifications.transports import DeliveryError
from shared import events
from shared.models import utcnow
from shared.notification_schemas import Notification as NotificationSchema
from shared.notification_schemas import NotificationQuery
from shared.paging import page_of
from shared.validation import load

log = logging.getLogger(__name__)
notification_schema = NotificationSchema()

# Who hears of each event (../shared/API.md, "Notifications").
AUDIENCE = {
    events.REFERRAL_SENT: ("receiver",),
    events.REFERRAL_ACCEPTED: ("sender",),
    events.REFERRAL_DECLINED: ("sender",),
    events.REFERRAL_COMPLETED: ("sender",),
    events.REFERRAL_CANCELLED: ("receiver",),
    events.REFERRAL_OVERDUE: ("sender", "receiver"),
}
OTHER_PARTY = {"sender": "receiver", "receiver": "sender"}


def plan(event, agencies, messages):
    """The messages `event` owes: one per contact of each agency in its
    audience and per channel the contact chose, in the contact's language.
    `agencies` maps "sender"/"receiver" to the directory's records."""
    rows = []
    for role in AUDIENCE.get(event["event_type"], ()):
        agency, other = agencies[role], agencies[OTHER_PARTY[role]]
        for contact in agency["contacts"]:
            language = contact["language"]
            context = messages.context(
                language,
                event["service_type"],
                reference=event["reference"],
                other_agency=other["name"],
                agency=agency["name"],
                role=role,
            )
            for channel in contact["channels"]:
                row = Notification(
                    event_id=event["event_id"],
                    event=event["event_type"],
                    referral_id=event["referral_id"],
                    agency_id=agency["id"],
                    channel=channel,
                    language=language,
                )
                if channel == "email":
                    row.recipient = contact["email"]
                    row.subject, row.text_body, row.html_body = messages.email(
                        event["event_type"], language, context
                    )
                else:
                    row.recipient = contact["phone"]
                    row.text_body = messages.sms(event["event_type"], language, context)
                rows.append(row)
    return rows


def record(session, event, rows):
    """Record `rows` for `event` unless the event was handled before; True
    when it is new. A redelivered event thus sends nothing twice."""
    first_time = session.execute(
        insert(HandledEvent)
        .values(event_id=event["event_id"], event_type=event["event_type"])
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(HandledEvent.event_id)
    ).first()
    if first_time is None:
        return False
    session.add_all(rows)
    return True


def backoff(attempts, base_seconds):
    """Exponential backoff with jitter: about base, 2*base, 4*base, ..."""
    return datetime.timedelta(seconds=base_seconds * 2 ** (attempts - 1) * random.uniform(0.8, 1.2))


def deliver_due(session, mailer, sms, max_attempts, backoff_seconds, limit=20):
    """Send the pending messages whose time has come; returns how many were
    tried. Rows are claimed with SKIP LOCKED so replicas share the work."""
    now = utcnow()
    due = session.scalars(
        select(Notification)
        .where(Notification.status == "pending", Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in due:
        row.attempts += 1
        try:
            if row.channel == "email":
                mailer.send(row.recipient, row.subject, row.text_body, row.html_body)
            else:
                sms.send(row.recipient, row.text_body)
        except DeliveryError as error:
            row.last_error = str(error)[:1000]
            if row.attempts >= max_attempts:
                row.status = "failed"
                log.error("notification %s failed after %d attempts: %s", row.id, row.attempts, error)
            else:
                row.next_attempt_at = utcnow() + backoff(row.attempts, backoff_seconds)
                log.warning("notification %s attempt %d failed: %s", row.id, row.attempts, error)
        else:
            row.status, row.sent_at, row.last_error = "sent", utcnow(), None
    return len(due)


def listing(session, agency_id, filters):
    filters = load(NotificationQuery(), filters, "The list query is not valid.")
    query = select(Notification).where(Notification.agency_id == agency_id)
    if "referral_id" in filters:
        query = query.where(Notification.referral_id == filters["referral_id"])
    if "status" in filters:
        query = query.where(Notification.status == filters["status"])
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    return page_of(query, session, filters["page"], filters["per_page"], notification_schema.dump)
