"""GET /v1/reports/referrals through the gateway: an agency's own figures,
the network's for an admin with small counts withheld in JSON and CSV,
names in Azerbaijani and Russian intact, bad queries refused by field."""

import csv
import io

import pytest

from shared.contract.reports import COUNTS, GROUPINGS
from tests.gateway.conftest import ADMIN_KEY, bearer
from tests.services.test_reports import PERIOD, check_no_cell_can_be_worked_out, generated, small_counts
from tests.support import data

REPORT = "/v1/reports/referrals"
CSV = {"Accept": "text/csv"}


@pytest.fixture
def network(client, new_agency):
    """An Azerbaijani-named sender, a Russian-named receiver, and a third
    agency: three referrals between the first two (one to Baku, two to
    Ganja), one accepted, one declined."""
    sender, sender_key = new_agency(name="Gəncə Qadınlar Resurs Mərkəzi", services=["housing"])
    receiver, receiver_key = new_agency(name="Центр социальной помощи «Шанс»", services=["housing", "health"])
    made = [
        client.post(
            "/v1/referrals",
            headers=bearer(sender_key["key"]),
            json=data.referral(receiver["id"], service_type=service, returnee=data.returnee(region=region)),
        ).get_json()
        for service, region in (("housing", "AZ-BA"), ("housing", "AZ-GA"), ("health", "AZ-GA"))
    ]
    receiving = bearer(receiver_key["key"])
    assert client.post(f"/v1/referrals/{made[0]['id']}/accept", headers=receiving).status_code == 200
    assert (
        client.post(
            f"/v1/referrals/{made[1]['id']}/decline", headers=receiving, json={"reason": "Full."}
        ).status_code
        == 200
    )
    return {
        "sender": sender,
        "receiver": receiver,
        "sender_key": sender_key["key"],
        "receiver_key": receiver_key["key"],
        "made": made,
    }


def rows_of(answer):
    return {row["key"]: row for row in answer["rows"]}


def test_an_agency_gets_its_own_figures_unsuppressed(client, network):
    answer = client.get(REPORT, headers=bearer(network["sender_key"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["group_by"] == "service_type" and body["network"] is False
    housing, health = rows_of(body)["housing"], rows_of(body)["health"]
    assert (housing["sent"], housing["accepted"], housing["declined"], housing["acceptance_rate"]) == (
        2,
        1,
        1,
        0.5,
    )
    assert (health["sent"], health["accepted"], health["acceptance_rate"]) == (1, 0, None)
    assert body["totals"]["sent"] == 3 and not body["totals"]["suppressed"]

    by_region = client.get(REPORT + "?group_by=region", headers=bearer(network["receiver_key"])).get_json()
    assert {row["key"]: (row["name"], row["sent"]) for row in by_region["rows"]} == {
        "AZ-BA": ("Bakı", 1),
        "AZ-GA": ("Gəncə", 2),
    }
    by_sender = client.get(
        REPORT + "?group_by=sending_agency", headers=bearer(network["receiver_key"])
    ).get_json()
    assert [(row["key"], row["name"], row["sent"]) for row in by_sender["rows"]] == [
        (network["sender"]["id"], "Gəncə Qadınlar Resurs Mərkəzi", 3)
    ]


def test_an_agency_hears_nothing_of_referrals_not_its_own(client, network, new_agency):
    _, key = new_agency(name="Outsider")
    body = client.get(REPORT, headers=bearer(key["key"])).get_json()
    assert body["rows"] == [] and body["totals"]["sent"] == 0


def test_csv_has_a_header_and_names_intact_in_utf_8(client, network):
    answer = client.get(
        REPORT + "?group_by=receiving_agency", headers=dict(bearer(network["sender_key"]), **CSV)
    )
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv" and answer.mimetype_params["charset"] == "utf-8"
    assert "attachment" in answer.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(answer.get_data().decode("utf-8"))))
    assert table[0] == [
        "key",
        "name",
        "suppressed",
        *COUNTS,
        "acceptance_rate",
        "median_hours_to_answer",
        "median_days_to_complete",
    ]
    assert table[1][:4] == [network["receiver"]["id"], "Центр социальной помощи «Шанс»", "false", "3"]
    assert table[-1][:4] == ["total", "", "false", "3"]

    by_sender = client.get(
        REPORT + "?group_by=sending_agency", headers=dict(bearer(network["receiver_key"]), **CSV)
    )
    assert "Gəncə Qadınlar Resurs Mərkəzi" in by_sender.get_data().decode("utf-8")
    by_region = client.get(REPORT + "?group_by=region", headers=dict(bearer(network["receiver_key"]), **CSV))
    assert [row[:2] for row in csv.reader(io.StringIO(by_region.get_data().decode("utf-8")))][1:3] == [
        ["AZ-BA", "Bakı"],
        ["AZ-GA", "Gəncə"],
    ]


def csv_counts(answer):
    """The counts of a CSV answer, as numbers or None for empty cells."""
    table = list(csv.DictReader(io.StringIO(answer.get_data().decode("utf-8"))))
    assert table and table[-1]["key"] == "total"
    return [(row["key"], name, int(row[name]) if row[name] else None) for row in table for name in COUNTS]


def test_the_network_wide_answer_holds_no_count_from_1_to_4_in_json_or_csv(client, network, engines):
    generated(engines, 7)
    withheld = 0
    for period in (PERIOD, {}):  # the generated quarter; the last 12 months (the three referrals above)
        for group_by in GROUPINGS:
            query = dict(period, group_by=group_by)
            answer = client.get(REPORT, query_string=query, headers=bearer(ADMIN_KEY))
            assert answer.status_code == 200
            body = answer.get_json()
            assert body["network"] is True
            assert small_counts(body) == [], (period, group_by)
            check_no_cell_can_be_worked_out(body)
            withheld += sum(row["suppressed"] for row in body["rows"])
            as_csv = client.get(REPORT, query_string=query, headers=dict(bearer(ADMIN_KEY), **CSV))
            assert as_csv.status_code == 200
            assert [
                (key, name, count) for key, name, count in csv_counts(as_csv) if count and count < 5
            ] == []
    assert withheld


def test_the_network_wide_rows_show_no_personal_data_and_withhold_the_three(client, network):
    body = client.get(REPORT + "?group_by=region", headers=bearer(ADMIN_KEY)).get_json()
    ganja = rows_of(body)["AZ-GA"]
    assert ganja["sent"] is None and ganja["suppressed"] is True and ganja["acceptance_rate"] is None
    assert body["totals"]["sent"] is None  # 3 in the whole network: small too
    assert "Aysel" not in str(body) and "Mammadova" not in str(body)


@pytest.mark.parametrize(
    "query, field",
    [
        ("group_by=returnee", "group_by"),
        ("from=2026-13-01", "from"),
        ("from=2026-03-01&to=2026-02-01", "from"),
        ("to=soon", "to"),
        ("colour=red", "colour"),
    ],
)
def test_a_bad_query_is_a_422_naming_the_field(client, network, query, field):
    refused = client.get(f"{REPORT}?{query}", headers=bearer(network["sender_key"]))
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert field in refused.get_json()["errors"]


def test_a_report_needs_a_key(client):
    assert client.get(REPORT).status_code == 401
