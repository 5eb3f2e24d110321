"""The coordinator pages' report (`/inbox/reports`): the agency's referrals
per month by outcome, a chart drawn on the server (inline SVG, no script),
its figures as a table and as CSV; withheld figures shown as such."""

import csv
import io
import re

from gateway.inbox import charts
from tests.gateway.conftest import bearer
from tests.gateway.test_inbox import parties, send_referral, sign_in  # noqa: F401 (a fixture)


def test_a_coordinator_sees_the_agency_s_referrals_per_month(client, parties, smtp_sink):
    made = [send_referral(client, parties) for _ in range(3)]
    receiver = bearer(parties["receiver"]["key"])
    assert client.post(f"/v1/referrals/{made[0]['id']}/accept", headers=receiver).status_code == 200
    assert (
        client.post(
            f"/v1/referrals/{made[1]['id']}/decline", headers=receiver, json={"reason": "Full."}
        ).status_code
        == 200
    )
    sign_in(client, smtp_sink, parties["sender"]["email"])
    page = client.get("/inbox/reports?lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<a href="/inbox/reports" aria-current="page">Report</a>' in html  # in the navigation
    assert "<script" not in html and "style=" not in html
    assert (
        len(re.findall(r'<tr[^>]*>\s*<th scope="row">', html.split('class="bars"')[1].split("</table>")[0]))
        == 12
    )
    # this month's bar: one declined, two not yet closed; its accessible name says so
    assert re.search(r'aria-label="[A-Za-z]+ \d{4}: 3 sent \(Not yet closed 2, Declined 1\)"', html)
    assert 'class="outcome-open"' in html and 'class="outcome-declined"' in html
    assert "withheld" not in html.split("What the figures mean")[0]  # an agency's own: nothing withheld

    russian = client.get("/inbox/reports?lang=ru").get_data(as_text=True)
    assert "Направления по месяцам и исходам" in russian and "отправлено 3" in russian

    as_csv = client.get("/inbox/reports.csv")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(as_csv.get_data().decode("utf-8"))))
    assert table[-1]["key"] == "total" and table[-1]["sent"] == "3" and table[-1]["declined"] == "1"


def test_a_period_the_service_refuses_is_said_next_to_its_field(client, parties, smtp_sink):
    sign_in(client, smtp_sink, parties["sender"]["email"])
    page = client.get("/inbox/reports?lang=en&from=2026-05-01&to=2026-04-01")
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert 'id="from-error"' in html and "not after the last day" in html
    assert 'value="2026-05-01"' in html  # what was typed is kept


def test_the_report_page_needs_a_session(client):
    for path in ("/inbox/reports", "/inbox/reports.csv"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == "/inbox/sign-in"


def test_the_chart_shows_withheld_months_as_withheld(make_app):
    """A network-wide answer's rows (as suppression leaves them): a month
    withheld whole, one with its outcomes withheld, one shown."""

    def row(key, **counts):
        base = {"sent": 0, "accepted": 0, "declined": 0, "cancelled": 0, "completed": 0, "overdue": 0}
        return dict(base, key=key, suppressed=any(value is None for value in counts.values()), **counts)

    rows = [
        row("2026-01", sent=None, declined=None),
        row("2026-02", sent=20, completed=None, declined=9),
        row("2026-03", sent=40, completed=10, declined=5, cancelled=5),
    ]
    with make_app().test_request_context("/inbox/reports?lang=en"):
        from flask import g

        g.language = "en"
        bars = charts.month_bars(rows)
    first, second, third = bars
    assert first["withheld"] and first["segments"] == [
        {"outcome": "withheld", "x": 0, "width": 10.0, "count": None}
    ]
    assert first["description"] == "January 2026: withheld (small numbers)"
    assert second["withheld"] and second["segments"][0]["width"] == 50.0
    assert second["description"] == "February 2026: 20 sent; outcomes withheld (small numbers)"
    assert not third["withheld"]
    assert [(part["outcome"], part["width"]) for part in third["segments"]] == [
        ("completed", 25.0),
        ("open", 50.0),
        ("declined", 12.5),
        ("cancelled", 12.5),
    ]
    assert (
        third["description"]
        == "March 2026: 40 sent (Completed 10, Not yet closed 20, Declined 5, Cancelled 5)"
    )


def test_months_are_named_in_the_page_s_language(make_app):
    with make_app().test_request_context("/inbox/reports"):
        from flask import g

        for language, name in (("az", "Yanvar 2026"), ("ru", "Январь 2026"), ("en", "January 2026")):
            g.language = language
            assert charts.month_label("2026-01") == name
