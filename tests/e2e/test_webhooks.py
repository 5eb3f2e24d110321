"""Webhooks through the gateway on the real network: partners' receivers
on loopback hear each change of their referrals, signed, exactly once."""

import pytest

from tests.e2e.conftest import ADMIN_KEY, running_network
from tests.support import data
from tests.support.receivers import Receiver
from tests.support.sinks import wait_for

ALL_EVENTS = [
    "referral.sent",
    "referral.accepted",
    "referral.declined",
    "referral.started",
    "referral.completed",
    "referral.cancelled",
    "referral.overdue",
    "referral.erased",
]


@pytest.fixture(scope="module")
def network(rabbit_manager):
    # Receivers on loopback, over http: allowed for tests only.
    with running_network(rabbit_manager, WEBHOOK_ALLOW_PRIVATE="1", WEBHOOK_BACKOFF_SECONDS="0.2") as running:
        yield running


@pytest.fixture(scope="module")
def parties(network):
    made = {}
    for name in ("sender", "receiver", "outsider"):
        agency = network.call(
            "POST", "/v1/agencies", ADMIN_KEY, json=data.agency(services=["housing"])
        ).json()
        key = network.call(
            "POST", f"/v1/agencies/{agency['id']}/api-keys", ADMIN_KEY, json={"role": "agency"}
        ).json()["key"]
        made[name] = (agency["id"], key)
    return made


def subscribe(network, key, url, events=ALL_EVENTS):
    answer = network.call(
        "POST", "/v1/webhooks", key, json={"url": url, "events": events, "description": "case system"}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def journey(network, parties):
    """A referral sent, accepted, started and completed; its id."""
    sender_key, receiver_key = parties["sender"][1], parties["receiver"][1]
    referral = network.call(
        "POST", "/v1/referrals", sender_key, json=data.referral(parties["receiver"][0])
    ).json()
    path = f"/v1/referrals/{referral['id']}"
    for move, body in (("accept", None), ("start", None), ("complete", {"outcome": "Housed in Ganja"})):
        answer = network.call("POST", f"{path}/{move}", receiver_key, json=body)
        assert answer.status_code == 200, answer.text
    return referral["id"]


def test_each_agency_of_a_referral_hears_its_whole_journey_once_in_version_order(network, parties):
    with Receiver() as at_sender, Receiver() as at_receiver, Receiver() as at_outsider:
        hooks = {
            name: subscribe(network, parties[name][1], receiver.url)
            for name, receiver in (
                ("sender", at_sender),
                ("receiver", at_receiver),
                ("outsider", at_outsider),
            )
        }
        referral_id = journey(network, parties)
        for name, receiver in (("sender", at_sender), ("receiver", at_receiver)):
            wait_for(lambda: len(receiver.delivered()) >= 4, timeout=30, what=f"the {name}'s deliveries")
        for name, receiver in (("sender", at_sender), ("receiver", at_receiver)):
            heard = receiver.verified(hooks[name]["secret"])  # raises on any bad signature
            ids = [webhook_id for webhook_id, _ in heard]
            assert len(ids) == len(set(ids)) == 4, name  # each event once
            payloads = sorted((payload for _, payload in heard), key=lambda p: p["data"]["version"])
            assert [p["type"] for p in payloads] == [
                "referral.sent",
                "referral.accepted",
                "referral.started",
                "referral.completed",
            ], name
            assert [p["data"]["version"] for p in payloads] == [1, 2, 3, 4]
            assert {p["data"]["referral_id"] for p in payloads} == {referral_id}
            assert "returnee" not in str(payloads) and "Housed" not in str(payloads)  # no personal data
        assert at_outsider.requests == []
        listed = network.call(
            "GET", f"/v1/webhooks/{hooks['sender']['id']}/deliveries?status=delivered", parties["sender"][1]
        ).json()
        assert listed["total"] == 4 and {item["attempts"] for item in listed["items"]} == {1}
        for name in hooks:
            assert (
                network.call("DELETE", f"/v1/webhooks/{hooks[name]['id']}", parties[name][1]).status_code
                == 204
            )


def test_a_partner_manages_its_webhooks_over_http(network, parties):
    sender_id, key = parties["sender"]
    with Receiver() as receiver:
        made = subscribe(network, key, receiver.url, ["referral.accepted"])
        assert made["secret"].startswith("whsec_")
        other = parties["outsider"][1]
        assert network.call("GET", f"/v1/webhooks/{made['id']}", other).status_code == 404
        assert network.call("GET", "/v1/webhooks", ADMIN_KEY).status_code == 403
        refused = network.call(
            "POST", "/v1/webhooks", key, json={"url": receiver.url, "events": ["referral.lost"]}
        )
        assert refused.status_code == 422 and "events.0" in refused.json()["errors"]
        listed = network.call("GET", "/v1/webhooks", key).json()
        assert [item["id"] for item in listed["items"]] == [made["id"]] and "secret" not in listed["items"][0]
        changed = network.call("PATCH", f"/v1/webhooks/{made['id']}", key, json={"events": ["referral.sent"]})
        assert changed.status_code == 200 and changed.json()["events"] == ["referral.sent"]
        rotated = network.call("POST", f"/v1/webhooks/{made['id']}/rotate-secret", key)
        assert rotated.status_code == 200 and rotated.json()["secret"] != made["secret"]
        ping = network.call("POST", f"/v1/webhooks/{made['id']}/test", key)
        assert ping.status_code == 202
        wait_for(lambda: receiver.delivered(), timeout=30, what="the ping")
        [(webhook_id, payload)] = receiver.verified(rotated.json()["secret"])
        assert webhook_id == ping.json()["event_id"] and payload["type"] == "ping"
        assert receiver.verified(made["secret"])  # the old secret signs too, for 24 h
        assert network.call("DELETE", f"/v1/webhooks/{made['id']}", key).status_code == 204
        assert network.call("GET", f"/v1/webhooks/{made['id']}", key).status_code == 404
        with Receiver() as control:  # a webhook still there: once it hears, the deleted one would have
            subscribe(network, key, control.url, ["referral.sent"])
            sent = network.call(
                "POST", "/v1/referrals", parties["receiver"][1], json=data.referral(sender_id)
            )
            assert sent.status_code == 201
            wait_for(lambda: control.delivered(), timeout=30, what="the control webhook's delivery")
        assert len(receiver.requests) == 1  # nothing more to a deleted webhook
