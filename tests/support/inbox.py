"""Reading the coordinator pages and their e-mails in tests."""

import re

from tests.support.sinks import readable, wait_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"/inbox/sign-in/([A-Za-z0-9_-]+)")


def csrf_of(html):
    return CSRF.search(html).group(1)


def link_token(mail):
    """The token of the sign-in link in an e-mail."""
    return LINK.search(readable(mail)).group(1)


def latest_mail(smtp_sink, address, count=1, what="the e-mail"):
    """The `count`-th e-mail to `address` (waiting for it), as a message."""
    return wait_for(
        lambda: len(smtp_sink.to(address)) >= count and smtp_sink.to(address)[count - 1], what=what
    )


def sign_in_token(smtp_sink, address, count=1):
    """The token of the `count`-th sign-in e-mail to `address` (other
    e-mails to the same coordinator are passed over), waiting for it."""

    def links():
        found = [LINK.search(readable(mail)) for mail in smtp_sink.to(address)]
        found = [match.group(1) for match in found if match]
        return found[count - 1] if len(found) >= count else None

    return wait_for(links, what=f"sign-in e-mail {count} to {address}")
