"""nameko's consumers, made to outlive the broker.

nameko 2.14 guards an ack or a requeue only against AMQP's own connection
error: when RabbitMQ goes away mid-message, the socket's error
(ConnectionResetError, ECONNREFUSED) escapes from the worker's last step and
kills the container, and with it the process. Here a message whose
connection is gone is left to the broker, which delivers it again once it
is back (every consumer is idempotent by event id), and the process goes
on: its consumers reconnect with kombu's backoff.

Every entrypoint and RPC proxy of the services comes from here or from
shared.plumbing.rpc, so that they all share this consumer.
"""

import functools
import logging
import time

import eventlet
from nameko import events, messaging
from nameko import rpc as nameko_rpc

from shared.plumbing import amqp_uri, backoff, queues
from shared.plumbing.away import BROKER_AWAY, server_away

log = logging.getLogger(__name__)

# How long work waits for a server that went away before it fails after all.
PATIENCE_SECONDS = 600


def patiently(work, what, patience=PATIENCE_SECONDS):
    """`work()`, tried again with backoff (0.5 s doubling to 5 s) while it
    fails because a server is away, for `patience` seconds at most; one log
    line when it starts waiting. Any other failure is raised at once."""
    tries, started, said = 0, time.monotonic(), False
    while True:
        try:
            return work()
        except Exception as error:
            if not server_away(error) or time.monotonic() - started > patience:
                raise
            if not said:
                log.warning("%s waits for a server that is away (%s)", what, type(error).__name__)
                said = True
        tries += 1
        eventlet.sleep(backoff.pause(tries, 0.5, 5.0))


class QueueConsumer(messaging.QueueConsumer):
    def get_consumers(self, consumer_cls, channel):
        """On every (re)connection: the service's dead-letter queue first, so
        that a message the broker sets aside always has a place to go."""
        names = [
            provider.queue.name
            for provider in self._providers
            if provider.queue is not None and queues.DEAD_LETTER_KEY in (provider.queue.queue_arguments or {})
        ]
        if names:
            queues.dead_letter_queue(self.container.service_name, names)(channel).declare()
        return super().get_consumers(consumer_cls, channel)

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self._consuming_on = connection.connection  # py-amqp's connection, the consumers' own
        super().on_consume_ready(connection, channel, consumers, **kwargs)

    def on_iteration(self):
        """Before each wait for messages: if the connection the consumers
        were set up on is broken (a worker's ack found it so), close it and
        say so as a lost connection, so that kombu's ConsumerMixin
        reconnects and sets every consumer up again. Left alone, kombu's
        Connection reconnects by itself when next asked for messages or a
        heartbeat (to the next node of a cluster: the first one stopped),
        with no consumer on the new connection, and the process would wait
        there for ever, while the broker, if it still had the old
        connection, kept delivering to consumers nobody reads."""
        consuming_on = getattr(self, "_consuming_on", None)
        if consuming_on is not None and not consuming_on.connected:
            self._consuming_on = None
            consuming_on.collect()  # its socket closed: the broker takes back what it had delivered there
            raise ConnectionError("the connection the consumers were set up on is broken")
        super().on_iteration()

    def on_connection_error(self, exc, interval):
        """nameko's warning, with every node's password hidden (nameko's
        own hides the first node's only, when AMQP_URI lists several)."""
        log.warning(
            "Error connecting to broker at %s (%s). Retrying in %s seconds.",
            amqp_uri.safe(self.amqp_uri),
            exc,
            interval,
        )

    def ack_message(self, message):
        self._settle(super().ack_message, message, "acked")

    def requeue_message(self, message):
        self._settle(super().requeue_message, message, "requeued")

    @staticmethod
    def _settle(settle, message, what):
        try:
            settle(message)
        except BROKER_AWAY as error:
            log.warning(
                "the broker went away before a message was %s (%s); it will be delivered again",
                what,
                type(error).__name__,
            )


class EventHandler(events.EventHandler):
    """nameko's event handler on a quorum queue with a delivery limit
    (shared.plumbing.queues): a message it keeps failing on is requeued, then set
    aside, and the last failure says so, once, with the event's id.
    `transient=True` keeps the queue classic and not durable instead (for
    a message that must never reach the broker's disk: a sign-in link)."""

    queue_consumer = QueueConsumer()

    def __init__(self, *args, transient=False, requeue_on_error=True, **kwargs):
        self.transient = transient
        super().__init__(*args, requeue_on_error=requeue_on_error, **kwargs)

    def setup(self):
        super().setup()
        if self.transient:
            self.queue.durable = False
        else:
            self.queue.queue_arguments = queues.arguments(self.container.config, self.queue.name)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        limit = (self.queue.queue_arguments or {}).get("x-delivery-limit")
        tries = int((message.headers or {}).get("x-delivery-count") or 0) + 1
        if exc_info is not None and self.requeue_on_error and limit is not None and tries > limit:
            payload = message.payload if isinstance(message.payload, dict) else {}
            log.error(
                "event %s (%s) failed %d times: set aside in %s (python -m shared.commands.dead_letters list)",
                payload.get("event_id"),
                self.event_type,
                tries,
                queues.dead_letter_queue_name(self.container.service_name),
            )
        return super().handle_result(message, worker_ctx, result, exc_info)


def event_handler(*args, **kwargs):
    """nameko's `@event_handler`, on shared.plumbing.messaging's EventHandler
    (requeued on error unless told otherwise), whose method waits
    (patiently) while a server is away instead of failing: a database
    restart is not a reason to count an event towards the dead-letter
    queue's delivery limit."""
    register = EventHandler.decorator(*args, **kwargs)

    def decorate(method):
        @functools.wraps(method)
        def handler(self, *call_args, **call_kwargs):
            return patiently(lambda: method(self, *call_args, **call_kwargs), f"handler {method.__name__}")

        return register(handler)

    return decorate


class ReplyListener(nameko_rpc.ReplyListener):
    """nameko's listener for the replies to a service's own calls, on a
    queue that is not durable. nameko declares it durable (a classic queue,
    on the node the process is connected to): when that node of a cluster
    stops, a durable classic queue stays behind as "down", and declaring
    it again on another node is refused, so the process's consumer would
    reconnect and be refused again for ever. A queue that is not durable
    goes with its node, and is made again on the next."""

    queue_consumer = QueueConsumer()

    def setup(self):
        super().setup()
        self.queue.durable = False


class RpcProxy(nameko_rpc.RpcProxy):
    """A service's proxy to another service (its replies read by the shared consumer)."""

    rpc_reply_listener = ReplyListener()
