"""The coordinator pages as coordinators use them: headless Chromium over
real HTTP, the real services, sign-in links read from the test SMTP server.
Every page is checked in az, ru and en for untranslated text and by axe, at
desktop and phone width; screenshots go to INBOX_SCREENSHOTS (`docs/` for
the README) or a temporary folder."""

import os
import pathlib
import re
import tempfile
import uuid

import pytest
import requests
from babel.messages.pofile import read_po
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

from gateway.inbox.i18n import CATALOGUES
from tests.gateway.conftest import bearer
from tests.support import data
from tests.support.browser import PHONE, axe_violations, console_errors, replaced, screenshot, wait_for
from tests.support.inbox import sign_in_token
from tests.support.sinks import readable
from tests.support.sinks import wait_for as eventually

SHOTS = pathlib.Path(os.environ.get("INBOX_SCREENSHOTS") or tempfile.mkdtemp(prefix="inbox-shots-"))
LANGUAGES = ("az", "ru", "en")
PLACEHOLDER = re.compile(r"%\(\w+\)s")
SAME_EVERYWHERE = {"%(name)s, %(agency)s"}


@pytest.fixture
def world(services, make_app, serve, new_agency, smtp_sink):
    """A gateway over real HTTP, and three agencies: the State Migration
    Service (an English-writing coordinator), IOM (Azerbaijani) and an NGO
    (Russian) outside the referrals."""
    app = make_app()
    url = serve(app)
    http = app.test_client()
    made = {}
    for role, name, language, services_offered in (
        ("sender", "State Migration Service", "en", ["documentation"]),
        ("receiver", "IOM Azerbaijan", "az", ["housing", "employment"]),
        ("outsider", "Ganja Women's Resource Centre", "ru", ["psychosocial"]),
    ):
        agency, key = new_agency(
            http,
            name=name,
            services=services_offered,
            regions=["AZ-BA", "AZ-GA"],
            contacts=[
                data.contact(
                    name=f"{role.title()} Coordinator",
                    language=language,
                    email=f"{role}-{uuid.uuid4().hex[:6]}@example.org",
                )
            ],
        )
        made[role] = {"agency": agency, "key": key["key"], "email": agency["contacts"][0]["email"]}
    return {"url": url, "http": http, "smtp": smtp_sink, **made}


def refer(world, **overrides):
    made = requests.post(
        world["url"] + "/v1/referrals",
        headers=bearer(world["sender"]["key"]),
        timeout=10,
        json=data.referral(world["receiver"]["agency"]["id"], **overrides),
    )
    assert made.status_code == 201, made.text
    return made.json()


def status_of(world, referral_id):
    return requests.get(
        f"{world['url']}/v1/referrals/{referral_id}", headers=bearer(world["sender"]["key"]), timeout=10
    ).json()["status"]


def sign_in(driver, world, role, count=1):
    """Sign in as `role`'s coordinator as they would: the address, the
    e-mailed link, the button."""
    driver.get(world["url"] + "/inbox")  # no session: sent to the sign-in page
    driver.find_element(By.ID, "email").send_keys(world[role]["email"])
    driver.find_element(By.CSS_SELECTOR, "form.narrow button[type=submit]").click()
    wait_for(driver, ".notice.success")
    token = sign_in_token(world["smtp"], world[role]["email"], count)
    driver.get(f"{world['url']}/inbox/sign-in/{token}")
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    # the link's page has an h1 too: wait for the inbox's address, not for any h1
    WebDriverWait(driver, 10).until(
        lambda d: d.current_url == world["url"] + "/inbox", message="not signed in: the inbox did not open"
    )
    wait_for(driver, "h1")


def press(driver, move, text=None):
    """Press the move's button (after writing its text); returns once the
    answer's page has replaced this one (or at once, if the browser itself
    refused the form)."""
    form = driver.find_element(By.CSS_SELECTOR, f"form.move-{move}")
    if text is not None:
        form.find_element(By.TAG_NAME, "textarea").send_keys(text)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    if text != "":
        WebDriverWait(driver, 15).until(replaced(form), message=f"no page after pressing {move}")
    return wait_for(driver, "h1")


