"""Browser tests: headless Debian Chromium through Selenium (see
tests/support/browser.py), and apps served over real HTTP for it.

The gateway's fixtures (settings, services, make_app, new_agency, ...) are
imported here, so a browser test can serve a gateway over this test's own
services: ask for `services`, `make_app` and `serve`, then
`url = serve(make_app())`.
"""

import contextlib

import pytest

from tests.gateway.conftest import (  # noqa: F401 (fixtures for the tests of this folder)
    client,
    make_app,
    new_agency,
    services,
    settings,
    start_service,
)
from tests.support import browser as support


@pytest.fixture
def browser():
    """open(lang="en", width=1280, height=900, offline=True) -> a Selenium
    driver on headless Chromium; every driver opened is quit afterwards. Fails
    (never skips) when Chromium, chromedriver or axe-core is missing."""
    problem = support.missing()
    if problem:
        pytest.fail(problem, pytrace=False)
    drivers = []

    def open(lang="en", width=support.DESKTOP[0], height=support.DESKTOP[1], **options):
        driver = support.open_browser(lang=lang, width=width, height=height, **options)
        drivers.append(driver)
        return driver

    yield open
    for driver in drivers:
        driver.quit()


@pytest.fixture
def serve():
    """serve(app) -> "http://127.0.0.1:<port>": the WSGI app over real HTTP
    until the end of the test."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(support.serve(app))
