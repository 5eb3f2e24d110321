"""Which events reach whom, the rows that record each message (and the
webhook deliveries an event owes), and the messages' delivery with retries
whose schedule lives in the database."""

import dataclasses
import datetime
import logging
import uuid

import eventlet
from sqlalchemy import DateTime, Integer, Interval, Text, Uuid, bindparam, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.notifications.metrics import NOTIFICATION_SENDS
from services.notifications.models import Notification
from services.notifications.together import together
from services.notifications.transports import DeliveryError, PermanentDeliveryError, send_timeout
from shared.contract import events
from shared.contract.notifications import Notification as NotificationSchema
from shared.contract.notifications import NotificationQuery
from shared.contract.validation import load
from shared.plumbing.backoff import pause
from shared.plumbing.messaging import patiently
from shared.storage.models import utcnow
from shared.storage.paging import page_of

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
    events.REFERRAL_ERASED: ("receiver",),
}
OTHER_PARTY = {"sender": "receiver", "receiver": "sender"}


def plan(event, agencies, messages):
    """The messages `event` owes: one per contact of each agency in its
    audience and per channel the contact chose, in the contact's language.
    `agencies` maps "sender"/"receiver" to the directory's records."""
    rows = []
    for role in AUDIENCE.get(event["event_type"], ()):
        agency, other = agencies[role], agencies[OTHER_PARTY[role]]
        # All a template is given: never anything about the returnee.
        context = {
            "referral_id": event["referral_id"],
            "reference": event["reference"],
            "service_type": event["service_type"],
            "other_agency": other["name"],
            "agency": agency["name"],
            "role": role,
        }
        rows += messages_to(agency, event, context, messages)
    return rows


