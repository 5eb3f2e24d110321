"""Partners' webhooks: registered, listed, changed, deleted, tested and
given a new secret by the agency that owns them; another agency's webhook
does not exist for it (404)."""

import base64
import datetime
import json
import secrets
import uuid

from sqlalchemy import select, update

from services.notifications import endpoints
from services.notifications.models import Webhook, WebhookDelivery
from shared.contract.errors import InvalidInput, NotFound
from shared.contract.validation import load
from shared.contract.vocabulary import WEBHOOK_PING
from shared.contract.webhooks import Delivery, DeliveryQuery, NewWebhook, WebhookChange, WebhookQuery
from shared.contract.webhooks import Webhook as WebhookSchema
from shared.storage.models import utcnow
from shared.storage.paging import page_of

SECRET_PREFIX = "whsec_"  # the Standard Webhooks form: whsec_ + base64 of the key's bytes
SECRET_BYTES = 32
ROTATION_OVERLAP = datetime.timedelta(hours=24)  # the old secret signs too, meanwhile

webhook_schema, delivery_schema = WebhookSchema(), Delivery()


def new_secret():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _checked_url(url, allow_private):
    try:
        endpoints.check(url, allow_private)
    except endpoints.Refused as refused:
        raise InvalidInput("The webhook's URL may not be called.", {"url": [str(refused)]}) from None
    return url


def create(session, sealer, agency_id, body, allow_private):
    """A new webhook; its secret is in the answer, and sealed in the database."""
    data = load(NewWebhook(), body, "The webhook is not valid.")
    now, secret = utcnow(), new_secret()
    webhook = Webhook(
        id=uuid.uuid4(),
        agency_id=agency_id,
        url=_checked_url(data["url"], allow_private),
        events=_unique(data["events"]),
        description=data["description"],
        secret=sealer.seal_text(secret),
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(webhook)
    return dict(webhook_schema.dump(webhook), secret=secret)


def _unique(events):
    return list(dict.fromkeys(events))


def _owned(session, agency_id, webhook_id, lock=False):
    try:
        webhook_id = uuid.UUID(str(webhook_id))
    except ValueError:
        raise NotFound("No such webhook.") from None
    query = select(Webhook).where(Webhook.id == webhook_id, Webhook.agency_id == agency_id)
    webhook = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if webhook is None:
        raise NotFound("No such webhook.")
    return webhook


def listing(session, agency_id, filters):
    filters = load(WebhookQuery(), filters, "The list query is not valid.")
    query = (
        select(Webhook)
        .where(Webhook.agency_id == agency_id)
        .order_by(Webhook.created_at.desc(), Webhook.id.desc())
    )
    return page_of(query, session, filters["page"], filters["per_page"], webhook_schema.dump)


def get(session, agency_id, webhook_id):
    return webhook_schema.dump(_owned(session, agency_id, webhook_id))


def change(session, agency_id, webhook_id, body, allow_private):
    webhook = _owned(session, agency_id, webhook_id, lock=True)
    data = load(WebhookChange(), body, "The change to the webhook is not valid.")
    if "url" in data and data["url"] != webhook.url:
        webhook.url, webhook.failing_since = _checked_url(data["url"], allow_private), None
    if "events" in data:
        webhook.events = _unique(data["events"])
    if "active" in data and data["active"] != webhook.active:
        if data["active"]:
            webhook.active, webhook.deactivated_reason, webhook.failing_since = True, None, None
        else:
            deactivate(session, webhook, "turned off by its agency")
    webhook.updated_at = utcnow()
    return webhook_schema.dump(webhook)


def deactivate(session, webhook, reason):
    """Turn `webhook` off: what it was still owed is failed, not kept to be
    sent whenever it is turned on again."""
    webhook.active, webhook.deactivated_reason = False, reason
    table = WebhookDelivery.__table__
    session.execute(
        update(table)
        .where(table.c.webhook_id == webhook.id, table.c.status == "pending")
        .values(status="failed", last_error=f"the webhook was deactivated: {reason}")
    )


def delete(session, agency_id, webhook_id):
    session.delete(_owned(session, agency_id, webhook_id))  # its deliveries go with it (ON DELETE CASCADE)


def rotate_secret(session, sealer, agency_id, webhook_id):
    """A new secret; the current one keeps signing beside it for 24 h, so a
    partner can change its receiver without losing a delivery."""
    webhook = _owned(session, agency_id, webhook_id, lock=True)
    now, secret = utcnow(), new_secret()
    webhook.previous_secret, webhook.previous_secret_expires_at = webhook.secret, now + ROTATION_OVERLAP
    webhook.secret, webhook.updated_at = sealer.seal_text(secret), now
    return dict(webhook_schema.dump(webhook), secret=secret)


def ping(session, agency_id, webhook_id):
    """Owe the webhook a `ping` event, delivered like any other."""
    webhook = _owned(session, agency_id, webhook_id)
    event_id, now = uuid.uuid4(), utcnow()
    session.add(
        WebhookDelivery(
            id=uuid.uuid4(),
            webhook_id=webhook.id,
            event_id=event_id,
            event=WEBHOOK_PING,
            body=body_of(WEBHOOK_PING, now, {"webhook_id": str(webhook.id)}),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return {"event_id": str(event_id)}


def body_of(event, timestamp, data):
    """A delivery's body, as bytes are sent and signed (compact JSON)."""
    return json.dumps(
        {"type": event, "timestamp": timestamp.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def deliveries(session, agency_id, webhook_id, filters):
    webhook = _owned(session, agency_id, webhook_id)
    filters = load(DeliveryQuery(), filters, "The list query is not valid.")
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    if "status" in filters:
        query = query.where(WebhookDelivery.status == filters["status"])
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return page_of(query, session, filters["page"], filters["per_page"], delivery_schema.dump)
