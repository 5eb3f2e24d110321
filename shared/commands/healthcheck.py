"""Does a service answer? `python -m shared.commands.healthcheck agencies` exits 0 when
the service answers a ping over RabbitMQ: docker compose's health check."""

import sys

from nameko.standalone.rpc import ClusterRpcProxy

from shared import config


def main(service):
    try:
        with ClusterRpcProxy({"AMQP_URI": config.load()["AMQP_URI"]}, timeout=5) as rpc:
            getattr(rpc, service).ping()
    except Exception as error:
        print(f"{service} does not answer: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
