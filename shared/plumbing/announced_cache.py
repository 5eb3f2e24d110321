"""A cache of another service's records that is never stale after the call
that changed a record has returned.

The owning service announces a change (an outbox event) and does not answer
the call that made it until the broker has confirmed the announcement
(`shared.plumbing.outbox.Relay.wait_until_published`). The broker puts a confirmed
message in every queue bound to it before it confirms, so each process that
caches has a queue of its own (exclusive, gone with its connection) bound to
those announcements, and before it serves anything from its cache it takes what
is waiting there (basic.get until empty) and drops what changed. A request
that arrives after the change's answer therefore finds it in the queue.

One basic.get round trip to RabbitMQ replaces an RPC (a request, a reply,
two acks and the owner's database read), and one drain covers every request
that had arrived before it began. Whatever goes wrong with the queue (the
broker away, the connection lost) empties the cache and stops caching until
a new queue is bound: while the queue is not there, changes could be
missed. Entries also expire after `ttl` seconds, a bound on what an
unforeseen failure could leave behind.
"""

import contextlib
import itertools
import json
import logging
import threading
import time

from kombu import Queue
from nameko.standalone.events import get_event_exchange

from shared.plumbing import amqp_uri

log = logging.getLogger(__name__)


class AnnouncedCache:
    """`cache.get(key, load)`: the value cached under `key`, or `load()`'s
    (kept unless None). An announcement of `source`'s (one of `event_types`)
    makes stale every value `v` with `name_of(v)` among
    `names_in(event_type, payload)`."""

    def __init__(
        self, amqp_uri, source, event_types, names_in, name_of, ttl=60.0, max_entries=10000, retry_seconds=1.0
    ):
        self.amqp_uri = amqp_uri
        self.exchange = get_event_exchange(source, {})
        self.event_types = tuple(event_types)
        self.names_in = names_in
        self.name_of = name_of
        self.ttl = ttl
        self.max_entries = max_entries
        self.retry_seconds = retry_seconds
        self.entries = {}  # key -> (value, expires at)
        self.changes = 0  # announcements taken so far: a load that spans one is not kept
        self.arrivals = itertools.count(1)
        self.drained_up_to = 0  # every get that arrived up to here is covered by a drain
        self.queue_lock = threading.Lock()  # one user of the connection at a time
        self.connection = None
        self.channel = None
        self.queue_name = None
        self.next_try = 0.0

    def get(self, key, load):
        arrival = next(self.arrivals)
        if not self._drain(arrival):
            return load()  # no queue: nothing may be trusted, nothing kept
        found = self.entries.get(key)
        if found and found[1] > time.monotonic():
            return found[0]
        changes = self.changes
        value = load()
        if value is not None and self.changes == changes and self.connection is not None:
            if len(self.entries) >= self.max_entries:
                self.entries.clear()
            self.entries[key] = (value, time.monotonic() + self.ttl)
        return value

    def _drain(self, arrival):
        """Take every announcement waiting in this process's queue, unless a
        drain that began after `arrival` did; False when there is no queue."""
        with self.queue_lock:
            if self.drained_up_to >= arrival:
                return self.connection is not None
            up_to = next(self.arrivals)  # every get that arrived before now
            try:
                if self.connection is None:
                    self._bind()
                while True:
                    message = self.channel.basic_get(self.queue_name, no_ack=True)
                    if message is None:
                        break
                    self._forget(message)
            except Exception as error:  # the broker away or the connection lost
                self._unbind(error)
                return False
            self.drained_up_to = up_to
            return True

    def _forget(self, message):
        self.changes += 1
        try:
            payload = json.loads(message.body)  # nameko's events are JSON
            stale = set(self.names_in(message.delivery_info["routing_key"], payload))
            for key, (value, _) in list(self.entries.items()):  # changes are rare: a scan will do
                if self.name_of(value) in stale:
                    self.entries.pop(key, None)
        except Exception:  # an announcement we cannot read: drop everything
            log.exception("an unreadable announcement on %s; cache emptied", self.exchange.name)
            self.entries.clear()

    def _bind(self):
        if time.monotonic() < self.next_try:
            raise ConnectionError("the last try to bind the queue failed a moment ago")
        self.next_try = time.monotonic() + self.retry_seconds
        connection = amqp_uri.connect(self.amqp_uri, connect_timeout=2)
        try:
            channel = connection.channel()
            self.exchange(channel).declare()
            queue = Queue("", exclusive=True, auto_delete=True, channel=channel)
            queue.declare()  # a name of the broker's making
            for event_type in self.event_types:
                queue.bind_to(self.exchange, routing_key=event_type)
        except Exception:
            connection.release()
            raise
        self.connection, self.channel, self.queue_name = connection, channel, queue.name
        self.entries.clear()  # whatever changed while there was no queue is unknown

    def _unbind(self, error=None):
        if self.connection is not None:
            if error is not None:
                log.warning(
                    "announcements of %s not reachable (%s): caching stops until they are",
                    self.exchange.name,
                    error,
                )
            with contextlib.suppress(Exception):
                self.connection.release()
        self.connection = self.channel = self.queue_name = None
        self.entries.clear()

    def close(self):
        with self.queue_lock:
            self._unbind()
