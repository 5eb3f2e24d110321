"""The referral bodies, shared by the gateway (HTTP) and the referrals
service (RPC) so that both check them the same way."""

import re

from marshmallow import Schema, fields, validate

from shared.contract import standards
from shared.contract.errors import InvalidInput
from shared.contract.paging import PageQuery
from shared.contract.vocabulary import (
    ACTOR_TYPES,
    CONSENT_METHODS,
    PRIORITIES,
    REFERRAL_STATUSES,
    SERVICE_TYPES,
    SEXES,
)

MOST_VULNERABILITIES = 20  # API.md, "Keys, contacts and limits"


class Returnee(Schema):
    given_name = standards.Text(required=True, validate=validate.Length(min=1, max=200))
    family_name = standards.Text(required=True, validate=validate.Length(min=1, max=200))
    date_of_birth = fields.Date(allow_none=True, load_default=None, validate=standards.not_in_future)
    sex = standards.Text(allow_none=True, load_default=None, validate=standards.one_of(SEXES))
    phone = standards.Text(allow_none=True, load_default=None, validate=standards.e164_phone)
    preferred_language = standards.Text(allow_none=True, load_default=None, validate=standards.language_code)
    returned_from = standards.Text(allow_none=True, load_default=None, validate=standards.country_code)
    return_date = fields.Date(allow_none=True, load_default=None, validate=standards.not_in_future)
    region = standards.Text(required=True, validate=standards.subdivision_code)
    vulnerabilities = fields.List(
        standards.Text(validate=validate.Length(min=1, max=200)),
        load_default=list,
        validate=validate.Length(max=MOST_VULNERABILITIES),
    )


class Consent(Schema):
    given = standards.JsonBoolean(
        required=True,
        validate=validate.Equal(True, error="The returnee's consent is required to refer them."),
    )
    obtained_at = fields.AwareDateTime(allow_none=True, load_default=None, validate=standards.not_in_future)
    method = standards.Text(allow_none=True, load_default=None, validate=standards.one_of(CONSENT_METHODS))


class NewReferral(Schema):
    receiving_agency_id = fields.UUID(required=True)
    service_type = standards.Text(required=True, validate=standards.one_of(SERVICE_TYPES))
    priority = standards.Text(load_default="normal", validate=standards.one_of(PRIORITIES))
    reason = standards.Text(allow_none=True, load_default=None, validate=validate.Length(max=4000))
    returnee = fields.Nested(Returnee, required=True)
    consent = fields.Nested(Consent, required=True)


class Referral(NewReferral):
    # null once the referral is erased (erased_at says when)
    returnee = fields.Nested(Returnee, required=True, allow_none=True)
    consent = fields.Nested(Consent, required=True, allow_none=True)
    id = fields.UUID(dump_only=True)
    reference = standards.Text(dump_only=True)
    status = standards.Text(dump_only=True, validate=standards.one_of(REFERRAL_STATUSES))
    sending_agency_id = fields.UUID(dump_only=True)
    outcome = standards.Text(dump_only=True, allow_none=True)
    respond_by = fields.AwareDateTime(dump_only=True)
    overdue = fields.Boolean(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)
    erased_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class Decline(Schema):
    reason = standards.Text(required=True, validate=validate.Length(min=1, max=4000))


class Cancel(Decline):
    pass


class Complete(Schema):
    outcome = standards.Text(required=True, validate=validate.Length(min=1, max=4000))


class NoBody(Schema):
    """accept and start take no fields."""


class Erase(Schema):
    """Why the sender erases the referral: required, checked, and not kept
    (a free text that may name the returnee; see cases.erase)."""

    reason = standards.Text(required=True, validate=validate.Length(min=1, max=4000))


MOVE_BODIES = {"accept": NoBody, "start": NoBody, "decline": Decline, "cancel": Cancel, "complete": Complete}


class ReferralQuery(PageQuery):
    box = standards.Text(validate=standards.one_of(("sent", "received")))
    status = standards.Text(validate=standards.one_of(REFERRAL_STATUSES))
    service_type = standards.Text(validate=standards.one_of(SERVICE_TYPES))
    overdue = fields.Boolean()


class Actor(Schema):
    """Who made a move or read a referral: an API key (its id and prefix,
    never the key), a coordinator in the pages (the contact's id and name),
    or the system (a timer)."""

    type = standards.Text(required=True, validate=standards.one_of(ACTOR_TYPES))
    id = fields.UUID(allow_none=True, load_default=None)
    name = standards.Text(allow_none=True, load_default=None, validate=validate.Length(max=200))


class HistoryItem(Schema):
    at = fields.AwareDateTime()
    event = standards.Text()
    from_status = standards.Text(allow_none=True)
    to_status = standards.Text(allow_none=True)
    agency_id = fields.UUID(allow_none=True)
    detail = standards.Text(allow_none=True)
    actor = fields.Nested(Actor, allow_none=True)


class History(Schema):
    items = fields.List(fields.Nested(HistoryItem))


class AccessItem(Schema):
    """One read or change of a referral: when, by which agency, who there
    (or the network itself: agency_id null, actor system), and what."""

    at = fields.AwareDateTime()
    agency_id = fields.UUID(allow_none=True)
    actor = fields.Nested(Actor, allow_none=True)
    action = standards.Text()


# API.md, "Keys, contacts and limits": 1 to 255 printable ASCII characters. The
# key is stored in a btree index, whose entries cannot be as long as a header.
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def idempotency_key(value):
    """The `Idempotency-Key` header's value (None when it is absent or empty),
    or InvalidInput naming the header."""
    if not value:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidInput(
            "The Idempotency-Key header is not acceptable.",
            {"Idempotency-Key": ["1 to 255 printable ASCII characters."]},
        )
    return value
