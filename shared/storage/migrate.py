"""Databases and their schemas: one Alembic history per service.

`python -m shared.storage.migrate` creates each service's database if it is missing
and brings its schema up to date; `make run` does this before starting.
"""

import contextlib
import pathlib
import sys

import psycopg
from alembic import command, context
from alembic.config import Config
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared import config
from shared.storage.db import make_engine

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the project, above shared/storage/
MIGRATION_LOCK = 72_000_001  # pg advisory lock id: one migrating process at a time


class MigrationRefused(Exception):
    """A migration that cannot run with these settings: its message says
    why in one line, and the preflight prints it without a trace."""


def alembic_config(service, url, settings=None):
    """Alembic's config for `service`'s history on `url`; a migration finds
    the process's settings in `attributes["settings"]` (`settings`, or the
    environment's)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.attributes["database_url"] = url
    cfg.attributes["settings"] = config.load() if settings is None else settings
    return cfg


def ensure_database(url):
    """Create the database `url` names, if it does not exist yet."""
    target = make_url(config.sqlalchemy_url(url))
    server = target.set(drivername="postgresql", database="postgres")
    dsn = server.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another process made it first
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.database)))


def drop_database(url):
    target = make_url(config.sqlalchemy_url(url))
    server = target.set(drivername="postgresql", database="postgres")
    with psycopg.connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target.database))
        )


def upgrade(service, url, settings=None):
    ensure_database(url)
    command.upgrade(alembic_config(service, url, settings), "head")


def upgrade_all(settings):
    for service, key in config.DATABASE_KEYS.items():
        upgrade(service, settings[key], settings)


def run_migrations(metadata):
    """The body of every service's migrations/env.py (online mode only)."""
    engine = make_engine(context.config.attributes["database_url"])
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=metadata)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


if __name__ == "__main__":
    try:
        upgrade_all(config.load())
    except MigrationRefused as refused:
        sys.exit(str(refused))
    sys.exit(0)
