"""LOG_LEVEL sets the network's own loggers' level; the libraries' stays at
INFO or above, whatever it says: at DEBUG nameko writes each RPC call's
arguments and result (API keys, returnees' data)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITE = """
import logging
from shared.plumbing import request_id
request_id.configure_logging("test")
logging.getLogger("shared.plumbing.request_id").debug("own debug line")
logging.getLogger("services.notifications.dispatch").info("own info line")
logging.getLogger("nameko.rpc").debug("library debug line: rnk_secret")
logging.getLogger("amqp").debug("library debug frame")
logging.getLogger("nameko.rpc").info("library info line")
"""


def written(level):
    environment = dict(os.environ, LOG_LEVEL=level, LOG_FORMAT="text")
    done = subprocess.run(
        [sys.executable, "-c", WRITE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_debug_is_the_networks_own_lines_never_a_librarys():
    lines = written("debug")
    assert "own debug line" in lines and "own info line" in lines and "library info line" in lines
    assert "rnk_secret" not in lines and "library debug frame" not in lines


@pytest.mark.parametrize(
    "level, shown", [("INFO", {"own info line", "library info line"}), ("WARNING", set())]
)
def test_above_debug_every_logger_follows_the_level(level, shown):
    lines = written(level)
    for line in ("own debug line", "own info line", "library info line", "rnk_secret"):
        assert (line in lines) == (line in shown), (level, line)


def test_a_level_that_is_none_is_refused_by_its_name():
    environment = dict(os.environ, LOG_LEVEL="LOUD")
    done = subprocess.run(
        [sys.executable, "-c", WRITE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "LOG_LEVEL" in done.stderr
