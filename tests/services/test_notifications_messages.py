"""The words of the notifications: every template in every language, the
SMS length rules, the English fallback, and proof that a template can use
nothing but the reference, the service type, the agencies and the role."""

import logging
import shutil
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Environment, FileSystemLoader, meta

from services.notifications import dispatch, sms_length
from services.notifications.messages import SERVICE_NAMES, TEMPLATES, Messages
from shared.contract import events
from shared.contract.vocabulary import SERVICE_TYPES
from tests.support import data

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


LANGUAGES = ("az", "ru", "en")
# All a template may name: what dispatch.plan puts in the context, the
# service's name that Messages adds, and what the e-mail layouts get.
CONTEXT_KEYS = {"referral_id", "reference", "service_type", "other_agency", "agency", "role"}
TEMPLATE_KEYS = CONTEXT_KEYS | {"service", "link"}
LAYOUT_KEYS = TEMPLATE_KEYS | {"subject", "message", "link_text"}
# A sign-in e-mail names the agency and carries the link, nothing else.
SIGN_IN_KEYS = {"agency", "link", "minutes"}
# A webhook turned off: the agency, the webhook's URL and how long it failed.
WEBHOOK_DEACTIVATED_KEYS = {"agency", "url", "days"}
REFERRAL_ID = "6f1c9b8e-2d4a-4c1e-9a57-0b3c2d1e4f5a"
LONG_NAMES = (
    "Ministry of Labour and Social Protection of Population of the Republic of Azerbaijan",
    "Azərbaycan Respublikasının Əmək və Əhalinin Sosial Müdafiəsi Nazirliyi",
    "Министерство труда и социальной защиты населения Азербайджанской Республики",
)
REFERENCES = ("REF-2026-000123", "REF-2031-1234567")  # today's, and one after a million referrals
AUDIENCE_ROLES = [(event, role) for event, roles in dispatch.AUDIENCE.items() for role in roles]


@pytest.fixture(scope="module")
def messages():
    return Messages()


def context(role="receiver", service="housing", other="IOM Azerbaijan", reference="REF-2026-000123"):
    return {
        "referral_id": REFERRAL_ID,
        "reference": reference,
        "service_type": service,
        "other_agency": other,
        "agency": "Own Agency",
        "role": role,
    }


def test_every_event_and_language_has_its_templates():
    for channel in ("email", "sms"):
        for language in LANGUAGES:
            names = {path.stem for path in (TEMPLATES / channel / language).glob("*.j2")}
            assert names >= set(dispatch.AUDIENCE), (channel, language)
    assert (
        set(SERVICE_TYPES) == set(SERVICE_NAMES["en"]) == set(SERVICE_NAMES["az"]) == set(SERVICE_NAMES["ru"])
    )


def test_no_template_can_name_anything_but_the_allowed_values():
    """Static, so it covers branches a rendering would not take: no
    template can reach a returnee's data, for none is ever given to it."""
    env = Environment(loader=FileSystemLoader(TEMPLATES))
    paths = sorted(TEMPLATES.rglob("*.j2"))
    assert len(paths) == 3 * (9 + 7 + 2)  # e-mail: 2 layouts, 7 events, sign-in, webhook off; SMS: 7 events
    for path in paths:
        names = meta.find_undeclared_variables(env.parse(path.read_text()))
        allowed = {
            "_layout": LAYOUT_KEYS,
            "sign_in": SIGN_IN_KEYS,
            "webhook_deactivated": WEBHOOK_DEACTIVATED_KEYS,
        }.get(path.stem.split(".")[0], TEMPLATE_KEYS)
        assert names <= allowed, (path, names - allowed)


def test_plan_gives_the_templates_only_the_allowed_values(messages):
    seen = []

    class Watched(Messages):
        def email(self, event, language, context):
            seen.append(set(context))
            return super().email(event, language, context)

        def sms(self, event, language, context):
            seen.append(set(context))
            return super().sms(event, language, context)

    agencies = {
        "sender": {
            "id": str(uuid.uuid4()),
            "name": "Sender",
            "contacts": [data.contact(channels=["email", "sms"])],
        },
        "receiver": {
            "id": str(uuid.uuid4()),
            "name": "Receiver",
            "contacts": [data.contact(channels=["sms"])],
        },
    }
    for event_type in dispatch.AUDIENCE:
        dispatch.plan(event(event_type, agencies), agencies, Watched())
    assert seen and all(keys == CONTEXT_KEYS for keys in seen)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_webhook_deactivated_email_names_the_webhook_in_the_contacts_language(language):
    values = {"agency": "Ganja NGO", "url": "https://cases.example.org/hooks", "days": "3"}
    subject, text, html = Messages().email("webhook_deactivated", language, values)
    assert "https://cases.example.org/hooks" in text and "https://cases.example.org/hooks" in html
    assert "Ganja NGO" in text and "3" in text and "\n" not in subject
    english = Messages().email("webhook_deactivated", "en", values)
    assert (subject == english[0]) == (language == "en")
    assert f'<html lang="{language}">' in html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type,role", AUDIENCE_ROLES)
