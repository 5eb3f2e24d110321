"""Log lines as JSON objects, one a line, where `LOG_FORMAT=json` (text
lines, as `request_id.LOG_FORMAT` writes them, otherwise).

Each object holds `time` (ISO 8601, UTC), `level`, `service` (the process:
agencies, referrals, notifications, gateway, migrate), `logger`, `event`
(the message), `request_id` where the line was written for a request, and
`exception` (the traceback, as one string) where there is one: a log
collector parses each line without knowing how the process writes text.
What a line says is the same in both formats: only how it is written differs.
"""

from pythonjsonlogger.json import JsonFormatter

from shared import config

NO_REQUEST = "-"  # what request_id.RequestIdFilter puts on a line written outside a request


def wanted(settings=None):
    """Does this process write JSON lines?"""
    settings = config.load() if settings is None else settings
    return settings["LOG_FORMAT"].strip().lower() == "json"


class JsonLines(JsonFormatter):
    """python-json-logger's formatter with the network's field names; any
    `extra` a line was written with follows (the network's own lines have none)."""

    def __init__(self, service):
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "message": "event",
                "exc_info": "exception",
            },
            static_fields={"service": service},
            timestamp="time",
            json_ensure_ascii=False,  # Azerbaijani and Russian as they are
        )

    def process_log_record(self, log_data):
        if log_data.get("request_id") in (None, NO_REQUEST):
            log_data.pop("request_id", None)
        log_data["time"] = log_data["time"].isoformat(timespec="milliseconds")
        return {"time": log_data.pop("time"), **log_data}
