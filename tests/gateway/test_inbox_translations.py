"""Every text of the coordinator pages is translated: each message the
sources mark (extracted as `make translations` extracts them) has an
Azerbaijani and a Russian translation, with the same placeholders."""

import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from gateway.inbox.i18n import CATALOGUES

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


PAGES = CATALOGUES.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
PLACEHOLDER = re.compile(r"%\(\w+\)s")
# The only messages that read the same in every language.
SAME_EVERYWHERE = {"%(name)s, %(agency)s"}


def marked_messages():
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(PAGES), METHODS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", ["az", "ru"])
def test_every_marked_message_is_translated(language):
    with open(CATALOGUES / f"{language}.po", "rb") as po:
        catalogue = {message.id: message for message in read_po(po, locale=language) if message.id}
    marked = marked_messages()
    assert len(marked) > 100
    missing = sorted(marked - set(catalogue))
    assert not missing, f"not in {language}.po (run `make translations`, then translate): {missing}"
    for text in marked:
        entry = catalogue[text]
        assert entry.string and not entry.fuzzy, (language, text)
        assert sorted(PLACEHOLDER.findall(entry.string)) == sorted(PLACEHOLDER.findall(text)), (
            language,
            text,
        )
        assert entry.string != text or text in SAME_EVERYWHERE, (language, text)