def checked(driver, name, language, phone=False, status=200):
    """The page now open, checked as a coordinator would meet it: no
    untranslated text, nothing axe calls serious, nothing wider than a
    phone, no console error; and photographed."""
    assert driver.execute_script("return document.documentElement.lang") == language
    if language != "en":
        assert untranslated(driver) == [], name
    assert axe_violations(driver) == [], name
    if phone:
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), name
    # a page that answers 400 or 404 on purpose is "a failed load" to the console; nothing else may be there
    answered = (
        f"{driver.current_url} - Failed to load resource: the server responded with a status of {status} "
    )
    assert [e for e in console_errors(driver) if not (status != 200 and e.startswith(answered))] == [], name
    assert (
        driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus") == status
    )
    screenshot(driver, SHOTS / f"{name}-{language}{'-phone' if phone else ''}.png")


def english_texts():
    """The pages' English msgids: whole (for a text that is the message
    alone) and their fragments of three words or more between placeholders."""
    with open(CATALOGUES / "messages.pot", "rb") as pot:
        ids = [m.id for m in read_po(pot) if m.id and m.id not in SAME_EVERYWHERE]
    whole = {m for m in ids if not PLACEHOLDER.search(m)}
    fragments = {part.strip(" .,:()") for m in ids for part in PLACEHOLDER.split(m)}
    return whole, {part for part in fragments if len(part.split()) >= 3}


WHOLE, FRAGMENTS = english_texts()
TEXTS = """
const own = document.documentElement.lang, texts = [document.title];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const owner = node.parentElement.closest("[lang]");
  if (owner && owner.lang !== own) continue;  // the switcher names each language in itself
  if (node.textContent.trim()) texts.push(node.textContent.trim());
}
for (const element of document.querySelectorAll("[aria-label], [placeholder], [title]"))
  for (const name of ["aria-label", "placeholder", "title"])
    if (element.getAttribute(name)) texts.push(element.getAttribute(name));
return texts;
"""


def untranslated(driver):
    """The page's texts that are English messages of the catalogue."""
    texts = driver.execute_script(TEXTS)
    found = [text for text in texts if text in WHOLE or text.rstrip(".:") in WHOLE]
    joined = "\n".join(texts)
    return found + [fragment for fragment in FRAGMENTS if fragment in joined]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_in_each_language(browser, world, language):
    """Each page a coordinator meets, in one language, at desktop and phone
    width: the receiver's whole answer to a referral included."""
    made = refer(world, priority="urgent")
    refer(world, returnee=data.returnee(given_name="Rauf", family_name="Hasanov", region="AZ-BA"))
    for width, height in ((1280, 900), PHONE):
        phone = width == PHONE[0]
        driver = browser(lang=language, width=width, height=height)
        driver.get(world["url"] + f"/inbox/sign-in?lang={language}")
        checked(driver, "sign-in", language, phone)
        driver.get(world["url"] + "/inbox/sign-in/no-such-token")
        checked(driver, "sign-in-invalid", language, phone, 400)
        sign_in(driver, world, "receiver", count=1 if not phone else 2)
        checked(driver, "inbox", language, phone)
        driver.get(f"{world['url']}/inbox/referrals/{made['id']}")
        checked(driver, "referral", language, phone)
        driver.get(world["url"] + "/inbox/referrals/new")
        driver.find_element(By.CSS_SELECTOR, "button[name=action][value=send]").click()
        wait_for(driver, ".error-summary")
        checked(driver, "new-referral-refused", language, phone, 422)
        driver.get(f"{world['url']}/inbox/referrals/{uuid.uuid4()}")
        checked(driver, "not-found", language, phone, 404)


def test_a_receiver_answers_a_referral_from_first_to_last_move(browser, world):
    made, declined = refer(world), refer(world)
    driver = browser(lang="en")
    sign_in(driver, world, "receiver")
    received = driver.find_element(By.ID, "received-heading").find_element(By.XPATH, "..").text
    assert made["reference"] in received and "Aysel Mammadova" in received
    driver.get(f"{world['url']}/inbox/referrals/{made['id']}")
    for move, written, status in (
        ("accept", None, "accepted"),
        ("start", None, "in_progress"),
        ("complete", "Housed in a social flat in Ganja.", "completed"),
    ):
        press(driver, move, written)
        assert status_of(world, made["id"]) == status
        assert driver.find_element(By.CSS_SELECTOR, ".notice.success").is_displayed()
    history = driver.find_element(By.CSS_SELECTOR, "ol.history").text
    assert "Receiver Coordinator" in history and "Housed in a social flat in Ganja." in history
    assert not driver.find_elements(By.CSS_SELECTOR, "form.move")  # completed: nothing more to do
    driver.get(f"{world['url']}/inbox/referrals/{declined['id']}")
    press(driver, "decline", "")  # no reason: the browser asks for it (the server would too: 422)
    assert driver.execute_script(
        "return document.querySelector('form.move-decline textarea').matches(':invalid')"
    )
    assert status_of(world, declined["id"]) == "sent"
    press(driver, "decline", "No places left in Baku this month.")
    assert status_of(world, declined["id"]) == "declined"
    mail = eventually(
        lambda: [m for m in world["smtp"].to(world["sender"]["email"]) if "declined" in m["Subject"]],
        what="the sender's e-mail",
    )[0]
    assert f"/inbox/referrals/{declined['id']}" in readable(mail)


