"""The coordinator pages in Azerbaijani, Russian and English: gettext
catalogues (`translations/<language>.po`, made with Babel's `pybabel
extract` and `update`) read once at start, and times in Asia/Baku.

Which language a page is in: the one the coordinator chose with the
switcher (remembered in the signed session cookie), else their contact's
language in the directory, else the browser's, else Azerbaijani.
"""

import datetime
import io
import pathlib
from zoneinfo import ZoneInfo

from babel.core import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_time as babel_format_time
from babel.dates import get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import g, request, session

LANGUAGES = ("az", "ru", "en")
SOURCE_LANGUAGE = "en"  # the language of the msgids
DEFAULT_LANGUAGE = "az"
LANGUAGE_NAMES = {"az": "Azərbaycanca", "ru": "Русский", "en": "English"}
TIME_ZONE = ZoneInfo("Asia/Baku")
CATALOGUES = pathlib.Path(__file__).parent / "translations"


def N_(message):
    """Marks a message for extraction where it is defined; translated where shown."""
    return message


def load_catalogues(folder=CATALOGUES):
    """{language: Translations} from the .po files, compiled in memory
    (fuzzy and empty entries are left out, so they show in English)."""
    loaded = {SOURCE_LANGUAGE: NullTranslations()}
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        with open(folder / f"{language}.po", "rb") as po:
            catalog = read_po(po, locale=language)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        loaded[language] = Translations(compiled)
    return loaded


TRANSLATIONS = load_catalogues()


def current_language():
    language = g.get("language")
    if language is None:
        language = g.language = choose_language()
    return language


def choose_language(contact_language=None):
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return chosen
    if contact_language in LANGUAGES:
        return contact_language
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def gettext(message, **values):
    text = TRANSLATIONS[current_language()].gettext(message)
    return text % values if values else text


def ngettext(singular, plural, n, **values):
    text = TRANSLATIONS[current_language()].ngettext(singular, plural, n)
    return text % dict(values, num=n)


_ = gettext


def baku_time(value, form="medium"):
    """An RFC 3339 time (or a datetime) as Baku's wall clock, in the page's
    language: the date in `form` ("medium": 30 Nov 2026; "short":
    30.11.26) and the time to the minute."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    locale = Locale.parse(current_language())
    local = value.astimezone(TIME_ZONE)
    return (
        get_datetime_format(form, locale=locale)
        .replace("{1}", babel_format_date(local, form, locale=locale))
        .replace("{0}", babel_format_time(local, "short", locale=locale))
    )


def day(value, form="medium"):
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.date.fromisoformat(value)
    return babel_format_date(value, form, locale=Locale.parse(current_language()))


def init_app(app):
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext=gettext, ngettext=ngettext, newstyle=True)
    app.jinja_env.filters.update(baku_time=baku_time, day=day)
