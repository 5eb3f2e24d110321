"""The transactional outbox and its relay.

A service writes an event into its own `outbox` table in the same transaction
as the change it announces. The relay then publishes unpublished rows to
RabbitMQ with publisher confirms and marks each row only after the broker
confirmed it. With `mandatory` (for events someone must receive), an event no
queue is bound for yet stays in the outbox for a later round. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several
relays (one per replica) never publish the same row twice.
"""

import logging
import time
import uuid

from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy import Index, Text, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.contract.errors import Unavailable
from shared.plumbing import backoff
from shared.plumbing.confirms import ConfirmingChannel
from shared.storage.db import Database
from shared.storage.models import (
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


def event_row(event_type, payload):
    """The outbox row (as column values) that announces `payload` as event
    `event_type`, under a new event id."""
    event_id = uuid.uuid4()
    payload = dict(payload, event_id=str(event_id), event_type=event_type)
    return {"id": event_id, "event_type": event_type, "payload": payload}


def add_event(session, Outbox, event_type, payload):
    """Stage `payload` as event `event_type` in the caller's transaction."""
    row = event_row(event_type, payload)
    session.add(Outbox(**row))
    return row["id"]


class Relay:
    """Publishes a service's outbox to its nameko event exchange."""

    # After a failed publish (the broker away), rounds are skipped for a
    # while, doubling up to the most: one try and one log line per pause.
    FIRST_PAUSE_SECONDS, MOST_PAUSE_SECONDS = 0.25, 5.0

    def __init__(self, sessions, Outbox, config, source_service, batch_size=100, mandatory=True):
        self.sessions = sessions
        self.Outbox = Outbox
        self.channel = ConfirmingChannel(config["AMQP_URI"], get_event_exchange(source_service, config))
        self.batch_size = batch_size
        self.mandatory = mandatory
        self.failures, self.paused_until = 0, 0.0
        self.anything_waiting = select(select(Outbox.id).where(Outbox.published_at.is_(None)).exists())

    def _failed(self, count, error):
        self.failures += 1
        wait = backoff.pause(self.failures, self.FIRST_PAUSE_SECONDS, self.MOST_PAUSE_SECONDS)
        self.paused_until = time.monotonic() + wait
        log.warning(
            "publishing %d event(s) failed (%s: %s); kept, next try in %.1f s",
            count,
            type(error).__name__,
            error,
            wait,
        )

    def _succeeded(self):
        if self.failures:
            log.info("the broker takes events again (after %d failed tries)", self.failures)
        self.failures = 0

    def publish_pending(self):
        """Publish one batch; returns how many rows the broker confirmed.
        A row is marked only once confirmed; a failed publish leaves the
        batch for the next round, without holding its row locks meanwhile."""
        Outbox = self.Outbox
        if time.monotonic() < self.paused_until:
            return 0
        with self.sessions.connect() as connection:  # most rounds find nothing: one round trip to say so
            if not connection.scalar(self.anything_waiting):
                return 0
        with self.sessions.begin() as session:
            rows = session.scalars(
                select(Outbox)
                .where(Outbox.published_at.is_(None))
                .order_by(Outbox.created_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            try:
                taken = self.channel.publish(
                    [(str(row.id), row.event_type, row.payload) for row in rows], self.mandatory
                )
            except Exception as error:  # broker down or connection lost: a later round retries
                self._failed(len(rows), error)
                return 0
            self._succeeded()
            for row in rows:
                if str(row.id) not in taken:
                    # No consumer's queue is bound yet (or the broker refused it): a later round.
                    log.warning("event %s (%s) was not taken by the broker; kept", row.id, row.event_type)
            if taken:
                session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_([uuid.UUID(i) for i in taken]))
                    .values(published_at=utcnow())
                )
            return len(taken)

    def close(self):
        self.channel.close()

    def drain(self):
        """Publish batch after batch while full batches go out."""
        while self.publish_pending() == self.batch_size:
            pass

    def wait_until_published(self, timeout=5.0, poll_seconds=0.02):
        """Return once every event staged before this call is out (the
        broker confirmed it): for a change whose caller must find it
        announced when the call returns (see shared.plumbing.announced_cache).
        Publishing is left to the relays' timer rounds (every
        OUTBOX_RELAY_SECONDS), so that events still go out in the order they
        were staged: a publish of its own here would pass over the rows a
        round holds locked. Raises `Unavailable` after `timeout` seconds;
        the events then stay for later rounds."""
        Outbox = self.Outbox
        staged_before, deadline = utcnow(), time.monotonic() + timeout
        while True:
            with self.sessions.begin() as session:
                waiting = session.scalar(
                    select(func.count())
                    .select_from(Outbox)
                    .where(Outbox.published_at.is_(None), Outbox.created_at <= staged_before)
                )
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise Unavailable(
                    "The change is saved but could not be announced yet; make the same call again."
                )
            time.sleep(poll_seconds)


class OutboxRelay(DependencyProvider):
    """A service's relay, made once per container (its publisher and exchange
    are reused by every round); it reads the outbox through the service's
    own `Database` dependency."""

    def __init__(self, Outbox, source_service, mandatory=True):
        self.Outbox = Outbox
        self.source_service = source_service
        self.mandatory = mandatory
        self.relay = None

    def stop(self):
        if self.relay is not None:
            self.relay.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        if self.relay is None:  # the Database has been set up by the first worker
            database = next(dep for dep in self.container.dependencies if isinstance(dep, Database))
            self.relay = Relay(
                database.sessions,
                self.Outbox,
                self.container.config,
                self.source_service,
                mandatory=self.mandatory,
            )
        return self.relay
