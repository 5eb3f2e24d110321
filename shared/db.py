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


class Database(DependencyProvider):
    """Gives each worker a session factory: `with self.db.begin() as session:`
    runs one transaction, committed on leaving the block."""

    def __init__(self, url_key):
        self.url_key = url_key

    def setup(self):
        self.engine = make_engine(self.container.config[self.url_key])
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def stop(self):
        self.engine.dispose()

    def kill(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self.sessions
