"""The report's query and answer, shared by the gateway (HTTP) and the
referrals service (RPC) so that both check them the same way."""

import datetime

from marshmallow import Schema, ValidationError, fields, validates_schema

from shared.contract import standards

GROUPINGS = ("service_type", "region", "month", "receiving_agency", "sending_agency")
COUNTS = ("sent", "accepted", "declined", "cancelled", "completed", "overdue")
FIGURES = ("acceptance_rate", "median_hours_to_answer", "median_days_to_complete")
LONGEST_DAYS = 3660  # a report spans ten years at most


class ReportQuery(Schema):
    """`from` and `to` are calendar days in Baku, both included; left out,
    the report covers the last 12 months (the referrals service fills them)."""

    from_ = fields.Date(data_key="from")
    to = fields.Date()
    group_by = standards.Text(load_default="service_type", validate=standards.one_of(GROUPINGS))

    @validates_schema
    def check_period(self, data, **_):
        start, end = data.get("from_"), data.get("to")
        if start and end and start > end:
            raise ValidationError("It must not be after `to`.", "from")
        end = end or datetime.date.today()  # `to` left out: today (a day either side of Baku's is no matter)
        if start and (end - start).days > LONGEST_DAYS:
            raise ValidationError(f"A report spans at most {LONGEST_DAYS} days.", "from")


class ReportTotals(Schema):
    """The counts and figures of a group, or of all (the totals)."""

    suppressed = fields.Boolean(
        required=True,
        metadata={
            "description": "Network-wide answers only: true when a count here is withheld (null), "
            "and with it the rates and medians."
        },
    )
    sent = fields.Integer(allow_none=True, required=True)
    accepted = fields.Integer(allow_none=True, required=True)
    declined = fields.Integer(allow_none=True, required=True)
    cancelled = fields.Integer(allow_none=True, required=True)
    completed = fields.Integer(allow_none=True, required=True)
    overdue = fields.Integer(allow_none=True, required=True)
    acceptance_rate = fields.Float(allow_none=True, required=True)
    median_hours_to_answer = fields.Float(allow_none=True, required=True)
    median_days_to_complete = fields.Float(allow_none=True, required=True)


class ReportRow(ReportTotals):
    key = fields.String(
        required=True,
        metadata={
            "description": "The group: a service type, an ISO 3166-2 region, a month (YYYY-MM) "
            "or an agency's id."
        },
    )
    name = fields.String(
        allow_none=True,
        metadata={"description": "With region and agency groupings: the region's or the agency's name."},
    )


class Report(Schema):
    from_ = fields.Date(data_key="from", required=True)
    to = fields.Date(required=True)
    group_by = fields.String(required=True)
    network = fields.Boolean(
        required=True, metadata={"description": "True for the whole network's report (admin keys)."}
    )
    rows = fields.List(fields.Nested(ReportRow), required=True)
    totals = fields.Nested(ReportTotals, required=True)
