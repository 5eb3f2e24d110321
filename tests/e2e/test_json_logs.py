"""LOG_FORMAT=json through the real processes, started as `make run` starts
them: every line the preflight, the three services and the gateway (gunicorn's
own logs and its access log) write is one JSON object, a request's id is on
the lines written for it, and a sign-in link's token stays out."""

import json
import re
import uuid

import pytest
import requests

from tests.e2e.conftest import ADMIN_KEY, running_network
from tests.support import data
from tests.support.inbox import csrf_of, sign_in_token
from tests.support.sinks import wait_for

pytestmark = pytest.mark.e2e
# honcho's prefix on each line of a process it runs: "02:50:00 agencies.1 | "
HONCHO_PREFIX = re.compile(r"^\d\d:\d\d:\d\d (?P<process>\S+)\s+\| ")


@pytest.fixture(scope="module")
def network(rabbit_manager):
    with running_network(
        rabbit_manager, LOG_FORMAT="json", LOG_LEVEL="DEBUG"
    ) as running:  # DEBUG: each call's line
        yield running


def json_lines(network):
    """Every line the network's processes wrote, parsed (honcho's own lines,
    "system | agencies.1 started", are honcho's and left out)."""
    lines = []
    for line in network.log().splitlines():
        prefix = HONCHO_PREFIX.match(line)
        if prefix and prefix["process"] == "system":
            continue
        text = line[prefix.end() :] if prefix else line
        try:
            lines.append(json.loads(text))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return lines


def test_every_process_writes_json_lines_and_a_request_is_followed_by_its_id(network):
    made = network.call("POST", "/v1/agencies", ADMIN_KEY, json=data.agency(name="Şəki NGO"))
    assert made.status_code == 201, made.text
    address = made.json()["contacts"][0]["email"]
    asking, opening = f"json-logs-ask-{uuid.uuid4().hex}", f"json-logs-open-{uuid.uuid4().hex}"
    browser = requests.Session()
    page = browser.get(network.url + "/inbox/sign-in", timeout=10)
    asked = browser.post(
        network.url + "/inbox/sign-in",
        data={"email": address, "csrf_token": csrf_of(page.text)},
        headers={"X-Request-ID": asking},
        timeout=10,
    )
    assert asked.status_code == 200
    token = sign_in_token(network.smtp, address)
    opened = browser.get(
        f"{network.url}/inbox/sign-in/{token}", headers={"X-Request-ID": opening}, timeout=10
    )
    assert opened.status_code == 200 and opened.headers["X-Request-ID"] == opening

    def access_line():
        return [
            line
            for line in json_lines(network)
            if line.get("request_id") == opening and line["logger"] == "gunicorn.access"
        ]

    opened_line = wait_for(access_line, what="the access log's JSON line")[0]
    assert opened_line["service"] == "gateway" and opened_line["level"] == "INFO"
    assert "/inbox/sign-in/[token]" in opened_line["event"]
    assert token not in network.log()

    lines = json_lines(network)
    for line in lines:
        assert {"time", "level", "service", "logger", "event"} <= set(line), line
    assert {line["service"] for line in lines} >= {
        "migrate",
        "agencies",
        "referrals",
        "notifications",
        "gateway",
    }
    asked_in_agencies = [
        line for line in lines if line.get("request_id") == asking and line["service"] == "agencies"
    ]
    assert asked_in_agencies, "the agencies service's line for the sign-in request carries its id"
