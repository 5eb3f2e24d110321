"""Every error as `application/problem+json` (RFC 9457), with the request's
id in the body (`request_id`) so that a partner can quote it to operators."""

from flask import has_request_context, jsonify
from werkzeug.exceptions import HTTPException

from gateway import request_ids
from shared.contract.validation import flatten_errors

PROBLEM_TYPE = "about:blank"
MEDIA_TYPE = "application/problem+json"
# Headers of werkzeug's own errors that a partner needs (405's Allow, say).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
RETRY_AFTER_SECONDS = 5  # a service, the broker or a database away: most are back within seconds


def with_retry_after(response):
    """`response` (a 503 or 504, API problem or page) saying when to try again."""
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def problem(status, title, detail=None, errors=None, **extra):
    body = {"type": PROBLEM_TYPE, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    if has_request_context():
        body["request_id"] = request_ids.current()
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    return response


def from_http_exception(error: HTTPException):
    """werkzeug's and webargs' errors: a 422 from webargs names each field
    (its messages come per location: {"json": {...}, "query": {...}})."""
    data = getattr(error, "data", None) or {}
    errors = None
    if "messages" in data:
        errors = {}
        for messages in data["messages"].values():
            if isinstance(messages, dict):
                errors.update(flatten_errors(messages))
            else:  # about the whole of a location, not one field
                errors.setdefault("_schema", []).extend(messages)
    detail = "The request is not valid." if errors else error.description
    response = problem(error.code or 500, error.name, detail, errors)
    headers = dict(error.get_headers())
    if getattr(error, "response", None) is not None:
        headers.update(error.response.headers)
    headers.update(data.get("headers") or {})
    for name in KEPT_HEADERS:
        if name in headers:
            response.headers[name] = headers[name]
    return response
