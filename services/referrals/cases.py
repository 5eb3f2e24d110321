"""The referrals service's rules on a SQLAlchemy session: what its RPC
methods do. Every change is written with its history entry and its outbox
event in the caller's one transaction."""
import datetime
import hashlib
import json
import uuid

from sqlalchemy import (
    Boolean,
    DateTime,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.referrals import lifecycle
from services.referrals.models import (
    AccessEntry,
    HistoryEntry,
    IdempotencyKey,
    Outbox,
    Referral,
    reference_numbers,
)
from shared import events
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.models import utcnow
from shared.outbox import add_event, event_row
from shared.paging import page_of
from shared.referral_schemas import MOVE_BODIES, Consent, NewReferral, ReferralQuery, Returnee
from shared.referral_schemas import History as HistorySchema
from shared.referral_schemas import Referral as ReferralSchema
from shared.validation import load

# The returnee and consent are stored as the JSON they were dumped to.
referral_schema = ReferralSchema(exclude=("returnee", "consent"))
new_referral_schema, returnee_schema, consent_schema = NewReferral(), Returnee(), Consent()
referral_query_schema = ReferralQuery()
history_schema = HistorySchema()
IDEMPOTENCY_WINDOW = datetime.timedelta(hours=24)


def load_new(body):
    return load(new_referral_schema, body, "The referral is not valid.")


def check_receiver(sender_id, data, receiver):
    """Refusals that depend on the receiving agency (`receiver` is the
    directory's record of it, or None if there is no such agency)."""
    field = "receiving_agency_id"
    if receiver is None:
        raise InvalidInput("The receiving agency does not exist.", {field: ["No such agency."]})
    if str(receiver["id"]) == str(sender_id):
        raise InvalidInput("An agency cannot refer to itself.", {field: ["This is the sending agency."]})
    if data["service_type"] not in receiver["services"]:
        raise InvalidInput(
            "The receiving agency does not offer this service.",
            {"service_type": [f"{receiver['name']} does not offer {data['service_type']!r}."]},
        )
    if not receiver["accepting_referrals"]:
        raise InvalidInput(
            "The receiving agency is not accepting referrals.",
            {field: [f"{receiver['name']} is not accepting referrals."]},
        )


def request_digest(body):
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def find_idempotent(session, sender_id, key, digest):
    """The referral an earlier request with this key made, if any (None
    when the key is new or its 24 hours are over)."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.agency_id == sender_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at < utcnow() - IDEMPOTENCY_WINDOW,
        )
    )
    earlier = session.get(IdempotencyKey, (sender_id, key))
    if earlier is None:
        return None
    if earlier.request_digest != digest:
        raise Conflict("This Idempotency-Key was used with another request body.")
    return _dump(session.get(Referral, earlier.referral_id))


def _creation(with_idempotency_key):
    """The one statement that writes a new referral (see `create`), built
    once: its values are bind parameters named `referral_<column>`,
    `reference_prefix`, `history_id`, `event_id`, `event_payload`, and `idempotency_key` and
    `request_digest` when `with_idempotency_key`."""
    referrals = Referral.__table__
    value = lambda column: bindparam(f"referral_{column}", type_=referrals.c[column].type)  # noqa: E731
    number = select(cast(reference_numbers.next_value(), Text).label("digits")).cte("number")
    # REF-2026-000123; past 999999 the number simply grows longer
    reference = bindparam("reference_prefix", type_=Text) + func.lpad(
        number.c.digits, func.greatest(6, func.length(number.c.digits)), "0")
    made = (
        insert(referrals)
        .from_select(["reference", *CREATED_COLUMNS], select(reference, *map(value, CREATED_COLUMNS)))
        .returning(referrals.c.reference)
        .cte("made")
    )
    history = insert(HistoryEntry).values(
        id=bindparam("history_id"), referral_id=value("id"), at=value("created_at"), event="created",
        from_status=None, to_status=value("status"), agency_id=value("sending_agency_id"),
        detail=value("reason"),
    ).cte("history")
    outbox = Outbox.__table__
    announced = insert(outbox).from_select(["id", "event_type", "created_at", "payload"], select(
        bindparam("event_id", type_=outbox.c.id.type),
        literal(events.REFERRAL_SENT),
        value("created_at"),
        # the payload's "reference" (None until the number is drawn) is set from `made`
        bindparam("event_payload", type_=outbox.c.payload.type).op("||")(
            func.jsonb_build_object("reference", made.c.reference)),
    )).cte("announced")
    statement = select(made.c.reference).add_cte(history, announced)
    if with_idempotency_key:
        statement = statement.add_cte(insert(IdempotencyKey).values(
            agency_id=value("sending_agency_id"), key=bindparam("idempotency_key"),
            request_digest=bindparam("request_digest"), referral_id=value("id"), created_at=value("created_at"),
        ).cte("idempotency"))
    return statement


# The referral's columns `create` writes from its values (the reference is drawn in SQL).
CREATED_COLUMNS = [column for column in Referral.__table__.columns.keys()
                   if column not in ("reference", "overdue_announced_at")]
CREATION = {with_key: _creation(with_key) for with_key in (False, True)}


def create(session, sender_id, data, response_hours, idempotency=None):
    """Insert a new referral from loaded `data`; `idempotency` is
    (key, digest) or None.

    One statement: the reference number, the referral, its history entry,
    its idempotency key and its outbox event are written together by
    data-modifying CTEs, so that in an autocommit session a referral costs
    one round trip and is still all or nothing."""
    now = utcnow()
    hours = response_hours / 2 if data["priority"] == "urgent" else response_hours
    referral = Referral(
        id=uuid.uuid4(),
        status=lifecycle.INITIAL,
        service_type=data["service_type"],
        priority=data["priority"],
        sending_agency_id=uuid.UUID(str(sender_id)),
        receiving_agency_id=data["receiving_agency_id"],
        reason=data["reason"],
        returnee=returnee_schema.dump(data["returnee"]),
        consent=consent_schema.dump(data["consent"]),
        outcome=None,
        respond_by=now + datetime.timedelta(hours=hours),
        created_at=now,
        updated_at=now,
    )
    event = event_row(events.REFERRAL_SENT, event_payload(referral, None, sender_id))
    values = {f"referral_{column}": getattr(referral, column) for column in CREATED_COLUMNS}
    values.update(reference_prefix=f"REF-{now.year}-", history_id=uuid.uuid4(),
                  event_id=event["id"], event_payload=event["payload"])
    if idempotency:
        values["idempotency_key"], values["request_digest"] = idempotency
    referral.reference = session.execute(CREATION[bool(idempotency)], values).scalar_one()
    return _dump(referral, now)


def event_payload(referral, from_status, acting_agency_id):
    """What an event about `referral` says: ids, statuses, service type and
    reference only, never the returnee's data."""
    return {
        "occurred_at": utcnow().isoformat(),
        "referral_id": str(referral.id),
        "reference": referral.reference,
        "service_type": referral.service_type,
        "priority": referral.priority,
        "status": referral.status,
        "from_status": from_status,
        "sending_agency_id": str(referral.sending_agency_id),
        "receiving_agency_id": str(referral.receiving_agency_id),
        "acting_agency_id": str(acting_agency_id) if acting_agency_id else None,
    }


def announce(session, referral, event_type, from_status, acting_agency_id):
    """Stage the event for `referral` in the outbox."""
    return add_event(session, Outbox, event_type, event_payload(referral, from_status, acting_agency_id))


def _dump(referral, now=None):
    data = referral_schema.dump(referral)
    data["returnee"], data["consent"] = referral.returnee, referral.consent
    data["overdue"] = is_overdue(referral, now or utcnow())
    return data


def is_overdue(referral, now):
    return referral.status == lifecycle.INITIAL and referral.respond_by < now


def _referral_uuid(referral_id):
    try:
        return uuid.UUID(str(referral_id))
    except ValueError:
        raise NotFound("No such referral.") from None


def _visible(session, agency_id, referral_id, lock=False):
    """The referral, if `agency_id` is its sender or receiver; for anyone
    else it does not exist."""
    referral_id = _referral_uuid(referral_id)
    query = select(Referral).where(
        Referral.id == referral_id,
        or_(Referral.sending_agency_id == agency_id, Referral.receiving_agency_id == agency_id),
    )
    referral = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if referral is None:
        raise NotFound("No such referral.")
    return referral


def read(session, agency_id, referral_id):
    referral = _visible(session, agency_id, referral_id)
    session.add(AccessEntry(referral_id=referral.id, agency_id=agency_id, action="read"))
    return _dump(referral)


def move(session, agency_id, referral_id, name, body):
    """Make move `name` on the referral, as `agency_id`; refusals in this
    order: no such referral (for anyone but its two parties), the wrong
    party, a body that is not valid, a status the move cannot leave.

    One statement (`MOVE`): the referral's new status, its history entry,
    the access log's entry and the outbox event are written together, so
    that in an autocommit session a move costs one round trip and is still
    all or nothing."""
    step = lifecycle.MOVES.get(name)
    if step is None:
        raise InvalidInput("No such move.", {"move": [f"{name!r} is not one of {sorted(lifecycle.MOVES)}."]})
    referral_id = _referral_uuid(referral_id)
    try:
        data = load(MOVE_BODIES[name](), body or {}, f"The {name} request is not valid.")
    except InvalidInput:
        _check_party(step, name, agency_id, _visible(session, agency_id, referral_id))  # those come first
        raise
    detail = data.get(step.detail_field) if step.detail_field else None
    event = event_row(step.event, {})
    row = session.execute(MOVE, {
        "referral_id": referral_id, "agency_id": agency_id, "move": name, "target": step.target,
        "sources": list(step.sources), "by_sender": step.party == "sender", "detail": detail,
        "sets_outcome": name == "complete", "history_id": uuid.uuid4(), "access_id": uuid.uuid4(),
        "event_id": event["id"], "event_type": step.event,
        "event_payload": dict(event["payload"], referral_id=str(referral_id), status=step.target,
                              acting_agency_id=str(agency_id)),
    }).first()
    if row is None:
        raise NotFound("No such referral.")
    if row.id is None:  # found, not moved
        _check_party(step, name, agency_id, Referral(
            sending_agency_id=row.found_sender, receiving_agency_id=row.found_receiver))
        raise Conflict(f"A referral that is {row.found_status} cannot become {step.target}.")
    moved = Referral(**{column: getattr(row, column) for column in Referral.__table__.columns.keys()})
    return _dump(moved, moved.updated_at)


def _check_party(step, name, agency_id, referral):
    party = referral.sending_agency_id if step.party == "sender" else referral.receiving_agency_id
    if str(party) != str(agency_id):
        raise Forbidden(f"Only the {step.party} of a referral may {name} it.")


# A move, if the referral is the caller's, the caller is the move's party and
# the referral's status is one the move leaves: the referral's row after it
# (with `from_status`), else only `found_*` (or no row for someone else's).
# The move's time is the database's clock once the row is locked, and never
# before the referral's last change: concurrent moves are written in the
# order they took the lock, so their history reads in that order too.
MOVE = text("""
WITH found AS (
    SELECT id, status, sending_agency_id, receiving_agency_id, updated_at FROM referrals
    WHERE id = :referral_id AND :agency_id IN (sending_agency_id, receiving_agency_id)
    FOR UPDATE
), moved AS (
    UPDATE referrals AS referral
    SET status = :target,
        updated_at = greatest(clock_timestamp(), found.updated_at + interval '1 microsecond'),
        outcome = CASE WHEN :sets_outcome THEN :detail ELSE referral.outcome END
    FROM found
    WHERE referral.id = found.id AND found.status = ANY(:sources)
        AND CASE WHEN :by_sender THEN found.sending_agency_id ELSE found.receiving_agency_id END = :agency_id
    RETURNING referral.*, found.status AS from_status
), history AS (
    INSERT INTO referral_history (id, referral_id, at, event, from_status, to_status, agency_id, detail)
    SELECT :history_id, id, updated_at, :move, from_status, status, :agency_id, :detail FROM moved
), access AS (
    INSERT INTO referral_access_log (id, referral_id, agency_id, at, action)
    SELECT :access_id, id, :agency_id, updated_at, :move FROM moved
), announced AS (
    INSERT INTO outbox (id, event_type, created_at, payload)
    SELECT :event_id, :event_type, updated_at, :event_payload || jsonb_build_object(
        'occurred_at', updated_at, 'reference', reference, 'service_type', service_type,
        'priority', priority, 'from_status', from_status, 'sending_agency_id', sending_agency_id,
        'receiving_agency_id', receiving_agency_id)
    FROM moved
)
SELECT found.status AS found_status, found.sending_agency_id AS found_sender,
    found.receiving_agency_id AS found_receiver, moved.*
FROM found LEFT JOIN moved ON true
""").bindparams(
    bindparam("referral_id", type_=Uuid()), bindparam("agency_id", type_=Uuid()),
    bindparam("history_id", type_=Uuid()), bindparam("access_id", type_=Uuid()),
    bindparam("event_id", type_=Uuid()), bindparam("sources", type_=ARRAY(Text)),
    bindparam("by_sender", type_=Boolean()), bindparam("sets_outcome", type_=Boolean()),
    bindparam("detail", type_=Text()),
    bindparam("event_payload", type_=JSONB()),
)


def listing(session, agency_id, filters):
    filters = load(referral_query_schema, filters, "The list query is not valid.")
    now = utcnow()
    sent = Referral.sending_agency_id == agency_id
    received = Referral.receiving_agency_id == agency_id
    box = {"sent": sent, "received": received}.get(filters.get("box"), or_(sent, received))
    query = select(Referral).where(box)
    if "status" in filters:
        query = query.where(Referral.status == filters["status"])
    if "service_type" in filters:
        query = query.where(Referral.service_type == filters["service_type"])
    if "overdue" in filters:
        overdue = and_(Referral.status == lifecycle.INITIAL, Referral.respond_by < now)
        query = query.where(overdue if filters["overdue"] else ~overdue)
    query = query.order_by(Referral.created_at.desc(), Referral.id.desc())
    page = page_of(query, session, filters["page"], filters["per_page"], _dump)
    if page["items"]:
        session.execute(LOG_LIST_READS, {"agency_id": agency_id, "at": now,
                                         "referral_ids": [uuid.UUID(item["id"]) for item in page["items"]]})
    return page


# A page's reads in the access log: one statement whatever the page's size.
LOG_LIST_READS = text("""
INSERT INTO referral_access_log (id, referral_id, agency_id, at, action)
SELECT gen_random_uuid(), referral_id, :agency_id, :at, 'list' FROM unnest(:referral_ids) AS referral_id
""").bindparams(bindparam("agency_id", type_=Uuid()), bindparam("at", type_=DateTime(timezone=True)),
                bindparam("referral_ids", type_=ARRAY(Uuid())))


def history(session, agency_id, referral_id):
    referral = _visible(session, agency_id, referral_id)
    session.add(AccessEntry(referral_id=referral.id, agency_id=agency_id, action="history"))
    entries = session.scalars(
        select(HistoryEntry)
        .where(HistoryEntry.referral_id == referral.id)
        .order_by(HistoryEntry.at, HistoryEntry.id)
    ).all()
    return history_schema.dump({"items": entries})


def announce_overdue(session):
    """Mark referrals still `sent` past `respond_by` and announce each once.
    Safe with several replicas: a row another replica is marking is skipped.
    The time is the database's, as a move's is (see MOVE), so that a move
    made after this sweep is never written before it."""
    now = session.scalar(select(func.now()))
    due = session.scalars(
        select(Referral)
        .where(Referral.status == lifecycle.INITIAL, Referral.respond_by < now,
               Referral.overdue_announced_at.is_(None))
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for referral in due:
        referral.overdue_announced_at = now
        session.add(HistoryEntry(referral_id=referral.id, at=now, event="overdue",
                                 from_status=referral.status, to_status=referral.status))
        announce(session, referral, events.REFERRAL_OVERDUE, referral.status, None)
    return len(due)
