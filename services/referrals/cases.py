"""The referrals service's rules on a SQLAlchemy session: what its RPC
methods do. Every change is written with its history entry and its outbox
event in the caller's one transaction. The returnee's data and the free
texts are sealed with the caller's `sealer` (shared.storage.sealing)
before they are bound, and opened when a referral is dumped."""

import datetime
import functools
import hashlib
import json
import uuid

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import aliased

from services.referrals import lifecycle
from services.referrals.models import (
    AccessEntry,
    HistoryEntry,
    IdempotencyKey,
    Outbox,
    Referral,
    reference_numbers,
)
from shared.contract import events
from shared.contract.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.contract.referrals import (
    MOVE_BODIES,
    Actor,
    Consent,
    HistoryItem,
    NewReferral,
    ReferralQuery,
    Returnee,
)
from shared.contract.referrals import History as HistorySchema
from shared.contract.referrals import Referral as ReferralSchema
from shared.contract.validation import load
from shared.plumbing.outbox import add_event, event_row
from shared.storage.models import utcnow
from shared.storage.paging import page_of

# What is stored sealed is dumped apart, once opened (see `_dump`).
referral_schema = ReferralSchema(exclude=("returnee", "consent", "reason", "outcome"))
# The returnee's fields kept in clear, for reports, and their columns; the rest is sealed in `returnee`.
CLEAR_RETURNEE_FIELDS = {"region": "returnee_region", "preferred_language": "returnee_language"}
new_referral_schema, returnee_schema, consent_schema = NewReferral(), Returnee(), Consent()
referral_query_schema = ReferralQuery()
history_schema = HistorySchema()
HISTORY_ITEM_FIELDS = list(HistoryItem().fields)
actor_schema = Actor()
IDEMPOTENCY_WINDOW = datetime.timedelta(hours=24)


# The overdue timer, as the history names it.
OVERDUE_TIMER = {"type": "system", "id": None, "name": "overdue timer"}


def actor_columns(actor):
    """The actor_* column values for `actor` ({"type", "id", "name"} or None)."""
    if actor is None:
        return {"actor_type": None, "actor_id": None, "actor_name": None}
    loaded = load(actor_schema, actor, "The actor is not valid.")
    return {"actor_type": loaded["type"], "actor_id": loaded["id"], "actor_name": loaded["name"]}


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
    """The body's SHA-256: stored only as an HMAC of it (`sealer.digest`)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def find_idempotent(session, sealer, sender_id, key, digest, actor=None):
    """The referral an earlier request with this key made, if any (None
    when the key is new or its 24 hours are over); `digest` is the
    request's `request_digest`. Answering it again is a read of the
    returnee's data by `actor`: the access log says so."""
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
    # An erased referral's digest is gone: the key still answers what it made.
    if earlier.request_digest is not None and not sealer.digest_matches(earlier.request_digest, digest):
        raise Conflict("This Idempotency-Key was used with another request body.")
    session.add(
        AccessEntry(
            referral_id=earlier.referral_id, agency_id=sender_id, action="read", **actor_columns(actor)
        )
    )
    return _dump(sealer, session.get(Referral, earlier.referral_id))


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
        number.c.digits, func.greatest(6, func.length(number.c.digits)), "0"
    )
    made = (
        insert(referrals)
        .from_select(["reference", *CREATED_COLUMNS], select(reference, *map(value, CREATED_COLUMNS)))
        .returning(referrals.c.reference)
        .cte("made")
    )
    history = (
        insert(HistoryEntry)
        .values(
            id=bindparam("history_id"),
            referral_id=value("id"),
            at=value("created_at"),
            event="created",
            from_status=None,
            to_status=value("status"),
            agency_id=value("sending_agency_id"),
            detail=value("reason"),
            actor_type=bindparam("actor_type", type_=Text),
            actor_id=bindparam("actor_id", type_=Uuid),
            actor_name=bindparam("actor_name", type_=Text),
        )
        .cte("history")
    )
    outbox = Outbox.__table__
    announced = (
        insert(outbox)
        .from_select(
            ["id", "event_type", "created_at", "payload"],
            select(
                bindparam("event_id", type_=outbox.c.id.type),
                literal(events.REFERRAL_SENT),
                value("created_at"),
                # the payload's "reference" (None until the number is drawn) is set from `made`
                bindparam("event_payload", type_=outbox.c.payload.type).op("||")(
                    func.jsonb_build_object("reference", made.c.reference)
                ),
            ),
        )
        .cte("announced")
    )
    statement = select(made.c.reference).add_cte(history, announced)
    if with_idempotency_key:
        statement = statement.add_cte(
            insert(IdempotencyKey)
            .values(
                agency_id=value("sending_agency_id"),
                key=bindparam("idempotency_key"),
                request_digest=bindparam("request_digest"),
                referral_id=value("id"),
                created_at=value("created_at"),
            )
            .cte("idempotency")
        )
    return statement


