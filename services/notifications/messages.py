"""The words of every notification, rendered from the template files in
`templates/<channel>/<language>/<event>.j2` with Jinja2.

An e-mail template gives the blocks `subject` and `message`; the language's
`_layout.txt.j2` and `_layout.html.j2` wrap the message (HTML autoescaped).
An SMS template gives `full` and `short`: the first that fits one SMS is sent.
A missing translation falls back to English and is logged.
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
        "housing": "housing", "employment": "employment", "health": "health care",
        "psychosocial": "psychosocial", "legal": "legal aid", "education": "education",
        "documentation": "documents", "financial": "financial aid",
    },
    "az": {
        "housing": "mənzil", "employment": "məşğulluq", "health": "tibbi yardım",
        "psychosocial": "psixososial dəstək", "legal": "hüquqi yardım", "education": "təhsil",
        "documentation": "sənədləşmə", "financial": "maddi yardım",
    },
    "ru": {
        "housing": "жильё", "employment": "трудоустройство", "health": "медицинская помощь",
        "psychosocial": "психосоциальная поддержка", "legal": "юридическая помощь",
        "education": "образование", "documentation": "документы",
        "financial": "материальная помощь",
    },
}


def _environment(autoescape):
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


class Messages:
    def __init__(self):
        self.text = _environment(autoescape=False)
        self.html = _environment(autoescape=True)

    def _template(self, env, channel, language, name):
        try:
            return env.get_template(f"{channel}/{language}/{name}.j2")
        except TemplateNotFound:
            if language == FALLBACK_LANGUAGE:
                raise
            log.warning("no %s template %r in %r: using English", channel, name, language)
            return env.get_template(f"{channel}/{FALLBACK_LANGUAGE}/{name}.j2")

    @staticmethod
    def _block(template, block, context):
        return "".join(template.blocks[block](template.new_context(context))).strip()

    def context(self, language, service_type, **values):
        names = SERVICE_NAMES.get(language, SERVICE_NAMES[FALLBACK_LANGUAGE])
        return dict(values, service=names.get(service_type, service_type))

    def email(self, event, language, context):
        """(subject, plain text, HTML) of the e-mail for `event`."""
        plain = self._template(self.text, "email", language, event)
        subject = self._block(plain, "subject", context)
        message = self._block(plain, "message", context)
        html_message = self._block(self._template(self.html, "email", language, event), "message", context)
        values = dict(context, subject=subject)
        text_body = self._template(self.text, "email", language, "_layout.txt").render(values, message=message)
        html_body = self._template(self.html, "email", language, "_layout.html").render(
            values, message=Markup(html_message)
        )
        return subject, text_body, html_body

    def sms(self, event, language, context):
        template = self._template(self.text, "sms", language, event)
        return sms_length.fit(self._block(template, "full", context), self._block(template, "short", context))
