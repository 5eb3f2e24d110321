"""Migrations on a database with data already in it: the agencies' 0003
gives every existing contact a stable id of its own and keeps the rest; the
referrals' 0005 seals the returnee's data written in clear, 0006 keeps the
time of a referral's final status, 0007 its answer's and completion's."""

import json
import uuid

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from services.referrals import cases
from shared import config
from shared.storage import migrate
from shared.storage.db import make_engine
from tests.conftest import DATA_ENCRYPTION_KEYS, SEALER, own_databases
from tests.support import data


def test_existing_contacts_get_ids_of_their_own():
    url = own_databases("migration" + uuid.uuid4().hex[:6])["AGENCIES_DATABASE_URL"]
    migrate.ensure_database(url)
    try:
        command.upgrade(migrate.alembic_config("agencies", url), "0002")
        contacts = [
            {"name": "Leyla", "email": "leyla@example.org", "language": "az", "channels": ["email"]},
            {"name": "Farid", "email": "farid@example.org", "language": "ru", "channels": ["email"]},
        ]
        engine = make_engine(url, pool_size=1)
        with engine.begin() as conn:
            for name, listed in (("Two contacts", contacts), ("No contact", [])):
                conn.execute(
                    text(
                        "INSERT INTO agencies (id, name, search_name, kind, services, regions, languages, "
                        "accepting_referrals, contacts, created_at, updated_at) VALUES (gen_random_uuid(), :name, "
                        ":name, 'ngo', '{}', '{}', '{}', true, CAST(:contacts AS jsonb), now(), now())"
                    ),
                    {"name": name, "contacts": json.dumps(listed)},
                )
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


def test_referrals_in_clear_are_sealed_by_0005():
    """Referrals written before 0005 keep what they said, now sealed; their
    idempotency keys still answer; without a key the migration refuses."""
    url = own_databases("migration" + uuid.uuid4().hex[:6])["REFERRALS_DATABASE_URL"]
    migrate.ensure_database(url)
    engine = make_engine(url, pool_size=1)
    try:
        command.upgrade(migrate.alembic_config("referrals", url), "0004")
        returnee = data.returnee(given_name="Günel", family_name="Məmmədova", region="AZ-BA")
        referral_id, sender = uuid.uuid4(), uuid.uuid4()
        body = data.referral(uuid.uuid4(), returnee=returnee, reason="Günel needs a flat.")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO referrals (id, reference, status, service_type, priority, sending_agency_id, "
                    "receiving_agency_id, reason, returnee, consent, outcome, respond_by, created_at, updated_at) "
                    "VALUES (:id, 'REF-2026-000001', 'completed', 'housing', 'normal', :sender, :receiver, :reason, "
                    "CAST(:returnee AS jsonb), CAST(:consent AS jsonb), 'Günel has a flat.', now(), now(), now())"
                ),
                {
                    "id": referral_id,
                    "sender": sender,
                    "receiver": body["receiving_agency_id"],
                    "reason": body["reason"],
                    "returnee": json.dumps(returnee),
                    "consent": json.dumps(body["consent"]),
                },
            )
            for event, detail in (
                ("created", body["reason"]),
                ("accept", None),
                ("complete", "Günel has a flat."),
            ):
                conn.execute(
                    text(
                        "INSERT INTO referral_history (id, referral_id, at, event, detail) "
                        "VALUES (gen_random_uuid(), :id, clock_timestamp(), :event, :detail)"
                    ),
                    {"id": referral_id, "event": event, "detail": detail},
                )
            conn.execute(
                text(
                    "INSERT INTO idempotency_keys (agency_id, key, request_digest, referral_id, created_at) "
                    "VALUES (:sender, 'key-1', :digest, :id, now())"
                ),
                {"sender": sender, "digest": cases.request_digest(body), "id": referral_id},
            )
        without_key = config.load(DATA_ENCRYPTION_KEYS="")
        with pytest.raises(migrate.MigrationRefused, match="DATA_ENCRYPTION_KEYS is not set"):
            command.upgrade(migrate.alembic_config("referrals", url, without_key), "head")
        command.upgrade(
            migrate.alembic_config("referrals", url, config.load(DATA_ENCRYPTION_KEYS=DATA_ENCRYPTION_KEYS)),
            "head",
        )
        with Session(engine) as session:
            referral = cases.read(session, SEALER, sender, referral_id)
            history = cases.history(session, SEALER, sender, referral_id)["items"]
            again = cases.find_idempotent(session, SEALER, sender, "key-1", cases.request_digest(body))
        assert referral["returnee"] == returnee and referral["consent"] == body["consent"]
        assert (referral["reason"], referral["outcome"]) == ("Günel needs a flat.", "Günel has a flat.")
        assert [entry["detail"] for entry in history] == ["Günel needs a flat.", None, "Günel has a flat."]
        assert again["id"] == str(referral_id)
        with engine.connect() as conn:
            stored = " ".join(
                conn.scalars(
                    text(
                        "SELECT t::text FROM referrals AS t UNION ALL "
                        "SELECT t::text FROM referral_history AS t"
                    )
                )
            )
            region = conn.scalar(text("SELECT returnee_region FROM referrals"))
        assert "Günel" not in stored and "Günel".encode().hex() not in stored and region == "AZ-BA"
        # history stays append-only but for its details
        with engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("UPDATE referral_history SET event = 'forged'"))
        with_key = config.load(DATA_ENCRYPTION_KEYS=DATA_ENCRYPTION_KEYS)
        command.downgrade(migrate.alembic_config("referrals", url, with_key), "0004")  # back in clear
        with engine.connect() as conn:
            assert conn.execute(text("SELECT returnee, consent, reason, outcome FROM referrals")).one() == (
                returnee,
                body["consent"],
                "Günel needs a flat.",
                "Günel has a flat.",
            )
            assert conn.scalar(text("SELECT count(*) FROM referral_history WHERE detail LIKE 'Günel%'")) == 2
    finally:
        engine.dispose()
        migrate.drop_database(url)


