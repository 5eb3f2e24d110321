"""The referrals service through its RPC entrypoints, with the real agencies
service answering its directory questions."""

import datetime
import re

import eventlet
import pytest
from nameko.events import event_handler
from sqlalchemy import text

from shared.contract.errors import Conflict, Forbidden, InvalidInput, NotFound
from tests.support import data
from tests.support.sinks import wait_for


def parse(timestamp):
    return datetime.datetime.fromisoformat(timestamp)


def test_a_new_referral_is_sent_with_a_reference_and_a_deadline(referrals, pair):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    assert made["status"] == "sent"
    assert re.fullmatch(r"REF-\d{4}-\d{6}", made["reference"])
    assert made["sending_agency_id"] == sender and made["receiving_agency_id"] == receiver
    assert parse(made["respond_by"]) - parse(made["created_at"]) == datetime.timedelta(hours=72)
    assert made["overdue"] is False
    assert made["returnee"]["family_name"] == "Mammadova"


def test_urgent_referrals_get_half_the_time(referrals, pair):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver, priority="urgent"))
    assert parse(made["respond_by"]) - parse(made["created_at"]) == datetime.timedelta(hours=36)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"consent": {"given": False}}, "consent.given"),
        ({"service_type": "legal"}, "service_type"),  # the receiver offers housing and employment
        ({"returnee": data.returnee(region="AZ-ZZ")}, "returnee.region"),
        ({"returnee": data.returnee(phone="055 222 33 44")}, "returnee.phone"),
        ({"returnee": data.returnee(date_of_birth="2999-01-01")}, "returnee.date_of_birth"),
        ({"returnee": data.returnee(returned_from="XX")}, "returnee.returned_from"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_refusals_name_the_field(referrals, pair, change, field):
    sender, receiver, _ = pair
    with pytest.raises(InvalidInput) as refused:
        referrals("create_referral", sender, dict(data.referral(receiver), **change))
    assert field in refused.value.errors


def test_the_receiver_must_exist_accept_and_not_be_the_sender(referrals, agencies, pair):
    sender, receiver, _ = pair
    for target in ("6f1c1b8e-0000-4000-8000-000000000000", sender):
        with pytest.raises(InvalidInput) as refused:
            referrals("create_referral", sender, data.referral(target))
        assert "receiving_agency_id" in refused.value.errors
    agencies("update_agency", receiver, {"accepting_referrals": False}, True)
    with pytest.raises(InvalidInput) as refused:
        referrals("create_referral", sender, data.referral(receiver))
    assert "receiving_agency_id" in refused.value.errors


def test_a_change_to_the_receiver_counts_for_the_very_next_referral(referrals, agencies, pair):
    """The referrals service keeps the receivers it has checked; a change in
    the directory reaches it before the change's call returns."""
    sender, receiver, _ = pair
    referrals("create_referral", sender, data.referral(receiver))  # the receiver is now cached
    agencies("update_agency", receiver, {"accepting_referrals": False}, True)
    with pytest.raises(InvalidInput) as refused:
        referrals("create_referral", sender, data.referral(receiver))
    assert "receiving_agency_id" in refused.value.errors
    agencies("update_agency", receiver, {"accepting_referrals": True, "services": ["legal"]}, True)
    with pytest.raises(InvalidInput) as refused:
        referrals("create_referral", sender, data.referral(receiver, service_type="housing"))
    assert "service_type" in refused.value.errors
    assert (
        referrals("create_referral", sender, data.referral(receiver, service_type="legal"))["status"]
        == "sent"
    )


def test_only_the_two_agencies_see_a_referral(referrals, pair, engines):
    sender, receiver, outsider = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    assert referrals("get_referral", receiver, made["id"])["id"] == made["id"]
    assert referrals("get_referral", sender, made["id"])["id"] == made["id"]
    with pytest.raises(NotFound):
        referrals("get_referral", outsider, made["id"])
    assert referrals("list_referrals", outsider, {})["total"] == 0
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        readers = (
            conn.execute(
                text(
                    "SELECT agency_id::text FROM referral_access_log WHERE referral_id = :id AND action = 'read'"
                ),
                {"id": made["id"]},
            )
            .scalars()
            .all()
        )
    assert sorted(readers) == sorted([sender, receiver])


def test_every_listed_referral_is_logged_as_read_by_the_lister(referrals, pair, engines):
    sender, receiver, _ = pair
    made = [referrals("create_referral", sender, data.referral(receiver))["id"] for _ in range(3)]
    page = referrals("list_referrals", receiver, {"per_page": 2})
    assert page["total"] >= 3 and len(page["items"]) == 2
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        logged = conn.execute(
            text(
                "SELECT referral_id::text, agency_id::text FROM referral_access_log WHERE action = 'list' "
                "AND referral_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": made},
        ).all()
    assert sorted(logged) == sorted((item["id"], receiver) for item in page["items"])


def test_moves_follow_the_state_machine(referrals, pair):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    with pytest.raises(Forbidden):
        referrals("move_referral", sender, made["id"], "accept", {})
    with pytest.raises(Conflict):
        referrals("move_referral", receiver, made["id"], "complete", {"outcome": "Housed"})
    assert referrals("move_referral", receiver, made["id"], "accept", {})["status"] == "accepted"
    assert referrals("move_referral", receiver, made["id"], "start", {})["status"] == "in_progress"
    done = referrals("move_referral", receiver, made["id"], "complete", {"outcome": "Housed in Ganja"})
    assert done["status"] == "completed" and done["outcome"] == "Housed in Ganja"
    with pytest.raises(Conflict):
        referrals("move_referral", sender, made["id"], "cancel", {"reason": "Too late"})
    history = referrals("referral_history", sender, made["id"])["items"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "sent"),
        ("sent", "accepted"),
        ("accepted", "in_progress"),
        ("in_progress", "completed"),
    ]
    assert history[-1]["detail"] == "Housed in Ganja"


def test_the_referral_and_its_event_are_written_together(referrals, pair, engines):
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        payload = conn.execute(
            text("SELECT payload FROM outbox WHERE payload->>'referral_id' = :id"), {"id": made["id"]}
        ).scalar_one()
    assert payload["event_type"] == "referral_sent"
    assert payload["reference"] == made["reference"]
    for value in data.PERSONAL_VALUES:
        assert value not in str(payload)


class Listener:
    """Stands where the notifications service listens."""

    name = "listener"
    received = []

    @event_handler("referrals", "referral_sent")
    def on_sent(self, payload):
        Listener.received.append(payload)


def test_the_relay_publishes_the_event_with_confirms_once(
    container_factory, service_config, referrals, pair, engines
):
    Listener.received = []
    container_factory(Listener, service_config).start()
    sender, receiver, _ = pair
    made = referrals("create_referral", sender, data.referral(receiver))
    wait_for(lambda: Listener.received, what="the referral_sent event")
    assert Listener.received[0]["referral_id"] == made["id"]
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        wait_for(
            lambda: conn.execute(
                text("SELECT published_at FROM outbox WHERE payload->>'referral_id' = :id"),
                {"id": made["id"]},
            ).scalar(),
            what="the row marked published",
        )
    eventlet.sleep(0.3)  # several relay rounds later, still one delivery
    assert len(Listener.received) == 1
