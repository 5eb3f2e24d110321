"""Referrals left unanswered past `respond_by` become overdue, announced
once even with several replicas sweeping."""

import eventlet
import pytest
from sqlalchemy import text

from services.referrals.service import ReferralsService
from tests.services.conftest import caller_of
from tests.support import data
from tests.support.sinks import wait_for

SECONDS = 1.0


@pytest.fixture
def replicas(container_factory, service_config, agencies):
    config = dict(service_config, REFERRAL_RESPONSE_HOURS=str(SECONDS / 3600), OVERDUE_SWEEP_SECONDS="0.05")
    made = [container_factory(ReferralsService, config) for _ in range(3)]
    for container in made:
        container.start()
    return [caller_of(container) for container in made]


def overdue_events(engines, referral_id):
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM outbox WHERE event_type = 'referral_overdue' "
                "AND payload->>'referral_id' = :id"
            ),
            {"id": referral_id},
        ).scalar()


def test_an_unanswered_referral_becomes_overdue_once(replicas, pair, engines):
    referrals = replicas[0]
    sender, receiver, _ = pair
    waiting = referrals("create_referral", sender, data.referral(receiver))
    answered = referrals("create_referral", sender, data.referral(receiver))
    referrals("move_referral", receiver, answered["id"], "accept", {})
    assert referrals("get_referral", receiver, waiting["id"])["overdue"] is False

    wait_for(lambda: overdue_events(engines, waiting["id"]), timeout=10, what="the overdue event")
    wait_for(lambda: referrals("get_referral", receiver, waiting["id"])["overdue"], what="overdue: true")
    eventlet.sleep(0.5)  # every replica sweeps several more times
    assert overdue_events(engines, waiting["id"]) == 1
    assert overdue_events(engines, answered["id"]) == 0
    history = referrals("referral_history", sender, waiting["id"])["items"]
    assert [entry["event"] for entry in history] == ["created", "overdue"]
    assert history[1]["actor"] == {"type": "system", "id": None, "name": "overdue timer"}

    listed = referrals("list_referrals", sender, {"overdue": True})
    assert [item["id"] for item in listed["items"]] == [waiting["id"]]
    not_overdue = referrals("list_referrals", sender, {"overdue": False})
    assert [item["id"] for item in not_overdue["items"]] == [answered["id"]]
    # an answer ends the overdue state
    referrals("move_referral", receiver, waiting["id"], "decline", {"reason": "No capacity"})
    assert referrals("get_referral", receiver, waiting["id"])["overdue"] is False
