"""The API's protective limits and headers (API.md, "Keys, contacts and
limits that protect the agencies"): an Idempotency-Key a btree index can
hold, CSV cells no spreadsheet runs, answers no cache keeps."""

import csv
import io

import pytest

from tests.gateway.conftest import ADMIN_KEY, bearer
from tests.support import data

REPORT = "/v1/reports/referrals?group_by=receiving_agency"


@pytest.fixture
def pair(new_agency):
    _, sender_key = new_agency(name="Sender NGO")
    receiver, _ = new_agency(name="Receiver NGO")
    return bearer(sender_key["key"]), receiver


def referral_count(client, headers):
    return client.get("/v1/referrals", headers=headers).get_json()["total"]


@pytest.mark.parametrize(
    "key", ["k" * 256, "ключ-1", "key\x01one"], ids=["too long", "not ASCII", "a control character"]
)
def test_an_unacceptable_idempotency_key_is_a_422_naming_it_and_makes_nothing(client, pair, key):
    headers, receiver = pair
    refused = client.post(
        "/v1/referrals",
        headers=dict(headers, **{"Idempotency-Key": key}),
        json=data.referral(receiver["id"]),
    )
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert "Idempotency-Key" in refused.get_json()["errors"]
    assert referral_count(client, headers) == 0


def test_an_idempotency_key_of_255_printable_characters_is_taken_and_answers_again(client, pair):
    headers, receiver = pair
    key = ("Az 09 ~!" * 40)[:255]
    body = data.referral(receiver["id"])
    first = client.post("/v1/referrals", headers=dict(headers, **{"Idempotency-Key": key}), json=body)
    again = client.post("/v1/referrals", headers=dict(headers, **{"Idempotency-Key": key}), json=body)
    assert first.status_code == again.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert referral_count(client, headers) == 1


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://evil.example/x","open")', "+1 agency", "-x", "@SUM(A1)"]
)
def test_a_csv_cell_a_spreadsheet_would_run_starts_with_a_quote(client, new_agency, name):
    _, sender_key = new_agency(name="Sender NGO")
    receiver, _ = new_agency(name=name)
    headers = bearer(sender_key["key"])
    assert (
        client.post("/v1/referrals", headers=headers, json=data.referral(receiver["id"])).status_code == 201
    )
    answer = client.get(REPORT, headers=dict(headers, Accept="text/csv"))
    rows = list(csv.DictReader(io.StringIO(answer.get_data().decode("utf-8"))))
    assert rows[0]["name"] == "'" + name
    # the JSON answer keeps the name as it is
    assert client.get(REPORT, headers=headers).get_json()["rows"][0]["name"] == name


def test_every_v1_answer_says_no_store_and_the_docs_do_not(client):
    for path, headers in (("/v1/agencies", bearer(ADMIN_KEY)), ("/v1/agencies", {}), ("/v1/nothing", {})):
        assert client.get(path, headers=headers).headers["Cache-Control"] == "no-store", path
    assert client.get("/openapi.json").headers.get("Cache-Control") != "no-store"


def test_hsts_is_sent_only_behind_an_https_public_url(make_app, services):
    assert "Strict-Transport-Security" not in make_app().test_client().get("/healthz").headers
    secure = make_app(PUBLIC_URL="https://referrals.example.org").test_client()
    for path in ("/healthz", "/v1/agencies", "/inbox/sign-in"):
        assert secure.get(path).headers["Strict-Transport-Security"].startswith("max-age="), path


@pytest.mark.parametrize("query", ["_method=POST", "_external=1", "_scheme=javascript&_external=1"])
def test_a_query_parameter_url_for_would_take_as_its_own_is_left_out_of_links(client, query):
    page = client.get(f"/inbox/sign-in?{query}", headers={"Host": "evil.example"})
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    assert "evil.example" not in page.get_data(as_text=True)


def test_an_api_key_crosses_the_broker_only_as_its_digest(settings, client, new_agency):
    """What the gateway asks the directory about a key rests on the broker's
    disks (a durable queue): a queue of the test's own, bound where the
    gateway's `authenticate` requests go, sees the digest, never the key."""
    from kombu import Connection, Exchange, Queue

    from shared.contract.digests import digest

    _, key = new_agency(name="Watched NGO")
    with Connection(settings["AMQP_URI"]) as connection:
        watch = Queue(
            "watch-authenticate-" + key["id"],
            Exchange("nameko-rpc", type="topic", durable=True),
            routing_key="agencies.authenticate",
            auto_delete=True,
        )
        watch(connection.default_channel).declare()
        assert client.get("/v1/referrals", headers=bearer(key["key"])).status_code == 200
        seen = watch(connection.default_channel).get(no_ack=True)
        assert seen is not None, "no authenticate request went by"
        body = seen.body if isinstance(seen.body, str) else seen.body.decode()
        assert key["key"] not in body and digest(key["key"]) in body


def test_an_agency_of_more_than_20_contacts_is_a_422_naming_them(client, new_agency):
    many = [data.contact(email=f"c{number}@example.org") for number in range(21)]
    refused = client.post("/v1/agencies", headers=bearer(ADMIN_KEY), json=data.agency(contacts=many))
    assert refused.status_code == 422 and "contacts" in refused.get_json()["errors"]
    agency, key = new_agency(contacts=many[:20])
    changed = client.patch(
        f"/v1/agencies/{agency['id']}", headers=bearer(key["key"]), json={"contacts": many}
    )
    assert changed.status_code == 422 and "contacts" in changed.get_json()["errors"]
    kept = client.get(f"/v1/agencies/{agency['id']}", headers=bearer(key["key"])).get_json()
    assert len(kept["contacts"]) == 20


def test_a_returnee_of_more_than_20_vulnerabilities_is_a_422_naming_them(client, pair):
    headers, receiver = pair
    body = data.referral(receiver["id"], returnee=data.returnee(vulnerabilities=[f"v{n}" for n in range(21)]))
    refused = client.post("/v1/referrals", headers=headers, json=body)
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert any("vulnerabilities" in field for field in refused.get_json()["errors"])
    assert referral_count(client, headers) == 0
