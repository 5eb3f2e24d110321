"""Countries and Azerbaijan's regions by name, in the page's language
(pycountry's ISO 3166 names and their translations), for the forms."""

import functools
import gettext as gettext_module

import pycountry

from gateway.inbox.i18n import current_language

COUNTRY = "AZ"


@functools.lru_cache(maxsize=8)
def _catalogue(domain, language):
    try:
        return gettext_module.translation(domain, pycountry.LOCALES_DIR, languages=[language])
    except OSError:
        return gettext_module.NullTranslations()


@functools.lru_cache(maxsize=8)
def _countries(language):
    names = _catalogue("iso3166-1", language)
    return sorted(
        ((country.alpha_2, names.gettext(country.name)) for country in pycountry.countries),
        key=lambda pair: pair[1].casefold(),
    )


@functools.lru_cache(maxsize=8)
def _regions(language):
    names = _catalogue("iso3166-2", language)
    return sorted(
        (
            (region.code, names.gettext(region.name))
            for region in pycountry.subdivisions.get(country_code=COUNTRY)
        ),
        key=lambda pair: pair[1].casefold(),
    )


def countries():
    """[(ISO 3166-1 alpha-2 code, name)], by name."""
    return _countries(current_language())


def regions():
    """[(ISO 3166-2 code, name)] of Azerbaijan's regions, by name."""
    return _regions(current_language())


def region_name(code):
    return dict(regions()).get(code, code)


def country_name(code):
    return dict(countries()).get(code, code)
