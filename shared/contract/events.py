"""Events the services announce on RabbitMQ, and their payloads.

Events travel on nameko's event exchange of the source service
(`<source>.events`, routing key = event type), so a nameko
`@event_handler(SOURCE, TYPE)` receives them. A payload carries ids,
statuses, agency ids, service type and reference: never a returnee's data.
"""

from marshmallow import Schema, fields, validate

REFERRALS = "referrals"  # the service whose exchange carries referral events
AGENCIES = "agencies"  # ... and agency events

AGENCY_CREATED = "agency_created"
AGENCY_UPDATED = "agency_updated"
API_KEY_REVOKED = "api_key_revoked"  # {"key_id", "agency_id"}: never the key or its digest
# {"event_id", "token", "coordinator": {...}}: the one event that carries a
# secret, so it goes straight to the broker (transient), never an outbox.
SIGN_IN_LINK = "sign_in_link"

REFERRAL_SENT = "referral_sent"
REFERRAL_ACCEPTED = "referral_accepted"
REFERRAL_DECLINED = "referral_declined"
REFERRAL_STARTED = "referral_started"
REFERRAL_COMPLETED = "referral_completed"
REFERRAL_CANCELLED = "referral_cancelled"
REFERRAL_OVERDUE = "referral_overdue"
REFERRAL_ERASED = "referral_erased"

REFERRAL_EVENTS = (
    REFERRAL_SENT,
    REFERRAL_ACCEPTED,
    REFERRAL_DECLINED,
    REFERRAL_STARTED,
    REFERRAL_COMPLETED,
    REFERRAL_CANCELLED,
    REFERRAL_OVERDUE,
    REFERRAL_ERASED,
)


class ReferralEvent(Schema):
    """What every referral event says; `event_id` makes handling idempotent."""

    event_id = fields.UUID(required=True)
    event_type = fields.String(required=True, validate=validate.OneOf(REFERRAL_EVENTS))
    occurred_at = fields.AwareDateTime(required=True)
    referral_id = fields.UUID(required=True)
    reference = fields.String(required=True)
    service_type = fields.String(required=True)
    priority = fields.String(required=True)
    status = fields.String(required=True)
    from_status = fields.String(allow_none=True, load_default=None)
    sending_agency_id = fields.UUID(required=True)
    receiving_agency_id = fields.UUID(required=True)
    acting_agency_id = fields.UUID(allow_none=True, load_default=None)
    # the referral's version after the change (None in events older than versions)
    version = fields.Integer(allow_none=True, load_default=None)


referral_event = ReferralEvent()


class AgencyEvent(Schema):
    """An agency as the directory now has it (no keys, nothing secret), for
    services that keep a copy of what they need."""

    event_id = fields.UUID(required=True)
    event_type = fields.String(required=True, validate=validate.OneOf((AGENCY_CREATED, AGENCY_UPDATED)))
    occurred_at = fields.AwareDateTime(required=True)
    agency = fields.Dict(required=True)


agency_event = AgencyEvent()
