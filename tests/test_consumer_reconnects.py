"""A service's consumer whose connection a worker found broken sets its
consumers up again on the next connection (shared.plumbing.messaging.QueueConsumer).

What `make chaos`'s rabbitmq-leader fault ran into about one run in four: a
worker's ack failed on the connection to the stopped node (py-amqp then
marks the connection as not connected) before the consumer itself read the
connection's end, and kombu's Connection, asked for the next messages,
reconnected by itself, to the next node of AMQP_URI, with no consumer on
the new connection: the service never took a message again. Here the
connection is marked so as py-amqp marks it when such a write fails, while
the broker stays up (the moment the race leaves behind), and the service
must still answer."""

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from shared.plumbing.messaging import QueueConsumer
from shared.plumbing.rpc import rpc

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


class Echo:
    name = "echo_reconnects"

    @rpc
    def echo(self, value):
        return value


def test_a_consumer_on_a_connection_a_worker_found_broken_takes_messages_again(
    container_factory, rabbit_config
):
    listed = (
        f"{rabbit_config['AMQP_URI']};{rabbit_config['AMQP_URI']}"  # two "nodes", as a cluster's AMQP_URI
    )
    container = container_factory(
        Echo, dict(rabbit_config, AMQP_URI=listed, QUEUE_TYPE="classic", DELIVERY_LIMIT="5")
    )
    container.start()
    with ClusterRpcProxy(rabbit_config, timeout=10) as proxy:
        assert proxy.echo_reconnects.echo(1) == 1
        [consumer] = [extension for extension in container.extensions if isinstance(extension, QueueConsumer)]
        broken = consumer._consuming_on
        broken.transport.connected = False  # what a failed write (a worker's ack) leaves
        eventlet.sleep(2.5)  # the consumer's next rounds (it waits 1 s for messages in each)
        assert proxy.echo_reconnects.echo(2) == 2  # within 10 s, or RpcTimeout
