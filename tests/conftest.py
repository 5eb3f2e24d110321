"""What every test shares: green threads, the real broker and databases of
this run's own, and small stand-ins for the outside mail and SMS providers."""

from shared.plumbing.green import patch

patch()  # before anything else opens a socket, as in every service process

import uuid

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared import config
from shared.commands.preflight import check_postgresql, check_rabbitmq
from shared.storage import migrate
from shared.storage.db import make_engine
from shared.storage.sealing import Sealer, new_key
from tests.support.sinks import HttpSink, SmtpSink

RUN_ID = uuid.uuid4().hex[:10]
# The key that seals returnees' data in this run's services: one per run.
DATA_ENCRYPTION_KEYS = new_key()
WEBHOOK_SECRET_KEYS = new_key()
SEALER = Sealer.from_setting(DATA_ENCRYPTION_KEYS)  # for tests that call services.referrals.cases


def pytest_sessionstart(session):
    """Say plainly what is missing instead of failing every test."""
    if session.config.getoption("markexpr") == "rules":
        return  # the fast lane: pure rules, no server needed
    settings = config.load()
    api = session.config.getoption("RABBIT_API_URI")
    problems = []
    try:
        check_rabbitmq(settings["AMQP_URI"])
    except Exception as error:
        problems.append(f"RabbitMQ at {settings['AMQP_URI']}: {error} (start: rabbitmq-server -detached)")
    try:
        requests.get(f"{api}/api/overview", timeout=3).raise_for_status()
    except Exception as error:
        problems.append(
            f"RabbitMQ's management API at {api}: {error} (the tests make a vhost of their own "
            "through it: rabbitmq-plugins enable rabbitmq_management)"
        )
    try:
        check_postgresql(settings["REFERRALS_DATABASE_URL"])
    except Exception as error:
        problems.append(
            f"PostgreSQL: {error} (start: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start)"
        )
    if problems:
        pytest.exit("The tests need real servers:\n  " + "\n  ".join(problems), returncode=3)


def own_databases(label):
    """{"REFERRALS_DATABASE_URL": ..., ...} naming databases of this run's
    own (not yet made): `<service>_<label>_<run id>`."""
    base = config.load()
    return {
        key: make_url(config.sqlalchemy_url(base[key]))
        .set(database=f"{service}_{label}_{RUN_ID}")
        .render_as_string(hide_password=False)
        for service, key in config.DATABASE_KEYS.items()
    }


@pytest.fixture(scope="session")
def database_urls():
    """This run's databases for services run in the test process, migrated
    with each service's Alembic history, dropped at the end."""
    urls = own_databases("test")
    for service, key in config.DATABASE_KEYS.items():
        migrate.upgrade(service, urls[key])
    yield urls
    for url in urls.values():
        migrate.drop_database(url)


@pytest.fixture(scope="session")
def engines(database_urls):
    made = {key: make_engine(url, pool_size=2) for key, url in database_urls.items()}
    yield made
    for engine in made.values():
        engine.dispose()


@pytest.fixture
def databases(database_urls, engines):
    """This run's databases, emptied after the test."""
    yield database_urls
    for engine in engines.values():
        empty(engine)


TABLES = (
    "SELECT quote_ident(tablename) FROM pg_tables "
    "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
)


def empty(engine):
    """Empties the database's tables (Alembic's aside) that hold rows.
    TRUNCATE gives each table it names new files, which took most of a
    test's teardown when it named every table; DELETE would be quicker
    still, but the append-only tables' triggers refuse it."""
    with engine.begin() as conn:
        tables = conn.execute(text(TABLES)).scalars().all()
        if not tables:
            return
        holding = (
            conn.execute(
                text(
                    " UNION ALL ".join(
                        f"SELECT '{table}' WHERE EXISTS (SELECT FROM {table})" for table in tables
                    )
                )
            )
            .scalars()
            .all()
        )
        if holding:
            conn.execute(text(f"TRUNCATE {', '.join(holding)} CASCADE"))


@pytest.fixture
def smtp_sink():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def sms_sink():
    with HttpSink() as sink:
        yield sink


@pytest.fixture
def service_config(rabbit_config, databases, smtp_sink, sms_sink):
    """Settings for services run in this process on the test's own vhost."""
    return config.load(
        AMQP_URI=rabbit_config["AMQP_URI"],
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_sink.port),
        SMS_BACKEND="http",
        SMS_HTTP_URL=sms_sink.url,
        OUTBOX_RELAY_SECONDS="0.05",
        DELIVERY_SWEEP_SECONDS="0.05",
        NOTIFICATION_BACKOFF_SECONDS="0.2",
        NOTIFICATION_MAX_ATTEMPTS="3",
        DATA_ENCRYPTION_KEYS=DATA_ENCRYPTION_KEYS,
        WEBHOOK_SECRET_KEYS=WEBHOOK_SECRET_KEYS,
        **databases,
    )
