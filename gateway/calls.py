"""One RPC call from a request thread, through the app's pool."""
from flask import current_app


def call(service, method, *args):
    with current_app.extensions["rpc"].proxy() as rpc:
        return getattr(getattr(rpc, service), method)(*args)
