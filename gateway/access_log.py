"""gunicorn's logs: the access log without secrets, and both logs as JSON
lines where LOG_FORMAT=json.

A sign-in link's token is part of its path (/inbox/sign-in/<token>), so the
access log shows that path with the token left out. Each access line carries
the request's id, as the gateway answered it in X-Request-ID."""

import re

from gunicorn.glogging import Logger

from shared.plumbing import request_id

SIGN_IN_LINK = re.compile(r"(/inbox/sign-in/)[^/\s?#]+")
PATH_ATOMS = ("r", "U")  # the request line, the path


def hide_tokens(text):
    return SIGN_IN_LINK.sub(r"\1[token]", text)


def answered_id(resp):
    """The X-Request-ID the gateway answered (None if it did not)."""
    for name, value in resp.headers:
        if name.lower() == request_id.HEADER.lower():
            return value
    return None


class AccessLog(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            request_id.with_request_id(handler, "gateway")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in PATH_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = hide_tokens(atoms[name])
        return atoms

    def access(self, resp, req, environ, request_time):
        # the app has let go of the request's id by now: the answer has it
        token = request_id.current.set(answered_id(resp))
        try:
            super().access(resp, req, environ, request_time)
        finally:
            request_id.current.reset(token)
