"""Before the network starts: are RabbitMQ and PostgreSQL there? Then make
each service's database and bring its schema up to date.

Where a server is missing this says so and how to start it, not a trace.
Redis only counts rate limits (and the gateway fails open without it), so
its absence is said, and the network starts all the same. What it says are
log lines of the service "migrate" (JSON lines where LOG_FORMAT=json).
"""

import logging
import sys

import psycopg
import redis
from sqlalchemy.engine import make_url

from shared import config
from shared.commands.services import SERVICES, service_class
from shared.plumbing import amqp_uri, queues, request_id
from shared.storage import migrate

HOW_TO_START = {
    "RabbitMQ": "start it with `rabbitmq-server -detached`",
    "PostgreSQL": "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
    "Redis": "start it with `redis-server --daemonize yes --save '' --appendonly no`",
}
log = logging.getLogger("shared.commands.preflight")  # also when run as __main__


def _safe(url):
    """`url` with its password hidden (each node's, for AMQP_URI)."""
    if url.startswith("amqp"):
        return amqp_uri.safe(url)
    return make_url(url).render_as_string(hide_password=True)


def check_rabbitmq(url):
    """A node of AMQP_URI answers (each is tried in turn)."""
    amqp_uri.connect(url, connect_timeout=3).release()


def check_postgresql(url):
    server = make_url(config.sqlalchemy_url(url)).set(drivername="postgresql", database="postgres")
    psycopg.connect(server.render_as_string(hide_password=False), connect_timeout=3).close()


def main():
    request_id.configure_logging("migrate", text_format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its steps, not each migration's name
    settings = config.load()
    checks = [("RabbitMQ", check_rabbitmq, settings["AMQP_URI"])]
    checks += [("PostgreSQL", check_postgresql, settings[key]) for key in config.DATABASE_KEYS.values()]
    for name, check, url in checks:
        try:
            check(url)
        except Exception as error:  # any failure to connect is reported the same way
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            log.error(
                f"{name} is not reachable at {_safe(url)}: {reason}\n"
                f"  {HOW_TO_START[name]},\n"
                f"  or run the whole network under docker compose with `make up`."
            )
            return 1
    storage = settings["RATE_LIMIT_STORAGE_URI"]
    if storage.startswith("redis://"):
        try:
            redis.Redis.from_url(storage, socket_connect_timeout=3).ping()
        except redis.RedisError as error:
            log.warning(
                f"Redis is not reachable at {_safe(storage)}: {error}\n  {HOW_TO_START['Redis']}; until it"
                f" is, the gateway does not count rate limits (RATE_LIMIT_STORAGE_URI=memory:// counts them"
                f" in each process)."
            )
    try:
        migrate.upgrade_all(settings)
    except migrate.MigrationRefused as refused:
        log.error(str(refused))
        return 1
    with amqp_uri.connect(settings["AMQP_URI"]) as connection:
        for name in SERVICES:
            queues.ensure(connection, settings, service_class(name))
    log.info(
        f"Databases are up to date. The gateway will listen on http://localhost:{settings['GATEWAY_PORT']}"
        f" (API docs at /docs, OpenAPI at /openapi.json)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
