"""`not_in_future` judges a time by the instant it names, not by the day it
reads in another time zone."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError

from shared.contract.standards import not_in_future

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


# Each value is made from the time at the test's own start: one taken when
# the module was read could be minutes old by then, and a day-boundary off.
@pytest.mark.parametrize(
    "value_at",
    [
        lambda now: now.astimezone(
            ZoneInfo("Asia/Baku")
        ),  # already tomorrow there, maybe, but not in the future
        lambda now: now.astimezone(ZoneInfo("Pacific/Kiritimati")),
        lambda now: now - datetime.timedelta(days=400),
        lambda now: (now + datetime.timedelta(hours=14)).date(),  # today on the earliest shore
        lambda now: now.date(),
    ],
)
def test_now_and_the_past_are_accepted(value_at):
    not_in_future(value_at(datetime.datetime.now(datetime.UTC)))


@pytest.mark.parametrize(
    "value_at",
    [
        lambda now: now + datetime.timedelta(hours=1),
        lambda now: (now + datetime.timedelta(hours=14) + datetime.timedelta(days=1)).date(),
    ],
)
def test_the_future_is_refused(value_at):
    value = value_at(datetime.datetime.now(datetime.UTC))
    with pytest.raises(ValidationError):
        not_in_future(value)
