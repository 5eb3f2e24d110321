"""The OpenAPI document's own parts: the problem schema, the error answers
every operation can give, and the request id header.

The views declare what is theirs (bodies, queries, success answers, the
errors of their domain: 403, 404, 409); `ContractPlugin` adds to each
operation what the gateway itself answers around every view (401, 429,
503, ..., the body checks' 400, 413, 415, 422, and gunicorn's own 400 and
431), so the document lists every status a partner can get and no
catch-all `default`.
"""

import http

from apispec import BasePlugin
from marshmallow import Schema, fields

from gateway.problems import MEDIA_TYPE
from shared.plumbing.request_id import HEADER as REQUEST_ID_HEADER


class Problem(Schema):
    """An error (RFC 9457); `errors` maps field paths to their messages."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    request_id = fields.String(
        required=True, metadata={"description": "The request's id, as in the X-Request-ID header."}
    )


class NotReady(Problem):
    down = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "What does not answer: `rabbitmq` or service names."},
    )


def page_of(item_schema):
    """The schema of a page of `item_schema` items."""
    return type(
        f"{item_schema.__name__}Page",
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "page": fields.Integer(required=True),
            "per_page": fields.Integer(required=True),
            "total": fields.Integer(required=True),
        },
    )


def problems(blp, *codes):
    """Document the problems a view of `blp` answers with, beyond those
    `ContractPlugin` adds to every operation."""

    def decorate(view):
        for code in codes:
            view = blp.alt_response(code, response=http.HTTPStatus(code).name)(view)
        return view

    return decorate


# The answers around every view, by where the operation is. gunicorn itself
# refuses a request line or headers too large (400, 431: gunicorn.conf.py).
ANY_CALL = (400, 431)
ANY_V1_CALL = (401, 429, 500, 503, 504)
WITH_A_BODY = (400, 413, 415, 422)
WITH_A_PATH_ID = (404,)
WITH_A_QUERY = (422,)

# Headers some problems carry, besides X-Request-ID.
PROBLEM_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": "`Bearer`: the scheme the key goes in.",
        }
    },
    429: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "description": "Seconds until the key may call again.",
        }
    },
    503: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "description": "Seconds after which the call is worth trying again.",
        }
    },
    504: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "description": "Seconds after which the call is worth trying again.",
        }
    },
}

REQUEST_ID_PARAMETER = "RequestId"


def register_components(spec, problem_schema=Problem):
    """Each error status as a problem+json response, and the request id as
    a request parameter and a response header, lazily: only what some
    operation uses appears in the document."""
    spec.components.header(
        REQUEST_ID_HEADER,
        {"schema": {"type": "string"}, "description": "The request's id (the caller's, if sane)."},
        lazy=True,
    )
    spec.components.parameter(
        REQUEST_ID_PARAMETER,
        "header",
        {
            "name": REQUEST_ID_HEADER,
            "required": False,
            "schema": {"type": "string"},
            "description": "An id of the caller's for this request, kept when it is 1 to 128 "
            "letters, digits and `._:-` (starting with a letter or digit); otherwise the gateway "
            "makes one. Answered in the response header and in problem bodies, and written in "
            "every log line of the request.",
        },
        lazy=True,
    )
    for status in http.HTTPStatus:
        if status < 400:
            continue
        headers = {REQUEST_ID_HEADER: REQUEST_ID_HEADER}
        headers.update(PROBLEM_HEADERS.get(status, {}))
        spec.components.response(
            status.name,
            {
                "description": status.phrase,
                "content": {MEDIA_TYPE: {"schema": problem_schema}},
                "headers": headers,
            },
            lazy=True,
        )


class ContractPlugin(BasePlugin):
    """Adds to every operation what the gateway answers around its view."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            self._complete(path, operation)

    @staticmethod
    def _complete(path, operation):
        operation.setdefault("parameters", []).append(REQUEST_ID_PARAMETER)
        responses = operation.setdefault("responses", {})
        for response in responses.values():
            if isinstance(response, dict):  # a view's own answer; references have theirs
                response.setdefault("headers", {}).setdefault(REQUEST_ID_HEADER, REQUEST_ID_HEADER)
        codes = list(ANY_CALL)
        if path.startswith("/v1/"):
            codes += ANY_V1_CALL
        else:
            operation["security"] = []  # no key needed
        if "requestBody" in operation:
            codes += WITH_A_BODY
        if "{" in path:
            codes += WITH_A_PATH_ID
        if any(isinstance(p, dict) and p.get("in") == "query" for p in operation["parameters"]):
            codes += WITH_A_QUERY
        for code in codes:
            if code not in responses and str(code) not in responses:
                responses[str(code)] = http.HTTPStatus(code).name
