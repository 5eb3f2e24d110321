"""`not_in_future` judges a time by the instant it names, not by the day it
reads in another time zone."""
import datetime
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError

from shared.standards import not_in_future

NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.parametrize("value", [
    NOW.astimezone(ZoneInfo("Asia/Baku")),  # already tomorrow there, maybe, but not in the future
    NOW.astimezone(ZoneInfo("Pacific/Kiritimati")),
    NOW - datetime.timedelta(days=400),
    (NOW + datetime.timedelta(hours=14)).date(),  # today on the earliest shore
    NOW.date(),
])
def test_now_and_the_past_are_accepted(value):
    not_in_future(value)


@pytest.mark.parametrize("value", [
    NOW + datetime.timedelta(hours=1),
    (NOW + datetime.timedelta(hours=14) + datetime.timedelta(days=1)).date(),
])
def test_the_future_is_refused(value):
    with pytest.raises(ValidationError):
        not_in_future(value)
