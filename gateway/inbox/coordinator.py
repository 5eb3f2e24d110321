"""Who is signed in: the coordinator of the session named in the signed
cookie, asked of the agencies service on every page (so a sign-out, or
the contact's removal from the directory, ends it at once everywhere).
The service is asked by the session id's digest, never the clear id."""

import secrets

from flask import g, session

from gateway.calls import call
from shared.contract.digests import digest

SESSION_ID = "sid"  # in the signed cookie: the session's clear id, known only to its browser


def current():
    """The signed-in coordinator ({"contact_id", "name", "email",
    "language", "agency_id", "agency_name"}), or None."""
    if "coordinator" not in g:
        sid = session.get(SESSION_ID)
        g.coordinator = call("agencies", "coordinator_session", digest(sid)) if sid else None
        if g.coordinator is None:
            session.pop(SESSION_ID, None)
    return g.coordinator


def actor():
    coordinator = current()
    return {"type": "coordinator", "id": coordinator["contact_id"], "name": coordinator["name"]}


def new_session_id():
    """A session's clear id: made here and kept only in the browser's signed
    cookie; the agencies service knows it by its digest alone."""
    return secrets.token_urlsafe(32)


def begin(session_id, signed_in):
    """Keep the session the agencies service opened for `signed_in` (the
    coordinator) in a fresh cookie: nothing of the signed-out visit (its CSRF secret) is kept
    but the chosen language. A session the browser still held is ended on
    the server, so a copy of the old cookie opens nothing."""
    previous = session.get(SESSION_ID)
    if previous:
        call("agencies", "sign_out", digest(previous))
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    session[SESSION_ID] = session_id
    session.permanent = True
    g.coordinator = signed_in


def end():
    """End the session on the server first: if the directory cannot be
    reached, the cookie still holds it, and signing out can be tried again."""
    sid = session.get(SESSION_ID)
    if sid:
        call("agencies", "sign_out", digest(sid))
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    g.coordinator = None
