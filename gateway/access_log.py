"""gunicorn's access log without secrets: a sign-in link's token is part of
its path (/inbox/sign-in/<token>), so the log shows that path with the
token left out."""
import re

from gunicorn.glogging import Logger

SIGN_IN_LINK = re.compile(r"(/inbox/sign-in/)[^/\s?#]+")
PATH_ATOMS = ("r", "U")  # the request line, the path


def hide_tokens(text):
    return SIGN_IN_LINK.sub(r"\1[token]", text)


class AccessLog(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in PATH_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = hide_tokens(atoms[name])
        return atoms
