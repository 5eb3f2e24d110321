"""Erasure by the sender, and its refusals; the access log."""

import json
import uuid

import pytest
from sqlalchemy import text

from shared.contract.errors import Forbidden, InvalidInput, NotFound
from tests.support import data

NAME = "Zülfiyyə Qəhrəmanlı-Erasetest"  # distinctive, so that any copy of it is found
PERSON = data.returnee(
    given_name="Zülfiyyə",
    family_name="Qəhrəmanlı-Erasetest",
    phone="+994559871234",
    date_of_birth="1987-03-21",
    vulnerabilities=["Erasetest survivor of trafficking"],
)
TRACES = (
    "Qəhrəmanlı-Erasetest",
    "+994559871234",
    "1987-03-21",
    "Erasetest survivor",
    "Erasetest reason",
    "Erasetest outcome",
)
CODER = {"type": "api_key", "id": str(uuid.uuid4()), "name": "rk_live_ab12"}


def everything_in(engine):
    """Every row of every table of the database, as text."""
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
        return "\n".join(
            json.dumps(row, default=str, ensure_ascii=False)
            for table in list(tables)
            for row in conn.execute(text(f'SELECT to_jsonb(t) FROM "{table}" AS t')).scalars()
        )


def make_journey(referrals, sender, receiver, idempotency_key=None):
    """A referral accepted, started and completed, each text naming the returnee."""
    made = referrals(
        "create_referral",
        sender,
        data.referral(receiver, returnee=PERSON, reason=f"Erasetest reason: {NAME} needs a home."),
        idempotency_key,
        CODER,
    )
    referrals("move_referral", receiver, made["id"], "accept", {})
    referrals("move_referral", receiver, made["id"], "start", {})
    referrals(
        "move_referral", receiver, made["id"], "complete", {"outcome": f"Erasetest outcome: {NAME} housed."}
    )
    return made


def held_texts(db, referral_id):
    """How many of the referral's returnee, consent, reason and outcome, and
    of its history details, hold something."""
    with db.connect() as conn:
        return tuple(
            conn.execute(
                text("""
            SELECT count(returnee), count(consent), count(reason), count(outcome),
                   (SELECT count(detail) FROM referral_history WHERE referral_id = :id)
            FROM referrals WHERE id = :id"""),
                {"id": referral_id},
            ).one()
        )


def test_erasure_leaves_no_personal_data_in_the_database(referrals, pair, engines):
    sender, receiver, _ = pair
    made = make_journey(referrals, sender, receiver, idempotency_key="key-erase-1")
    db = engines["REFERRALS_DATABASE_URL"]
    # Sealed at rest (so no search of the clear text could find them): held until erased.
    assert held_texts(db, made["id"]) == (1, 1, 1, 1, 2)

    erased = referrals("erase_referral", sender, made["id"], {"reason": "Consent withdrawn"}, CODER)

    assert erased["returnee"] is None and erased["consent"] is None
    assert erased["reason"] is None and erased["outcome"] is None
    assert erased["erased_at"] and erased["status"] == "completed"
    assert erased["reference"] == made["reference"] and erased["service_type"] == "housing"
    assert held_texts(db, made["id"]) == (0, 0, 0, 0, 0)
    stored = everything_in(db)
    assert [trace for trace in TRACES if trace in stored] == []
    assert "Consent withdrawn" not in stored  # the erasure's reason is not kept either
    with db.connect() as conn:
        row = conn.execute(
            text("SELECT returnee_region AS region, version, erased_at FROM referrals WHERE id = :id"),
            {"id": made["id"]},
        ).one()
        digest = conn.execute(text("SELECT request_digest FROM idempotency_keys WHERE key = 'key-erase-1'"))
        assert digest.scalar_one() is None
    assert row.region == "AZ-GA" and row.version == 5  # created, accepted, started, completed, erased

    history = referrals("referral_history", sender, made["id"])["items"]
    assert [entry["event"] for entry in history] == ["created", "accept", "start", "complete", "erased"]
    assert [entry["detail"] for entry in history] == [None] * 5
    assert history[-1]["actor"] == CODER and history[-1]["agency_id"] == sender
    assert history[-1]["from_status"] == history[-1]["to_status"] == "completed"
    for reader in (sender, receiver):
        assert referrals("get_referral", reader, made["id"])["returnee"] is None
        assert referrals("list_referrals", reader, {})["items"][0]["returnee"] is None


