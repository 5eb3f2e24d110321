"""The messages sent to the caller's contacts: /v1/notifications."""

from flask_smorest import Blueprint
from marshmallow import RAISE

from gateway.auth import authenticate, caller
from gateway.calls import call
from gateway.docs import page_of
from shared.contract.notifications import Notification, NotificationQuery

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/v1/notifications",
    description="E-mails and SMS sent to the caller's contacts",
)
blp.before_request(authenticate)


@blp.route("", methods=["GET"])
@blp.arguments(NotificationQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=page_of(Notification), success=True)
def list_notifications(**filters):
    """The notifications sent to the caller's own contacts, newest first."""
    return call("notifications", "list_notifications", caller().agency_id, NotificationQuery().dump(filters))