def test_every_email_renders_with_only_the_allowed_values(messages, language, event_type, role):
    for service in SERVICE_TYPES:
        subject, text, html = messages.email(event_type, language, context(role, service))
        assert "REF-2026-000123" in subject and "\n" not in subject
        service_name = SERVICE_NAMES[language][service]
        for body in (text, html):
            assert "REF-2026-000123" in body and service_name in body and "IOM Azerbaijan" in body
            assert f"http://localhost:8000/inbox/referrals/{REFERRAL_ID}" in body
        assert f'<a href="http://localhost:8000/inbox/referrals/{REFERRAL_ID}">' in html
        assert html.startswith("<!DOCTYPE html>") and f'<html lang="{language}">' in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sign_in_email_carries_its_link_in_the_contacts_language(language):
    messages = Messages(public_url="https://referrals.example.org/")
    subject, text, html = messages.email(
        "sign_in", language, {"agency": "Ganja NGO", "link": messages.sign_in_link("t0ken"), "minutes": 15}
    )
    link = "https://referrals.example.org/inbox/sign-in/t0ken"
    assert link in text and f'<a href="{link}">' in html
    assert "Ganja NGO" in text and "15" in text
    assert "REF-" not in text and "\n" not in subject
    english = Messages().email("sign_in", "en", {"agency": "Ganja NGO", "link": link, "minutes": 15})
    assert (subject == english[0]) == (language == "en")  # translated, not the English fallback
    assert f'<html lang="{language}">' in html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type,role", AUDIENCE_ROLES)
def test_every_sms_fits_one_message_without_being_cut(messages, language, event_type, role):
    """With the longest names an agency has, every service and a reference
    past a million, the SMS is one of the template's own variants: it
    fits, and it was never cut (let alone inside a word)."""
    template = messages.text.get_template(f"sms/{language}/{event_type}.j2")
    for other in (*LONG_NAMES, "IOM"):
        for service in SERVICE_TYPES:
            for reference in REFERENCES:
                values = context(role, service, other, reference)
                named = dict(values, service=SERVICE_NAMES[language][service])
                full, short = (messages._block(template, name, named) for name in ("full", "short"))
                sent = messages.sms(event_type, language, values)
                assert sms_length.fits(sent), sent
                assert sent == (full if sms_length.fits(full) else short)
                assert reference in sent and SERVICE_NAMES[language][service] in sent
    # A short name leaves room for the full text, naming the other agency.
    assert "IOM" in messages.sms(event_type, language, context(role, "legal", "IOM"))


def test_html_is_escaped_and_the_plain_text_is_not(messages):
    values = context(other='Tom & Jerry <script>alert("x")</script>')
    _subject, text, html = messages.email(events.REFERRAL_SENT, "en", values)
    assert 'Tom & Jerry <script>alert("x")</script>' in text
    assert "<script>" not in html
    assert "Tom &amp; Jerry &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_a_subject_is_one_header_line_whatever_the_agency_is_called(messages):
    subject, _, _ = messages.email(events.REFERRAL_SENT, "en", context(other="Two\nLines\r\nNGO"))
    assert subject == "New referral REF-2026-000123: housing"
    subject, _, _ = messages.email(events.REFERRAL_ACCEPTED, "en", context(other="Two\nLines"))
    assert "\n" not in subject and "\r" not in subject


def test_a_language_without_templates_falls_back_to_english_and_says_so(messages, caplog):
    agencies = {
        "sender": {
            "id": str(uuid.uuid4()),
            "name": "Sender NGO",
            "contacts": [data.contact(language="tr", channels=["email", "sms"])],
        },
        "receiver": {"id": str(uuid.uuid4()), "name": "Receiver NGO", "contacts": []},
    }
    with caplog.at_level(logging.WARNING, logger="services.notifications.messages"):
        mail, sms = dispatch.plan(event(events.REFERRAL_ACCEPTED, agencies), agencies, messages)
    assert mail.language == sms.language == "tr"  # recorded as the contact asked
    assert mail.subject == "Referral REF-2026-000123 accepted"
    assert mail.text_body.startswith("Dear colleague,") and '<html lang="en">' in mail.html_body
    assert sms.text_body == "Receiver NGO accepted your referral REF-2026-000123 (housing)."
    warnings = [record.getMessage() for record in caplog.records]
    assert any("email" in line and "'tr'" in line for line in warnings), warnings
    assert any("sms" in line and "'tr'" in line for line in warnings), warnings