def test_a_sender_refers_through_the_form_and_the_receiver_hears_of_it(browser, world):
    driver = browser(lang="en")
    sign_in(driver, world, "sender")
    driver.get(world["url"] + "/inbox/referrals/new")
    driver.find_element(By.CSS_SELECTOR, "#service_type option[value=housing]").click()
    driver.find_element(By.CSS_SELECTOR, "#search_region option[value=AZ-GA]").click()
    driver.find_element(By.CSS_SELECTOR, "button[name=action][value=search]").click()
    receiver = world["receiver"]["agency"]
    wait_for(driver, f"#agency-{receiver['id']}").click()
    for field, value in (("given_name", "Nigar"), ("family_name", "Quliyeva"), ("reason", "Needs a flat.")):
        driver.find_element(By.ID, field).send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "#region option[value=AZ-GA]").click()
    driver.find_element(By.CSS_SELECTOR, "button[name=action][value=send]").click()
    error = wait_for(driver, "#consent_given-error")  # no consent: refused, the form as it was typed
    assert error.is_displayed()
    assert driver.find_element(By.ID, "given_name").get_attribute("value") == "Nigar"
    assert driver.find_element(By.ID, f"agency-{receiver['id']}").is_selected()
    driver.find_element(By.ID, "consent_given").click()
    driver.find_element(By.CSS_SELECTOR, "button[name=action][value=send]").click()
    wait_for(driver, ".notice.success")
    referral_id = driver.current_url.rsplit("/", 1)[1]
    assert "Nigar Quliyeva" in driver.find_element(By.TAG_NAME, "main").text
    mail = eventually(
        lambda: [
            m
            for m in world["smtp"].to(world["receiver"]["email"])
            if f"/inbox/referrals/{referral_id}" in readable(m)
        ],
        what="the receiver's e-mail",
    )[0]
    assert "Nigar" not in readable(mail) and "Quliyeva" not in readable(mail)


def test_another_agency_s_coordinator_gets_404_and_a_form_without_its_token_changes_nothing(browser, world):
    made = refer(world)
    outsider = browser(lang="ru")
    sign_in(outsider, world, "outsider")
    outsider.get(f"{world['url']}/inbox/referrals/{made['id']}")
    assert "Aysel" not in outsider.page_source
    status = outsider.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus")
    assert status == 404
    receiver = browser(lang="en")
    sign_in(receiver, world, "receiver")
    receiver.get(f"{world['url']}/inbox/referrals/{made['id']}")
    receiver.execute_script("document.querySelector('form.move-accept input[name=csrf_token]').remove()")
    press(receiver, "accept")
    assert (
        receiver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus") == 400
    )
    assert status_of(world, made["id"]) == "sent"


def test_signing_out_ends_the_session_on_the_server(browser, world):
    driver = browser(lang="az")
    sign_in(driver, world, "receiver")
    cookie = driver.get_cookie("inbox_session")["value"]
    driver.find_element(By.CSS_SELECTOR, ".who button[type=submit]").click()
    wait_for(driver, "#email")
    again = requests.get(
        world["url"] + "/inbox", cookies={"inbox_session": cookie}, allow_redirects=False, timeout=10
    )
    assert again.status_code == 303 and again.headers["Location"] == "/inbox/sign-in"


