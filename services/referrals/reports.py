"""Reports on how the network works: referrals counted by group, in one
grouped SQL query (never a loop over referrals), and, in the network-wide
report, small counts withheld so that no small group of returnees can be
singled out.

What each figure counts, over the referrals *created* in the period (the
days `from` to `to`, both included, in Baku's time: Asia/Baku) and, for an
agency, only those it sent or received; an erased referral still counts
(nothing here reads the returnee but their region):

- sent: the referrals created in the period.
- accepted: those of them the receiver accepted, at any time up to now
  (an `accept` in their history; a referral accepted, then cancelled or
  completed, still counts).
- declined: those of them the receiver declined (a `decline` entry).
- cancelled: those of them now cancelled by their sender (at any stage).
- completed: those of them now completed.
- overdue: those of them announced overdue at some time (left unanswered
  past `respond_by`: `overdue_announced_at` set), answered later or not.
- acceptance_rate: accepted / (accepted + declined), the share of the
  receivers' answers that were acceptances (referrals cancelled before an
  answer or still waiting are no answer); null when nothing was answered.
  Rounded to 3 decimals.
- median_hours_to_answer: the median, over the answered ones, of the
  hours from creation to the answer (accept or decline; a referral has at
  most one); null when none was answered. Rounded to 0.1.
- median_days_to_complete: the median, over the completed ones, of the
  days from creation to completion; null when none was completed. 0.1.

Small-cell suppression (network-wide answers only: an agency's report
holds its own referrals, which it sees anyway): see `suppress`.
"""

import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlalchemy.types import DateTime, Uuid

from shared.contract.errors import InvalidInput
from shared.contract.reports import COUNTS, ReportQuery
from shared.contract.validation import load

TIME_ZONE = ZoneInfo("Asia/Baku")  # where the network works: days and months are Baku's
SMALLEST_SHOWN = 5  # network-wide, a count from 1 to SMALLEST_SHOWN - 1 is withheld

# The returnee's region, in clear (the rest of the returnee is sealed:
# shared.storage.sealing), kept through erasure. The one place that says where it is held.
REGION = "referral.returnee_region"

# Each grouping's key, as SQL over `referral` (the referrals table): what
# rows are grouped by (text in the "C" collation: it sorts faster, and the
# answer is sorted again anyway), and how a group's key is shown.
KEYS = {
    "service_type": 'referral.service_type COLLATE "C"',
    "region": f'({REGION}) COLLATE "C"',
    "month": "date_trunc('month', referral.created_at AT TIME ZONE 'Asia/Baku')",
    "receiving_agency": "referral.receiving_agency_id",
    "sending_agency": "referral.sending_agency_id",
}
SHOWN = {"month": "to_char({}, 'YYYY-MM')"}
SCOPES = {
    "network": "",
    "agency": "AND (referral.sending_agency_id = :agency_id OR referral.receiving_agency_id = :agency_id)",
}

# One statement, over the referrals alone: a row per group and the totals
# (the empty grouping set; its key is not used). A group without a key (a
# referral whose region is not known) is "unknown". A referral's answer and completion times are
# kept on it from its history (migration 0007), and an answer that is not
# a decline is an acceptance (both leave `sent`; `declined` is final). The
# network-wide period is read from ix_referrals_created_at alone. Durations
# come from date_part (a double: extract's numeric sorts several times slower).
REPORT = """
SELECT coalesce({shown}::text, 'unknown') AS key, GROUPING({key}) = 1 AS is_total,
    count(*) AS sent,
    count(*) FILTER (WHERE referral.answered_at IS NOT NULL AND referral.status <> 'declined') AS accepted,
    count(*) FILTER (WHERE referral.status = 'declined') AS declined,
    count(*) FILTER (WHERE referral.status = 'cancelled') AS cancelled,
    count(*) FILTER (WHERE referral.status = 'completed') AS completed,
    count(*) FILTER (WHERE referral.overdue_announced_at IS NOT NULL) AS overdue,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY date_part('epoch', referral.answered_at - referral.created_at) / 3600) AS median_hours_to_answer,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY date_part('epoch', referral.completed_at - referral.created_at) / 86400) AS median_days_to_complete
FROM referrals AS referral
WHERE referral.created_at >= :start AND referral.created_at < :end {scope}
GROUP BY GROUPING SETS (({key}), ())
"""
# The sort of a year's referrals by group, and the medians' sorts, kept in
# memory (PostgreSQL's default work_mem of 4 MB spills them to disk); no JIT
# compilation, which costs more than it saves here.
SETTINGS = ("SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off")


def statement(group_by, scope):
    """The report's SQL for a grouping and a scope ("network" or "agency")."""
    key = KEYS[group_by]
    shown = SHOWN.get(group_by, "{}").format(key)
    return text(REPORT.format(key=key, shown=shown, scope=SCOPES[scope])).bindparams(
        bindparam("start", type_=DateTime(timezone=True)),
        bindparam("end", type_=DateTime(timezone=True)),
        *([bindparam("agency_id", type_=Uuid())] if scope == "agency" else []),
    )


query_schema = ReportQuery()