def test_0005_needs_no_key_on_an_empty_database():
    url = own_databases("migration" + uuid.uuid4().hex[:6])["REFERRALS_DATABASE_URL"]
    migrate.ensure_database(url)
    try:
        command.upgrade(
            migrate.alembic_config("referrals", url, config.load(DATA_ENCRYPTION_KEYS="")), "head"
        )
    finally:
        migrate.drop_database(url)


def test_referrals_made_before_erasure_keep_their_region_apart_and_their_closing_time():
    """The referrals' 0006 (after 0005 sealed them): the region in clear, the
    time of the final status from the history, and history details erasable."""
    url = own_databases("migration" + uuid.uuid4().hex[:6])["REFERRALS_DATABASE_URL"]
    migrate.ensure_database(url)
    engine = make_engine(url, pool_size=1)
    try:
        command.upgrade(migrate.alembic_config("referrals", url), "0004")
        made = {"open": uuid.uuid4(), "declined": uuid.uuid4()}
        with engine.begin() as conn:
            for n, (status, referral_id) in enumerate(made.items()):
                final = status == "declined"
                conn.execute(
                    text(
                        "INSERT INTO referrals (id, reference, status, service_type, priority, sending_agency_id, "
                        "receiving_agency_id, reason, returnee, consent, respond_by, created_at, updated_at) VALUES "
                        "(:id, :reference, :status, 'housing', 'normal', gen_random_uuid(), gen_random_uuid(), 'Why', "
                        "CAST(:returnee AS jsonb), '{\"given\": true}', now(), now() - interval '10 days', now())"
                    ),
                    {
                        "id": referral_id,
                        "reference": f"REF-2026-00000{n}",
                        "status": "declined" if final else "sent",
                        "returnee": json.dumps(
                            {"given_name": "Aysel", "family_name": "M", "region": "AZ-GA"}
                        ),
                    },
                )
                conn.execute(
                    text(
                        "INSERT INTO referral_history (id, referral_id, at, event, to_status, detail) VALUES "
                        "(gen_random_uuid(), :id, now() - interval '10 days', 'created', 'sent', 'Why')"
                    ),
                    {"id": referral_id},
                )
                if final:
                    conn.execute(
                        text(
                            "INSERT INTO referral_history (id, referral_id, at, event, from_status, to_status, detail) "
                            "VALUES (gen_random_uuid(), :id, now() - interval '5 days', 'decline', 'sent', 'declined', "
                            "'Full')"
                        ),
                        {"id": referral_id},
                    )
        command.upgrade(
            migrate.alembic_config("referrals", url, config.load(DATA_ENCRYPTION_KEYS=DATA_ENCRYPTION_KEYS)),
            "head",
        )
        with engine.begin() as conn:
            rows = {
                row.id: row
                for row in conn.execute(
                    text(
                        "SELECT id, returnee_region AS region, closed_at, now() - closed_at AS age, erased_at FROM referrals"
                    )
                )
            }
            assert {row.region for row in rows.values()} == {"AZ-GA"}
            assert rows[made["open"]].closed_at is None
            assert 4.9 < rows[made["declined"]].age.total_seconds() / 86400 < 5.1
            assert conn.execute(text("UPDATE referral_history SET detail = NULL")).rowcount == 3
            conn.execute(
                text("UPDATE referrals SET returnee = NULL, consent = NULL WHERE id = :id"),
                {"id": made["declined"]},
            )  # as erasure leaves it
        # Down again: the erased referral keeps its region, and nothing else.
        command.downgrade(
            migrate.alembic_config("referrals", url, config.load(DATA_ENCRYPTION_KEYS=DATA_ENCRYPTION_KEYS)),
            "0004",
        )
        with engine.connect() as conn:
            assert conn.execute(
                text("SELECT returnee, consent FROM referrals WHERE id = :id"), {"id": made["declined"]}
            ).one() == ({"region": "AZ-GA", "preferred_language": None}, None)
    finally:
        engine.dispose()
        migrate.drop_database(url)