def test_the_event_says_erased_and_carries_the_version(referrals, pair, engines):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver, returnee=PERSON))
    referrals("move_referral", receiver, made["id"], "accept", {})
    referrals("erase_referral", sender, made["id"], {"reason": "Consent withdrawn"}, CODER)
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        payloads = (
            conn.execute(
                text("SELECT payload FROM outbox WHERE payload->>'referral_id' = :id ORDER BY created_at"),
                {"id": made["id"]},
            )
            .scalars()
            .all()
        )
    assert [p["event_type"] for p in payloads] == ["referral_sent", "referral_accepted", "referral_erased"]
    erased = payloads[-1]
    assert erased["version"] == 3 and erased["status"] == "accepted"
    assert erased["acting_agency_id"] == sender and erased["receiving_agency_id"] == receiver
    assert not [trace for trace in TRACES if trace in json.dumps(payloads, ensure_ascii=False)]


def test_erasing_twice_answers_the_same_and_changes_nothing(referrals, pair, engines):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver, returnee=PERSON))
    first = referrals("erase_referral", sender, made["id"], {"reason": "Consent withdrawn"}, CODER)
    again = referrals("erase_referral", sender, made["id"], {"reason": "Asked again"}, CODER)
    assert again == first
    history = referrals("referral_history", sender, made["id"])["items"]
    assert [entry["event"] for entry in history] == ["created", "erased"]
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        events = conn.execute(
            text(
                "SELECT count(*) FROM outbox WHERE event_type = 'referral_erased' AND payload->>'referral_id' = :id"
            ),
            {"id": made["id"]},
        ).scalar()
    assert events == 1


def test_who_may_erase_in_the_order_of_the_moves(referrals, pair):
    sender, receiver, outsider = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    with pytest.raises(NotFound):
        referrals("erase_referral", outsider, made["id"], {})  # before the body is looked at
    with pytest.raises(NotFound):
        referrals("erase_referral", sender, str(uuid.uuid4()), {"reason": "x"})
    with pytest.raises(Forbidden):
        referrals("erase_referral", receiver, made["id"], {})
    with pytest.raises(InvalidInput) as refused:
        referrals("erase_referral", sender, made["id"], {"reason": ""})
    assert "reason" in refused.value.errors
    with pytest.raises(InvalidInput):
        referrals("erase_referral", sender, made["id"], {})
    assert referrals("get_referral", sender, made["id"])["returnee"] is not None  # nothing erased


@pytest.mark.parametrize("status_moves", [[], ["accept"], ["accept", "start"], ["decline"]])
def test_erasure_is_allowed_in_any_status(referrals, pair, status_moves):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    for move in status_moves:
        referrals(
            "move_referral",
            receiver,
            made["id"],
            move,
            {"reason": "No capacity"} if move == "decline" else {},
        )
    erased = referrals("erase_referral", sender, made["id"], {"reason": "Consent withdrawn"})
    assert erased["returnee"] is None and erased["erased_at"]


def test_a_move_after_erasure_keeps_no_text(referrals, pair):
    """The journey may go on (the work done, the case closed) but an erased
    referral takes no free text back."""
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    referrals("move_referral", receiver, made["id"], "accept", {})
    referrals("erase_referral", sender, made["id"], {"reason": "Consent withdrawn"})
    referrals("move_referral", receiver, made["id"], "start", {})
    completed = referrals("move_referral", receiver, made["id"], "complete", {"outcome": f"{NAME} housed"})
    assert completed["outcome"] is None and completed["status"] == "completed"
    history = referrals("referral_history", receiver, made["id"])["items"]
    assert history[-1]["event"] == "complete" and history[-1]["detail"] is None


