"""LOG_FORMAT=json: each log record is one line holding one JSON object with
the network's fields; text lines otherwise, as before."""

import datetime
import io
import json
import logging

import pytest

from shared.plumbing import json_logs, request_id

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


def written(monkeypatch, records, service="referrals"):
    """What a handler set up as every process sets up its handlers writes
    for `records` (callables that log), with LOG_FORMAT=json."""
    monkeypatch.setenv("LOG_FORMAT", "json")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    request_id.with_request_id(handler, service)
    logger = logging.getLogger(f"tests.json_logs.{service}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        for record in records:
            record(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_each_record_is_one_line_of_json_with_the_request_id_when_there_is_one(monkeypatch):
    def in_a_request(logger):
        token = request_id.current.set("req-4f2a")
        try:
            logger.info("referral %s accepted", "REF-2026-000123")
        finally:
            request_id.current.reset(token)

    text = written(monkeypatch, [in_a_request, lambda logger: logger.warning("a timer's line")])
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")
    first, second = (json.loads(line) for line in lines)
    assert first["request_id"] == "req-4f2a"
    assert first["event"] == "referral REF-2026-000123 accepted"
    assert (first["level"], first["service"], first["logger"]) == (
        "INFO",
        "referrals",
        "tests.json_logs.referrals",
    )
    assert "request_id" not in second and second["level"] == "WARNING"
    at = datetime.datetime.fromisoformat(first["time"])
    assert at.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.UTC) - at).total_seconds()) < 600


def test_a_traceback_is_a_field_of_its_one_line(monkeypatch):
    def failing(logger):
        try:
            {}["reference"]
        except KeyError:
            logger.exception("relaying the outbox failed")

    text = written(monkeypatch, [failing])
    assert len(text.splitlines()) == 1
    line = json.loads(text)
    assert line["event"] == "relaying the outbox failed" and line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'reference'" in line["exception"] and "\n" in line["exception"]


def test_azerbaijani_and_cyrillic_text_is_kept_as_it_is(monkeypatch):
    event = "Göndəriş qəbul edildi: Şəki, Gəncə — направление принято"
    text = written(monkeypatch, [lambda logger: logger.info(event)], service="notifications")
    assert event in text  # written as it is, not as \\u escapes
    assert json.loads(text)["event"] == event


def test_text_lines_stay_the_default(monkeypatch):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert not json_logs.wanted()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(request_id.LOG_FORMAT))
    request_id.with_request_id(handler, "agencies")
    record = logging.LogRecord(
        "services.agencies", logging.INFO, __file__, 1, "key %s revoked", ("k1",), None
    )
    handler.handle(record)
    assert stream.getvalue() == "INFO services.agencies [-]: key k1 revoked\n"
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert json_logs.wanted()
