"""A worker that failed because a server is away is logged as one line, not
a traceback on every timer round; any other failure keeps its traceback."""
import logging
import sys

from sqlalchemy.exc import OperationalError

from shared.serve import ServerAwayWithoutTraceback


def record_of(error):
    try:
        raise error
    except Exception:
        return logging.LogRecord("nameko.containers", logging.ERROR, __file__, 1, "error handling worker %s: %s",
                                 ("<relay_outbox>", error), sys.exc_info())


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