def messages_to(agency, event, context, messages, channels=None):
    """The messages of `event` to each contact of `agency`, on each channel
    the contact chose (of `channels`, when given)."""
    rows = []
    for contact in agency["contacts"]:
        language = contact["language"]
        for channel in contact["channels"]:
            if channels is not None and channel not in channels:
                continue
            row = Notification(
                event_id=event["event_id"],
                event=event["event_type"],
                referral_id=event.get("referral_id"),
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


def record(session, event, rows, policy, hook=None):
    """Record `rows` for `event` unless the event was handled before; True
    when it is new. A redelivered event thus sends nothing twice. `hook`,
    (name, body, agency ids), owes a delivery of `body` to each active
    webhook of those agencies that listens to `name`.

    The rows are recorded as claimed by the caller, who sends them at once
    (`send_claimed`): their first attempt is counted and their lease taken,
    so the delivery sweep leaves them alone unless the caller dies first.
    One statement (`RECORD`), so that an autocommit session records an
    event in one round trip."""
    mine = object()
    return mine in _record_all(session, [(mine, event, rows, policy, hook)])


def record_together(sessions, event, rows, policy, hook=None):
    """`record` on a connection of its own, in one statement with the other
    events this process handles at the same moment (together)."""
    mine = object()
    return mine in together(sessions, _record_batch)([(mine, event, rows, policy, hook)])


def _record_batch(sessions, items):
    with sessions.connect() as connection:
        return _record_all(connection, items)


def _record_all(session, items):
    """Record each item's event and rows (`items`: (token, event, rows,
    policy, hook)); the tokens of those whose event was new. An event given
    twice (delivered again while the first was under way) is new at most once."""
    now, events_, messages, first = utcnow(), [], [], {}
    for token, event, rows, policy, hook in items:
        event_id = str(event["event_id"])
        if event_id in first:
            continue
        first[event_id] = token
        for row in rows:
            row.id, row.status, row.created_at = uuid.uuid4(), "pending", now
            _take_lease(row, policy)
            messages.append({column: _json_ready(getattr(row, column)) for column in RECORDED})
        hook_event, hook_body, parties = hook or (None, None, ())
        events_.append(
            {
                "event_id": event_id,
                "event_type": event["event_type"],
                "hook_event": hook_event,
                "hook_body": hook_body,
                "parties": [str(party) for party in parties],
            }
        )
    handled = session.execute(RECORD, {"now": now, "events": events_, "messages": messages}).scalars()
    return {first[str(event_id)] for event_id in handled}


def _json_ready(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value) if isinstance(value, uuid.UUID) else value


# What `record` writes of a message (the other columns start empty).
RECORDED = (
    "id",
    "event_id",
    "event",
    "referral_id",
    "agency_id",
    "channel",
    "recipient",
    "language",
    "subject",
    "text_body",
    "html_body",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)
_RECORDSET = ", ".join(  # the columns' SQL types, as the model declares them
    f"{column} {Notification.__table__.c[column].type.compile(dialect=postgresql.dialect())}"
    for column in RECORDED
)

# Each event's messages go in only if the event's row is new. Written as
# SQL: an INSERT .. ON CONFLICT built with SQLAlchemy 2.0 is compiled anew
# on every call (its postgresql Insert has no cache key), which cost this
# service more than the round trips the one statement saves.
RECORD = text(f"""
WITH given AS (
    SELECT * FROM jsonb_to_recordset(:events)
        AS event(event_id uuid, event_type text, hook_event text, hook_body text, parties uuid[])
), handled AS (
    INSERT INTO handled_events (event_id, event_type, handled_at)
    SELECT event_id, event_type, :now FROM given
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), recorded AS (
    INSERT INTO notifications ({", ".join(RECORDED)})
    SELECT message.* FROM jsonb_to_recordset(:messages) AS message({_RECORDSET})
    WHERE message.event_id IN (SELECT event_id FROM handled)
), hooked AS (
    INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, body, status, attempts, next_attempt_at,
                                    created_at)
    SELECT gen_random_uuid(), webhook.id, given.event_id, given.hook_event, given.hook_body, 'pending', 0, :now,
           :now
    FROM handled JOIN given USING (event_id) JOIN webhooks AS webhook
        ON webhook.active AND webhook.agency_id = ANY(given.parties) AND given.hook_event = ANY(webhook.events)
)
SELECT event_id FROM handled
""").bindparams(
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("events", type_=JSONB()),
    bindparam("messages", type_=JSONB()),
)


def backoff(attempts, base_seconds):
    """Exponential backoff with jitter: about base, 2*base, 4*base, ..."""
    return datetime.timedelta(seconds=pause(attempts, base_seconds, jitter=0.2))


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_seconds: float
    send_timeout: float

    @classmethod
    def from_settings(cls, settings):
        return cls(
            max_attempts=int(settings["NOTIFICATION_MAX_ATTEMPTS"]),
            backoff_seconds=float(settings["NOTIFICATION_BACKOFF_SECONDS"]),
            send_timeout=send_timeout(settings),
        )

    @property
    def lease(self):
        """How long a claimed message is held: three times the longest
        send, so a send (cut off at its timeout) ends well inside it."""
        return datetime.timedelta(seconds=3 * self.send_timeout)


SIDE_BY_SIDE = 8  # sends at once per replica: enough to keep up, few enough for a provider


def deliver_due(sessions, mailer, sms, policy, limit=SIDE_BY_SIDE):
    """Send the pending messages whose time has come, up to `limit` of them,
    `SIDE_BY_SIDE` at a time; returns how many were tried. (No more are
    claimed than are sent at once: each send is cut off at its timeout, so
    every outcome is recorded well inside the lease, a third of it gone.)

    The messages are claimed in one statement (FOR UPDATE SKIP LOCKED; each
    one's attempt counted and its next_attempt_at moved a lease ahead, by
    the database's clock), sent side by side with no transaction open, and
    their outcomes recorded together, each only if its claim still holds.
    So replicas share the work without sending a row twice, and no row lock
    is held through a slow SMTP conversation. A replica that dies mid-send
    leaves its messages to be tried again when the lease ends (that try
    counts).
    """
    with sessions.connect() as connection:  # one statement: a transaction of its own
        claims = connection.execute(CLAIM, {"limit": limit, "lease": policy.lease}).all()
    send_claimed(sessions, claims, mailer, sms, policy)
    return len(claims)


def send_claimed(sessions, claims, mailer, sms, policy):
    """Send the messages `claims` (claimed by the caller), `SIDE_BY_SIDE` at
    a time with no transaction open, then record their outcomes."""
    if not claims:
        return
    outcomes = list(
        eventlet.GreenPool(SIDE_BY_SIDE).imap(
            lambda claim: send_message(claim, mailer, sms, policy.send_timeout), claims
        )
    )
    settled = [
        (claim, _outcome(claim, error, policy)) for claim, error in zip(claims, outcomes, strict=False)
    ]
    # Sent, and so recorded whatever it takes: a message left `pending` would
    # be sent again when its lease ends. (A settled outcome is not settled twice.)
    patiently(
        lambda: together(sessions, _write)(settled),
        "recording what was sent",
        patience=policy.lease.total_seconds(),
    )


def _outcome(claim, error, policy):
    """The columns that record how the try of `claim` went."""
    if error is None:
        return {"status": "sent", "sent_at": utcnow(), "last_error": None}
    if isinstance(error, PermanentDeliveryError) or claim.attempts >= policy.max_attempts:
        return {"status": "failed", "last_error": str(error)[:1000]}
    return {
        "next_attempt_at": utcnow() + backoff(claim.attempts, policy.backoff_seconds),
        "last_error": str(error)[:1000],
    }


# How the tries went, each written only if its claim still holds (another
# replica may have taken the message over after the lease ended); the ids
# written come back. One statement for any number of outcomes: a column an
# outcome leaves out (NULL) keeps its value, except last_error.
SETTLE = text("""
UPDATE notifications AS n
SET status = coalesce(o.status, n.status), sent_at = coalesce(o.sent_at, n.sent_at),
    next_attempt_at = coalesce(o.next_attempt_at, n.next_attempt_at), last_error = o.last_error
FROM unnest(:ids, :attempts, :statuses, :sent_at, :next_attempt_at, :last_errors)
    AS o(id, attempts, status, sent_at, next_attempt_at, last_error)
WHERE n.id = o.id AND n.status = 'pending' AND n.attempts = o.attempts
RETURNING n.id
""").bindparams(
    bindparam("ids", type_=ARRAY(Uuid())),
    bindparam("attempts", type_=ARRAY(Integer())),
    bindparam("statuses", type_=ARRAY(Text())),
    bindparam("sent_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("next_attempt_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("last_errors", type_=ARRAY(Text())),
)


def _write(sessions, settled):
    columns = {
        "ids": [],
        "attempts": [],
        "statuses": [],
        "sent_at": [],
        "next_attempt_at": [],
        "last_errors": [],
    }
    for claim, outcome in settled:
        columns["ids"].append(claim.id)
        columns["attempts"].append(claim.attempts)
        columns["statuses"].append(outcome.get("status"))
        columns["sent_at"].append(outcome.get("sent_at"))
        columns["next_attempt_at"].append(outcome.get("next_attempt_at"))
        columns["last_errors"].append(outcome.get("last_error"))
    with sessions.connect() as connection:
        held = {row.id for row in connection.execute(SETTLE, columns)}
    for claim, outcome in settled:
        _said(claim, outcome, claim.id in held)


def _said(claim, outcome, held):
    """The count and the log line of one outcome written (or not: `held` False)."""
    status = outcome.get("status")
    NOTIFICATION_SENDS.labels(claim.channel, status or "retry").inc()
    if not held:
        log.warning("notification %s: lease lost before its outcome was recorded", claim.id)
    elif status == "sent":
        log.debug("notification %s sent (attempt %d)", claim.id, claim.attempts)
    elif status == "failed":
        log.error(
            "notification %s failed after %d attempt(s): %s", claim.id, claim.attempts, outcome["last_error"]
        )
    else:
        log.warning("notification %s attempt %d failed: %s", claim.id, claim.attempts, outcome["last_error"])


# The pending messages whose time has come, up to :limit, each with its
# attempt counted and its next_attempt_at a lease ahead; in one statement.
CLAIM = text(f"""
UPDATE notifications AS n
SET attempts = n.attempts + 1, next_attempt_at = now() + :lease
FROM (SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= now()
      ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED) AS due
WHERE n.id = due.id
RETURNING {
    ", ".join(
        "n." + column
        for column in ("id", "channel", "recipient", "subject", "text_body", "html_body", "attempts")
    )
}
""").bindparams(bindparam("lease", type_=Interval()))


def _take_lease(row, policy):
    """Count an attempt at `row` and hold it a lease ahead of the sweep."""
    row.attempts = (row.attempts or 0) + 1
    row.next_attempt_at = utcnow() + policy.lease


def send_message(row, mailer, sms, timeout):
    """None when `row` went out, else the DeliveryError saying why not."""
    try:
        with eventlet.Timeout(timeout, DeliveryError(f"timed out after {timeout:g} s")):
            if row.channel == "email":
                mailer.send(row.recipient, row.subject, row.text_body, row.html_body)
            else:
                sms.send(row.recipient, row.text_body)
    except DeliveryError as error:
        return error
    except Exception as error:  # a fault of ours must not leave the row claimed forever
        log.exception("notification %s: unexpected error while sending", row.id)
        return DeliveryError(f"{type(error).__name__}: {error}")
    return None


def listing(session, agency_id, filters):
    filters = load(NotificationQuery(), filters, "The list query is not valid.")
    query = select(Notification).where(Notification.agency_id == agency_id)
    if "referral_id" in filters:
        query = query.where(Notification.referral_id == filters["referral_id"])
    if "status" in filters:
        query = query.where(Notification.status == filters["status"])
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    return page_of(query, session, filters["page"], filters["per_page"], notification_schema.dump)