def period(query, today=None):
    """(from, to) dates: the query's, or the last 12 months (from the first
    day of the month eleven months back to today, in Baku)."""
    today = today or datetime.datetime.now(TIME_ZONE).date()
    end = query.get("to") or today
    start = query.get("from_")
    if start is None:
        month = end.year * 12 + end.month - 1 - 11
        start = datetime.date(month // 12, month % 12 + 1, 1)
    return start, end


def bounds(start, end):
    """The period's first and past-its-last instants, Baku's midnights."""
    first = datetime.datetime.combine(start, datetime.time(), TIME_ZONE)
    after = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time(), TIME_ZONE)
    return first, after


def report(session, query, agency_id=None):
    """The report asked for by `query` ({"from", "to", "group_by"}): of
    `agency_id`'s referrals, or, when None, of the whole network with small
    counts withheld (`suppress`). `session` is in a transaction (SETTINGS
    hold for it alone)."""
    query = load(query_schema, query, "The report query is not valid.")
    start, end = period(query)
    if start > end:  # `from` alone, after today
        raise InvalidInput("The report query is not valid.", {"from": ["It must not be after `to` (today)."]})
    first, after = bounds(start, end)
    scope = "network" if agency_id is None else "agency"
    values = {"start": first, "end": after, **({"agency_id": agency_id} if agency_id else {})}
    for setting in SETTINGS:
        session.execute(text(setting))
    found = session.execute(statement(query["group_by"], scope), values).mappings().all()
    rows = [figures(row) for row in found if not row["is_total"]]
    totals = next((figures(row) for row in found if row["is_total"]), None) or figures({})
    totals.pop("key")
    if query["group_by"] == "month":
        rows = every_month(rows, start, end)
    rows.sort(key=lambda row: row["key"])
    answer = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "group_by": query["group_by"],
        "network": agency_id is None,
        "rows": rows,
        "totals": totals,
    }
    return suppress(answer) if agency_id is None else answer


def figures(row):
    """A result row as the answer gives it: counts, the acceptance rate,
    medians rounded."""
    counts = {name: int(row.get(name) or 0) for name in COUNTS}
    answered = counts["accepted"] + counts["declined"]
    return {
        "key": row.get("key"),
        "suppressed": False,
        **counts,
        "acceptance_rate": round(counts["accepted"] / answered, 3) if answered else None,
        "median_hours_to_answer": _rounded(row.get("median_hours_to_answer")),
        "median_days_to_complete": _rounded(row.get("median_days_to_complete")),
    }


def _rounded(value):
    return None if value is None else round(float(value), 1)


def every_month(rows, start, end):
    """Month rows for every month of the period, those without referrals at 0."""
    have = {row["key"]: row for row in rows}
    month, last = start.year * 12 + start.month - 1, end.year * 12 + end.month - 1
    filled = []
    for number in range(month, last + 1):
        key = f"{number // 12:04d}-{number % 12 + 1:02d}"
        filled.append(have.pop(key, None) or dict(figures({}), key=key))
    return filled + list(have.values())  # none, unless a clock disagrees


def small(count):
    return count is not None and 0 < count < SMALLEST_SHOWN


def suppress(answer):
    """The network-wide answer with small counts withheld.

    Primary: every count from 1 to 4, in a row or in the totals, becomes
    null. Complementary, against differencing: where a column's total is
    shown, a withheld cell could otherwise be worked out as the total less
    the column's shown cells; so in each column holding a withheld small
    cell, one more cell is withheld: the smallest of 5 or more, else a 0.
    Readers then know only the sum of the column's withheld cells, one of
    which may be any size (a null does not say "1 to 4"). Were there no
    such cell (every count of the column from 1 to 4, and the total 5 or
    more), the column's total is withheld too. A row with a withheld count
    is `"suppressed": true` and gives no rate or median (they would let
    the count be worked out).

    Limits, said plainly: totals depend on the period alone (but in the
    rare case above), so a total withheld by one grouping may be shown by
    another; and two periods a day apart can be differenced. Admin keys are
    the network's operators; what they publish is theirs to check."""
    rows, totals = answer["rows"], answer["totals"]
    hidden = [set() for _ in rows]  # per row: the counts withheld
    hidden_totals = {name for name in COUNTS if small(totals[name])}
    for name in COUNTS:
        primary = [index for index, row in enumerate(rows) if small(row[name])]
        for index in primary:
            hidden[index].add(name)
        if not primary or name in hidden_totals:
            continue
        others = [index for index in range(len(rows)) if index not in primary]
        candidates = sorted(
            (index for index in others if rows[index][name] >= SMALLEST_SHOWN),
            key=lambda index: (rows[index][name], rows[index]["key"]),
        )
        candidates += [index for index in others if rows[index][name] == 0]
        if candidates:
            hidden[candidates[0]].add(name)
        else:
            hidden_totals.add(name)
    for row, withheld in zip(rows, hidden, strict=False):
        _withhold(row, withheld)
    _withhold(totals, hidden_totals)
    return answer


def _withhold(row, names):
    if not names:
        return
    for name in names:
        row[name] = None
    row.update(
        suppressed=True, acceptance_rate=None, median_hours_to_answer=None, median_days_to_complete=None
    )
