"""nameko's consumers, made to outlive the broker.

nameko 2.14 guards an ack or a requeue only against AMQP's own connection
error: when RabbitMQ goes away mid-message, the socket's error
(ConnectionResetError, ECONNREFUSED) escapes from the worker's last step and
kills the container, and with it the process. Here a message whose
connection is gone is left to the broker, which delivers it again once it
is back (every consumer is idempotent by event id), and the process goes
on: its consumers reconnect with kombu's backoff.

Every entrypoint and RPC proxy of the services comes from here or from
shared.rpc, so that they all share this consumer.
"""
import logging

from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko import events, messaging
from nameko import rpc as nameko_rpc

log = logging.getLogger(__name__)

# What a broker that went away raises on the way out of a message.
BROKER_AWAY = (OSError, AMQPError, KombuError)


class QueueConsumer(messaging.QueueConsumer):
    def ack_message(self, message):
        self._settle(super().ack_message, message, "acked")

    def requeue_message(self, message):
        self._settle(super().requeue_message, message, "requeued")

    @staticmethod
    def _settle(settle, message, what):
        try:
            settle(message)
        except BROKER_AWAY as error:
            log.warning("the broker went away before a message was %s (%s); it will be delivered again",
                        what, type(error).__name__)


class EventHandler(events.EventHandler):
    queue_consumer = QueueConsumer()


event_handler = EventHandler.decorator


class ReplyListener(nameko_rpc.ReplyListener):
    queue_consumer = QueueConsumer()


class RpcProxy(nameko_rpc.RpcProxy):
    """A service's proxy to another service (its replies read by the shared consumer)."""

    rpc_reply_listener = ReplyListener()
