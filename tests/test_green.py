"""psycopg must let other green threads run while it waits for PostgreSQL
(../shared/DESIGN.md): proven without a clock, by a query that can only
finish if another green thread runs while it waits."""

import eventlet
import pytest
from sqlalchemy import text

from shared.storage.db import make_engine

LOCK = 4242


@pytest.fixture
def engine(database_urls):
    made = make_engine(database_urls["REFERRALS_DATABASE_URL"])
    yield made
    made.dispose()


def test_a_waiting_query_lets_other_green_threads_run(engine):
    holder = engine.connect()
    holder.execute(text("SELECT pg_advisory_lock(:id)"), {"id": LOCK})

    def wait_for_lock():
        with engine.connect() as waiter:
            waiter.execute(text("SET lock_timeout = '5s'"))
            waiter.execute(text("SELECT pg_advisory_lock(:id)"), {"id": LOCK})
            waiter.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK})
            return "got the lock"

    waiting = eventlet.spawn(wait_for_lock)
    eventlet.sleep(0.2)  # the waiter is now blocked inside PostgreSQL
    # Were the process blocked in the waiter's query, this line would not run
    # until its lock_timeout, and the waiter would fail with a timeout.
    holder.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK})
    holder.close()
    assert waiting.wait() == "got the lock"


def test_concurrent_queries_overlap(engine):
    """Ten green threads each hold a query open; all ten are seen in
    PostgreSQL at once, which a blocking wait would never allow (it would
    show one at a time)."""

    def sleeper():
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(2)"))

    def count_active():
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(2)'"
                    " AND state = 'active' AND datname = current_database()"
                )
            ).scalar()

    threads = [eventlet.spawn(sleeper) for _ in range(10)]
    most = 0
    while most < 10 and not all(thread.dead for thread in threads):
        eventlet.sleep(0.05)
        most = max(most, count_active())
    for thread in threads:
        thread.wait()
    assert most == 10
