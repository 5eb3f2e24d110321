"""The referral state machine and its audit trail: every legal move, every
refusal, and random sequences of moves (hypothesis)."""

import uuid

import eventlet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from services.referrals import cases
from shared.contract.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.contract.referrals import NewReferral
from tests.conftest import SEALER
from tests.support import data

# ../shared/API.md, written out again here so the test does not trust the code.
LEGAL = {
    "sent": {"accepted", "declined", "cancelled"},
    "accepted": {"in_progress", "cancelled"},
    "in_progress": {"completed", "cancelled"},
    "declined": set(),
    "completed": set(),
    "cancelled": set(),
}
MOVES = {  # move: (who may, target)
    "accept": ("receiver", "accepted"),
    "decline": ("receiver", "declined"),
    "start": ("receiver", "in_progress"),
    "complete": ("receiver", "completed"),
    "cancel": ("sender", "cancelled"),
}
BODIES = {
    "decline": {"reason": "No capacity"},
    "cancel": {"reason": "Found elsewhere"},
    "complete": {"outcome": "Done"},
}
SENDER, RECEIVER, OUTSIDER = (str(uuid.uuid4()) for _ in range(3))


@pytest.fixture(scope="module")
def sessions(engines):
    return sessionmaker(engines["REFERRALS_DATABASE_URL"], expire_on_commit=False)


def new_referral(sessions):
    body = NewReferral().load(data.referral(RECEIVER))
    with sessions.begin() as session:
        return cases.create(session, SEALER, SENDER, body, 72)["id"]


def move(sessions, who, referral_id, name, body=None):
    with sessions.begin() as session:
        return cases.move(
            session, SEALER, who, referral_id, name, BODIES.get(name, {}) if body is None else body
        )


@pytest.mark.parametrize(
    "path",
    [
        ["accept", "start", "complete"],
        ["decline"],
        ["cancel"],
        ["accept", "cancel"],
        ["accept", "start", "cancel"],
    ],
)
def test_every_legal_path(sessions, databases, path):
    referral_id = new_referral(sessions)
    for name in path:
        who = SENDER if MOVES[name][0] == "sender" else RECEIVER
        assert move(sessions, who, referral_id, name)["status"] == MOVES[name][1]
    with sessions.begin() as session:
        history = cases.history(session, SEALER, SENDER, referral_id)["items"]
    assert [entry["event"] for entry in history] == ["created", *path]
    assert all(entry["agency_id"] for entry in history)


@pytest.mark.parametrize("name", sorted(MOVES))
def test_the_wrong_party_is_forbidden_and_an_outsider_sees_nothing(sessions, databases, name):
    referral_id = new_referral(sessions)
    wrong = RECEIVER if MOVES[name][0] == "sender" else SENDER
    with pytest.raises(Forbidden):
        move(sessions, wrong, referral_id, name)
    with pytest.raises(NotFound):
        move(sessions, OUTSIDER, referral_id, name)


@pytest.mark.parametrize(
    "name, field", [("decline", "reason"), ("cancel", "reason"), ("complete", "outcome")]
)
def test_moves_that_need_words_refuse_without_them(sessions, databases, name, field):
    referral_id = new_referral(sessions)
    if name == "complete":
        move(sessions, RECEIVER, referral_id, "accept")
        move(sessions, RECEIVER, referral_id, "start")
    who = SENDER if MOVES[name][0] == "sender" else RECEIVER
    with pytest.raises(InvalidInput) as refused:
        move(sessions, who, referral_id, name, {})
    assert field in refused.value.errors


def test_history_and_access_log_cannot_be_edited(sessions, databases):
    referral_id = new_referral(sessions)
    with sessions.begin() as session:
        cases.read(session, SEALER, RECEIVER, referral_id)
    for table in ("referral_history", "referral_access_log"):
        for statement in (f"UPDATE {table} SET agency_id = NULL", f"DELETE FROM {table}"):
            with pytest.raises(DBAPIError, match="append-only"), sessions.begin() as session:
                session.execute(text(statement))


