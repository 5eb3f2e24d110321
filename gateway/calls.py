"""One RPC call from a request thread, through the app's pool, carrying
the request's id to the service."""

from flask import current_app

from gateway import request_ids


def call(service, method, *args):
    with current_app.extensions["rpc"].proxy(request_ids.context_data()) as rpc:
        return getattr(getattr(rpc, service), method)(*args)
