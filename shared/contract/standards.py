"""Checks of values against the real standards, as marshmallow validators.

ISO 3166-1/-2 and ISO 639-1 come from pycountry, E.164 phone numbers from
phonenumbers, e-mail addresses from email-validator: no hand-made lists.
"""

import datetime
import re
from functools import lru_cache

import email_validator
import phonenumbers
import pycountry
from marshmallow import ValidationError, fields, validate


@lru_cache(maxsize=1)
def _subdivision_codes():
    return frozenset(subdivision.code for subdivision in pycountry.subdivisions)


def subdivision_code(value):
    if value not in _subdivision_codes():
        raise ValidationError(f"{value!r} is not an ISO 3166-2 subdivision code.")


def country_code(value):
    if len(value) != 2 or pycountry.countries.get(alpha_2=value) is None:
        raise ValidationError(f"{value!r} is not an ISO 3166-1 alpha-2 country code.")


def language_code(value):
    if len(value) != 2 or pycountry.languages.get(alpha_2=value) is None:
        raise ValidationError(f"{value!r} is not an ISO 639-1 language code.")


def e164_phone(value):
    message = f"{value!r} is not a phone number in E.164 form (+994...)."
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(message) from None
    if not phonenumbers.is_valid_number(number) or value != phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164
    ):
        raise ValidationError(message)


def email_address(value):
    try:
        email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        raise ValidationError(f"{value!r} is not an e-mail address: {error}") from None


# A clock may run a little ahead of ours.
CLOCK_SKEW = datetime.timedelta(minutes=5)
# The day is already tomorrow somewhere: up to UTC+14 (Kiribati).
EARLIEST_OFFSET = datetime.timedelta(hours=14)


def not_in_future(value):
    """A time not after now, or a date that is not yet to come anywhere on
    Earth: a consent taken at 01:00 in Baku (UTC+4) is today there while it
    is still yesterday in UTC."""
    now = datetime.datetime.now(datetime.UTC)
    if isinstance(value, datetime.datetime):
        future = value > now + CLOCK_SKEW if value.tzinfo else value.date() > (now + EARLIEST_OFFSET).date()
    else:
        future = value > (now + EARLIEST_OFFSET).date()
    if future:
        raise ValidationError(f"{value.isoformat()} is in the future.")


# What PostgreSQL cannot store in text, though JSON can carry it: the NUL
# character, and a UTF-16 surrogate standing alone ("\ud800").
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Text(fields.String):
    """A string of the contract: every string field of every shared schema
    is one, so NUL characters and lone surrogates are refused (422 naming
    the field) where input is checked, never by the database afterwards."""

    default_error_messages = {
        "unstorable": "Text may not hold a NUL character or a lone surrogate (at character {position}).",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        bad = UNSTORABLE.search(text)
        if bad:
            raise self.make_error("unstorable", position=bad.start() + 1)
        return text


class JsonBoolean(fields.Boolean):
    """A boolean in a JSON body: true or false, not 0, 1, "yes" or "false"
    (marshmallow's own Boolean takes all of those)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def one_of(choices):
    """A fixed choice whose refusal names the value given."""
    return validate.OneOf(choices, error="{input!r} is not one of: {choices}.")
