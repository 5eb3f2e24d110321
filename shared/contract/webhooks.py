"""Webhooks and their deliveries as the contract shows them (API.md,
"Webhooks")."""

from marshmallow import Schema, fields, validate

from shared.contract import standards
from shared.contract.paging import PageQuery
from shared.contract.vocabulary import DELIVERY_STATUSES, WEBHOOK_EVENTS

MAX_URL_LENGTH = 2000


def _url(**options):
    return standards.Text(validate=validate.Length(min=1, max=MAX_URL_LENGTH), **options)


def _events(**options):
    return fields.List(
        standards.Text(validate=standards.one_of(WEBHOOK_EVENTS)),
        validate=validate.Length(min=1, max=len(WEBHOOK_EVENTS)),
        **options,
    )


class NewWebhook(Schema):
    url = _url(required=True, metadata={"description": "https; must not resolve to a private address."})
    events = _events(required=True)
    description = standards.Text(load_default="", validate=validate.Length(max=500))


class WebhookChange(Schema):
    url = _url()
    events = _events()
    active = standards.JsonBoolean()


class Webhook(Schema):
    id = fields.UUID(dump_only=True)
    url = standards.Text()
    events = fields.List(standards.Text())
    description = standards.Text()
    active = fields.Boolean()
    created_at = fields.AwareDateTime()


class WebhookWithSecret(Webhook):
    secret = standards.Text(metadata={"description": "whsec_ + base64: shown only here, never again."})


class Delivery(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    event = standards.Text()
    status = standards.Text(validate=standards.one_of(DELIVERY_STATUSES))
    attempts = fields.Integer()
    last_response_status = fields.Integer(allow_none=True)
    last_error = standards.Text(allow_none=True)
    created_at = fields.AwareDateTime()
    delivered_at = fields.AwareDateTime(allow_none=True)


class PingSent(Schema):
    event_id = fields.UUID(metadata={"description": "The ping's webhook-id, as its delivery will carry it."})


class DeliveryQuery(PageQuery):
    status = standards.Text(validate=standards.one_of(DELIVERY_STATUSES))


class WebhookQuery(PageQuery):
    pass
