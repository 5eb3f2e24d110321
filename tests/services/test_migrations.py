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


def test_referrals_made_before_erasure_keep_their_region_apart_and_their_closing_time():
    """The referrals' 0006: the region copied out of the returnee, the time
    of the final status from the history, and history details erasable."""
    url = own_databases("migration" + uuid.uuid4().hex[:6])["REFERRALS_DATABASE_URL"]
    migrate.ensure_database(url)
    engine = make_engine(url, pool_size=1)
    try:
        command.upgrade(migrate.alembic_config("referrals", url), "0004")
        made = {"open": uuid.uuid4(), "declined": uuid.uuid4()}
        with engine.begin() as conn:
            for n, (status, referral_id) in enumerate(made.items()):
                final = status == "declined"
                conn.execute(text(
                    "INSERT INTO referrals (id, reference, status, service_type, priority, sending_agency_id, "
                    "receiving_agency_id, reason, returnee, consent, respond_by, created_at, updated_at) VALUES "
                    "(:id, :reference, :status, 'housing', 'normal', gen_random_uuid(), gen_random_uuid(), 'Why', "
                    "CAST(:returnee AS jsonb), '{\"given\": true}', now(), now() - interval '10 days', now())"),
                    {"id": referral_id, "reference": f"REF-2026-00000{n}", "status": "declined" if final else "sent",
                     "returnee": json.dumps({"given_name": "Aysel", "family_name": "M", "region": "AZ-GA"})})
                conn.execute(text(
                    "INSERT INTO referral_history (id, referral_id, at, event, to_status, detail) VALUES "
                    "(gen_random_uuid(), :id, now() - interval '10 days', 'created', 'sent', 'Why')"),
                    {"id": referral_id})
                if final:
                    conn.execute(text(
                        "INSERT INTO referral_history (id, referral_id, at, event, from_status, to_status, detail) "
                        "VALUES (gen_random_uuid(), :id, now() - interval '5 days', 'decline', 'sent', 'declined', "
                        "'Full')"), {"id": referral_id})
        command.upgrade(migrate.alembic_config("referrals", url), "head")
        with engine.begin() as conn:
            rows = {row.id: row for row in conn.execute(text(
                "SELECT id, region, closed_at, now() - closed_at AS age, erased_at FROM referrals"))}
            assert {row.region for row in rows.values()} == {"AZ-GA"}
            assert rows[made["open"]].closed_at is None
            assert 4.9 < rows[made["declined"]].age.total_seconds() / 86400 < 5.1
            assert conn.execute(text("UPDATE referral_history SET detail = NULL")).rowcount == 3
    finally:
        engine.dispose()
        migrate.drop_database(url)
