"""services.notifications.together: what green threads ask for at the
same moment is done in one go, and each gets its own answer or error."""
import eventlet
import pytest
from sqlalchemy import event

from services.notifications import known_agencies
from services.notifications.together import Together, together
from shared.db import Sessions, make_engine
from tests.support import data


def test_callers_who_arrive_during_a_batch_are_served_by_the_next_one():
    batches = []

    def work(sessions, items):
        batches.append(sorted(items))
        eventlet.sleep(0.05)  # a round trip: the others arrive meanwhile
        return {item: item * 10 for item in items}

    run = Together(object(), work)
    answers = list(eventlet.GreenPool(10).imap(lambda item: run([item])[item], range(10)))
    assert answers == [item * 10 for item in range(10)]
    assert batches == [[0], list(range(1, 10))]  # the first alone, the rest together
    assert run([42]) == {42: 420} and batches[-1] == [42]  # alone again: waits for nobody


def test_every_caller_of_a_failed_batch_gets_its_error_and_the_next_batch_still_runs():
    calls = []

    def work(sessions, items):
        calls.append(sorted(items))
        eventlet.sleep(0.05)
        if 1 in items:
            raise ConnectionError("the database went away")
        return "done"

    run = Together(object(), work)

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


@pytest.fixture
def sessions(service_config):
    engine = make_engine(service_config["NOTIFICATIONS_DATABASE_URL"], pool_size=20)
    yield Sessions(engine)
    engine.dispose()


def test_events_handled_at_the_same_moment_read_their_agencies_in_one_statement(sessions, agencies):
    made = [agencies("create_agency", data.agency(contacts=[data.contact(email=f"c{number}@example.org")]))
            for number in range(12)]
    with sessions.begin() as session:
        for agency in made:
            known_agencies.remember(session, agency)
    emails = {agency["id"]: agency["contacts"][0]["email"] for agency in made}
    pairs = [(made[number]["id"], made[(number + 1) % 12]["id"]) for number in range(12)]
    reads = []

    def count(conn, cursor, statement, *rest):
        if "FROM known_agencies" in statement:
            reads.append(statement)

    engine = sessions.autocommit_engine.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        found = list(eventlet.GreenPool(12).imap(
            lambda pair: known_agencies.lookup(sessions, pair, fetch=None), pairs))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    for pair, known in zip(pairs, found):
        assert set(known) == {str(each) for each in pair}
        assert [known[str(each)]["contacts"][0]["email"] for each in pair] == [emails[each] for each in pair]
    assert 1 <= len(reads) <= 3, reads  # not one a lookup
    assert together(sessions, known_agencies._read) is together(sessions, known_agencies._read)
