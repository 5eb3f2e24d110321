"""Checks of a request's body before anything else reads it: its size
(413), its media type (415) and whether it is JSON at all (400). The
marshmallow schemas then check what it says (422)."""

import json

from flask import abort, current_app, request

BODY_METHODS = ("POST", "PUT", "PATCH")


def init_app(app, max_bytes):
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    app.before_request(check_json_body)


def check_json_body():
    if request.url_rule is None or request.method not in BODY_METHODS:
        return  # an unknown path or method: 404 or 405 says more
    if not request.path.startswith("/v1/"):
        return  # the coordinator pages post forms
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        abort(413, description=f"A request body may be at most {limit} bytes.")
    body = request.get_data(cache=True)  # werkzeug stops a longer chunked body: 413
    if not body:
        return
    if not request.is_json:
        abort(415, description="A request body must be JSON, sent as Content-Type: application/json.")
    try:
        json.loads(body)
    except ValueError as error:  # not JSON, or not UTF-8
        abort(400, description=f"The request body is not valid JSON: {error}.")
    except RecursionError:
        abort(400, description="The request body is not valid JSON: it is nested too deeply.")
