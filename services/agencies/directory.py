"""The directory's rules, on a SQLAlchemy session: what the RPC methods do."""

import datetime
import uuid

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from services.agencies import coordinators, keys, names
from services.agencies.models import Agency, ApiKey, Outbox
from shared.contract import events
from shared.contract.agencies import Agency as AgencySchema
from shared.contract.agencies import AgencyBody, AgencyChanges, AgencyQuery, NewApiKey
from shared.contract.agencies import ApiKey as ApiKeySchema
from shared.contract.digests import digest
from shared.contract.errors import Forbidden, InvalidInput, NotFound
from shared.contract.validation import load
from shared.plumbing.outbox import add_event
from shared.storage.models import utcnow
from shared.storage.paging import page_of

agency_schema = AgencySchema()
api_key_schema = ApiKeySchema()

LAST_USED_EVERY = datetime.timedelta(minutes=1)  # how often a key's last use is written

# What an agency may change about itself; the rest is the admins'.
SELF_EDITABLE = frozenset({"contacts", "languages", "accepting_referrals"})

# The agency that owns the bootstrap admin key: a fixed id, so that several
# replicas starting at once make it exactly once.
OPERATORS_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
OPERATORS_NAME = "Referral network operators"


def create(session, body):
    fields = load(AgencyBody(), body, "The agency is not valid.")
    fields["contacts"] = contacts_with_ids(fields["contacts"], [])
    agency = Agency(**fields, search_name=names.fold(fields["name"]))
    session.add(agency)
    session.flush()
    return announce(session, agency, events.AGENCY_CREATED)


def announce(session, agency, event_type):
    """Stage the agency's new state as an event; returns it as dumped."""
    dumped = agency_schema.dump(agency)
    add_event(session, Outbox, event_type, {"occurred_at": utcnow().isoformat(), "agency": dumped})
    return dumped


def _find(session, agency_id, lock=False):
    try:
        agency_id = uuid.UUID(str(agency_id))
    except ValueError:
        raise NotFound("No such agency.") from None
    query = select(Agency).where(Agency.id == agency_id)
    agency = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if agency is None:
        raise NotFound("No such agency.")
    return agency


def get(session, agency_id):
    return agency_schema.dump(_find(session, agency_id))


def names_of(session, agency_ids):
    ids = []
    for agency_id in agency_ids:
        try:
            ids.append(uuid.UUID(str(agency_id)))
        except ValueError:
            continue
    rows = session.execute(select(Agency.id, Agency.name).where(Agency.id.in_(ids))) if ids else []
    return {str(row.id): row.name for row in rows}


def change(session, agency_id, body, caller_is_admin):
    changes = load(AgencyChanges(), body, "The changes are not valid.")
    if not caller_is_admin:
        admin_only = sorted(set(changes) - SELF_EDITABLE)
        if admin_only:
            raise Forbidden("Only the network's admins change these fields: " + ", ".join(admin_only) + ".")
    agency = _find(session, agency_id, lock=True)
    if "contacts" in changes:
        changes["contacts"] = contacts_with_ids(changes["contacts"], agency.contacts)
        coordinators.end_access(session, _gone_or_readdressed(agency.contacts, changes["contacts"]))
    for field, value in changes.items():
        setattr(agency, field, value)
    agency.search_name = names.fold(agency.name)
    agency.updated_at = utcnow()
    session.flush()
    return announce(session, agency, events.AGENCY_UPDATED)


def contacts_with_ids(contacts, existing):
    """`contacts` (as loaded) as stored: each with the id of the existing
    contact it names (by its id, else by the same e-mail address or phone),
    or a new one. An id that names none of `existing`, or a contact named
    twice, is refused. Ids given are taken first, then addresses matched."""
    known = {contact["id"]: contact for contact in existing if contact.get("id")}
    given = [str(contact["id"]) if contact.get("id") else None for contact in contacts]
    refused = {}
    for position, contact_id in enumerate(given):
        if contact_id is not None and contact_id not in known:
            refused[f"contacts.{position}.id"] = ["No such contact in this agency."]
        elif contact_id is not None and given.index(contact_id) != position:
            refused[f"contacts.{position}.id"] = ["This contact is named twice."]
    if refused:
        raise InvalidInput("The contacts are not valid.", refused)
    unclaimed = {cid: old for cid, old in known.items() if cid not in given}
    stored = []
    for contact, contact_id in zip(contacts, given, strict=False):
        if contact_id is None:
            contact_id = next((cid for cid, old in unclaimed.items() if _same_person(old, contact)), None)
            unclaimed.pop(contact_id, None)
        stored.append(dict(contact, id=contact_id or str(uuid.uuid4())))
    return stored


def _gone_or_readdressed(old_contacts, new_contacts):
    """Ids of the contacts that `new_contacts` drops, or gives another e-mail
    address (the address is what signs a coordinator in: a contact edited
    into someone else must not keep the first person's session)."""
    new_addresses = {contact["id"]: (contact.get("email") or "").casefold() for contact in new_contacts}
    return [
        contact["id"]
        for contact in old_contacts
        if contact.get("id") and new_addresses.get(contact["id"]) != (contact.get("email") or "").casefold()
    ]


