"""Publishing a batch of messages with publisher confirms, waiting once.

nameko's publisher (like py-amqp's confirm mode) waits for the broker's ack
after every message: a relay publishing its outbox one row at a time gets
one row out per round trip, and under load each wait is long, since the
green thread waits for its turn as well. Here a batch goes out on one
channel in confirm mode, and the broker's acks (several at once with
`multiple`), nacks and returns are then read until each message has its
verdict. Messages are laid out as nameko's publisher lays them out (JSON
body, persistent, the id as message_id), so nameko's handlers take them.
"""

import contextlib
import json
import threading
import time

import amqp

from shared.plumbing import amqp_uri


class ConfirmingChannel:
    """`publish(messages)` -> the ids of the messages the broker took.

    A message the broker nacked, returned as unroutable (with `mandatory`)
    or did not answer for within `timeout` is not among them. A lost
    connection raises, and the next call opens a new one."""

    def __init__(self, amqp_uri, exchange, timeout=10.0):
        self.amqp_uri = amqp_uri
        self.exchange = exchange
        self.timeout = timeout
        self.connection = None
        self.lock = threading.Lock()  # one batch at a time on the channel (green under eventlet)

    def _open(self):
        connection = amqp_uri.connect(self.amqp_uri, connect_timeout=5)  # the first node that answers
        try:
            channel = connection.channel()
            self.exchange(channel).declare()
            channel.confirm_select()
        except Exception:
            connection.release()
            raise
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self.connection, self.channel, self.next_tag = connection, channel, 1

    def publish(self, messages, mandatory):
        """`messages`: (message_id, routing_key, payload) each, in order."""
        with self.lock:
            return self._publish(messages, mandatory)

    def _publish(self, messages, mandatory):
        if self.connection is None:
            self._open()
        self.waiting, self.taken, self.refused = {}, set(), set()
        try:
            for message_id, routing_key, payload in messages:
                body = amqp.Message(
                    json.dumps(payload),
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=message_id,
                )
                self.channel.basic_publish(
                    body, exchange=self.exchange.name, routing_key=routing_key, mandatory=mandatory
                )
                self.waiting[self.next_tag] = message_id
                self.next_tag += 1
            deadline = time.monotonic() + self.timeout
            while self.waiting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the broker confirmed no more within {self.timeout:g} s")
                self.connection.drain_events(timeout=remaining)
        except Exception:
            self.close()  # verdicts still owed would arrive on a channel nobody reads
            raise
        return self.taken - self.refused

    def _verdict(self, delivery_tag, multiple):
        tags = [tag for tag in self.waiting if tag <= delivery_tag] if multiple else [delivery_tag]
        return [self.waiting.pop(tag) for tag in tags if tag in self.waiting]

    def _on_ack(self, delivery_tag, multiple):
        self.taken.update(self._verdict(delivery_tag, multiple))

    def _on_nack(self, delivery_tag, multiple):
        self.refused.update(self._verdict(delivery_tag, multiple))

    def _on_return(self, error, exchange, routing_key, message):
        # sent before the message's ack: it was routed to no queue
        self.refused.add(message.properties.get("message_id"))

    def close(self):
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.release()
        self.connection = None