def test_a_move_waits_for_a_concurrent_one_and_then_sees_its_result(sessions, databases):
    """Two accepts at once: the second waits for the first's transaction,
    then finds the referral accepted and is refused; one history entry."""
    referral_id = new_referral(sessions)
    first = sessions()
    first.begin()
    cases.move(first, SEALER, RECEIVER, referral_id, "accept", {})
    second = eventlet.spawn(move, sessions, RECEIVER, referral_id, "accept")
    eventlet.sleep(0.3)
    assert not second.dead, "the second move did not wait for the first"
    first.commit()
    first.close()
    with pytest.raises(Conflict, match="accepted cannot become accepted"):
        second.wait()
    with sessions.begin() as session:
        history = cases.history(session, SEALER, SENDER, referral_id)["items"]
    assert [entry["event"] for entry in history] == ["created", "accept"]


def test_history_reads_in_the_order_moves_took_the_lock(sessions, databases):
    """A cancel that reached the database first but waited for the lock
    behind an accept is written after it, in time too: the history (and the
    events) never show the cancel before the accept it followed."""
    referral_id = new_referral(sessions)
    holder = sessions()
    holder.begin()
    holder.execute(text("SELECT 1 FROM referrals WHERE id = :id FOR UPDATE"), {"id": referral_id})
    cancel = eventlet.spawn(move, sessions, SENDER, referral_id, "cancel")
    eventlet.sleep(0.3)  # the cancel is waiting for the lock
    cases.move(holder, SEALER, RECEIVER, referral_id, "accept", {})
    holder.commit()
    holder.close()
    assert cancel.wait()["status"] == "cancelled"
    with sessions.begin() as session:
        history = cases.history(session, SEALER, SENDER, referral_id)["items"]
    assert [entry["event"] for entry in history] == ["created", "accept", "cancel"]
    assert history[1]["at"] < history[2]["at"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.sampled_from(sorted(MOVES)), st.sampled_from(["sender", "receiver"])), max_size=8)
)
def test_random_moves_never_leave_a_state_the_contract_forbids(sessions, databases, steps):
    referral_id = new_referral(sessions)
    status = "sent"
    for name, party in steps:
        who = SENDER if party == "sender" else RECEIVER
        try:
            status_after = move(sessions, who, referral_id, name)["status"]
        except Forbidden:
            assert party != MOVES[name][0]
            status_after = status
        except Conflict:
            assert party == MOVES[name][0] and MOVES[name][1] not in LEGAL[status]
            status_after = status
        else:
            assert party == MOVES[name][0] and status_after in LEGAL[status]
        status = status_after
    with sessions.begin() as session:
        assert cases.read(session, SEALER, SENDER, referral_id)["status"] == status
        history = cases.history(session, SEALER, SENDER, referral_id)["items"]
    for entry in history[1:]:
        assert entry["to_status"] in LEGAL[entry["from_status"]]


def test_an_idempotency_key_lasts_24_hours(sessions, databases):
    body = data.referral(RECEIVER)
    digest = cases.request_digest(body)
    with sessions.begin() as session:
        first = cases.create(session, SEALER, SENDER, NewReferral().load(body), 72, ("day-key", digest))
    with sessions.begin() as session:
        assert cases.find_idempotent(session, SEALER, SENDER, "day-key", digest)["id"] == first["id"]
        assert (
            cases.find_idempotent(session, SEALER, OUTSIDER, "day-key", digest) is None
        )  # keys are per sender
        with pytest.raises(Conflict):
            cases.find_idempotent(
                session, SEALER, SENDER, "day-key", cases.request_digest(dict(body, reason="x"))
            )
        session.execute(text("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"))
    with sessions.begin() as session:
        assert cases.find_idempotent(session, SEALER, SENDER, "day-key", digest) is None
