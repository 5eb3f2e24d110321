"""Every error as `application/problem+json` (RFC 9457)."""
from flask import jsonify
from werkzeug.exceptions import HTTPException

from shared.validation import flatten_errors

PROBLEM_TYPE = "about:blank"


def problem(status, title, detail=None, errors=None, **extra):
    body = {"type": PROBLEM_TYPE, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def from_http_exception(error: HTTPException):
    """werkzeug's and webargs' errors: a 422 from webargs names each field
    (its messages come per location: {"json": {...}, "query": {...}})."""
    data = getattr(error, "data", None) or {}
    errors = None
    if "messages" in data:
        errors = {}
        for messages in data["messages"].values():
            errors.update(flatten_errors(messages))
    detail = "The request is not valid." if errors else error.description
    response = problem(error.code or 500, error.name, detail, errors)
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    if getattr(error, "response", None) is not None:
        for name in ("Allow", "Retry-After"):
            if name in error.response.headers:
                response.headers[name] = error.response.headers[name]
    return response
