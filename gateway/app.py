"""The gateway: partners' HTTP API over the services' RPC."""

import logging
from http import HTTPStatus

import flask_smorest
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import apidocs, auth, bodies, docs, inbox, limits, metrics, request_ids, security
from gateway.api import agencies, health, notifications, referrals, reports, webhooks
from gateway.problems import from_http_exception, problem, with_retry_after
from gateway.rpc import RpcPool, ServiceTimeout, ServiceUnavailable
from shared import config
from shared.contract.errors import ServiceError

log = logging.getLogger(__name__)


class Api(flask_smorest.Api):
    """flask-smorest's Api with the contract's errors: problem+json bodies,
    each status listed (no catch-all `default` answer)."""

    ERROR_SCHEMA = docs.Problem
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_responses(self):
        docs.register_components(self.spec, self.ERROR_SCHEMA)

    def _register_pagination_header(self):
        """Lists answer pages in their bodies, not flask-smorest's header."""

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
        API_SPEC_OPTIONS={
            "info": {
                "description": "Partner agencies' API of the returnee referral network. "
                "Every error is application/problem+json (RFC 9457). Unknown "
                "fields in a body and unknown query parameters are refused (422)."
            },
            "components": {
                "securitySchemes": {
                    "bearerKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API key issued by the network's admins: `Authorization: Bearer <key>`.",
                    }
                }
            },
            "security": [{"bearerKey": []}],
        },
    )
    proxies = int(settings["TRUSTED_PROXIES"])
    if proxies:  # the client's address (sign-in limits, ...) as the proxies in front of us saw it
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    timeout = float(settings["RPC_TIMEOUT_SECONDS"])
    app.extensions["rpc"] = RpcPool(settings, timeout=timeout)
    app.extensions["readiness_rpc"] = RpcPool(settings, timeout=min(timeout, 2.0), size=2)
    app.extensions["keys"] = auth.key_cache(settings)

    # The order of the hooks: the metrics' clock, the request id, then the
    # rate limit, then the body checks, then the key (the /v1 blueprints' own hooks).
    metrics.init_app(app)
    request_ids.init_app(app)
    security.init_app(app, settings["PUBLIC_URL"])
    app.extensions["rate_limiter"] = limits.init_app(app, settings)
    bodies.init_app(app, int(settings["MAX_BODY_BYTES"]))

    api = Api(app, spec_kwargs={"extra_plugins": [docs.ContractPlugin()]})
    for module in (health, agencies, referrals, notifications, webhooks, reports):
        api.register_blueprint(module.blp)
    app.register_blueprint(apidocs.blp)
    inbox.init_app(app, settings)  # the coordinator pages

    @app.errorhandler(ServiceError)
    def service_error(error):
        # RFC 9457: with type about:blank, the title is the status's own phrase
        answer = problem(error.status, HTTPStatus(error.status).phrase, error.detail, error.errors)
        return with_retry_after(answer) if error.status == 503 else answer

    @app.errorhandler(ServiceTimeout)
    def timed_out(error):
        return with_retry_after(problem(504, "Gateway Timeout", str(error)))

    @app.errorhandler(ServiceUnavailable)
    def unavailable(error):
        return with_retry_after(problem(503, "Service Unavailable", str(error)))

    @app.errorhandler(Exception)
    def unexpected(error):
        log.exception("unexpected error")
        return problem(500, "Internal Server Error", "Something went wrong on our side.")

    return app
