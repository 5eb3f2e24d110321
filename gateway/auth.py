"""Who is calling: the bearer key, checked with the agencies service on
every `/v1` request (no cache, so a revoked key fails on the very next one)."""
from flask import abort, g, request
from werkzeug.datastructures import WWWAuthenticate

from gateway.calls import call

BEARER = WWWAuthenticate("Bearer")


class Caller:
    def __init__(self, agency_id, role, key_id):
        self.agency_id = agency_id
        self.role = role
        self.key_id = key_id

    @property
    def is_admin(self):
        return self.role == "admin"


def authenticate():
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        abort(401, description="An API key is required: Authorization: Bearer <key>.",
              www_authenticate=BEARER)
    found = call("agencies", "authenticate", key.strip())
    if not found:
        abort(401, description="The API key is not valid.", www_authenticate=BEARER)
    g.caller = Caller(found["agency_id"], found["role"], found["key_id"])


def caller():
    return g.caller


def require_admin():
    if not g.caller.is_admin:
        abort(403, description="This call is for the network's admins.")


def require_agency():
    """Referrals are between agencies: admin keys do not read personal data."""
    if g.caller.is_admin:
        abort(403, description="Admin keys do not work with referrals; use an agency key.")
