"""The report page as coordinators meet it: headless Chromium over real
HTTP, in az, ru and en, at desktop and phone width, checked for
untranslated text and by axe, and photographed (INBOX_SCREENSHOTS)."""

import pytest
import requests
from selenium.webdriver.common.by import By
from sqlalchemy import text

from tests.browser.test_inbox import LANGUAGES, SHOTS, checked, refer, sign_in, world  # noqa: F401 (a fixture)
from tests.gateway.conftest import bearer
from tests.support.browser import PHONE, screenshot

# (months back, how many referrals, their moves): a half year of work
HISTORY = [
    (5, 6, ["accept", "start", "complete"]),
    (5, 2, ["decline"]),
    (4, 4, ["accept", "start", "complete"]),
    (4, 3, ["accept"]),
    (4, 1, ["cancel"]),
    (3, 7, ["accept", "start", "complete"]),
    (3, 2, ["decline"]),
    (1, 3, ["accept", "start"]),
    (1, 2, ["decline"]),
    (1, 1, ["cancel"]),
    (0, 4, []),
    (0, 2, ["accept"]),
]


@pytest.fixture
def worked(world, engines):
    """The receiver's referrals of the last six months, moved as HISTORY says."""
    receiver = bearer(world["receiver"]["key"])
    sender = bearer(world["sender"]["key"])
    for months, count, moves in HISTORY:
        for _ in range(count):
            made = refer(world)
            for move in moves:
                body = {
                    "decline": {"reason": "No room."},
                    "complete": {"outcome": "Housed."},
                    "cancel": {"reason": "Moved away."},
                }.get(move)
                moved = requests.post(
                    f"{world['url']}/v1/referrals/{made['id']}/{move}",
                    timeout=10,
                    json=body,
                    headers=sender if move == "cancel" else receiver,
                )
                assert moved.status_code == 200, moved.text
            with engines["REFERRALS_DATABASE_URL"].begin() as conn:
                conn.execute(
                    text("""
                    UPDATE referrals SET created_at = created_at - make_interval(days => 30 * :months),
                        answered_at = answered_at - make_interval(days => 30 * :months) + interval '5 hours',
                        completed_at = completed_at - make_interval(days => 30 * :months) + interval '12 days'
                    WHERE id = :id"""),
                    {"months": months, "id": made["id"]},
                )
    return world


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_report_page_in_each_language_and_at_phone_width(browser, worked, language):
    for width, height in ((1280, 900), PHONE):
        phone = width == PHONE[0]
        driver = browser(lang=language, width=width, height=height)
        driver.get(
            worked["url"] + f"/inbox/sign-in?lang={language}"
        )  # the page's language, kept once signed in
        sign_in(
            driver, worked, "receiver", count=2 if phone else 1
        )  # the second sign-in e-mail at phone width
        driver.find_element(By.CSS_SELECTOR, "nav.sections a[href='/inbox/reports']").click()
        bars = driver.find_elements(By.CSS_SELECTOR, "table.bars tbody tr")
        assert len(bars) == 12
        assert driver.find_element(By.CSS_SELECTOR, "table.figures tfoot td").text == "37"
        checked(driver, "report", language, phone)


def test_the_readme_s_picture_of_the_report(browser, worked):
    driver = browser(lang="en")
    sign_in(driver, worked, "receiver")
    driver.get(worked["url"] + "/inbox/reports?lang=en")
    screenshot(driver, SHOTS / "report.png")
