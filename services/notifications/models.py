"""The notifications service's own tables: every message it owes, and the
events it has already handled (so a redelivered event sends nothing twice)."""
from typing import Optional

from sqlalchemy import DateTime, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models import (
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
    referral_id: Id
    agency_id: Id
    channel: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text)
    subject: Mapped[Optional[str]] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    next_attempt_at: Timestamp = timestamp_column()
    created_at: Timestamp = timestamp_column()
    sent_at: OptionalTimestamp = optional_timestamp_column()
    # the recipient is masked this long after (see retention.py)
    recipient_masked_at: OptionalTimestamp = optional_timestamp_column()

    __table_args__ = (
        # one message per event, channel and address (masked ones may look alike)
        Index("uq_notifications_event_id_channel_recipient", "event_id", "channel", "recipient", unique=True,
              postgresql_where="recipient_masked_at IS NULL"),
        Index("ix_notifications_unmasked_created", "created_at", postgresql_where="recipient_masked_at IS NULL"),
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
