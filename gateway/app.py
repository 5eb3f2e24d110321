"""The gateway: partners' HTTP API over the services' RPC."""
import logging

import flask_smorest
from flask import Flask

from gateway import auth
from gateway.api import agencies, health, notifications, referrals
from gateway.problems import from_http_exception, problem
from gateway.rpc import RpcPool, ServiceUnavailable
from shared import config
from shared.errors import ServiceError

log = logging.getLogger(__name__)


class Api(flask_smorest.Api):
    def handle_http_exception(self, error):
        return from_http_exception(error)


def create_app(settings=None):
    settings = settings or config.load()
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Returnee referral network",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_REDOC_PATH="/docs",
        OPENAPI_REDOC_URL="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerKey": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerKey": []}],
        },
    )
    timeout = float(settings["RPC_TIMEOUT_SECONDS"])
    app.extensions["rpc"] = RpcPool(settings, timeout=timeout)
    app.extensions["readiness_rpc"] = RpcPool(settings, timeout=min(timeout, 2.0), size=2)

    api = Api(app)
    app.register_blueprint(health.blp)
    for module in (agencies, referrals, notifications):
        module.blp.before_request(auth.authenticate)
        if getattr(module, "AGENCY_KEYS_ONLY", False):
            module.blp.before_request(auth.require_agency)
        api.register_blueprint(module.blp)

    @app.errorhandler(ServiceError)
    def service_error(error):
        return problem(error.status, error.title, error.detail, error.errors)

    @app.errorhandler(ServiceUnavailable)
    def unavailable(error):
        return problem(503, "Service Unavailable", str(error))

    @app.errorhandler(Exception)
    def unexpected(error):
        log.exception("unexpected error")
        return problem(500, "Internal Server Error", "Something went wrong on our side.")

    return app
