"""The transactional outbox and its relay.

A service writes an event into its own `outbox` table in the same transaction
as the change it announces. The relay then publishes unpublished rows to
RabbitMQ with publisher confirms and marks each row only after the broker
confirmed it. With `mandatory` (for events someone must receive), an event no
queue is bound for yet stays in the outbox for a later round. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several
relays (one per replica) never publish the same row twice.
"""
import logging
import uuid

from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy import Index, Text, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Database
from shared.models import (
    Id,
    OptionalTimestamp,
    Timestamp,
    id_column,
    optional_timestamp_column,
    timestamp_column,
    utcnow,
)

log = logging.getLogger(__name__)


def outbox_model(Base):
    """The outbox table, declared on a service's own declarative base."""

    class Outbox(Base):
        __tablename__ = "outbox"

        id: Id = id_column()  # the event id
        event_type: Mapped[str] = mapped_column(Text)
        payload: Mapped[dict] = mapped_column(JSONB)
        created_at: Timestamp = timestamp_column()
        published_at: OptionalTimestamp = optional_timestamp_column()

        __table_args__ = (
            Index(
                "ix_outbox_unpublished",
                "created_at",
                postgresql_where=published_at.is_(None),
            ),
        )

    return Outbox


def add_event(session, Outbox, event_type, payload):
    """Stage `payload` as event `event_type` in the caller's transaction."""
    event_id = uuid.uuid4()
    payload = dict(payload, event_id=str(event_id), event_type=event_type)
    session.add(Outbox(id=event_id, event_type=event_type, payload=payload))
    return event_id


class Relay:
    """Publishes a service's outbox to its nameko event exchange."""

    def __init__(self, sessions, Outbox, config, source_service, batch_size=100, mandatory=True):
        self.sessions = sessions
        self.Outbox = Outbox
        self.exchange = get_event_exchange(source_service, config)
        # No retry inside publish: a row that fails stays in the outbox and the
        # relay's next round is the retry, without holding row locks meanwhile.
        self.publisher = Publisher(
            config["AMQP_URI"], exchange=self.exchange, declare=[self.exchange], retry=False
        )
        self.batch_size = batch_size
        self.mandatory = mandatory

    def publish_pending(self):
        """Publish one batch; returns how many rows the broker confirmed."""
        Outbox = self.Outbox
        with self.sessions.begin() as session:
            rows = session.scalars(
                select(Outbox)
                .where(Outbox.published_at.is_(None))
                .order_by(Outbox.created_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            published = 0
            for row in rows:  # one by one: each is marked only once confirmed
                try:
                    self.publisher.publish(
                        row.payload,
                        routing_key=row.event_type,
                        mandatory=self.mandatory,
                        message_id=str(row.id),
                    )
                except UndeliverableMessage:
                    # No consumer's queue is bound yet: keep it for a later round.
                    log.warning("event %s (%s) has no queue bound yet; kept", row.id, row.event_type)
                    continue
                except Exception as error:  # broker down or connection lost: next round retries
                    log.warning("publishing event %s failed (%s); kept for the next round", row.id, error)
                    break
                row.published_at = utcnow()
                published += 1
            return published

    def drain(self):
        """Publish batch after batch while full batches go out."""
        while self.publish_pending() == self.batch_size:
            pass


class OutboxRelay(DependencyProvider):
    """A service's relay, made once per container (its publisher and exchange
    are reused by every round); it reads the outbox through the service's
    own `Database` dependency."""

    def __init__(self, Outbox, source_service, mandatory=True):
        self.Outbox = Outbox
        self.source_service = source_service
        self.mandatory = mandatory
        self.relay = None

    def get_dependency(self, worker_ctx):
        if self.relay is None:  # the Database has been set up by the first worker
            database = next(dep for dep in self.container.dependencies if isinstance(dep, Database))
            self.relay = Relay(database.sessions, self.Outbox, self.container.config, self.source_service,
                               mandatory=self.mandatory)
        return self.relay