# The referral's columns `create` writes from its values (the reference is drawn in SQL).
CREATED_COLUMNS = [
    column
    for column in Referral.__table__.columns.keys()
    if column not in ("reference", "overdue_announced_at", "closed_at", "erased_at")
]
CREATION = {with_key: _creation(with_key) for with_key in (False, True)}


def create(session, sealer, sender_id, data, response_hours, idempotency=None, actor=None):
    """Insert a new referral from loaded `data`; `idempotency` is
    (key, request_digest) or None; `actor` made it.

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
        reason=sealer.seal_text(data["reason"]),
        **sealed_returnee(sealer, data["returnee"]),
        consent=sealer.seal_json(consent_schema.dump(data["consent"])),
        outcome=None,
        version=1,
        respond_by=now + datetime.timedelta(hours=hours),
        created_at=now,
        updated_at=now,
    )
    event = event_row(events.REFERRAL_SENT, event_payload(referral, None, sender_id))
    values = {f"referral_{column}": getattr(referral, column) for column in CREATED_COLUMNS}
    values.update(
        reference_prefix=f"REF-{now.year}-",
        history_id=uuid.uuid4(),
        event_id=event["id"],
        event_payload=event["payload"],
        **actor_columns(actor),
    )
    if idempotency:
        key, digest = idempotency
        values.update(idempotency_key=key, request_digest=sealer.digest(digest))
    referral.reference = session.execute(CREATION[bool(idempotency)], values).scalar_one()
    return _dump(sealer, referral, now)


def sealed_returnee(sealer, returnee):
    """The referral's returnee columns for a loaded `returnee`."""
    fields = returnee_schema.dump(returnee)
    clear = {column: fields.pop(field) for field, column in CLEAR_RETURNEE_FIELDS.items()}
    return dict(clear, returnee=sealer.seal_json(fields))


def opened_returnee(sealer, referral):
    """The returnee as it was given (None once erased)."""
    sealed = sealer.open_json(referral.returnee)
    if sealed is None:
        return None
    fields = dict(
        sealed, **{field: getattr(referral, column) for field, column in CLEAR_RETURNEE_FIELDS.items()}
    )
    return {name: fields[name] for name in returnee_schema.fields if name in fields}


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
        "version": referral.version,
    }


def announce(session, referral, event_type, from_status, acting_agency_id):
    """Stage the event for `referral` in the outbox."""
    return add_event(session, Outbox, event_type, event_payload(referral, from_status, acting_agency_id))


def _dump(sealer, referral, now=None):
    data = referral_schema.dump(referral)
    data["returnee"], data["consent"] = opened_returnee(sealer, referral), sealer.open_json(referral.consent)
    data["reason"], data["outcome"] = sealer.open_text(referral.reason), sealer.open_text(referral.outcome)
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


def read(session, sealer, agency_id, referral_id, actor=None):
    referral = _visible(session, agency_id, referral_id)
    session.add(
        AccessEntry(referral_id=referral.id, agency_id=agency_id, action="read", **actor_columns(actor))
    )
    return _dump(sealer, referral)


