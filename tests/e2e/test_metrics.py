"""Every /metrics of the running network (the gateway's, each service's)
after one referral's journey: the counters moved by exactly that journey,
and no personal data, key or id in any line; and the Grafana dashboard
asks only for metrics that the network exports."""

import json
import pathlib
import re

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ADMIN_KEY
from tests.support import data
from tests.support.sinks import wait_for

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "network.json"
PROCESSES = ("gateway", "agencies", "referrals", "notifications")


def scrape(network):
    """{process: (text, {(sample name, labels): value})}"""
    found = {}
    for process in PROCESSES:
        text = requests.get(network.metrics_urls[process], timeout=10).text
        found[process] = (
            text,
            {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            },
        )
    return found


def value(scraped, process, name, **labels):
    return scraped[process][1].get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before, after, process, name):
    """{labels: how much} of every sample of `name` that changed."""
    changed = {}
    for (sample, labels), now in after[process][1].items():
        if sample == name and now != before[process][1].get((sample, labels), 0.0):
            changed[labels] = now - before[process][1].get((sample, labels), 0.0)
    return changed


@pytest.fixture(scope="module")
def parties(network):
    made = {}
    for role in ("sender", "receiver"):
        contact = data.contact(
            channels=["email", "sms"], phone="+994501112233" if role == "sender" else "+994557778899"
        )
        agency = network.call(
            "POST",
            "/v1/agencies",
            ADMIN_KEY,
            json=data.agency(services=["housing", "documentation"], contacts=[contact]),
        ).json()
        key = network.call(
            "POST", f"/v1/agencies/{agency['id']}/api-keys", ADMIN_KEY, json={"role": "agency"}
        ).json()["key"]
        made[role] = (agency, key)
    # the directory's events handled, they are not the journey's: these two agencies' and the
    # operators' (made at start for BOOTSTRAP_ADMIN_KEY, and not always handled first)
    wait_for(
        lambda: (
            value(
                scrape(network),
                "notifications",
                "events_handled_total",
                service="notifications",
                event="agency_created",
                outcome="ok",
            )
            >= 3
        ),
        timeout=30,
        what="agency_created handled",
    )
    return made


def test_one_referral_journey_moves_exactly_its_counters(network, parties):
    (sender, sender_key), (receiver, receiver_key) = parties["sender"], parties["receiver"]
    before = scrape(network)
    mails, texts = len(network.smtp.messages), len(network.sms.received)
    body = data.referral(receiver["id"])
    created = network.call("POST", "/v1/referrals", sender_key, json=body)
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    wait_for(
        lambda: len(network.smtp.messages) == mails + 1 and len(network.sms.received) == texts + 1,
        timeout=30,
        what="the receiver told by e-mail and SMS",
    )
    accepted = network.call("POST", f"/v1/referrals/{referral_id}/accept", receiver_key)
    assert accepted.status_code == 200, accepted.text
    wait_for(
        lambda: len(network.smtp.messages) == mails + 2 and len(network.sms.received) == texts + 2,
        timeout=30,
        what="the sender told by e-mail and SMS",
    )
    # each send is counted once its outcome is recorded, just after it went out
    wait_for(
        lambda: (
            sum(moved(before, scrape(network), "notifications", "notification_sends_total").values()) == 4
        ),
        timeout=30,
        what="the four sends counted",
    )
    after = scrape(network)

    assert moved(before, after, "gateway", "gateway_requests_total") == {
        (("method", "POST"), ("route", "/v1/referrals"), ("status", "201")): 1,
        (("method", "POST"), ("route", "/v1/referrals/<uuid:referral_id>/accept"), ("status", "200")): 1,
    }
    assert moved(before, after, "gateway", "gateway_request_duration_seconds_count") == {
        (("method", "POST"), ("route", "/v1/referrals")): 1,
        (("method", "POST"), ("route", "/v1/referrals/<uuid:referral_id>/accept")): 1,
    }
    assert moved(before, after, "referrals", "rpc_calls_total") == {
        (("method", "create_referral"), ("outcome", "ok"), ("service", "referrals")): 1,
        (("method", "move_referral"), ("outcome", "ok"), ("service", "referrals")): 1,
    }
    for process in ("agencies", "referrals", "notifications"):  # nothing refused, nothing failed
        assert not {
            labels
            for labels in moved(before, after, process, "rpc_calls_total")
            if ("outcome", "ok") not in labels
        }, process
    assert moved(before, after, "notifications", "events_handled_total") == {
        (("event", "referral_sent"), ("outcome", "ok"), ("service", "notifications")): 1,
        (("event", "referral_accepted"), ("outcome", "ok"), ("service", "notifications")): 1,
    }
    assert moved(before, after, "notifications", "notification_sends_total") == {
        (("channel", "email"), ("outcome", "sent")): 2,
        (("channel", "sms"), ("outcome", "sent")): 2,
    }
    assert moved(before, after, "notifications", "notifications") == {
        (("channel", "email"), ("status", "sent")): 2,
        (("channel", "sms"), ("status", "sent")): 2,
    }
    gauges = {process: after[process][1] for process in after}  # read when scraped: there, not defaulted
    assert gauges["referrals"][("outbox_waiting", (("service", "referrals"),))] == 0  # its events are out
    assert ("outbox_oldest_age_seconds", (("service", "agencies"),)) in gauges["agencies"]
    for service in ("agencies", "referrals", "notifications"):
        assert gauges[service][("dead_letters", (("service", service),))] == 0
        assert ("db_pool_connections", (("service", service), ("state", "idle"))) in gauges[service]

    # No line names the returnee, a key, the referral or an agency.
    returnee = body["returnee"]
    secrets = [
        returnee["given_name"],
        returnee["family_name"],
        returnee["phone"],
        returnee["date_of_birth"],
        sender_key,
        receiver_key,
        ADMIN_KEY,
        referral_id,
        sender["id"],
        receiver["id"],
        sender["contacts"][0]["email"],
        receiver["contacts"][0]["phone"],
    ]
    for process, (text, _) in after.items():
        for secret in secrets:
            assert secret not in text, f"{process}'s /metrics shows {secret!r}"


# Words of PromQL that are not metric names.
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "clamp_min",
    "time",
    "vector",
    "le",
    "bool",
}


def metric_names(expression):
    """The metric names a PromQL expression reads."""
    expression = re.sub(r'"[^"]*"', "", expression)  # label values
    expression = re.sub(r"\{[^}]*\}", "", expression)  # label matchers
    expression = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expression)  # grouping labels
    expression = re.sub(r"\[[^\]]*\]", "", expression)  # ranges
    names = set(re.findall(r"(?<![\w:])[A-Za-z_:][\w:]*(?![\w:]|\s*\()", expression))  # not functions
    return {name for name in names if name not in PROMQL_WORDS and not re.fullmatch(r"\d.*|e\d*", name)}


def test_every_panel_of_the_dashboard_asks_for_metrics_the_network_exports(network, parties):
    dashboard = json.loads(DASHBOARD.read_text())
    exported = {name for _, samples in scrape(network).values() for name, _ in samples}
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert panels
    asked = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= exported, (panel["title"], names - exported)
            asked |= names
    # throughput, latencies, backlog and failures of every part
    assert {
        "gateway_requests_total",
        "gateway_request_duration_seconds_bucket",
        "rpc_calls_total",
        "rpc_call_duration_seconds_bucket",
        "events_handled_total",
        "outbox_waiting",
        "outbox_oldest_age_seconds",
        "notifications",
        "webhook_deliveries",
        "dead_letters",
        "notification_sends_total",
        "webhook_attempts_total",
        "db_pool_connections",
    } <= asked
