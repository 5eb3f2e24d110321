"""/docs in headless Chromium, with the network closed but for this machine:
Swagger UI shows every operation of the API from the gateway's own files,
under the gateway's Content-Security-Policy, with no error in the console,
no request to another origin and no serious accessibility fault (axe)."""

from urllib.parse import urlsplit

import pytest

from tests.support.browser import (
    DESKTOP,
    PHONE,
    axe_violations,
    console_errors,
    requested_urls,
    screenshot,
    wait_for,
)

# The block of POST /v1/referrals, as Swagger UI draws it.
POST_REFERRALS = '.opblock.opblock-post:has(.opblock-summary-path[data-path="/v1/referrals"])'


@pytest.fixture
def gateway(make_app):
    """A gateway as tests/gateway/ makes them (the docs page needs no service)."""
    return make_app()


@pytest.mark.parametrize(
    "size, shot", [(DESKTOP, "/tmp/docs.png"), (PHONE, "/tmp/docs-phone.png")], ids=["desktop", "phone"]
)
def test_the_docs_show_every_operation_offline_cleanly_and_accessibly(browser, serve, gateway, size, shot):
    url = serve(gateway)
    operations = sum(
        1
        for item in gateway.test_client().get("/openapi.json").get_json()["paths"].values()
        for method in item
        if method != "parameters"
    )
    driver = browser(width=size[0], height=size[1])
    driver.get(url + "/docs")

    post_referrals = wait_for(driver, POST_REFERRALS)
    assert post_referrals.find_element("css selector", ".opblock-summary-method").text == "POST"
    path = post_referrals.find_element("css selector", ".opblock-summary-path")
    assert (
        path.text.replace("\u200b", "") == "/v1/referrals"
    )  # Swagger UI breaks paths with zero-width spaces
    assert len(driver.find_elements("css selector", ".opblock")) == operations
    assert driver.title.startswith("Returnee referral network")
    assert driver.execute_script(  # nothing wider than the screen, even on a phone
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    screenshot(driver, shot)

    assert console_errors(driver) == []  # CSP violations are SEVERE entries too
    assert axe_violations(driver) == []

    # An operation opened: its parameters, body example and answers.
    post_referrals.find_element("css selector", ".opblock-summary-control").click()
    wait_for(driver, POST_REFERRALS + " .opblock-body .responses-wrapper")
    assert axe_violations(driver) == []
    assert console_errors(driver) == []

    origin = urlsplit(url)[:2]
    assert [u for u in requested_urls(driver) if urlsplit(u)[:2] != origin] == []
