"""Partner systems' webhooks and their delivery logs: /v1/webhooks."""

from flask import request
from flask_smorest import Blueprint
from marshmallow import RAISE

from gateway.auth import authenticate, caller, require_agency
from gateway.calls import call
from gateway.docs import page_of, problems
from shared.contract.webhooks import (
    Delivery,
    DeliveryQuery,
    NewWebhook,
    PingSent,
    Webhook,
    WebhookChange,
    WebhookQuery,
    WebhookWithSecret,
)

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1/webhooks",
    description="Signed calls to a partner's system on every change of its referrals",
)
blp.before_request(authenticate)
blp.before_request(require_agency)  # a webhook hears of an agency's referrals


def _agency():
    return caller().agency_id


@blp.route("", methods=["POST"])
@blp.arguments(NewWebhook)
@blp.alt_response(201, schema=WebhookWithSecret, success=True)
@problems(blp, 403)
def create_webhook(_):
    """Register a webhook; its `secret` is shown in this answer only."""
    return call("notifications", "create_webhook", _agency(), request.get_json()), 201


@blp.route("", methods=["GET"])
@blp.arguments(WebhookQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=page_of(Webhook), success=True)
@problems(blp, 403)
def list_webhooks(**filters):
    """The caller's webhooks, newest first (no secrets)."""
    return call("notifications", "list_webhooks", _agency(), WebhookQuery().dump(filters))


@blp.route("/<uuid:webhook_id>", methods=["GET"])
@blp.alt_response(200, schema=Webhook, success=True)
@problems(blp, 403)
def get_webhook(webhook_id):
    """One of the caller's webhooks (no secret)."""
    return call("notifications", "get_webhook", _agency(), str(webhook_id))


@blp.route("/<uuid:webhook_id>", methods=["PATCH"])
@blp.arguments(WebhookChange)
@blp.alt_response(200, schema=Webhook, success=True)
@problems(blp, 403)
def change_webhook(_, webhook_id):
    """Change a webhook's URL or events, or turn it off or on."""
    return call("notifications", "change_webhook", _agency(), str(webhook_id), request.get_json())


@blp.route("/<uuid:webhook_id>", methods=["DELETE"])
@blp.alt_response(204, success=True, description="Deleted: nothing more is sent to it.")
@problems(blp, 403)
def delete_webhook(webhook_id):
    """Delete a webhook and its delivery log."""
    call("notifications", "delete_webhook", _agency(), str(webhook_id))
    return "", 204


@blp.route("/<uuid:webhook_id>/rotate-secret", methods=["POST"])
@blp.alt_response(200, schema=WebhookWithSecret, success=True)
@problems(blp, 403)
def rotate_secret(webhook_id):
    """A new secret; for 24 h deliveries are signed with the old one too."""
    return call("notifications", "rotate_webhook_secret", _agency(), str(webhook_id))


@blp.route("/<uuid:webhook_id>/test", methods=["POST"])
@blp.alt_response(202, schema=PingSent, success=True, description="A `ping` event is on its way.")
@problems(blp, 403)
def test_webhook(webhook_id):
    """Send the webhook a `ping` event, delivered and logged like any other."""
    return call("notifications", "test_webhook", _agency(), str(webhook_id)), 202


@blp.route("/<uuid:webhook_id>/deliveries", methods=["GET"])
@blp.arguments(DeliveryQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=page_of(Delivery), success=True)
@problems(blp, 403)
def list_deliveries(webhook_id, **filters):
    """The webhook's deliveries, newest first: what each try got."""
    return call(
        "notifications", "list_webhook_deliveries", _agency(), str(webhook_id), DeliveryQuery().dump(filters)
    )
