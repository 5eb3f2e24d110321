"""The referrals service's own tables. Returnees' personal data lives here
and nowhere else, sealed (shared.storage.sealing): `referrals.returnee`
(every field but region and preferred language, which stay in clear in
`returnee_region` and `returnee_language` for reports), `referrals.consent`,
and the free texts that may name the person: `referrals.reason`,
`referrals.outcome` and `referral_history.detail`; with the digest of the
request that made a referral (`idempotency_keys`). NULL in any of them is
"nothing": never given, or erased (see services.referrals.erasure)."""

import uuid

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, Sequence, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.plumbing.outbox import outbox_model
from shared.storage.models import (
    Id,
    OptionalTimestamp,
    Timestamp,
    id_column,
    new_base,
    optional_timestamp_column,
    timestamp_column,
    utcnow,
)

Base = new_base()
Outbox = outbox_model(Base)

# References come from this sequence: unique under concurrency, gaps allowed.
reference_numbers = Sequence("referral_reference_seq", metadata=Base.metadata)


class Referral(Base):
    __tablename__ = "referrals"

    id: Id = id_column()
    reference: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text)
    service_type: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(Text)
    sending_agency_id: Id
    receiving_agency_id: Id
    # sealed: see shared.storage.sealing
    reason: Mapped[bytes | None] = mapped_column(LargeBinary)
    returnee: Mapped[bytes | None] = mapped_column(LargeBinary)  # all but region and language
    returnee_region: Mapped[str] = mapped_column(Text)
    returnee_language: Mapped[str | None] = mapped_column(Text)
    consent: Mapped[bytes | None] = mapped_column(LargeBinary)
    outcome: Mapped[bytes | None] = mapped_column(LargeBinary)
    respond_by: Timestamp = mapped_column(DateTime(timezone=True))
    overdue_announced_at: OptionalTimestamp = optional_timestamp_column()
    # for reports: the times of its answer (accept or decline) and completion,
    # kept from the history by a trigger (migration 0007), never set here
    answered_at: OptionalTimestamp = optional_timestamp_column()
    completed_at: OptionalTimestamp = optional_timestamp_column()
    # grows by one with every change, so a late event can be told from a newer one
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # when the referral reached its final status: its retention counts from here
    closed_at: OptionalTimestamp = optional_timestamp_column()
    erased_at: OptionalTimestamp = optional_timestamp_column()
    created_at: Timestamp = timestamp_column()
    updated_at: Timestamp = timestamp_column(onupdate=utcnow)

    __table_args__ = (
        Index("ix_referrals_sender_created", "sending_agency_id", "created_at", "id"),
        Index("ix_referrals_receiver_created", "receiving_agency_id", "created_at", "id"),
        Index("ix_referrals_sent_respond_by", "respond_by", postgresql_where="status = 'sent'"),
        Index(
            "ix_referrals_closed_unerased",
            "closed_at",
            postgresql_where="erased_at IS NULL AND closed_at IS NOT NULL",
        ),
        # reports (migration 0007): the network's referrals of a period, read from the index alone
        Index(
            "ix_referrals_created_at",
            "created_at",
            postgresql_include=[
                "status",
                "overdue_announced_at",
                "answered_at",
                "completed_at",
                "service_type",
                "returnee_region",
                "sending_agency_id",
                "receiving_agency_id",
            ],
        ),
    )


class HistoryEntry(Base):
    """One move of a referral: append-only, no API edits it."""

    __tablename__ = "referral_history"

    id: Id = id_column()
    referral_id: Id = mapped_column(ForeignKey("referrals.id"), index=True)
    at: Timestamp = timestamp_column()
    event: Mapped[str] = mapped_column(Text)
    from_status: Mapped[str | None] = mapped_column(Text)
    to_status: Mapped[str | None] = mapped_column(Text)
    agency_id: Mapped[uuid.UUID | None]
    detail: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed
    actor_type: Mapped[str | None] = mapped_column(Text)  # api_key | coordinator | system
    actor_id: Mapped[uuid.UUID | None]
    actor_name: Mapped[str | None] = mapped_column(Text)

    @property
    def actor(self):
        """{"type", "id", "name"}, or None for entries older than actors."""
        if self.actor_type is None:
            return None
        return {"type": self.actor_type, "id": self.actor_id, "name": self.actor_name}


class AccessEntry(Base):
    """Who read a referral's personal data, and when: append-only."""

    __tablename__ = "referral_access_log"

    id: Id = id_column()
    referral_id: Id = mapped_column(ForeignKey("referrals.id"), index=True)
    agency_id: Mapped[uuid.UUID | None]  # None: the network itself (the retention timer)
    at: Timestamp = timestamp_column()
    action: Mapped[str] = mapped_column(Text)
    actor_type: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[uuid.UUID | None]
    actor_name: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """A sender's `Idempotency-Key` and the referral its first request made.
    The digest of that request (a returnee's name and birth date can be
    found again from it by trying) is null once the referral is erased."""

    __tablename__ = "idempotency_keys"

    agency_id: Id = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    # an HMAC of the body's SHA-256, with its key's id (sealing.Sealer.digest); null once erased
    request_digest: Mapped[bytes | None] = mapped_column(LargeBinary)
    referral_id: Id = mapped_column(ForeignKey("referrals.id"))
    created_at: Timestamp = timestamp_column(index=True)
