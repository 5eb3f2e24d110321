"""Sign-in links for coordinators, e-mailed as the agencies service asks.

A link is a secret: it is sent at once and kept nowhere (no notification
row holds it, no log line names it). A failed send is tried again a few
times within the link's life; after that the coordinator simply asks for
a new link, as the sign-in page says.
"""

import logging

import eventlet

from services.notifications import dispatch
from services.notifications.models import Notification

log = logging.getLogger(__name__)

TRIES = 3
FIRST_PAUSE_SECONDS = 2.0


def send_link(payload, messages, mailer, timeout, pause=FIRST_PAUSE_SECONDS):
    """E-mail the sign-in link of `payload` (the SIGN_IN_LINK event) to its
    coordinator, in their language; True when it went out."""
    coordinator = payload["coordinator"]
    subject, text_body, html_body = messages.email(
        "sign_in",
        coordinator["language"],
        {
            "agency": coordinator["agency_name"],
            "link": messages.sign_in_link(payload["token"]),
            "minutes": payload["valid_minutes"],
        },
    )
    message = Notification(
        channel="email",
        recipient=coordinator["email"],
        subject=subject,
        text_body=text_body,
        html_body=html_body,
    )
    for attempt in range(1, TRIES + 1):
        error = dispatch.send_message(message, mailer, None, timeout)
        if error is None:
            log.info("sign-in link e-mailed to contact %s", coordinator["contact_id"])
            return True
        # the error's text may quote the address: only its kind is logged
        log.warning(
            "sign-in link to contact %s, try %d of %d failed (%s)",
            coordinator["contact_id"],
            attempt,
            TRIES,
            type(error.__cause__ or error).__name__,
        )
        if attempt < TRIES:
            eventlet.sleep(dispatch.backoff(attempt, pause).total_seconds())
    log.error("sign-in link to contact %s not sent; they can ask for another", coordinator["contact_id"])
    return False