def _same_person(old, new):
    """Whether a contact given without its id is `old` (same address or phone)."""
    if new.get("email") and old.get("email"):
        return new["email"].casefold() == old["email"].casefold()
    return bool(new.get("phone")) and new.get("phone") == old.get("phone")


def search(session, filters):
    filters = load(AgencyQuery(), filters, "The search is not valid.")
    query = select(Agency)
    for field, column in (
        ("service", Agency.services),
        ("region", Agency.regions),
        ("language", Agency.languages),
    ):
        if field in filters:
            query = query.where(column.contains([filters[field]]))
    if "accepting" in filters:
        query = query.where(Agency.accepting_referrals.is_(filters["accepting"]))
    if "q" in filters:
        pattern = f"%{_escape_like(names.fold(filters['q']))}%"
        query = query.where(Agency.search_name.like(pattern, escape="\\"))
    query = query.order_by(Agency.name, Agency.id)
    return page_of(query, session, filters["page"], filters["per_page"], agency_schema.dump)


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def issue_key(session, agency_id, role):
    role = load(NewApiKey(), {"role": role}, "The API key is not valid.")["role"]
    agency = _find(session, agency_id)
    clear = keys.new_key()
    api_key = ApiKey(agency_id=agency.id, role=role, prefix=keys.visible_prefix(clear), digest=digest(clear))
    session.add(api_key)
    session.flush()
    return dict(api_key_schema.dump(api_key), key=clear)


def revoke_key(session, agency_id, key_id):
    _find(session, agency_id)
    try:
        key_id = uuid.UUID(str(key_id))
    except ValueError:
        raise NotFound("No such API key.") from None
    revoked = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.agency_id == agency_id)
        .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
        .returning(ApiKey.id)
    ).first()
    if revoked is None:
        raise NotFound("No such API key.")
    # Gateways that cache keys drop it on this (shared.plumbing.announced_cache).
    add_event(
        session,
        Outbox,
        events.API_KEY_REVOKED,
        {"occurred_at": utcnow().isoformat(), "key_id": str(key_id), "agency_id": str(agency_id)},
    )


def authenticate(session, key_digest):
    """Who holds the key of `key_digest` (shared.contract.digests):
    {"agency_id", "role", "key_id", "prefix"}, or None when the
    key is unknown or revoked. Marks the key used (at most once a minute).

    One statement, so that the check costs one round trip in an autocommit
    session: it is asked on every partner request."""
    found = (
        select(ApiKey.id, ApiKey.agency_id, ApiKey.role, ApiKey.prefix, ApiKey.last_used_at)
        .where(ApiKey.digest == key_digest, ApiKey.revoked_at.is_(None))
        .cte("found")
    )
    stale = or_(found.c.last_used_at.is_(None), found.c.last_used_at < func.now() - LAST_USED_EVERY)
    touch = update(ApiKey).where(ApiKey.id == found.c.id, stale).values(last_used_at=func.now()).cte("touch")
    row = session.execute(
        select(found.c.id, found.c.agency_id, found.c.role, found.c.prefix).add_cte(touch)
    ).first()
    if row is None:
        return None
    return {"agency_id": str(row.agency_id), "role": row.role, "key_id": str(row.id), "prefix": row.prefix}


def ensure(session, agency_id, body):
    """Make sure an agency with this fixed id exists, as `body` describes it
    if it has to be made; an existing one is left as it is. Idempotent, and
    safe when several processes do it at once."""
    fields = load(AgencyBody(), body, "The agency is not valid.")
    fields["contacts"] = contacts_with_ids(fields["contacts"], [])
    made = session.execute(
        insert(Agency)
        .values(id=agency_id, search_name=names.fold(fields["name"]), **fields)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(Agency.id)
    ).first()
    if made:
        announce(session, session.get(Agency, agency_id), events.AGENCY_CREATED)


def ensure_key(session, agency_id, clear_key, role):
    """Make sure a key with this clear value exists for the agency (idempotent)."""
    session.execute(
        insert(ApiKey)
        .values(
            id=uuid.uuid4(),
            agency_id=agency_id,
            role=role,
            prefix=keys.visible_prefix(clear_key),
            digest=digest(clear_key),
        )
        .on_conflict_do_nothing(index_elements=["digest"])
    )


# An admin key reads and changes the whole directory: none shorter than this.
ADMIN_KEY_LENGTH = 32


def check_admin_key(clear_key):
    """Refuse an operator's admin key too short to resist guessing."""
    if len(clear_key) < ADMIN_KEY_LENGTH:
        raise ValueError(
            f"BOOTSTRAP_ADMIN_KEY has {len(clear_key)} characters: an admin key needs at least "
            f"{ADMIN_KEY_LENGTH} (python -c 'import secrets; print(secrets.token_urlsafe(32))' makes one)"
        )


def ensure_admin_key(session, clear_key):
    """Make sure an admin key with this clear value exists (idempotent)."""
    check_admin_key(clear_key)
    ensure(
        session,
        OPERATORS_ID,
        {
            "name": OPERATORS_NAME,
            "kind": "government",
            "languages": ["az", "en", "ru"],
            "accepting_referrals": False,
        },
    )
    ensure_key(session, OPERATORS_ID, clear_key, "admin")
