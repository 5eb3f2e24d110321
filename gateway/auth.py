"""Who is calling: the bearer key, checked with the agencies service.

What the directory answers is kept by each gateway process, under the key's
digest, in a cache that a key's revocation empties before the revocation's
call returns (shared.plumbing.announced_cache): a revoked key fails on the very next
request through every replica, and a key in use costs one basic.get on the
broker instead of an RPC per request.
"""

from flask import abort, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate

from gateway.calls import call
from shared.contract import events
from shared.contract.digests import digest
from shared.plumbing.announced_cache import AnnouncedCache

BEARER = WWWAuthenticate("Bearer")


class Caller:
    def __init__(self, agency_id, role, key_id, prefix):
        self.agency_id = agency_id
        self.role = role
        self.key_id = key_id
        self.prefix = prefix

    @property
    def is_admin(self):
        return self.role == "admin"

    @property
    def actor(self):
        """Who acts, as a referral's history names it: the key's id and prefix."""
        return {"type": "api_key", "id": self.key_id, "name": self.prefix}


def bearer_key():
    """The key of `Authorization: Bearer <key>`, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def authenticate():
    key = bearer_key()
    if key is None:
        abort(
            401, description="An API key is required: Authorization: Bearer <key>.", www_authenticate=BEARER
        )
    key_digest = digest(key)  # the gateway keeps and sends only this
    found = current_app.extensions["keys"].get(
        key_digest, lambda: call("agencies", "authenticate", key_digest)
    )
    if not found:
        abort(401, description="The API key is not valid.", www_authenticate=BEARER)
    g.caller = Caller(found["agency_id"], found["role"], found["key_id"], found["prefix"])


def key_cache(settings):
    """The process's cache of checked keys: {"agency_id", "role", "key_id", "prefix"}
    by digest, a key's entry gone when the directory announces it revoked."""
    return AnnouncedCache(
        settings["AMQP_URI"],
        events.AGENCIES,
        [events.API_KEY_REVOKED],
        names_in=lambda _, payload: [payload["key_id"]],
        name_of=lambda found: found["key_id"],
    )


def caller():
    return g.caller


def require_admin():
    if not g.caller.is_admin:
        abort(403, description="This call is for the network's admins.")


def require_agency():
    """Referrals are between agencies: admin keys do not read personal data."""
    if g.caller.is_admin:
        abort(403, description="Admin keys do not work with referrals; use an agency key.")
