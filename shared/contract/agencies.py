"""The agency directory's bodies, shared by the gateway (HTTP) and the
agencies service (RPC) so that both check them the same way."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contract import standards
from shared.contract.paging import PageQuery
from shared.contract.vocabulary import AGENCY_KINDS, CHANNELS, CONTACT_LANGUAGES, KEY_ROLES, SERVICE_TYPES


def _unique(values):
    if len(set(values)) != len(values):
        raise ValidationError("Values must not repeat.")


# API.md, "Keys, contacts and limits": each contact may be sent e-mail and SMS on
# every event, so an agency has at most this many.
MOST_CONTACTS = 20


class Contact(Schema):
    # Stable across edits: a PATCH names an existing contact by its id (or,
    # without one, by the same e-mail address or phone); others get a new id.
    id = fields.UUID(
        load_default=None,
        metadata={
            "description": "The contact's stable id; given in a change, it must name one of the agency's contacts."
        },
    )
    name = standards.Text(required=True, validate=validate.Length(min=1, max=200))
    email = standards.Text(allow_none=True, load_default=None, validate=standards.email_address)
    phone = standards.Text(allow_none=True, load_default=None, validate=standards.e164_phone)
    language = standards.Text(required=True, validate=standards.one_of(CONTACT_LANGUAGES))
    channels = fields.List(
        standards.Text(validate=standards.one_of(CHANNELS)),
        required=True,
        validate=[validate.Length(min=1), _unique],
    )

    @validates_schema
    def _reachable(self, data, **kwargs):
        channels = data.get("channels") or []
        if "email" in channels and not data.get("email"):
            raise ValidationError("An e-mail contact needs an e-mail address.", "email")
        if "sms" in channels and not data.get("phone"):
            raise ValidationError("An SMS contact needs a phone number.", "phone")


class AgencyBody(Schema):
    """What an admin gives to create an agency, or a caller to change one."""

    name = standards.Text(required=True, validate=validate.Length(min=1, max=200))
    kind = standards.Text(required=True, validate=standards.one_of(AGENCY_KINDS))
    services = fields.List(
        standards.Text(validate=standards.one_of(SERVICE_TYPES)), load_default=list, validate=_unique
    )
    regions = fields.List(
        standards.Text(validate=standards.subdivision_code), load_default=list, validate=_unique
    )
    languages = fields.List(
        standards.Text(validate=standards.language_code), load_default=list, validate=_unique
    )
    accepting_referrals = standards.JsonBoolean(load_default=True)
    contacts = fields.List(
        fields.Nested(Contact), load_default=list, validate=validate.Length(max=MOST_CONTACTS)
    )


class AgencyChanges(AgencyBody):
    """A PATCH body: any subset of the fields, nothing defaulted."""

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class Agency(AgencyBody):
    id = fields.UUID(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class NewApiKey(Schema):
    role = standards.Text(required=True, validate=standards.one_of(KEY_ROLES))


class ApiKey(Schema):
    id = fields.UUID(dump_only=True)
    key = standards.Text(dump_only=True)
    prefix = standards.Text(dump_only=True)
    role = standards.Text(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)


class AgencyQuery(PageQuery):
    service = standards.Text(validate=standards.one_of(SERVICE_TYPES))
    region = standards.Text(validate=standards.subdivision_code)
    language = standards.Text(validate=standards.language_code)
    accepting = fields.Boolean()
    q = standards.Text(validate=validate.Length(min=1, max=200))