def test_an_erased_referrals_idempotency_key_still_answers_it(referrals, pair):
    sender, receiver, _ = pair
    body = data.referral(receiver, returnee=PERSON)
    made = referrals("create_referral", sender, body, "key-erase-2")
    referrals("erase_referral", sender, made["id"], {"reason": "Consent withdrawn"})
    again = referrals("create_referral", sender, body, "key-erase-2")
    assert again["id"] == made["id"] and again["returnee"] is None


def test_history_stays_append_only_but_for_erasing_details(referrals, pair, engines):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    referrals("get_referral", sender, made["id"])  # an access-log entry
    db = engines["REFERRALS_DATABASE_URL"]
    # (the detail alone may change: a rotation seals it again, erasure empties it)
    for change in (
        "UPDATE referral_history SET detail = NULL, event = 'forged' WHERE referral_id = :id",
        "UPDATE referral_history SET at = now() WHERE referral_id = :id",
        "DELETE FROM referral_history WHERE referral_id = :id",
        "UPDATE referral_access_log SET action = 'x' WHERE referral_id = :id",
    ):
        with pytest.raises(Exception, match="append-only"), db.begin() as conn:
            conn.execute(text(change), {"id": made["id"]})
    with db.begin() as conn:
        assert (
            conn.execute(
                text("UPDATE referral_history SET detail = NULL WHERE referral_id = :id"), {"id": made["id"]}
            ).rowcount
            == 1
        )


def test_the_access_log_tells_the_sender_who_read_and_changed(referrals, pair):
    sender, receiver, outsider = pair
    coordinator = {"type": "coordinator", "id": str(uuid.uuid4()), "name": "Leyla Aliyeva"}
    made = referrals("create_referral", sender, data.referral(receiver), None, CODER)
    referrals("get_referral", receiver, made["id"], coordinator)
    referrals("move_referral", receiver, made["id"], "accept", {}, coordinator)
    referrals("list_referrals", sender, {}, CODER)
    referrals("referral_history", sender, made["id"], CODER)
    referrals("erase_referral", sender, made["id"], {"reason": "Consent withdrawn"}, CODER)

    log = referrals("referral_access_log", sender, made["id"], {})
    assert [(item["action"], item["agency_id"]) for item in log["items"]] == [
        ("read", receiver),
        ("accept", receiver),
        ("list", sender),
        ("history", sender),
        ("erase", sender),
    ]
    assert log["items"][0]["actor"] == coordinator and log["items"][-1]["actor"] == CODER
    assert log["total"] == 5 and log["page"] == 1
    assert set(log["items"][0]) == {"at", "agency_id", "actor", "action"}
    second = referrals("referral_access_log", sender, made["id"], {"page": 2, "per_page": 3})
    assert [item["action"] for item in second["items"]] == ["history", "erase"]

    with pytest.raises(Forbidden):
        referrals("referral_access_log", receiver, made["id"], {})
    with pytest.raises(NotFound):
        referrals("referral_access_log", outsider, made["id"], {})
    with pytest.raises(InvalidInput):
        referrals("referral_access_log", sender, made["id"], {"per_page": 1000})


def test_an_idempotent_replay_is_a_read_in_the_access_log(referrals, pair):
    """Answering a repeated request again shows the returnee's data: a read."""
    sender, receiver, _ = pair
    body = data.referral(receiver)
    made = referrals("create_referral", sender, body, "replayed-key", CODER)
    again = referrals("create_referral", sender, body, "replayed-key", CODER)
    assert again["id"] == made["id"]
    log = referrals("referral_access_log", sender, made["id"], {})
    assert [(item["action"], item["agency_id"], item["actor"]) for item in log["items"]] == [
        ("read", sender, CODER)
    ]
