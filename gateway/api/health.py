"""/healthz and /readyz: no key needed."""
from flask import Blueprint, current_app

from gateway.problems import problem
from gateway.rpc import BrokerUnavailable, ServiceUnavailable

blp = Blueprint("health", __name__)

SERVICES = ("agencies", "referrals", "notifications")


@blp.get("/healthz")
def healthz():
    return {"status": "ok"}


@blp.get("/readyz")
def readyz():
    """200 when RabbitMQ and every service answer, else 503 naming what is down."""
    pool = current_app.extensions["readiness_rpc"]
    down = []
    for service in SERVICES:
        try:
            with pool.proxy() as rpc:
                getattr(rpc, service).ping()
        except BrokerUnavailable:
            down = ["rabbitmq"]
            break
        except ServiceUnavailable:
            down.append(service)
    if down:
        return problem(503, "Service Unavailable", "Not ready: " + ", ".join(down) + " down.", down=down)
    return {"status": "ready", "services": list(SERVICES)}
