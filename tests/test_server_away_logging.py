"""A worker that failed because a server is away is logged as one line, not
a traceback on every timer round, and work waits for such a server; any
other failure keeps its traceback and is raised at once."""

import logging
import sys

import pytest
from sqlalchemy.exc import OperationalError

from shared.commands.serve import ServerAwayWithoutTraceback
from shared.plumbing.messaging import patiently

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


def record_of(error):
    try:
        raise error
    except Exception:
        return logging.LogRecord(
            "nameko.containers",
            logging.ERROR,
            __file__,
            1,
            "error handling worker %s: %s",
            ("<relay_outbox>", error),
            sys.exc_info(),
        )


def test_a_server_away_is_one_warning_line():
    record = record_of(OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")))
    assert ServerAwayWithoutTraceback().filter(record)
    assert record.exc_info is None and record.levelname == "WARNING"
    assert "OperationalError: a server is away" in record.getMessage()
    refused = record_of(ConnectionRefusedError(111, "ECONNREFUSED"))
    ServerAwayWithoutTraceback().filter(refused)
    assert refused.exc_info is None


def test_a_fault_of_ours_keeps_its_traceback():
    record = record_of(KeyError("reference"))
    assert ServerAwayWithoutTraceback().filter(record)
    assert record.exc_info is not None and record.levelname == "ERROR"


def test_work_waits_patiently_for_a_server_and_not_for_a_fault_of_its_own(caplog):
    tries = []

    def work():
        tries.append(1)
        if len(tries) < 3:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
        return "done"

    with caplog.at_level(logging.WARNING, logger="shared.plumbing.messaging"):
        assert patiently(work, "a test's work") == "done"
    assert len(tries) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "a test's work waits for a server that is away (OperationalError)"
    ]  # said once
    with pytest.raises(KeyError):
        patiently(lambda: {}["missing"], "a buggy work")
    with pytest.raises(OperationalError):
        patiently(lambda: (_ for _ in ()).throw(OperationalError("x", {}, OSError())), "hopeless", patience=0)
