"""The path partners use, through the real processes: an admin sets up two
agencies, A refers a returnee to B for housing, B's coordinator is e-mailed,
B reads the referral and an outsider cannot."""

import requests

from tests.e2e.conftest import ADMIN_KEY
from tests.support import data
from tests.support.inbox import csrf_of, sign_in_token
from tests.support.sinks import readable, wait_for


def test_a_referral_travels_from_a_to_b(network):
    admin = ADMIN_KEY

    def new_agency(**fields):
        made = network.call("POST", "/v1/agencies", admin, json=data.agency(**fields))
        assert made.status_code == 201, made.text
        agency = made.json()
        key = network.call("POST", f"/v1/agencies/{agency['id']}/api-keys", admin, json={"role": "agency"})
        assert key.status_code == 201, key.text
        return agency, key.json()["key"]

    _a, a_key = new_agency(name="State Migration Service", kind="government", services=["documentation"])
    b, b_key = new_agency(
        name="IOM Azerbaijan",
        kind="international",
        services=["housing"],
        contacts=[data.contact(language="en")],
    )
    _, c_key = new_agency(name="Unrelated NGO")

    sent = network.call("POST", "/v1/referrals", a_key, json=data.referral(b["id"]))
    assert sent.status_code == 201, sent.text
    referral = sent.json()
    assert referral["status"] == "sent"
    assert referral["receiving_agency_id"] == b["id"]

    coordinator = b["contacts"][0]["email"]
    mail = wait_for(lambda: network.smtp.to(coordinator), timeout=30, what="B's e-mail")[0]
    assert referral["reference"] in mail["Subject"]
    assert "State Migration Service" in mail.get_body(("plain",)).get_content()
    for value in data.PERSONAL_VALUES:
        assert value not in readable(mail)
        assert value not in network.log()

    read = network.call("GET", f"/v1/referrals/{referral['id']}", b_key)
    assert read.status_code == 200
    assert read.json()["returnee"]["family_name"] == "Mammadova"
    assert network.call("GET", f"/v1/referrals/{referral['id']}", a_key).status_code == 200

    hidden = network.call("GET", f"/v1/referrals/{referral['id']}", c_key)
    assert hidden.status_code == 404
    assert hidden.headers["Content-Type"] == "application/problem+json"
    assert network.call("GET", "/v1/referrals", c_key).json()["total"] == 0


def test_a_coordinator_signs_in_through_the_real_gateway_and_no_secret_is_logged(network):
    made = network.call("POST", "/v1/agencies", ADMIN_KEY, json=data.agency(name="Ganja NGO"))
    address = made.json()["contacts"][0]["email"]
    browser = requests.Session()  # one cookie jar, as a browser keeps
    page = browser.get(network.url + "/inbox/sign-in", timeout=10)
    asked = browser.post(
        network.url + "/inbox/sign-in", data={"email": address, "csrf_token": csrf_of(page.text)}, timeout=10
    )
    assert asked.status_code == 200
    token = sign_in_token(network.smtp, address)
    button = browser.get(f"{network.url}/inbox/sign-in/{token}", timeout=10)
    inbox = browser.post(
        f"{network.url}/inbox/sign-in/{token}", data={"csrf_token": csrf_of(button.text)}, timeout=10
    )
    assert inbox.status_code == 200 and inbox.url == network.url + "/inbox" and "Ganja NGO" in inbox.text
    session = browser.cookies.get("inbox_session")
    wait_for(lambda: "/inbox/sign-in/[token]" in network.log(), what="the access log's line")
    assert token not in network.log() and session not in network.log()


def test_bad_input_is_a_problem_naming_the_field(network):
    refused = network.call("POST", "/v1/agencies", ADMIN_KEY, json=data.agency(regions=["AZ-QQ"]))
    assert refused.status_code == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert "regions.0" in refused.json()["errors"]


def test_calls_without_a_valid_key_are_refused(network):
    assert network.call("GET", "/v1/agencies").status_code == 401
    assert network.call("GET", "/v1/agencies", "rnk_not-a-key").status_code == 401
    assert network.call("GET", "/healthz").json() == {"status": "ok"}


def test_the_network_stops_cleanly_on_sigterm(network):
    """Runs last: SIGTERM to bin/run stops every process it started."""
    assert network.stop(), "processes were left behind:\n" + network.log()[-3000:]
    log = network.log()
    for name in ("agencies", "referrals", "notifications", "gateway"):
        assert f"{name}.1" in log  # honcho prefixes each process's lines with its name