def test_existing_referrals_get_their_answer_and_completion_times_for_reports():
    """The referrals' 0007: each referral's answer and completion times,
    from its history; then the trigger keeps them, and down again drops them."""
    url = own_databases("migration" + uuid.uuid4().hex[:6])["REFERRALS_DATABASE_URL"]
    migrate.ensure_database(url)
    alembic = migrate.alembic_config("referrals", url, config.load(DATA_ENCRYPTION_KEYS=DATA_ENCRYPTION_KEYS))
    try:
        command.upgrade(alembic, "0004")
        engine = make_engine(url, pool_size=1)
        done, declined, waiting = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        with engine.begin() as conn:
            for referral_id, status in ((done, "completed"), (declined, "declined"), (waiting, "sent")):
                conn.execute(
                    text(
                        "INSERT INTO referrals (id, reference, status, service_type, priority, sending_agency_id, "
                        "receiving_agency_id, returnee, consent, respond_by, created_at, updated_at) VALUES (:id, "
                        ":reference, :status, 'housing', 'normal', gen_random_uuid(), gen_random_uuid(), "
                        "'{\"region\": \"AZ-BA\"}', '{}', "
                        "now(), '2026-01-01T08:00Z', now())"
                    ),
                    {"id": referral_id, "reference": str(referral_id), "status": status},
                )
            for referral_id, event, at in (
                (done, "accept", "2026-01-01T10:00Z"),
                (done, "start", "2026-01-02T10:00Z"),
                (done, "complete", "2026-01-09T10:00Z"),
                (declined, "decline", "2026-01-03T08:00Z"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO referral_history (id, referral_id, at, event) "
                        "VALUES (gen_random_uuid(), :id, :at, :event)"
                    ),
                    {"id": referral_id, "at": at, "event": event},
                )
        command.upgrade(alembic, "0007")
        kept = (
            "SELECT id, to_char(answered_at AT TIME ZONE 'UTC', 'MM-DD HH24'), "
            "to_char(completed_at AT TIME ZONE 'UTC', 'MM-DD HH24') FROM referrals"
        )
        with engine.begin() as conn:
            assert {row[0]: tuple(row[1:]) for row in conn.execute(text(kept))} == {
                done: ("01-01 10", "01-09 10"),
                declined: ("01-03 08", None),
                waiting: (None, None),
            }
            conn.execute(
                text(
                    "INSERT INTO referral_history (id, referral_id, at, event) "
                    "VALUES (gen_random_uuid(), :id, '2026-01-05T12:00Z', 'accept')"
                ),
                {"id": waiting},
            )
            assert conn.execute(text(kept + " WHERE id = :id"), {"id": waiting}).one()[1:] == (
                "01-05 12",
                None,
            )
        command.downgrade(alembic, "0004")
        with engine.connect() as conn:
            assert "answered_at" not in conn.execute(text("SELECT * FROM referrals LIMIT 1")).keys()
        engine.dispose()
    finally:
        migrate.drop_database(url)
