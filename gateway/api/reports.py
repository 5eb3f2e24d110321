"""Reports on referrals: /v1/reports. An agency key gets its agency's own
referrals, sent and received; an admin key the whole network's, with small
counts withheld by the referrals service (services/referrals/reports.py
says what each figure counts). JSON, or CSV with `Accept: text/csv`."""

import csv
import io

import pycountry
from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import RAISE

from gateway.auth import authenticate, caller
from gateway.calls import call
from shared.contract.reports import COUNTS, FIGURES, Report, ReportQuery

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/v1/reports",
    description="Figures on how the network works: referrals counted by group",
)
blp.before_request(authenticate)

CSV = "text/csv"
CSV_COLUMNS = ("key", "name", "suppressed", *COUNTS, *FIGURES)
AGENCY_GROUPINGS = ("receiving_agency", "sending_agency")


@blp.route("/referrals", methods=["GET"])
@blp.arguments(ReportQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=Report, success=True)
def referrals_report(**query):
    """Referrals counted by service type, region, month or agency: an agency
    key's own (sent and received), an admin key's the whole network's
    (where any count from 1 to 4 is withheld as null, the row marked
    `suppressed`). `Accept: text/csv` answers the same rows as CSV."""
    me = caller()
    answer = referral_report(ReportQuery().dump(query), None if me.is_admin else me.agency_id)
    if request.accept_mimetypes.best_match(["application/json", CSV]) == CSV:
        return as_csv(answer)
    return answer


def referral_report(query, agency_id):
    """The referrals service's report, each row with its group's `name`
    (a region's or an agency's; None for service types and months) and,
    for agency groupings, in the order of their names."""
    answer = call("referrals", "referral_report", query, agency_id)
    names = {}
    if answer["group_by"] in AGENCY_GROUPINGS and answer["rows"]:
        names = call("agencies", "agency_names", [row["key"] for row in answer["rows"]])
    for row in answer["rows"]:
        row["name"] = region_name(row["key"]) if answer["group_by"] == "region" else names.get(row["key"])
    if answer["group_by"] in AGENCY_GROUPINGS:
        answer["rows"].sort(key=lambda row: ((row["name"] or "").casefold(), row["key"]))
    return answer


def region_name(code):
    """A region's own name (ISO 3166-2, in Azerbaijani: "Bakı"), or None."""
    region = pycountry.subdivisions.get(code=code)
    return region.name if region else None


def as_csv(answer):
    """The rows as CSV (a header row first, UTF-8), then the totals as a
    row keyed `total`; a withheld count or a missing figure is empty."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    totals = dict(answer["totals"], key="total", name=None)
    for row in answer["rows"] + [totals]:
        writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
    name = f"referrals-{answer['group_by']}-{answer['from']}-{answer['to']}.csv"
    return Response(
        text.getvalue().encode("utf-8"),
        mimetype=CSV,
        content_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# API.md: a cell that a spreadsheet would take for a formula is written with a
# leading ' (an agency may be named =HYPERLINK(...)).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
