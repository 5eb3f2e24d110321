"""The notifications service's own tables: every message it owes, and the
events it has already handled (so a redelivered event sends nothing twice);
partners' webhooks and each delivery owed to one."""

import uuid

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.storage.models import (
    Id,
    OptionalTimestamp,
    Timestamp,
    id_column,
    new_base,
    optional_timestamp_column,
    timestamp_column,
)

Base = new_base()


class HandledEvent(Base):
    __tablename__ = "handled_events"

    event_id: Id = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(Text)
    handled_at: Timestamp = timestamp_column()


class Notification(Base):
    """One message to one contact on one channel. Its text is rendered once,
    when the event arrives, so every retry sends the same words."""

    __tablename__ = "notifications"

    id: Id = id_column()
    event_id: Id
    event: Mapped[str] = mapped_column(Text)
    referral_id: Mapped[uuid.UUID | None]  # None for a message about no referral (a webhook turned off)
    agency_id: Id
    channel: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Timestamp = timestamp_column()
    created_at: Timestamp = timestamp_column()
    sent_at: OptionalTimestamp = optional_timestamp_column()
    # the recipient is masked this long after (see retention.py)
    recipient_masked_at: OptionalTimestamp = optional_timestamp_column()

    __table_args__ = (
        # one message per event, channel and address (masked ones may look alike)
        Index(
            "uq_notifications_event_id_channel_recipient",
            "event_id",
            "channel",
            "recipient",
            unique=True,
            postgresql_where="recipient_masked_at IS NULL",
        ),
        Index(
            "ix_notifications_unmasked_created", "created_at", postgresql_where="recipient_masked_at IS NULL"
        ),
        Index("ix_notifications_due", "next_attempt_at", postgresql_where="status = 'pending'"),
        Index("ix_notifications_agency_created", "agency_id", "created_at", "id"),
    )


class KnownAgency(Base):
    """What this service needs of an agency (its name and contacts), copied
    from the directory and kept current by the agencies service's events."""

    __tablename__ = "known_agencies"

    id: Id = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    contacts: Mapped[list[dict]] = mapped_column(JSONB)
    updated_at: Timestamp = mapped_column(DateTime(timezone=True))  # the directory's


class Webhook(Base):
    """A partner system's endpoint, told of its agency's referrals' changes.
    The secret signs deliveries; after a rotation the previous one signs
    too, until `previous_secret_expires_at`."""

    __tablename__ = "webhooks"

    id: Id = id_column()
    agency_id: Id
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    description: Mapped[str] = mapped_column(Text, default="")
    # sealed under WEBHOOK_SECRET_KEYS (shared.storage.sealing): a dump holds no secret
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: OptionalTimestamp = optional_timestamp_column()
    active: Mapped[bool] = mapped_column(default=True)
    deactivated_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: OptionalTimestamp = optional_timestamp_column()  # None once a delivery succeeds
    owes_notice: Mapped[bool] = mapped_column(default=False)  # turned off; its agency not yet told
    created_at: Timestamp = timestamp_column()
    updated_at: Timestamp = timestamp_column()

    __table_args__ = (Index("ix_webhooks_agency_created", "agency_id", "created_at", "id"),)


class WebhookDelivery(Base):
    """One event owed to one webhook. Its body is fixed when the event
    arrives, so every retry sends the same bytes under the same
    `webhook-id` (the event's id)."""

    __tablename__ = "webhook_deliveries"

    id: Id = id_column()
    webhook_id: Id = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Id
    event: Mapped[str] = mapped_column(Text)  # referral.accepted, ping, ...
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_response_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Timestamp = timestamp_column()
    created_at: Timestamp = timestamp_column()
    delivered_at: OptionalTimestamp = optional_timestamp_column()

    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where="status = 'pending'"),
        Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at", "id"),
    )
