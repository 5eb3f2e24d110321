"""The agencies an event names, from this service's own copy of the
directory: the agencies service announces every change, so the copy stays
current without an RPC per event; an agency not copied yet (the service was
not listening when it was made) is asked for once and then kept."""

import uuid

from sqlalchemy import Uuid, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY, insert

from services.notifications.models import KnownAgency
from services.notifications.together import together


def remember(session, agency):
    """Keep `agency` (as the directory dumps it), unless a newer state is kept."""
    values = {
        "id": uuid.UUID(str(agency["id"])),
        "name": agency["name"],
        "contacts": agency["contacts"],
        "updated_at": agency["updated_at"],
    }
    statement = insert(KnownAgency).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "name": statement.excluded.name,
                "contacts": statement.excluded.contacts,
                "updated_at": statement.excluded.updated_at,
            },
            where=KnownAgency.updated_at < statement.excluded.updated_at,
        )
    )


# The copies of some agencies: one statement whatever their number.
READ = select(
    KnownAgency.__table__.c.id, KnownAgency.__table__.c.name, KnownAgency.__table__.c.contacts
).where(
    KnownAgency.__table__.c.id == any_(bindparam("ids", type_=ARRAY(Uuid())))
)  # plain rows, no ORM bookkeeping


def _read(sessions, agency_ids):
    with sessions.connect() as session:  # one read: no transaction around it
        return {
            str(row.id): {"id": str(row.id), "name": row.name, "contacts": row.contacts}
            for row in session.execute(READ, {"ids": [uuid.UUID(each) for each in set(agency_ids)]})
        }


def lookup(sessions, agency_ids, fetch):
    """{id: {"id", "name", "contacts"}} for `agency_ids`; `fetch(id)` asks
    the directory for one this service has no copy of. The events handled
    at the same moment read their agencies in one statement (together)."""
    wanted = {str(agency_id) for agency_id in agency_ids}
    copies = together(sessions, _read)(sorted(wanted))
    known = {agency_id: copies[agency_id] for agency_id in wanted if agency_id in copies}
    for agency_id in wanted - set(known):
        agency = fetch(agency_id)
        with sessions.begin() as session:
            remember(session, agency)
        known[agency_id] = {"id": agency_id, "name": agency["name"], "contacts": agency["contacts"]}
    return known
