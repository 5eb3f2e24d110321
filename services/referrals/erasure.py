"""Erasure of a returnee's data (by the sender, or by the retention timer),
the deletion of what has outlived its use, and the access log.

What erasure empties, in the one transaction of the caller: the referral's
returnee, consent, reason and outcome; every history entry's detail; the
digest of the request that made it (`idempotency_keys`). The outbox holds
no personal data to empty: an event's payload is ids, statuses, service
type, priority, reference and version only (cases.event_payload); a test
reads the outbox to prove it. Kept for reports and accountability: the id,
reference, statuses, dates, service type, priority, agencies and region.

The erasure's own reason is checked (the sender must give one) but not
kept: it is a free text about the returnee ("she withdrew her consent"),
and erasure is there to remove exactly those. The history's `erased`
entry says who erased and when."""

import datetime
import uuid

from sqlalchemy import delete, func, select, update

from services.referrals.cases import IDEMPOTENCY_WINDOW, _dump, _visible, actor_columns, announce
from services.referrals.models import AccessEntry, HistoryEntry, IdempotencyKey, Referral
from shared.contract import events
from shared.contract.errors import Forbidden
from shared.contract.paging import PageQuery
from shared.contract.referrals import AccessItem, Erase
from shared.contract.validation import load
from shared.storage.paging import page_of

# The retention timer, as the history and the access log name it.
RETENTION_TIMER = {"type": "system", "id": None, "name": "retention timer"}
BATCH = 100

erase_schema, access_item_schema, page_query_schema = Erase(), AccessItem(), PageQuery()


def erase(session, sealer, agency_id, referral_id, body, actor=None):
    """Erase the referral as its sender. Refusals in the order of a move's:
    no such referral (for anyone but its two parties), the receiver, a body
    that is not valid. Erasing an erased referral answers the same and
    changes nothing."""
    referral = _visible(session, agency_id, referral_id, lock=True)
    if str(referral.sending_agency_id) != str(agency_id):
        raise Forbidden("Only the sender of a referral may erase it.")
    load(erase_schema, body or {}, "The erase request is not valid.")
    if referral.erased_at is None:
        _erase(session, referral, uuid.UUID(str(agency_id)), actor)
    return _dump(sealer, referral)


def _erase(session, referral, agency_id, actor):
    """Erase `referral` (locked by the caller), as `agency_id` (None: the
    network itself), with its history entry, access-log entry and event."""
    # The database's clock, never before the referral's last change (as a move's: cases.MOVE).
    now = max(
        session.scalar(select(func.clock_timestamp())),
        referral.updated_at + datetime.timedelta(microseconds=1),
    )
    referral.returnee = referral.consent = referral.reason = referral.outcome = None
    referral.erased_at = referral.updated_at = now
    referral.version += 1
    session.execute(
        update(HistoryEntry)
        .where(HistoryEntry.referral_id == referral.id, HistoryEntry.detail.is_not(None))
        .values(detail=None),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(IdempotencyKey).where(IdempotencyKey.referral_id == referral.id).values(request_digest=None),
        execution_options={"synchronize_session": False},
    )
    who = actor_columns(actor)
    session.add(
        HistoryEntry(
            referral_id=referral.id,
            at=now,
            event="erased",
            from_status=referral.status,
            to_status=referral.status,
            agency_id=agency_id,
            detail=None,
            **who,
        )
    )
    session.add(AccessEntry(referral_id=referral.id, agency_id=agency_id, at=now, action="erase", **who))
    announce(session, referral, events.REFERRAL_ERASED, referral.status, agency_id)


def erase_expired(session, retention_days, batch=BATCH):
    """Erase up to `batch` referrals whose final status is `retention_days`
    old; returns how many. Replicas share the work: a row another replica
    is erasing is skipped (as cases.announce_overdue does)."""
    cutoff = session.scalar(select(func.now())) - datetime.timedelta(days=retention_days)
    due = session.scalars(
        select(Referral)
        .where(Referral.erased_at.is_(None), Referral.closed_at < cutoff)
        .order_by(Referral.closed_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    for referral in due:
        _erase(session, referral, None, RETENTION_TIMER)
    return len(due)


def delete_old_idempotency_keys(session):
    """Delete the Idempotency-Keys past their use (they answer the same for
    IDEMPOTENCY_WINDOW, 24 h, then no more); returns how many."""
    cutoff = session.scalar(select(func.now())) - IDEMPOTENCY_WINDOW
    return session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)).rowcount


def access_log(session, agency_id, referral_id, query):
    """Every read and change of the referral, oldest first, a page of it:
    for its sender (its receiver is refused, anyone else finds nothing)."""
    referral = _visible(session, agency_id, referral_id)
    if str(referral.sending_agency_id) != str(agency_id):
        raise Forbidden("Only the sender of a referral may read its access log.")
    paging = load(page_query_schema, query or {}, "The access-log query is not valid.")
    entries = (
        select(AccessEntry)
        .where(AccessEntry.referral_id == referral.id)
        .order_by(AccessEntry.at, AccessEntry.id)
    )
    return page_of(entries, session, paging["page"], paging["per_page"], _access_item)


def _access_item(entry):
    actor = (
        None
        if entry.actor_type is None
        else {"type": entry.actor_type, "id": entry.actor_id, "name": entry.actor_name}
    )
    return access_item_schema.dump(
        {"at": entry.at, "agency_id": entry.agency_id, "actor": actor, "action": entry.action}
    )