def move(session, sealer, agency_id, referral_id, name, body, actor=None):
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
    row = session.execute(
        MOVE,
        {
            "referral_id": referral_id,
            "agency_id": agency_id,
            "move": name,
            "target": step.target,
            "sources": list(step.sources),
            "by_sender": step.party == "sender",
            "detail": sealer.seal_text(detail),
            "sets_outcome": name == "complete",
            "closes": step.target in lifecycle.FINAL,
            "history_id": uuid.uuid4(),
            "access_id": uuid.uuid4(),
            "event_id": event["id"],
            "event_type": step.event,
            "event_payload": dict(
                event["payload"],
                referral_id=str(referral_id),
                status=step.target,
                acting_agency_id=str(agency_id),
            ),
            **actor_columns(actor),
        },
    ).first()
    if row is None:
        raise NotFound("No such referral.")
    if row.id is None:  # found, not moved
        _check_party(
            step,
            name,
            agency_id,
            Referral(sending_agency_id=row.found_sender, receiving_agency_id=row.found_receiver),
        )
        raise Conflict(f"A referral that is {row.found_status} cannot become {step.target}.")
    moved = Referral(**{column: getattr(row, column) for column in Referral.__table__.columns.keys()})
    return _dump(sealer, moved, moved.updated_at)


def _check_party(step, name, agency_id, referral):
    party = referral.sending_agency_id if step.party == "sender" else referral.receiving_agency_id
    if str(party) != str(agency_id):
        raise Forbidden(f"Only the {step.party} of a referral may {name} it.")


# A move, if the referral is the caller's, the caller is the move's party and
# the referral's status is one the move leaves: the referral's row after it
# (with `from_status`), else only `found_*` (or no row for someone else's).
# A move to a final status sets `closed_at`; the text of a move on an erased
# referral is not kept (an erased referral keeps no free text).
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
        outcome = CASE WHEN :sets_outcome AND referral.erased_at IS NULL THEN :detail ELSE referral.outcome END,
        closed_at = CASE WHEN :closes THEN greatest(clock_timestamp(), found.updated_at + interval '1 microsecond')
                    ELSE referral.closed_at END,
        version = referral.version + 1
    FROM found
    WHERE referral.id = found.id AND found.status = ANY(:sources)
        AND CASE WHEN :by_sender THEN found.sending_agency_id ELSE found.receiving_agency_id END = :agency_id
    RETURNING referral.*, found.status AS from_status
), history AS (
    INSERT INTO referral_history (id, referral_id, at, event, from_status, to_status, agency_id, detail,
                                  actor_type, actor_id, actor_name)
    SELECT :history_id, id, updated_at, :move, from_status, status, :agency_id,
        CASE WHEN erased_at IS NULL THEN :detail END, :actor_type, :actor_id, :actor_name FROM moved
), access AS (
    INSERT INTO referral_access_log (id, referral_id, agency_id, at, action, actor_type, actor_id, actor_name)
    SELECT :access_id, id, :agency_id, updated_at, :move, :actor_type, :actor_id, :actor_name FROM moved
), announced AS (
    INSERT INTO outbox (id, event_type, created_at, payload)
    SELECT :event_id, :event_type, updated_at, :event_payload || jsonb_build_object(
        'occurred_at', updated_at, 'reference', reference, 'service_type', service_type,
        'priority', priority, 'from_status', from_status, 'sending_agency_id', sending_agency_id,
        'receiving_agency_id', receiving_agency_id, 'version', version)
    FROM moved
)
SELECT found.status AS found_status, found.sending_agency_id AS found_sender,
    found.receiving_agency_id AS found_receiver, moved.*
