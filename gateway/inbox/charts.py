"""The report page's chart, drawn on the server: a horizontal stacked bar
per month (referrals sent, split by outcome), each bar an inline SVG
without text (so that it scales to any width without shrinking letters);
the month and the count are HTML beside it, and each bar's accessible
name says its figures. No script, no style attribute (the CSP allows
neither): the colours are classes of inbox.css."""

import datetime

from babel.core import Locale
from babel.dates import format_date

from gateway.inbox.i18n import N_, current_language, gettext

# The outcomes a month's referrals are split into: disjoint, and together all of them.
OUTCOMES = {
    "completed": N_("Completed"),
    "open": N_("Not yet closed"),
    "declined": N_("Declined"),
    "cancelled": N_("Cancelled"),
}
WIDTH = 100  # the bars' viewBox width: x and widths are shares of the longest bar
SMALLEST_WITHHELD = 4  # a withheld count is drawn as if it were this (it is 1 to 4, or more)


def month_label(key, form="LLLL y"):
    """ "2026-01" as the page's language names it, heading a row: "January 2026",
    "Yanvar 2026", "Январь 2026"."""
    year, month = map(int, key.split("-"))
    named = format_date(datetime.date(year, month, 1), form, locale=Locale.parse(current_language()))
    return named[:1].upper() + named[1:]


def split(row):
    """{outcome: count} of a row, or None when a count it needs is withheld."""
    needed = ("sent", "completed", "declined", "cancelled")
    if any(row.get(name) is None for name in needed):
        return None
    return {
        "completed": row["completed"],
        "declined": row["declined"],
        "cancelled": row["cancelled"],
        "open": row["sent"] - row["completed"] - row["declined"] - row["cancelled"],
    }


def month_bars(rows):
    """[{"key", "label", "sent", "withheld", "segments": [{"outcome", "x", "width", "count"}],
    "description"}] for the month rows of a report, scaled to the longest bar."""
    longest = max(
        [row["sent"] or 0 for row in rows]
        + [SMALLEST_WITHHELD if any(row["sent"] is None for row in rows) else 1]
    )
    scale = WIDTH / longest
    bars = []
    for row in rows:
        parts = split(row)
        bar = {
            "key": row["key"],
            "label": month_label(row["key"]),
            "sent": row["sent"],
            "withheld": parts is None,
            "segments": [],
        }
        if parts is None:
            # the whole bar hatched: its length is the count sent, if shown, else a stub
            length = (row["sent"] if row["sent"] is not None else SMALLEST_WITHHELD) * scale
            bar["segments"].append({"outcome": "withheld", "x": 0, "width": round(length, 3), "count": None})
            bar["description"] = (
                gettext(
                    "%(month)s: %(sent)s sent; outcomes withheld (small numbers)",
                    month=bar["label"],
                    sent=row["sent"],
                )
                if row["sent"] is not None
                else gettext("%(month)s: withheld (small numbers)", month=bar["label"])
            )
        else:
            x = 0.0
            for outcome in OUTCOMES:
                if parts[outcome]:
                    width = parts[outcome] * scale
                    bar["segments"].append(
                        {
                            "outcome": outcome,
                            "x": round(x, 3),
                            "width": round(width, 3),
                            "count": parts[outcome],
                        }
                    )
                    x += width
            said = ", ".join(
                f"{gettext(OUTCOMES[outcome])} {parts[outcome]}" for outcome in OUTCOMES if parts[outcome]
            )
            bar["description"] = gettext("%(month)s: %(sent)s sent", month=bar["label"], sent=row["sent"]) + (
                f" ({said})" if said else ""
            )
        bars.append(bar)
    return bars
