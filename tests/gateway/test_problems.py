"""Every error a partner can meet is application/problem+json (RFC 9457)
naming what is wrong, with the request's id, and never a stack trace."""

import json

import pytest

from tests.gateway.conftest import ADMIN_KEY, SERVICES, bearer
from tests.support import data

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "errors", "request_id"}


def assert_problem(response, status):
    """The answer is a problem of `status` and returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert set(body) <= PROBLEM_MEMBERS
    return body


def agency_count(client):
    return client.get("/v1/agencies", headers=bearer(ADMIN_KEY)).get_json()["total"]


@pytest.mark.parametrize("path", ["/nothing-here", "/v1/nothing-here", "/v1/agencies/not-a-uuid"])
def test_an_unknown_path_is_a_404_problem(client, path):
    assert_problem(client.get(path, headers=bearer(ADMIN_KEY)), 404)


def test_a_method_the_path_does_not_take_is_a_405_problem_naming_the_allowed(client):
    refused = client.delete("/v1/agencies", headers=bearer(ADMIN_KEY))
    assert_problem(refused, 405)
    assert {"GET", "POST"} <= {m.strip() for m in refused.headers["Allow"].split(",")}
    assert "DELETE" not in refused.headers["Allow"]


@pytest.mark.parametrize("body", [b'{"name": "x",', b"\xff\xfe\x00{", b"[" * 100_000, b"NaN-ish"])
def test_a_body_that_is_not_json_is_a_400_problem_saying_so(client, body):
    refused = client.post(
        "/v1/agencies", headers=bearer(ADMIN_KEY), data=body, content_type="application/json"
    )
    assert "not valid JSON" in assert_problem(refused, 400)["detail"]


def test_a_body_of_another_media_type_is_a_415_problem_and_changes_nothing(client, new_agency):
    before = agency_count(client)
    form = client.post("/v1/agencies", headers=bearer(ADMIN_KEY), data={"name": "Form NGO", "kind": "ngo"})
    assert "application/json" in assert_problem(form, 415)["detail"]
    text = client.post(
        "/v1/agencies", headers=bearer(ADMIN_KEY), data='{"name": "x"}', content_type="text/plain"
    )
    assert_problem(text, 415)
    assert agency_count(client) == before

    # A call that takes no fields still takes no body of another kind ...
    _sender, sender_key = new_agency(name="Sender")
    receiver, receiver_key = new_agency(name="Receiver")
    sent = client.post("/v1/referrals", headers=bearer(sender_key["key"]), json=data.referral(receiver["id"]))
    assert sent.status_code == 201, sent.get_data(as_text=True)
    accept = f"/v1/referrals/{sent.get_json()['id']}/accept"
    assert_problem(
        client.post(accept, headers=bearer(receiver_key["key"]), data="yes", content_type="text/plain"), 415
    )
    # ... and works without one.
    accepted = client.post(accept, headers=bearer(receiver_key["key"]))
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert accepted.get_json()["status"] == "accepted"


def test_a_body_over_the_size_limit_is_a_413_problem(make_app, services):
    client = make_app(MAX_BODY_BYTES="2048").test_client()
    big = data.agency(name="x" * 1500, contacts=[data.contact() for _ in range(8)])
    small = data.agency(name="x" * 1500)
    assert len(json.dumps(small)) < 2048 < len(json.dumps(big))
    before = agency_count(client)
    refused = client.post("/v1/agencies", headers=bearer(ADMIN_KEY), json=big)
    assert "2048 bytes" in assert_problem(refused, 413)["detail"]
    assert agency_count(client) == before
    # Just under the limit it is read (and found wanting on its own merits).
    read = client.post("/v1/agencies", headers=bearer(ADMIN_KEY), json=small)
    assert "name" in assert_problem(read, 422)["errors"]


def test_unknown_fields_and_bad_values_are_422_problems_naming_each_field(client):
    body = data.agency(regions=["AZ-QQ"], colour="blue")
    body["contacts"][0]["channels"] = ["pigeon"]
    refused = assert_problem(client.post("/v1/agencies", headers=bearer(ADMIN_KEY), json=body), 422)
    assert {"regions.0", "colour", "contacts.0.channels.0"} <= set(refused["errors"])
    assert all(isinstance(m, str) for messages in refused["errors"].values() for m in messages)


def test_an_unknown_query_parameter_is_a_422_problem_naming_it(client):
    """A misspelt filter must not quietly answer everything."""
    refused = client.get("/v1/agencies?servce=housing", headers=bearer(ADMIN_KEY))
    assert "servce" in assert_problem(refused, 422)["errors"]


def test_a_services_refusal_is_a_problem_with_the_status_phrase_as_title(client):
    missing = client.get("/v1/agencies/00000000-0000-4000-8000-000000000000", headers=bearer(ADMIN_KEY))
    assert assert_problem(missing, 404)["title"] == "Not Found"


def test_an_unexpected_failure_is_a_500_problem_without_a_trace(container_factory, settings, make_app):
    """The agencies service is pointed at a database without its tables (a
    fault of ours, not an outage, which is a 503: test_resilience): every key
    check fails inside the service. The partner learns that much, and nothing
    more."""
    broken = dict(
        settings,
        BOOTSTRAP_ADMIN_KEY="",
        AGENCIES_DATABASE_URL="postgresql://postgres@localhost:5432/postgres",
    )
    container_factory(SERVICES["agencies"], broken).start()
    failed = make_app().test_client().get("/v1/agencies", headers=bearer("rnk_some-key"))
    body = assert_problem(failed, 500)
    text = failed.get_data(as_text=True)
    for leak in ("Traceback", "api_keys", "psycopg", "ProgrammingError", "UndefinedTable", 'File "'):
        assert leak not in text
    assert set(body) == {"type", "title", "status", "detail", "request_id"}


def test_booleans_in_a_body_must_be_json_booleans(client, new_agency):
    for lenient in (0, 1, "yes", "false"):
        refused = client.post(
            "/v1/agencies", headers=bearer(ADMIN_KEY), json=data.agency(accepting_referrals=lenient)
        )
        assert "accepting_referrals" in assert_problem(refused, 422)["errors"]
    _sender, key = new_agency(name="Sender")
    receiver, _ = new_agency(name="Receiver")
    consent = {"given": "yes", "method": "verbal"}  # API.md: `given: true`, nothing else
    refused = client.post(
        "/v1/referrals", headers=bearer(key["key"]), json=data.referral(receiver["id"], consent=consent)
    )
    assert "consent.given" in assert_problem(refused, 422)["errors"]


def test_a_page_past_the_end_of_bigint_is_a_422(client, new_agency):
    _, key = new_agency()
    for path, caller in (
        ("/v1/agencies", ADMIN_KEY),
        ("/v1/referrals", key["key"]),
        ("/v1/notifications", key["key"]),
    ):
        refused = client.get(f"{path}?page=9223372036854775807", headers=bearer(caller))
        assert "page" in assert_problem(refused, 422)["errors"]
