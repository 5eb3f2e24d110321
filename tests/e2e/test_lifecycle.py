"""The referral lifecycle over HTTP, with real concurrent requests."""

import eventlet
import pytest

from tests.e2e.conftest import ADMIN_KEY
from tests.support import data


@pytest.fixture(scope="module")
def parties(network):
    made = {}
    for name, services in (
        ("sender", ["documentation"]),
        ("receiver", ["housing", "health"]),
        ("outsider", ["housing"]),
    ):
        agency = network.call("POST", "/v1/agencies", ADMIN_KEY, json=data.agency(services=services)).json()
        key = network.call(
            "POST", f"/v1/agencies/{agency['id']}/api-keys", ADMIN_KEY, json={"role": "agency"}
        ).json()["key"]
        made[name] = (agency["id"], key)
    return made


def refer(network, parties, **overrides):
    receiver_id = parties["receiver"][0]
    answer = network.call(
        "POST", "/v1/referrals", parties["sender"][1], json=data.referral(receiver_id, **overrides)
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def post(network, key, path, body=None):
    return network.call("POST", path, key, json=body)


def race(*calls):
    """Run the calls at the same moment; their answers' status codes."""
    pool = eventlet.GreenPool()
    threads = [pool.spawn(call) for call in calls]
    return [thread.wait().status_code for thread in threads]


def test_accept_racing_decline_has_exactly_one_winner(network, parties):
    sender_key, receiver_key = parties["sender"][1], parties["receiver"][1]
    for _ in range(5):
        path = f"/v1/referrals/{refer(network, parties)['id']}"
        accept, decline = race(
            lambda: post(network, receiver_key, path + "/accept"),
            lambda: post(network, receiver_key, path + "/decline", {"reason": "No capacity"}),
        )
        assert sorted((accept, decline)) == [200, 409]
        final = network.call("GET", path, sender_key).json()["status"]
        assert final == ("accepted" if accept == 200 else "declined")
        history = network.call("GET", path + "/history", sender_key).json()["items"]
        assert [entry["to_status"] for entry in history] == ["sent", final]


def test_accept_racing_cancel_ends_as_one_serial_order_would(network, parties):
    """API.md lets the sender cancel an accepted referral too, so the race
    has two honest outcomes: cancel first (accept then gets 409), or accept
    first and cancel after it. Never both lost, never a state out of order."""
    sender_key, receiver_key = parties["sender"][1], parties["receiver"][1]
    for _ in range(5):
        path = f"/v1/referrals/{refer(network, parties)['id']}"
        accept, cancel = race(
            lambda: post(network, receiver_key, path + "/accept"),
            lambda: post(network, sender_key, path + "/cancel", {"reason": "Found housing elsewhere"}),
        )
        assert cancel == 200
        history = network.call("GET", path + "/history", sender_key).json()["items"]
        if accept == 200:
            assert [entry["to_status"] for entry in history] == ["sent", "accepted", "cancelled"]
        else:
            assert accept == 409
            assert [entry["to_status"] for entry in history] == ["sent", "cancelled"]


def test_idempotency_key_answers_the_first_result_again(network, parties):
    body = data.referral(parties["receiver"][0])
    headers = {"Idempotency-Key": "e2e-key-1"}
    first = network.call("POST", "/v1/referrals", parties["sender"][1], json=body, headers=dict(headers))
    again = network.call("POST", "/v1/referrals", parties["sender"][1], json=body, headers=dict(headers))
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    other = network.call(
        "POST",
        "/v1/referrals",
        parties["sender"][1],
        json=dict(body, priority="urgent"),
        headers=dict(headers),
    )
    assert other.status_code == 409
    assert other.headers["Content-Type"] == "application/problem+json"


def test_identical_requests_racing_make_one_referral(network, parties):
    body = data.referral(parties["receiver"][0], reason="Racing twins")
    headers = {"Idempotency-Key": "e2e-race-key"}
    pool = eventlet.GreenPool()
    answers = [
        pool.spawn(
            network.call, "POST", "/v1/referrals", parties["sender"][1], json=body, headers=dict(headers)
        )
        for _ in range(6)
    ]
    answers = [answer.wait() for answer in answers]
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["id"] for answer in answers}) == 1
    references = {answer.json()["reference"] for answer in answers}
    assert len(references) == 1


def test_concurrent_creates_get_unique_references(network, parties):
    pool = eventlet.GreenPool()
    made = list(pool.imap(lambda _: refer(network, parties), range(12)))
    assert len({referral["reference"] for referral in made}) == 12


def test_who_may_do_what_over_http(network, parties):
    referral = refer(network, parties)
    path = f"/v1/referrals/{referral['id']}"
    sender_key, receiver_key, outsider_key = (parties[name][1] for name in ("sender", "receiver", "outsider"))
    assert post(network, sender_key, path + "/accept").status_code == 403
    assert post(network, outsider_key, path + "/accept").status_code == 404
    assert network.call("GET", path + "/history", outsider_key).status_code == 404
    conflict = post(network, receiver_key, path + "/start")
    assert conflict.status_code == 409
    assert conflict.json()["detail"] == "A referral that is sent cannot become in_progress."
    assert "errors" not in conflict.json()  # only where fields are at fault
    assert post(network, receiver_key, path + "/decline", {}).status_code == 422
    assert post(network, receiver_key, path + "/accept", {"surprise": True}).status_code == 422
    assert post(network, ADMIN_KEY, path + "/accept").status_code == 403
    assert network.call("GET", path, receiver_key).json()["status"] == "sent"


def test_lists_by_box_status_and_service_newest_first(network, parties):
    sender_key, receiver_key = parties["sender"][1], parties["receiver"][1]
    health = refer(network, parties, service_type="health")
    housing = refer(network, parties, service_type="housing")
    post(network, receiver_key, f"/v1/referrals/{housing['id']}/accept")

    def ids(key, **query):
        answer = network.call("GET", "/v1/referrals", key, params=query)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    sent = ids(sender_key, box="sent", per_page=100)
    assert sent.index(housing["id"]) < sent.index(health["id"])  # newest first
    assert ids(sender_key, box="received") == []
    assert housing["id"] in ids(receiver_key, box="received", per_page=100)
    health_only = ids(receiver_key, service_type="health", per_page=100)
    assert health["id"] in health_only and housing["id"] not in health_only
    accepted = ids(sender_key, status="accepted", per_page=100)
    assert housing["id"] in accepted and health["id"] not in accepted
    first, second = ids(sender_key, per_page=1, page=1), ids(sender_key, per_page=1, page=2)
    assert first != second and len(first) == len(second) == 1
    assert network.call("GET", "/v1/referrals", sender_key, params={"box": "elsewhere"}).status_code == 422
