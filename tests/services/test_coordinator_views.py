"""What the referrals service gives the coordinator pages: the inbox in the
order a receiver must act, a referral with its history and the moves its
viewer may make, and every read and move written with the coordinator."""

import uuid

import pytest
from sqlalchemy import text

from shared.contract.errors import InvalidInput, NotFound
from tests.support import data

COORDINATOR = {"type": "coordinator", "id": str(uuid.uuid4()), "name": "Leyla Aliyeva"}


def test_the_inbox_puts_what_needs_an_answer_first(referrals, pair, engines):
    sender, receiver, _ = pair
    made = {
        name: referrals("create_referral", sender, data.referral(receiver, priority=priority))
        for name, priority in (
            ("old_overdue", "normal"),
            ("accepted", "normal"),
            ("urgent", "urgent"),
            ("new", "normal"),
            ("overdue", "normal"),
        )
    }
    referrals("move_referral", receiver, made["accepted"]["id"], "accept", {})
    with engines["REFERRALS_DATABASE_URL"].begin() as conn:
        conn.execute(
            text("UPDATE referrals SET respond_by = now() - interval '1 hour' WHERE id = ANY(:ids)"),
            {"ids": [uuid.UUID(made[name]["id"]) for name in ("old_overdue", "overdue")]},
        )
    boxes = referrals("coordinator_inbox", receiver, {"per_page": 10}, COORDINATOR)
    order = {item["id"]: name for name, item in made.items()}
    assert [order[item["id"]] for item in boxes["received"]["items"]] == [
        "overdue",
        "old_overdue",
        "urgent",
        "new",
        "accepted",
    ]
    assert boxes["sent"]["items"] == [] and boxes["received"]["total"] == 5
    sent = referrals("coordinator_inbox", sender, {"box": "sent", "service_type": "housing"}, COORDINATOR)
    assert [order[item["id"]] for item in sent["sent"]["items"]] == [
        "overdue",
        "new",
        "urgent",
        "accepted",
        "old_overdue",
    ]  # newest first
    assert sent["received"]["items"] == []
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        logged = conn.execute(
            text(
                "SELECT action, actor_type, actor_id::text, actor_name, count(*) "
                "FROM referral_access_log WHERE action = 'list' "
                "GROUP BY action, actor_type, actor_id, actor_name"
            )
        ).all()
    assert logged == [("list", "coordinator", COORDINATOR["id"], "Leyla Aliyeva", 10)]


def test_a_referral_page_gives_its_history_and_the_moves_of_each_side(referrals, pair):
    sender, receiver, outsider = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    as_receiver = referrals("referral_with_history", receiver, made["id"], COORDINATOR)
    assert as_receiver["moves"] == ["accept", "decline"]
    assert referrals("referral_with_history", sender, made["id"], COORDINATOR)["moves"] == ["cancel"]
    referrals("move_referral", receiver, made["id"], "accept", {}, COORDINATOR)
    page = referrals("referral_with_history", receiver, made["id"], COORDINATOR)
    assert page["moves"] == ["start"] and page["referral"]["status"] == "accepted"
    assert [(entry["event"], entry["actor"]) for entry in page["items"]] == [
        ("created", None),
        ("accept", COORDINATOR),
    ]
    with pytest.raises(NotFound):
        referrals("referral_with_history", outsider, made["id"], COORDINATOR)


def test_an_actor_of_no_known_kind_is_refused_and_nothing_moves(referrals, pair):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    with pytest.raises(InvalidInput) as refused:
        referrals(
            "move_referral", receiver, made["id"], "accept", {}, {"type": "robot", "id": None, "name": "x"}
        )
    assert "type" in refused.value.errors
    assert referrals("get_referral", receiver, made["id"])["status"] == "sent"
