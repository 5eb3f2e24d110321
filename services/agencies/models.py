"""The agencies service's own tables: the directory, the API keys, and the
coordinators' sign-in links and sessions."""

from sqlalchemy import DateTime, ForeignKey, Index, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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


class Agency(Base):
    __tablename__ = "agencies"

    id: Id = id_column()
    name: Mapped[str] = mapped_column(Text)
    search_name: Mapped[str] = mapped_column(Text)  # names.fold(name), for `q`
    kind: Mapped[str] = mapped_column(Text)
    services: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    regions: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    languages: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    accepting_referrals: Mapped[bool] = mapped_column(default=True)
    contacts: Mapped[list[dict]] = mapped_column(JSONB, default=list)
    created_at: Timestamp = timestamp_column()
    updated_at: Timestamp = timestamp_column(onupdate=utcnow)

    __table_args__ = (
        Index("ix_agencies_services", "services", postgresql_using="gin"),
        Index("ix_agencies_regions", "regions", postgresql_using="gin"),
        Index("ix_agencies_languages", "languages", postgresql_using="gin"),
        Index("ix_agencies_name_id", "name", "id"),
        Index(
            "ix_agencies_search_name_trgm",
            "search_name",
            postgresql_using="gin",
            postgresql_ops={"search_name": "gin_trgm_ops"},
        ),
    )


class ApiKey(Base):
    """A key is stored only as its SHA-256 digest: keys are 256-bit random
    secrets, so a fast digest is safe, and lookup by digest is one index hit."""

    __tablename__ = "api_keys"

    id: Id = id_column()
    agency_id: Id = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Timestamp = timestamp_column()
    last_used_at: OptionalTimestamp = optional_timestamp_column()
    revoked_at: OptionalTimestamp = optional_timestamp_column()


class SignInToken(Base):
    """A one-time sign-in link e-mailed to a contact: only its SHA-256 digest
    is kept (the token is a 256-bit random secret, so a fast digest is safe)."""

    __tablename__ = "sign_in_tokens"

    digest: Mapped[str] = mapped_column(Text, primary_key=True)
    agency_id: Id = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    contact_id: Id = mapped_column(index=True)
    created_at: Timestamp = timestamp_column()
    expires_at: Timestamp = mapped_column(DateTime(timezone=True))
    used_at: OptionalTimestamp = optional_timestamp_column()


class CoordinatorSession(Base):
    """A coordinator signed in to the pages: kept by its digest; it ends when
    idle too long, at its absolute end, at sign-out, or when the contact is
    removed from the directory."""

    __tablename__ = "coordinator_sessions"

    digest: Mapped[str] = mapped_column(Text, primary_key=True)
    agency_id: Id = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    contact_id: Id = mapped_column(index=True)
    created_at: Timestamp = timestamp_column()
    last_seen_at: Timestamp = timestamp_column()
    expires_at: Timestamp = mapped_column(DateTime(timezone=True))
    ended_at: OptionalTimestamp = optional_timestamp_column()
