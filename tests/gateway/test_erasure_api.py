"""POST /v1/referrals/{id}/erase and GET /v1/referrals/{id}/access-log over
HTTP: who may, what they answer, and their problems."""

from tests.gateway.conftest import ADMIN_KEY, bearer
from tests.support import data


def test_the_sender_erases_and_reads_the_access_log_others_are_refused(client, new_agency):
    sender, sender_key = new_agency(name="Sender NGO")
    receiver, receiver_key = new_agency(name="Receiver NGO")
    _, outsider_key = new_agency(name="Outsider NGO")
    as_sender, as_receiver = bearer(sender_key["key"]), bearer(receiver_key["key"])
    made = client.post("/v1/referrals", headers=as_sender, json=data.referral(receiver["id"])).get_json()
    client.get(f"/v1/referrals/{made['id']}", headers=as_receiver)
    erase, log = f"/v1/referrals/{made['id']}/erase", f"/v1/referrals/{made['id']}/access-log"

    assert client.post(erase, headers=bearer(outsider_key["key"]), json={"reason": "x"}).status_code == 404
    assert client.post(erase, headers=as_receiver, json={"reason": "x"}).status_code == 403
    assert client.post(erase, headers=bearer(ADMIN_KEY), json={"reason": "x"}).status_code == 403
    missing = client.post(erase, headers=as_sender, json={})
    assert missing.status_code == 422 and "reason" in missing.get_json()["errors"]
    erased = client.post(erase, headers=as_sender, json={"reason": "Consent withdrawn"})
    assert erased.status_code == 200
    body = erased.get_json()
    assert body["returnee"] is None and body["erased_at"] and body["reason"] is None
    assert client.post(erase, headers=as_sender, json={"reason": "Again"}).get_json() == body
    assert client.get(f"/v1/referrals/{made['id']}", headers=as_receiver).get_json()["returnee"] is None

    page = client.get(log, headers=as_sender, query_string={"per_page": 2})
    assert page.status_code == 200
    listed = page.get_json()
    assert listed["per_page"] == 2 and listed["total"] == 3  # a read, the erasure, a read
    assert [(item["action"], item["agency_id"]) for item in listed["items"]] == [
        ("read", receiver["id"]),
        ("erase", sender["id"]),
    ]
    assert listed["items"][0]["actor"]["type"] == "api_key"
    assert client.get(log, headers=as_receiver).status_code == 403
    assert client.get(log, headers=bearer(outsider_key["key"])).status_code == 404
    assert client.get(log, headers=as_sender, query_string={"per_page": 0}).status_code == 422