FROM found LEFT JOIN moved ON true
""").bindparams(
    bindparam("referral_id", type_=Uuid()),
    bindparam("agency_id", type_=Uuid()),
    bindparam("history_id", type_=Uuid()),
    bindparam("access_id", type_=Uuid()),
    bindparam("event_id", type_=Uuid()),
    bindparam("sources", type_=ARRAY(Text)),
    bindparam("by_sender", type_=Boolean()),
    bindparam("sets_outcome", type_=Boolean()),
    bindparam("closes", type_=Boolean()),
    bindparam("detail", type_=LargeBinary()),  # sealed
    bindparam("event_payload", type_=JSONB()),
    bindparam("actor_type", type_=Text()),
    bindparam("actor_id", type_=Uuid()),
    bindparam("actor_name", type_=Text()),
)


def _selected(agency_id, filters, now, box=None):
    """The referrals of `agency_id` that `filters` (loaded) select, in `box`
    (sent, received, or both when None), unordered."""
    sent = Referral.sending_agency_id == agency_id
    received = Referral.receiving_agency_id == agency_id
    query = select(Referral).where({"sent": sent, "received": received}.get(box, or_(sent, received)))
    if "status" in filters:
        query = query.where(Referral.status == filters["status"])
    if "service_type" in filters:
        query = query.where(Referral.service_type == filters["service_type"])
    if "overdue" in filters:
        query = query.where(_overdue(now) if filters["overdue"] else ~_overdue(now))
    return query


def _overdue(now):
    return and_(Referral.status == lifecycle.INITIAL, Referral.respond_by < now)


NEWEST_FIRST = (Referral.created_at.desc(), Referral.id.desc())


def listing(session, sealer, agency_id, filters, actor=None):
    """A page of the caller's referrals, with its total, its reads written in
    the access log. One statement (see `_listed`): a partner's most frequent
    call costs one round trip instead of three (count, page, log)."""
    filters = load(referral_query_schema, filters, "The list query is not valid.")
    now = utcnow()
    page, per_page = filters["page"], filters["per_page"]
    shape = (filters.get("box"), "status" in filters, "service_type" in filters, filters.get("overdue"))
    rows = session.execute(
        _listed(*shape),
        {
            "agency_id": uuid.UUID(str(agency_id)),
            "now": now,
            "status": filters.get("status"),
            "service_type": filters.get("service_type"),
            "offset": (page - 1) * per_page,
            "limit": per_page,
            **actor_columns(actor),
        },
    ).all()
    return {
        "items": [_dump(sealer, referral, now) for _, referral in rows if referral is not None],
        "page": page,
        "per_page": per_page,
        "total": rows[0].total,
    }


@functools.cache  # a few dozen shapes at most; building one costs more than running it
def _listed(box, by_status, by_service_type, overdue):
    """The statement of `listing` for one shape of filters, its values bind
    parameters: the page (a CTE), its reads inserted in the access log from
    it, and its rows each with the total (one row with no referral when the
    page is empty, for the total)."""
    shape = {"status": bindparam("status", type_=Text)} if by_status else {}
    if by_service_type:
        shape["service_type"] = bindparam("service_type", type_=Text)
    if overdue is not None:
        shape["overdue"] = overdue
    agency_id, now = bindparam("agency_id", type_=Uuid), bindparam("now", type_=DateTime(timezone=True))
    selected = _selected(agency_id, shape, now, box)
    page = (
        selected.order_by(*NEWEST_FIRST)
        .offset(bindparam("offset", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
        .cte("page")
    )
    logged = (
        insert(AccessEntry)
        .from_select(
            ["id", "referral_id", "agency_id", "at", "action", "actor_type", "actor_id", "actor_name"],
            select(
                func.gen_random_uuid(),
                page.c.id,
                agency_id,
                now,
                literal("list", Text),
                bindparam("actor_type", type_=Text),
                bindparam("actor_id", type_=Uuid),
                bindparam("actor_name", type_=Text),
            ),
        )
        .cte("logged")
    )
    total = select(func.count()).select_from(selected.subquery()).scalar_subquery()
    listed = aliased(Referral, page)
    one = select(literal(1).label("one")).subquery("one")
    return (
        select(total.label("total"), listed)
        .select_from(one)
        .outerjoin(listed, true())
        .add_cte(logged)
        .order_by(listed.created_at.desc(), listed.id.desc())
    )


def inbox(session, sealer, agency_id, filters, actor):
    """A coordinator's inbox: {"received": page, "sent": page} (a box left
    out by `filters["box"]` is an empty page). Received referrals come in
    the order they need attention: overdue, then new (still `sent`; urgent
    ones first), then the rest; each part, and the sent box, newest first."""
    filters = load(referral_query_schema, filters, "The inbox query is not valid.")
    now = utcnow()
    new = Referral.status == lifecycle.INITIAL
    attention = case((_overdue(now), 0), (and_(new, Referral.priority == "urgent"), 1), (new, 2), else_=3)
    orders = {"received": (attention, *NEWEST_FIRST), "sent": NEWEST_FIRST}
    boxes = {}
    for box, order in orders.items():
        if filters.get("box", box) != box:
            boxes[box] = {"items": [], "page": filters["page"], "per_page": filters["per_page"], "total": 0}
            continue
        query = _selected(agency_id, filters, now, box).order_by(*order)
        boxes[box] = page_of(
            query, session, filters["page"], filters["per_page"], functools.partial(_dump, sealer)
        )
    listed = boxes["received"]["items"] + boxes["sent"]["items"]
    if listed:
        log_list_reads(session, agency_id, listed, now, actor)
    return boxes


def log_list_reads(session, agency_id, items, now, actor):
    """The access log's entries for a list's listed referrals (`items`, dumped)."""
    session.execute(
        LOG_LIST_READS,
        {
            "agency_id": agency_id,
            "at": now,
            **actor_columns(actor),
            "referral_ids": [uuid.UUID(str(item["id"])) for item in items],
        },
    )


# A page's reads in the access log: one statement whatever the page's size.
LOG_LIST_READS = text("""
INSERT INTO referral_access_log (id, referral_id, agency_id, at, action, actor_type, actor_id, actor_name)
SELECT gen_random_uuid(), referral_id, :agency_id, :at, 'list', :actor_type, :actor_id, :actor_name
FROM unnest(:referral_ids) AS referral_id
""").bindparams(
    bindparam("agency_id", type_=Uuid()),
    bindparam("at", type_=DateTime(timezone=True)),
    bindparam("referral_ids", type_=ARRAY(Uuid())),
    bindparam("actor_type", type_=Text()),
    bindparam("actor_id", type_=Uuid()),
    bindparam("actor_name", type_=Text()),
)


def history(session, sealer, agency_id, referral_id, actor=None):
    referral = _visible(session, agency_id, referral_id)
    session.add(
        AccessEntry(referral_id=referral.id, agency_id=agency_id, action="history", **actor_columns(actor))
    )
    return history_schema.dump({"items": _entries(session, sealer, referral.id)})


def _entries(session, sealer, referral_id):
    """The referral's history entries, their details opened."""
    entries = session.scalars(
        select(HistoryEntry)
        .where(HistoryEntry.referral_id == referral_id)
        .order_by(HistoryEntry.at, HistoryEntry.id)
    ).all()
    return [
        {
            **{name: getattr(entry, name) for name in HISTORY_ITEM_FIELDS},
            "detail": sealer.open_text(entry.detail),
        }
        for entry in entries
    ]


