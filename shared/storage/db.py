"""PostgreSQL access for the services: SQLAlchemy 2 on psycopg 3."""

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from shared.config import sqlalchemy_url


def make_engine(url, **options):
    # As many connections as nameko runs workers (10 by default), kept open;
    # no ping before each use (a round trip per transaction): a connection
    # the server dropped fails once and is replaced.
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 5)
    options.setdefault("pool_recycle", 1800)
    # Errors must not echo statement parameters: they can hold personal data.
    options.setdefault("hide_parameters", True)
    return create_engine(sqlalchemy_url(url), **options)


class Sessions:
    """A service's sessions, two kinds, and plain connections.

    `with sessions.begin() as session:` runs one transaction, committed on
    leaving the block. `with sessions.single() as session:` gives a session
    whose every statement is a transaction of its own (autocommit): for work
    that is one statement, it saves the BEGIN and COMMIT round trips, which
    psycopg sends apart from the statement. `with sessions.connect() as
    connection:` is the same for Core and text statements, without the ORM
    session's bookkeeping (a session, its transaction's snapshots), which
    costs a statement on a hot path more CPU than the statement's own
    execution (measured on the 2-core machine: 0.22 ms against 0.14 ms).
    """

    def __init__(self, engine):
        self.transactional = sessionmaker(engine, expire_on_commit=False)
        self.autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.autocommit = sessionmaker(self.autocommit_engine, expire_on_commit=False)

    def begin(self):
        return self.transactional.begin()

    def single(self):
        return self.autocommit()

    def connect(self):
        return self.autocommit_engine.connect()


def in_batches(sessions, step, batch):
    """Run `step(session)` (which does up to `batch` rows and says how many)
    each time in a transaction of its own, until a batch comes back short;
    how many rows in all. Short transactions: replicas share the work, and
    no lock is held for the whole of it."""
    done = 0
    while True:
        with sessions.begin() as session:
            count = step(session)
        done += count
        if count < batch:
            return done


class Database(DependencyProvider):
    """Gives each worker the service's `Sessions`."""

    def __init__(self, url_key):
        self.url_key = url_key

    def setup(self):
        # a connection for each of the container's workers (nameko's max_workers, 10 by default)
        workers = int(self.container.config.get("max_workers") or 10)
        self.engine = make_engine(self.container.config[self.url_key], pool_size=workers)
        self.sessions = Sessions(self.engine)

    def stop(self):
        self.engine.dispose()

    def kill(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self.sessions
