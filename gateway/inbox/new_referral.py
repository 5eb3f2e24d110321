"""A new referral from the pages: the receiving agency found in the
directory (by service, region and language), the returnee, the consent.

One form with two buttons, so nothing typed is lost: "Find agencies"
shows the directory's matches again with the form as it was; "Send"
creates the referral. A refusal shows the form as typed, with each
field's problem next to it (422). A hidden form id is the request's
Idempotency-Key: a double click sends one referral.
"""

import datetime
import uuid

from flask import flash, redirect, render_template, request, url_for

from gateway.calls import call
from gateway.inbox import blp, coordinator, places, words
from gateway.inbox.i18n import N_, TIME_ZONE, gettext
from shared.contract.errors import Conflict, InvalidInput

TEXT_FIELDS = (
    "receiving_agency_id",
    "service_type",
    "search_region",
    "search_language",
    "priority",
    "reason",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "phone",
    "preferred_language",
    "returned_from",
    "return_date",
    "region",
    "vulnerabilities",
    "consent_method",
    "consent_obtained_at",
    "form_id",
)
# A refused field's hint, in the coordinator's words; fields not named here get GENERIC.
HINTS = {
    "receiving_agency_id": N_("Choose the agency to refer to (press \u201cFind agencies\u201d first)."),
    "service_type": N_("Choose a service that the receiving agency offers."),
    "given_name": N_("Write the returnee's given name."),
    "family_name": N_("Write the returnee's family name."),
    "region": N_("Choose the region where the returnee lives now."),
    "date_of_birth": N_("A date, not in the future."),
    "return_date": N_("A date, not in the future."),
    "phone": N_("A phone number in international form, like +994501234567."),
    "consent_given": N_("The returnee's consent is needed to refer them: no data moves without it."),
    "consent_obtained_at": N_("A date and time, not in the future."),
    "reason": N_("At most 4000 characters."),
}
GENERIC = N_("Please check this value.")


def _typed():
    values = {name: request.form.get(name, "").strip() for name in TEXT_FIELDS}
    values["consent_given"] = request.form.get("consent_given") == "yes"
    return values


def _blank():
    now = datetime.datetime.now(TIME_ZONE).replace(second=0, microsecond=0, tzinfo=None)
    return dict(
        dict.fromkeys(TEXT_FIELDS, ""),
        priority="normal",
        consent_given=False,
        consent_method="written",
        consent_obtained_at=now.isoformat(timespec="minutes"),
        form_id=uuid.uuid4().hex,
        service_type=request.args.get("service_type", ""),
    )


def _matches(values):
    """The directory's agencies that could take the referral: offering the
    service (and in the region, speaking the language, where chosen),
    accepting referrals, and not the coordinator's own agency."""
    if values["service_type"] not in words.SERVICES:
        return None
    filters = {"service": values["service_type"], "accepting": True, "per_page": 100}
    if values["search_region"] in dict(places.regions()):
        filters["region"] = values["search_region"]
    if values["search_language"] in words.CONTACT_LANGUAGES:
        filters["language"] = values["search_language"]
    found = call("agencies", "search_agencies", filters)["items"]
    return [agency for agency in found if agency["id"] != coordinator.current()["agency_id"]]


def _page(values, errors=None, status=200):
    return render_template(
        "inbox/new_referral.html",
        values=values,
        errors=errors or {},
        agencies=_matches(values),
        countries=places.countries(),
        regions=places.regions(),
        hints=HINTS,
    ), status


@blp.get("/referrals/new")
def new_referral():
    return _page(_blank())


@blp.post("/referrals/new")
def send_referral():
    values = _typed()
    if request.form.get("action") != "send":
        return _page(values)
    me = coordinator.current()
    try:
        made = call(
            "referrals",
            "create_referral",
            me["agency_id"],
            _body(values),
            "inbox-" + values["form_id"],
            coordinator.actor(),
        )
    except InvalidInput as refused:
        return _page(values, _form_errors(refused.errors or {}), 422)
    except Conflict:
        values["form_id"] = uuid.uuid4().hex  # a changed form after a sent one: a new referral
        return _page(
            values,
            {
                "_form": gettext(
                    "This form was already sent, with other values. Please check "
                    "your referrals before you send it again."
                )
            },
            409,
        )
    flash(gettext("Referral %(reference)s was sent.", reference=made["reference"]), "success")
    return redirect(url_for("inbox.referral", referral_id=made["id"]), 303)


def _body(values):
    """The API's NewReferral body from the form: empty fields left out."""

    def optional(name):
        return values[name] or None

    returnee = {
        name: optional(name)
        for name in ("date_of_birth", "sex", "phone", "preferred_language", "returned_from", "return_date")
    }
    returnee.update(
        given_name=values["given_name"],
        family_name=values["family_name"],
        region=values["region"],
        vulnerabilities=[line.strip() for line in values["vulnerabilities"].splitlines() if line.strip()],
    )
    consent = {
        "given": values["consent_given"],
        "method": optional("consent_method"),
        "obtained_at": _baku_time(values["consent_obtained_at"]),
    }
    body = {
        "service_type": values["service_type"],
        "priority": values["priority"] or "normal",
        "reason": optional("reason"),
        "returnee": returnee,
        "consent": consent,
    }
    if values["receiving_agency_id"]:
        body["receiving_agency_id"] = values["receiving_agency_id"]
    else:
        body["receiving_agency_id"] = None  # refused, and named, by the schema
    return body


def _baku_time(typed):
    """A datetime-local value (Baku's wall clock) as RFC 3339, or the typed text as it is."""
    if not typed:
        return None
    try:
        return datetime.datetime.fromisoformat(typed).replace(tzinfo=TIME_ZONE).isoformat()
    except ValueError:
        return typed  # refused by the schema, and shown next to its field


def _form_errors(refused):
    """The service's field paths as the form's fields, each with its hint."""
    errors = {}
    for path in refused:
        parts = path.split(".")
        if parts[0] == "returnee":
            field = parts[1] if len(parts) > 1 else "given_name"
        elif parts[0] == "consent":
            field = "consent_" + (parts[1] if len(parts) > 1 else "given")
        else:
            field = parts[0]
        errors[field] = gettext(HINTS.get(field, GENERIC))
    return errors
