"""Errors under /inbox as pages in the coordinator's language (the API's
are problem+json): what went wrong, and where to go from there."""

import logging

from flask import g, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from gateway.inbox import blp
from gateway.inbox.i18n import N_, gettext
from gateway.problems import from_http_exception, with_retry_after
from gateway.rpc import ServiceTimeout, ServiceUnavailable
from shared.contract.errors import ServiceError

log = logging.getLogger(__name__)

TITLES = {
    400: N_("This request could not be handled"),
    403: N_("This is not yours to do"),
    404: N_("Not found"),
    405: N_("This request could not be handled"),
    409: N_("This referral has changed"),
    413: N_("This form is too large"),
    422: N_("Some values are not valid"),
    500: N_("Something went wrong on our side"),
    503: N_("The network is not available just now"),
    504: N_("The network is not available just now"),
}
DETAILS = {
    404: N_("There is no such page, or it belongs to other agencies."),
    500: N_("Please try again. If it happens again, tell the network's operators."),
    503: N_("Please try again in a minute."),
    504: N_("Please try again in a minute."),
}


def page(status, detail=None):
    title = gettext(TITLES.get(status, TITLES[400]))
    detail = detail or (gettext(DETAILS[status]) if status in DETAILS else None)
    return render_template("inbox/problem.html", status=status, title=title, detail=detail), status


@blp.errorhandler(CSRFError)
def csrf_refused(error):
    return page(
        400,
        gettext(
            "The form had expired or did not come from this site: nothing was changed. "
            "Please go back, reload the page and try again."
        ),
    )


@blp.errorhandler(HTTPException)
def http_error(error):
    return page(error.code or 500)


@blp.errorhandler(ServiceError)
def service_error(error):
    return _retry_later(*page(error.status)) if error.status == 503 else page(error.status)


@blp.errorhandler(ServiceUnavailable)
def unavailable(error):
    return _retry_later(*page(504 if isinstance(error, ServiceTimeout) else 503))


def _retry_later(body, status):
    return with_retry_after(make_response(body, status))


@blp.errorhandler(Exception)
def unexpected(error):
    log.exception("unexpected error")
    return page(500)


def init_app(app):
    """A path under /inbox that matches no page (or not with this method)
    gets a page too: routing fails before any blueprint is chosen."""

    def routing_error(error):
        if request.path == "/inbox" or request.path.startswith("/inbox/"):
            g.setdefault("coordinator", None)
            return page(error.code)
        return from_http_exception(error)

    app.register_error_handler(404, routing_error)
    app.register_error_handler(405, routing_error)
