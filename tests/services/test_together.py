"""services.notifications.together: what green threads ask for at the
same moment is done in one go, and each gets its own answer or error; the
notifications service's reads of agencies and records of events, on real
PostgreSQL."""

import gc
import uuid
import weakref

import eventlet
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notifications import dispatch, known_agencies
from services.notifications.models import Notification
from services.notifications.together import Together, together
from tests.services.conftest import statements_run
from tests.support import data


class Database:
    """What `together` is keyed on: a service's Sessions, here without a database."""


@pytest.mark.rules
def test_callers_who_arrive_during_a_batch_are_served_by_the_next_one():
    batches = []

    def work(sessions, items):
        batches.append(sorted(items))
        eventlet.sleep(0.05)  # a round trip: the others arrive meanwhile
        return {item: item * 10 for item in items}

    database = Database()
    run = Together(database, work)
    answers = list(eventlet.GreenPool(10).imap(lambda item: run([item])[item], range(10)))
    assert answers == [item * 10 for item in range(10)]
    assert batches == [[0], list(range(1, 10))]  # the first alone, the rest together
    assert run([42]) == {42: 420} and batches[-1] == [42]  # alone again: waits for nobody


@pytest.mark.rules
def test_every_caller_of_a_failed_batch_gets_its_error_and_the_next_batch_still_runs():
    calls = []

    def work(sessions, items):
        calls.append(sorted(items))
        eventlet.sleep(0.05)
        if 1 in items:
            raise ConnectionError("the database went away")
        return "done"

    database = Database()
    run = Together(database, work)

    def ask(item):
        try:
            return run([item])
        except ConnectionError as error:
            return str(error)

    first = eventlet.spawn(ask, 0)
    eventlet.sleep(0.01)  # 1 and 2 arrive while 0 runs alone: they run together, and fail together
    answers = list(eventlet.GreenPool(2).imap(ask, [1, 2]))
    assert first.wait() == "done"
    assert answers == ["the database went away"] * 2
    assert calls == [[0], [1, 2]]
    assert run([3]) == "done"  # nothing left stuck


@pytest.mark.rules
def test_a_batch_is_given_the_sessions_and_holds_them_no_longer_than_their_service():
    def work(sessions, items):
        return sessions

    database = Database()
    assert together(database, work)(["anything"]) is database
    gone = weakref.ref(database)
    del database
    gc.collect()
    assert gone() is None  # a container stopped leaves nothing behind


def test_events_handled_at_the_same_moment_read_their_agencies_in_one_statement(
    notification_sessions, agencies
):
    sessions = notification_sessions
    made = [
        agencies("create_agency", data.agency(contacts=[data.contact(email=f"c{number}@example.org")]))
        for number in range(12)
    ]
    with sessions.begin() as session:
        for agency in made:
            known_agencies.remember(session, agency)
    emails = {agency["id"]: agency["contacts"][0]["email"] for agency in made}
    pairs = [(made[number]["id"], made[(number + 1) % 12]["id"]) for number in range(12)]
    with statements_run(sessions, "FROM known_agencies") as reads:
        found = list(
            eventlet.GreenPool(12).imap(lambda pair: known_agencies.lookup(sessions, pair, fetch=None), pairs)
        )
    for pair, known in zip(pairs, found, strict=False):
        assert set(known) == {str(each) for each in pair}
        assert [known[str(each)]["contacts"][0]["email"] for each in pair] == [emails[each] for each in pair]
    assert 1 <= len(reads) <= 3, reads  # not one a lookup
    assert together(sessions, known_agencies._read) is together(sessions, known_agencies._read)


def _event_with_messages(event_id=None, count=1):
    event = {"event_id": event_id or str(uuid.uuid4()), "event_type": "referral_accepted"}
    rows = [
        Notification(
            event_id=uuid.UUID(event["event_id"]),
            event="referral_accepted",
            referral_id=uuid.uuid4(),
            agency_id=uuid.uuid4(),
            channel="email",
            recipient=f"c{number}-{event['event_id']}@example.org",
            language="en",
            subject="Accepted",
            text_body="text",
            html_body="<p>html</p>",
        )
        for number in range(count)
    ]
    return event, rows


def test_events_handled_at_the_same_moment_are_recorded_in_one_statement(
    notification_sessions, service_config, engines
):
    sessions = notification_sessions
    policy = dispatch.RetryPolicy.from_settings(service_config)
    given = [_event_with_messages(count=2) for _ in range(12)]
    twice = given[3][0]["event_id"]  # delivered again while the first copy is handled
    given.append(_event_with_messages(event_id=twice, count=2))
    with statements_run(sessions, "INSERT INTO handled_events") as statements:
        new = list(
            eventlet.GreenPool(13).imap(
                lambda pair: dispatch.record_together(sessions, pair[0], pair[1], policy), given
            )
        )
    assert new.count(True) == 12 and new[3] != new[12]  # the event given twice is new once
    assert 1 <= len(statements) <= 3, statements
    with Session(engines["NOTIFICATIONS_DATABASE_URL"]) as session:
        stored = session.scalars(select(Notification)).all()
    assert len(stored) == 24 and all(row.status == "pending" and row.attempts == 1 for row in stored)
    assert dispatch.record_together(sessions, given[0][0], given[0][1], policy) is False  # handled before
