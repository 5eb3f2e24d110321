"""X-Request-ID: every answer has one, problems quote it, and the services'
log lines for that request carry it, across every RPC hop."""

import logging
import re

import pytest

from shared.plumbing.request_id import RequestIdFilter
from tests.gateway.conftest import ADMIN_KEY, bearer
from tests.support import data
from tests.support.sinks import wait_for


def test_each_request_gets_an_id_of_its_own(client):
    first = client.get("/healthz")
    second = client.get("/healthz")
    for answer in (first, second):
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_a_sane_id_of_the_callers_is_kept_and_quoted_in_problems(client):
    refused = client.get("/v1/agencies", headers={"X-Request-ID": "partner-42.a:b_c"})
    assert refused.status_code == 401
    assert refused.headers["X-Request-ID"] == "partner-42.a:b_c"
    assert refused.get_json()["request_id"] == "partner-42.a:b_c"


def test_an_id_that_does_not_look_sane_is_replaced(client):
    for given in ("two words", "x" * 129, "-leading-dash", "semi;colon", "tab\there", ""):
        answer = client.get("/healthz", headers={"X-Request-ID": given})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"]), given


@pytest.fixture
def service_records(caplog):
    """The services' log records, each with the request id it was written under."""
    caplog.set_level(logging.DEBUG, logger="shared.plumbing.request_id")  # an answer's line is DEBUG
    caplog.handler.addFilter(RequestIdFilter())

    def calls_by_id():
        found = {}
        for record in caplog.records:
            if record.name == "shared.plumbing.request_id":
                found.setdefault(record.request_id, []).append(record.getMessage())
        return found

    return calls_by_id


def calls(messages):
    """ "agencies.authenticate answered in 3.1 ms" -> "agencies.authenticate" """
    return sorted(message.split(" ")[0] for message in messages)


def test_the_request_id_is_in_every_services_log_lines_for_the_request(client, new_agency, service_records):
    _sender, sender_key = new_agency(name="Sender")
    receiver, _ = new_agency(name="Receiver")

    sent = client.post(
        "/v1/referrals",
        json=data.referral(receiver["id"]),
        headers={**bearer(sender_key["key"]), "X-Request-ID": "trace-referral-1"},
    )
    assert sent.status_code == 201, sent.get_data(as_text=True)
    listed = client.get(
        "/v1/notifications", headers={**bearer(sender_key["key"]), "X-Request-ID": "trace-list-2"}
    )
    assert listed.status_code == 200

    # A worker writes its line just after it answered: wait for them all.
    wait_for(
        lambda: (
            len(service_records().get("trace-referral-1", [])) >= 3
            and len(service_records().get("trace-list-2", [])) >= 1
        ),
        what="every worker's line",
    )
    by_id = service_records()
    # The gateway checked the key, the referrals service made the referral
    # and asked the directory about the receiver: two services, one id.
    assert calls(by_id["trace-referral-1"]) == [
        "agencies.authenticate",
        "agencies.get_agency",
        "referrals.create_referral",
    ]
    # The key was checked a moment ago: the gateway's cache of keys answers.
    assert calls(by_id["trace-list-2"]) == ["notifications.list_notifications"]


def test_a_failed_call_is_logged_with_its_request_id_and_no_detail(client, service_records):
    missing = client.get(
        "/v1/agencies/00000000-0000-4000-8000-000000000000",
        headers={**bearer(ADMIN_KEY), "X-Request-ID": "trace-missing"},
    )
    assert missing.status_code == 404
    wait_for(lambda: len(service_records().get("trace-missing", [])) >= 2, what="the workers' lines")
    lines = service_records()["trace-missing"]
    assert len(lines) == 2
    assert lines[0].startswith("agencies.authenticate answered in")
    assert lines[1].startswith("agencies.get_agency failed (NotFound) after")
