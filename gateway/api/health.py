"""/healthz and /readyz: no key needed, never rate-limited."""

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from gateway import request_ids
from gateway.docs import NotReady
from gateway.problems import MEDIA_TYPE, problem
from gateway.rpc import BrokerUnavailable, ServiceUnavailable

blp = Blueprint("health", __name__, description="Whether the gateway runs and can serve")

SERVICES = ("agencies", "referrals", "notifications")


class Alive(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class Ready(Schema):
    status = fields.String(required=True, metadata={"example": "ready"})
    services = fields.List(fields.String(), required=True)


@blp.route("/healthz", methods=["GET"])
@blp.alt_response(200, schema=Alive, success=True)
def healthz():
    """200 while the gateway runs."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.alt_response(200, schema=Ready, success=True)
@blp.alt_response(503, schema=NotReady, content_type=MEDIA_TYPE, description="Something is down.")
def readyz():
    """200 when RabbitMQ and every service answer, else 503 naming what is down."""
    pool = current_app.extensions["readiness_rpc"]
    down = []
    for service in SERVICES:
        try:
            with pool.proxy(request_ids.context_data()) as rpc:
                getattr(rpc, service).ping()
        except BrokerUnavailable:
            down = ["rabbitmq"]
            break
        except ServiceUnavailable:
            down.append(service)
    if down:
        return problem(503, "Service Unavailable", "Not ready: " + ", ".join(down) + " down.", down=down)
    return {"status": "ready", "services": list(SERVICES)}
