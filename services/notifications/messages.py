"""The words of every notification, rendered from the template files in
`templates/<channel>/<language>/<event>.j2` with Jinja2.

An e-mail template gives the blocks `subject` and `message` (and may give
`link_text`); the language's `_layout.txt.j2` and `_layout.html.j2` wrap the
message (HTML autoescaped) and add the link of its context (a referral's
page in the coordinators' pages, or a sign-in link).
An SMS template gives `full` and `short`: the first that fits one SMS is sent.
A missing translation makes the whole message English, and is logged.
"""

import logging
import pathlib

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from markupsafe import Markup

from services.notifications import sms_length

log = logging.getLogger(__name__)

TEMPLATES = pathlib.Path(__file__).parent / "templates"
FALLBACK_LANGUAGE = "en"

SERVICE_NAMES = {
    "en": {
        "housing": "housing",
        "employment": "employment",
        "health": "health care",
        "psychosocial": "psychosocial support",
        "legal": "legal aid",
        "education": "education",
        "documentation": "documents",
        "financial": "financial aid",
    },
    "az": {
        "housing": "mənzil təminatı",
        "employment": "məşğulluq",
        "health": "tibbi yardım",
        "psychosocial": "psixososial dəstək",
        "legal": "hüquqi yardım",
        "education": "təhsil",
        "documentation": "sənədləşmə",
        "financial": "maddi yardım",
    },
    "ru": {
        "housing": "жильё",
        "employment": "трудоустройство",
        "health": "медицинская помощь",
        "psychosocial": "психосоциальная поддержка",
        "legal": "юридическая помощь",
        "education": "образование",
        "documentation": "оформление документов",
        "financial": "материальная помощь",
    },
}


def _environment(templates, autoescape):
    return Environment(
        loader=FileSystemLoader(templates),
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


class Messages:
    def __init__(self, templates=TEMPLATES, public_url="http://localhost:8000"):
        self.text = _environment(templates, autoescape=False)
        self.html = _environment(templates, autoescape=True)
        self.public_url = public_url.rstrip("/")

    def referral_link(self, referral_id):
        """The referral's page in the coordinators' pages (shows nothing without a session)."""
        return f"{self.public_url}/inbox/referrals/{referral_id}"

    def sign_in_link(self, token):
        return f"{self.public_url}/inbox/sign-in/{token}"

    def _language(self, channel, language, names):
        """`language` when it has every template in `names` for `channel`,
        else English (logged): a message is never half translated."""
        if language != FALLBACK_LANGUAGE:
            for name in names:
                try:
                    self.text.get_template(f"{channel}/{language}/{name}.j2")
                except TemplateNotFound:
                    log.warning("no %s template %r in %r: using English", channel, name, language)
                    return FALLBACK_LANGUAGE
        return language

    @staticmethod
    def _block(template, block, context):
        return "".join(template.blocks[block](template.new_context(context))).strip()

    def _values(self, language, context):
        """`context` (the reference, the service type, the agencies' names,
        the reader's role; or a sign-in's agency and link) with the service
        named in `language` and the referral's link."""
        values = dict(context)
        if "service_type" in context:
            names = SERVICE_NAMES.get(language, SERVICE_NAMES[FALLBACK_LANGUAGE])
            values["service"] = names.get(context["service_type"], context["service_type"])
        if "referral_id" in context:
            values["link"] = self.referral_link(context["referral_id"])
        return values

    def email(self, event, language, context):
        """(subject, plain text, HTML) of the e-mail for `event`."""
        language = self._language("email", language, (event, "_layout.txt", "_layout.html"))
        context = self._values(language, context)
        folder = f"email/{language}"
        plain, html = (
            self.text.get_template(f"{folder}/{event}.j2"),
            self.html.get_template(f"{folder}/{event}.j2"),
        )
        subject = " ".join(self._block(plain, "subject", context).split())  # one header line
        values = dict(context, subject=subject)
        if "link_text" in plain.blocks:
            values["link_text"] = self._block(plain, "link_text", context)
        text_body = self.text.get_template(f"{folder}/_layout.txt.j2").render(
            values, message=self._block(plain, "message", context)
        )
        html_body = self.html.get_template(f"{folder}/_layout.html.j2").render(
            values, message=Markup(self._block(html, "message", context))
        )
        return subject, text_body, html_body

    def sms(self, event, language, context):
        language = self._language("sms", language, (event,))
        context = self._values(language, context)
        template = self.text.get_template(f"sms/{language}/{event}.j2")
        return sms_length.fit(self._block(template, "full", context), self._block(template, "short", context))
