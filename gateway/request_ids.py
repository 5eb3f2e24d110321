"""Each request's id: the caller's `X-Request-ID` if it looks sane, else a
new one; answered in the same header, put in every problem body, sent along
with every RPC call and written in the gateway's own log lines."""

from flask import g, request

from shared.plumbing import request_id


def init_app(app):
    """Register first, so that every other hook and handler sees the id."""
    app.before_request(_begin)
    app.after_request(_answer)
    app.teardown_request(_end)


def current():
    """This request's id (None outside a request)."""
    return g.get("request_id")


def context_data():
    """What RPC calls made for this request carry to the services."""
    return {request_id.CONTEXT_KEY: current()}


def _begin():
    g.request_id = request_id.accept(request.headers.get(request_id.HEADER))
    request_id.current.set(g.request_id)


def _answer(response):
    response.headers[request_id.HEADER] = g.setdefault("request_id", request_id.new())
    return response


def _end(_error=None):
    request_id.current.set(None)  # gunicorn's threads serve one request after another
