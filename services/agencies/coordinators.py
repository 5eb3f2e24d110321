"""Coordinators' sign-in by e-mailed one-time link, and their sessions.

A coordinator is a contact of an agency in the directory; the directory is
this service's data, so the links and sessions are kept here too. Tokens and
session ids are 256-bit random secrets, handed out once in clear and kept
only as their SHA-256 digest (shared.contract.digests, as API keys are). The gateway
asks about them by digest too, so that no clear secret rides in a request
message that the broker may write to disk.
"""

import datetime
import secrets
import uuid

from sqlalchemy import Interval, Text, bindparam, delete, func, insert, or_, select, text, update

from services.agencies.models import CoordinatorSession, SignInToken
from shared.contract.digests import digest

LINK_LIFETIME = datetime.timedelta(minutes=15)
SESSION_IDLE = datetime.timedelta(hours=8)
SESSION_LIFETIME = datetime.timedelta(hours=12)
# Links live at once per contact: more requests within a link's lifetime
# send nothing more (the page answers the same either way).
LIVE_LINKS_PER_CONTACT = 3

# Every contact with this e-mail address (one person may coordinate for two
# agencies: each agency's contact gets a link of its own).
CONTACTS_BY_EMAIL = text("""
SELECT agency.id AS agency_id, agency.name AS agency_name, contact
FROM agencies AS agency CROSS JOIN LATERAL jsonb_array_elements(agency.contacts) AS contact
WHERE lower(contact->>'email') = lower(:email)
""")

# The coordinator a live session belongs to (its last use moved to now), or
# no row: unknown, ended, idle too long, past its end, or its contact gone.
SESSION_COORDINATOR = text("""
WITH live AS (
    UPDATE coordinator_sessions SET last_seen_at = now()
    WHERE digest = :digest AND ended_at IS NULL AND expires_at > now() AND last_seen_at > now() - :idle
    RETURNING agency_id, contact_id
)
SELECT agency.id AS agency_id, agency.name AS agency_name, contact
FROM live JOIN agencies AS agency ON agency.id = live.agency_id
CROSS JOIN LATERAL jsonb_array_elements(agency.contacts) AS contact
WHERE contact->>'id' = live.contact_id::text
""").bindparams(bindparam("digest", type_=Text()), bindparam("idle", type_=Interval()))


def _coordinator(row):
    contact = row.contact
    return {
        "contact_id": contact["id"],
        "name": contact["name"],
        "email": contact.get("email"),
        "language": contact["language"],
        "agency_id": str(row.agency_id),
        "agency_name": row.agency_name,
    }


def new_links(session, email):
    """Sign-in links for every contact with this address: a list of
    (clear token, coordinator). Empty for an unknown address, and for a
    contact who already has LIVE_LINKS_PER_CONTACT live links (counted under
    a lock of the contact's, so that requests at once cannot pass it)."""
    links = []
    for row in session.execute(CONTACTS_BY_EMAIL, {"email": email}):
        contact_id = row.contact["id"]
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext("sign-in:" + contact_id))))
        live = session.scalar(
            select(func.count())
            .select_from(SignInToken)
            .where(
                SignInToken.contact_id == contact_id,
                SignInToken.used_at.is_(None),
                SignInToken.expires_at > func.now(),
            )
        )
        if live >= LIVE_LINKS_PER_CONTACT:
            continue
        token = secrets.token_urlsafe(32)
        session.execute(
            insert(SignInToken).values(
                digest=digest(token),
                agency_id=row.agency_id,
                contact_id=contact_id,
                expires_at=func.now() + LINK_LIFETIME,
            )
        )
        links.append((token, _coordinator(row)))
    return links


def _live_link(link_digest):
    return (
        SignInToken.digest == link_digest,
        SignInToken.used_at.is_(None),
        SignInToken.expires_at > func.now(),
    )


def link_is_live(session, link_digest):
    """Whether the link whose token has this digest would sign in now (nothing is spent)."""
    return session.scalar(select(func.count()).select_from(SignInToken).where(*_live_link(link_digest))) > 0


def sign_in(session, link_digest, session_digest):
    """Spend the link (by its token's digest) and open the session whose id
    the gateway made (by its digest: the clear id never leaves the gateway):
    {"coordinator": {...}}, or None when the link is unknown, used or
    expired, or its contact was removed since."""
    spent = session.execute(
        update(SignInToken)
        .where(*_live_link(link_digest))
        .values(used_at=func.now())
        .returning(SignInToken.agency_id, SignInToken.contact_id)
    ).first()
    if spent is None:
        return None
    session.execute(
        insert(CoordinatorSession).values(
            digest=session_digest,
            agency_id=spent.agency_id,
            contact_id=spent.contact_id,
            expires_at=func.now() + SESSION_LIFETIME,
        )
    )
    coordinator = session_coordinator(session, session_digest)
    if coordinator is None:  # the contact is no longer in the directory
        return None
    return {"coordinator": coordinator}


def session_coordinator(session, session_digest):
    """The coordinator of the live session with this digest, or None."""
    row = session.execute(SESSION_COORDINATOR, {"digest": session_digest, "idle": SESSION_IDLE}).first()
    return _coordinator(row) if row else None


def sign_out(session, session_digest):
    session.execute(
        update(CoordinatorSession)
        .where(CoordinatorSession.digest == session_digest, CoordinatorSession.ended_at.is_(None))
        .values(ended_at=func.now())
    )


def end_access(session, contact_ids):
    """End the sessions and drop the unused links of contacts removed from
    the directory, or given another address: they sign in no more, from the
    next page on."""
    ids = [uuid.UUID(str(contact_id)) for contact_id in contact_ids if contact_id]
    if not ids:
        return
    session.execute(
        update(CoordinatorSession)
        .where(CoordinatorSession.contact_id.in_(ids), CoordinatorSession.ended_at.is_(None))
        .values(ended_at=func.now())
    )
    session.execute(delete(SignInToken).where(SignInToken.contact_id.in_(ids), SignInToken.used_at.is_(None)))


def delete_spent(session):
    """Delete the links and sessions that can never sign anyone in again:
    links past their 15 minutes (used or not), sessions ended, idle too
    long or past their end. Returns (links, sessions) deleted."""
    links = session.execute(delete(SignInToken).where(SignInToken.expires_at < func.now())).rowcount
    sessions = session.execute(
        delete(CoordinatorSession).where(
            or_(
                CoordinatorSession.ended_at.is_not(None),
                CoordinatorSession.expires_at < func.now(),
                CoordinatorSession.last_seen_at < func.now() - SESSION_IDLE,
            )
        )
    ).rowcount
    return links, sessions
