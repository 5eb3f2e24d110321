"""What every service's SQLAlchemy models have in common."""

import datetime
import uuid

from sqlalchemy import DateTime, MetaData, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow():
    return datetime.datetime.now(datetime.UTC)


def new_base():
    """A declarative base with its own metadata: one per service database."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    return Base


def id_column():
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def timestamp_column(**options):
    return mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now(), **options)


def optional_timestamp_column(**options):
    return mapped_column(DateTime(timezone=True), nullable=True, **options)


Id = Mapped[uuid.UUID]
Timestamp = Mapped[datetime.datetime]
OptionalTimestamp = Mapped[datetime.datetime | None]