def test_a_missing_translation_of_one_event_falls_back_to_english_whole(tmp_path, caplog):
    """Half a translation is not mixed into a letter: the e-mail is all
    English (layout too), and other events keep their language."""
    shutil.copytree(TEMPLATES, tmp_path, dirs_exist_ok=True)
    (tmp_path / "email" / "az" / "referral_declined.j2").unlink()
    (tmp_path / "sms" / "az" / "referral_declined.j2").unlink()
    partial = Messages(tmp_path)
    values = context(role="sender")
    with caplog.at_level(logging.WARNING, logger="services.notifications.messages"):
        subject, text, html = partial.email(events.REFERRAL_DECLINED, "az", values)
        sms = partial.sms(events.REFERRAL_DECLINED, "az", values)
    assert subject == "Referral REF-2026-000123 declined"
    assert text.startswith("Dear colleague,") and '<html lang="en">' in html
    assert "(housing)" in text and "mənzil" not in text
    assert (
        sms
        == "IOM Azerbaijan declined your referral REF-2026-000123 (housing). The reason is in the referral."
    )
    assert len([r for r in caplog.records if "referral_declined" in r.getMessage()]) == 2
    subject, text, _ = partial.email(events.REFERRAL_ACCEPTED, "az", values)
    assert subject == "REF-2026-000123 saylı yönləndirmə qəbul edildi" and text.startswith("Hörmətli həmkar,")


def event(event_type, agencies):
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "referral_id": str(uuid.uuid4()),
        "reference": "REF-2026-000123",
        "service_type": "housing",
        "sending_agency_id": agencies["sender"]["id"],
        "receiving_agency_id": agencies["receiver"]["id"],
    }


# SMS length rules


def test_the_gsm7_tables_are_complete():
    assert len(sms_length.GSM7_BASIC) == 127  # 128 code points less the escape
    assert len(sms_length.GSM7_EXTENDED) == 10


@pytest.mark.parametrize(
    "letter,gsm7",
    [
        ("ə", False),
        ("Ə", False),
        ("ş", False),
        ("Ş", False),
        ("ğ", False),
        ("Ğ", False),
        ("ı", False),
        ("İ", False),
        ("ç", False),
        ("Ç", True),
        ("ö", True),
        ("Ö", True),
        ("ü", True),
        ("Ü", True),
        ("ж", False),
        ("«", False),
        ("…", False),
        ("€", True),
        ("[", True),
        ("é", True),
        ("á", False),
    ],
)
def test_which_letters_are_gsm7(letter, gsm7):
    assert sms_length.is_gsm7(letter) is gsm7


@pytest.mark.parametrize(
    "text,units,limit",
    [
        ("a" * 160, 160, 160),
        ("€" * 80, 160, 160),  # extension characters take two septets
        ("[x]", 5, 160),
        ("ж" * 70, 70, 70),
        ("a" * 69 + "ə", 70, 70),  # one Azerbaijani ə makes the whole text UCS-2
        ("Ça ölür üzüm", 12, 160),  # Ç, ö, ü are GSM-7
        ("ok 👍", 5, 70),  # outside the BMP: two UTF-16 units
    ],
)
def test_length_counts_units_against_the_right_limit(text, units, limit):
    assert sms_length.length(text) == (units, limit)


@pytest.mark.parametrize(
    "text,fits",
    [
        ("a" * 160, True),
        ("a" * 161, False),
        ("€" * 80, True),
        ("€" * 81, False),
        ("a" * 159 + "€", False),
        ("ж" * 70, True),
        ("ж" * 71, False),
        ("a" * 70 + "ə", False),
    ],
)
def test_fits_at_the_edges(text, fits):
    assert sms_length.fits(text) is fits


def test_fit_takes_the_first_variant_that_fits():
    assert sms_length.fit("x" * 161, "short one") == "short one"
    assert sms_length.fit("full one", "short one") == "full one"


def test_fit_cuts_after_a_whole_word_with_an_ellipsis():
    gsm = sms_length.fit("alpha " * 40)
    assert gsm.endswith("alpha...") and len(gsm) <= 160 and len(gsm) + 6 > 160
    cyrillic = sms_length.fit("направление, " * 10)
    assert cyrillic == "направление, направление, направление, направление, направление…"
    assert sms_length.fits(cyrillic)


WORD = st.text(alphabet="abcxyzəşğıçöüÇжщ€[-,:", min_size=1, max_size=30)


@given(st.lists(WORD, min_size=1, max_size=60))
def test_fit_never_overflows_and_never_cuts_inside_a_word(words):
    text = " ".join(words)
    sent = sms_length.fit(text)
    assert sms_length.fits(sent)
    if sent != text:
        assert sent.endswith(("...", "…"))
        kept = sent.removesuffix("...").removesuffix("…")
        assert text.startswith(kept) and not kept.endswith(" ")
        # What follows the cut, up to the next space, is at most punctuation left out.
        assert set(text[len(kept) :].split(" ")[0]) <= set(sms_length.TRAILING_PUNCTUATION)