def read_with_history(session, sealer, agency_id, referral_id, actor):
    """A referral with its history, as a coordinator's page shows it: one
    read in the access log."""
    referral = _visible(session, agency_id, referral_id)
    session.add(
        AccessEntry(referral_id=referral.id, agency_id=agency_id, action="read", **actor_columns(actor))
    )
    return {
        "referral": _dump(sealer, referral),
        **history_schema.dump({"items": _entries(session, sealer, referral.id)}),
        "moves": allowed_moves(referral, agency_id),
    }


def allowed_moves(referral, agency_id):
    """The moves `agency_id` may make on `referral` now, in the table's order."""
    side = "sender" if str(referral.sending_agency_id) == str(agency_id) else "receiver"
    return [
        name
        for name, step in lifecycle.MOVES.items()
        if step.party == side and referral.status in step.sources
    ]


def announce_overdue(session):
    """Mark referrals still `sent` past `respond_by` and announce each once.
    Safe with several replicas: a row another replica is marking is skipped.
    The time is the database's, as a move's is (see MOVE), so that a move
    made after this sweep is never written before it."""
    now = session.scalar(select(func.now()))
    due = session.scalars(
        select(Referral)
        .where(
            Referral.status == lifecycle.INITIAL,
            Referral.respond_by < now,
            Referral.overdue_announced_at.is_(None),
        )
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for referral in due:
        referral.overdue_announced_at = now
        referral.version += 1
        session.add(
            HistoryEntry(
                referral_id=referral.id,
                at=now,
                event="overdue",
                from_status=referral.status,
                to_status=referral.status,
                **actor_columns(OVERDUE_TIMER),
            )
        )
        announce(session, referral, events.REFERRAL_OVERDUE, referral.status, None)
    return len(due)
