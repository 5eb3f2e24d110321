"""The report page: the coordinator's agency's referrals (sent and
received) per month by outcome, as a chart and a table, for a period the
coordinator may choose; the same figures as CSV."""

from babel.core import Locale
from babel.numbers import format_decimal, format_percent
from flask import render_template, request

from gateway.api.reports import as_csv, referral_report
from gateway.inbox import blp, charts, coordinator
from gateway.inbox.i18n import N_, current_language, gettext
from shared.contract.errors import InvalidInput

PERIOD_PROBLEMS = {
    "from": N_("Give the first day as a date, not after the last day."),
    "to": N_("Give the last day as a date."),
}


def _asked():
    return {name: request.args[name].strip() for name in ("from", "to") if request.args.get(name, "").strip()}


def _report(asked):
    return referral_report(dict(asked, group_by="month"), coordinator.current()["agency_id"])


@blp.get("/reports")
def report():
    asked, errors, status = _asked(), {}, 200
    try:
        answer = _report(asked)
    except InvalidInput as refused:
        fields = [field for field in (refused.errors or {}) if field in PERIOD_PROBLEMS] or ["from"]
        errors = {field: gettext(PERIOD_PROBLEMS[field]) for field in fields}
        answer, status = _report({}), 422
    values = {name: asked.get(name, answer[name]) for name in ("from", "to")}  # a refused one as typed
    return render_template(
        "inbox/report.html",
        answer=answer,
        bars=charts.month_bars(answer["rows"]),
        outcomes=charts.OUTCOMES,
        errors=errors,
        values=values,
        month_label=charts.month_label,
        percent=percent,
        decimal=decimal,
    ), status


def percent(share):
    return format_percent(share, locale=Locale.parse(current_language()))


def decimal(number):
    return format_decimal(number, "#,##0.#", locale=Locale.parse(current_language()))


@blp.get("/reports.csv")
def report_csv():
    return as_csv(_report(_asked()))
