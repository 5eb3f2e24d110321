"""The ceiling baseline: a bare nameko RPC service that answers with what it
got, on the same RabbitMQ, run like the network's services (eventlet first,
the services' own RPC entrypoint).

`python -m bench.echo` (AMQP_URI from the environment).
"""

import eventlet

eventlet.monkey_patch()

import logging  # noqa: E402
import os  # noqa: E402

from shared import config  # noqa: E402
from shared.plumbing.rpc import rpc  # noqa: E402  (the services' own entrypoint)


class EchoService:
    name = "bench_echo"

    @rpc
    def echo(self, value):
        return value

    @rpc
    def sleep(self, seconds):
        """For the check that the load generator's RPC calls overlap under gevent."""
        eventlet.sleep(min(float(seconds), 2.0))
        return seconds


def main():
    logging.basicConfig(level=logging.WARNING)
    from nameko.cli.run import run

    # the services' settings (the queue type of their RPC queues: shared.plumbing.queues), on this run's vhost
    run([EchoService], config.load(AMQP_URI=os.environ["AMQP_URI"]))


if __name__ == "__main__":
    main()
