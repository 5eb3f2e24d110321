"""Migrations on a database with data already in it: the agencies' 0003
gives every existing contact a stable id of its own and keeps the rest; the
referrals' 0007 gives every referral its answer's and completion's times."""
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


def test_existing_referrals_get_their_answer_and_completion_times_for_reports():
    """The referrals' 0007: each referral's answer and completion times,
    from its history; then the trigger keeps them, and down again drops them."""
    url = own_databases("migration" + uuid.uuid4().hex[:6])["REFERRALS_DATABASE_URL"]
    migrate.ensure_database(url)
    config = migrate.alembic_config("referrals", url)
    try:
        command.upgrade(config, "0004")
        engine = make_engine(url, pool_size=1)
        done, declined, waiting = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        with engine.begin() as conn:
            for referral_id, status in ((done, "completed"), (declined, "declined"), (waiting, "sent")):
                conn.execute(text(
                    "INSERT INTO referrals (id, reference, status, service_type, priority, sending_agency_id, "
                    "receiving_agency_id, returnee, consent, respond_by, created_at, updated_at) VALUES (:id, "
                    ":reference, :status, 'housing', 'normal', gen_random_uuid(), gen_random_uuid(), '{}', '{}', "
                    "now(), '2026-01-01T08:00Z', now())"), {"id": referral_id, "reference": str(referral_id),
                                                              "status": status})
            for referral_id, event, at in ((done, "accept", "2026-01-01T10:00Z"), (done, "start", "2026-01-02T10:00Z"),
                                           (done, "complete", "2026-01-09T10:00Z"),
                                           (declined, "decline", "2026-01-03T08:00Z")):
                conn.execute(text("INSERT INTO referral_history (id, referral_id, at, event) "
                                  "VALUES (gen_random_uuid(), :id, :at, :event)"),
                             {"id": referral_id, "at": at, "event": event})
        command.upgrade(config, "0007")
        kept = "SELECT id, to_char(answered_at AT TIME ZONE 'UTC', 'MM-DD HH24'), " \
               "to_char(completed_at AT TIME ZONE 'UTC', 'MM-DD HH24') FROM referrals"
        with engine.begin() as conn:
            assert {row[0]: tuple(row[1:]) for row in conn.execute(text(kept))} == {
                done: ("01-01 10", "01-09 10"), declined: ("01-03 08", None), waiting: (None, None)}
            conn.execute(text("INSERT INTO referral_history (id, referral_id, at, event) "
                              "VALUES (gen_random_uuid(), :id, '2026-01-05T12:00Z', 'accept')"), {"id": waiting})
            assert conn.execute(text(kept + " WHERE id = :id"), {"id": waiting}).one()[1:] == ("01-05 12", None)
        command.downgrade(config, "0004")
        with engine.connect() as conn:
            assert "answered_at" not in conn.execute(text("SELECT * FROM referrals LIMIT 1")).keys()
        engine.dispose()
    finally:
        migrate.drop_database(url)