def test_the_inbox_puts_what_needs_an_answer_first_and_marks_it(browser, world, engines):
    """Also the README's pictures (INBOX_SCREENSHOTS=docs): the inbox and a
    referral page with a history of moves by a key and by a coordinator."""
    people = [
        ("Aysel", "Mammadova", "AZ-GA", "female"),
        ("Rauf", "Hasanov", "AZ-BA", "male"),
        ("Nigar", "Quliyeva", "AZ-SM", "female"),
        ("Elvin", "Aliyev", "AZ-GA", "male"),
    ]
    late, urgent, new, answered = (
        refer(
            world,
            priority="urgent" if n == 1 else "normal",
            returnee=data.returnee(given_name=given, family_name=family, region=region, sex=sex),
        )
        for n, (given, family, region, sex) in enumerate(people)
    )
    with engines["REFERRALS_DATABASE_URL"].begin() as conn:
        conn.execute(
            text("UPDATE referrals SET respond_by = now() - interval '2 hours' WHERE id = :id"),
            {"id": late["id"]},
        )
    receiver = world["receiver"]
    accepted = requests.post(
        f"{world['url']}/v1/referrals/{answered['id']}/accept", headers=bearer(receiver["key"]), timeout=10
    )
    assert accepted.status_code == 200
    back = requests.post(
        world["url"] + "/v1/referrals",
        headers=bearer(receiver["key"]),
        timeout=10,
        json=data.referral(
            world["sender"]["agency"]["id"],
            service_type="documentation",
            reason="Needs a new identity card.",
            returnee=data.returnee(given_name="Elvin", family_name="Aliyev", sex="male"),
        ),
    )
    assert back.status_code == 201
    driver = browser(lang="en")
    sign_in(driver, world, "receiver")
    driver.get(
        world["url"] + "/inbox?lang=en"
    )  # the coordinator writes Azerbaijani; the README shows English
    rows = driver.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=received-heading] li.case")
    assert [row.find_element(By.CSS_SELECTOR, ".reference").text for row in rows] == [
        late["reference"],
        urgent["reference"],
        new["reference"],
        answered["reference"],
    ]
    assert "Overdue" in rows[0].text and "overdue" in rows[0].get_attribute("class")
    assert "Urgent" in rows[1].text
    screenshot(driver, SHOTS / "inbox.png")
    driver.get(f"{world['url']}/inbox/referrals/{answered['id']}")
    press(driver, "start")
    who = driver.find_element(By.CSS_SELECTOR, "ol.history").text
    assert "through its own system (API key rnk_" in who and "Receiver Coordinator, IOM Azerbaijan" in who
    screenshot(driver, SHOTS / "referral.png")
    phone = browser(lang="az", width=PHONE[0], height=PHONE[1])
    sign_in(phone, world, "receiver", count=2)
    screenshot(phone, SHOTS / "inbox-phone-az.png")


def test_a_coordinator_answers_by_keyboard_alone(browser, world):
    """Tab to the button, Enter: no mouse needed, and the focus is always
    somewhere one can see (the skip link first)."""
    made = refer(world)
    driver = browser(lang="en")
    sign_in(driver, world, "receiver")
    driver.get(f"{world['url']}/inbox/referrals/{made['id']}")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.get_attribute("class") == "skip"
    assert driver.switch_to.active_element.is_displayed()
    for _ in range(30):
        focused = driver.switch_to.active_element
        if (
            focused.tag_name == "button"
            and focused.find_element(By.XPATH, "..").get_attribute("class") == "move move-accept"
        ):
            break
        focused.send_keys(Keys.TAB)
    else:
        raise AssertionError("the Accept button cannot be reached with the Tab key")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(driver, ".notice.success")
    assert status_of(world, made["id"]) == "accepted"


def test_a_sender_erases_the_returnee_s_data_and_the_receiver_sees_it_erased(browser, world):
    made = refer(world)
    driver = browser(lang="en")
    sign_in(driver, world, "sender")
    driver.get(f"{world['url']}/inbox/referrals/{made['id']}")
    checked(driver, "referral-sender", "en")
    press(driver, "erase", "")  # no reason: the browser asks for it
    assert "Aysel" in driver.find_element(By.TAG_NAME, "main").text
    press(driver, "erase", "She withdrew her consent.")
    main = driver.find_element(By.TAG_NAME, "main").text
    assert "Aysel" not in main and "The returnee's data has been erased." in main
    assert not driver.find_elements(By.CSS_SELECTOR, "form.move-erase")
    checked(driver, "referral-erased", "en")
    receiver = browser(lang="az")
    sign_in(receiver, world, "receiver")
    assert "Aysel" not in receiver.find_element(By.TAG_NAME, "main").text
    checked(receiver, "inbox-erased", "az")
    receiver.get(f"{world['url']}/inbox/referrals/{made['id']}")
    assert "Aysel" not in receiver.find_element(By.TAG_NAME, "main").text
    checked(receiver, "referral-erased", "az")
