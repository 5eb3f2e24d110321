"""Migrations on a database with data already in it: the agencies' 0003
gives every existing contact a stable id of its own and keeps the rest."""
import json
import uuid

from alembic import command
from sqlalchemy import text

from shared import migrate
from shared.db import make_engine
from tests.conftest import own_databases


def test_existing_contacts_get_ids_of_their_own():
    url = own_databases("migration" + uuid.uuid4().hex[:6])["AGENCIES_DATABASE_URL"]
    migrate.ensure_database(url)
    try:
        command.upgrade(migrate.alembic_config("agencies", url), "0002")
        contacts = [{"name": "Leyla", "email": "leyla@example.org", "language": "az", "channels": ["email"]},
                    {"name": "Farid", "email": "farid@example.org", "language": "ru", "channels": ["email"]}]
        engine = make_engine(url, pool_size=1)
        with engine.begin() as conn:
            for name, listed in (("Two contacts", contacts), ("No contact", [])):
                conn.execute(text(
                    "INSERT INTO agencies (id, name, search_name, kind, services, regions, languages, "
                    "accepting_referrals, contacts, created_at, updated_at) VALUES (gen_random_uuid(), :name, "
                    ":name, 'ngo', '{}', '{}', '{}', true, CAST(:contacts AS jsonb), now(), now())"),
                    {"name": name, "contacts": json.dumps(listed)})
        command.upgrade(migrate.alembic_config("agencies", url), "head")
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT name, contacts FROM agencies")).all())
        engine.dispose()
        assert stored["No contact"] == []
        ids = [contact.pop("id") for contact in stored["Two contacts"]]
        assert stored["Two contacts"] == contacts  # the same contacts, in the same order
        assert len({uuid.UUID(contact_id) for contact_id in ids}) == 2
    finally:
        migrate.drop_database(url)
