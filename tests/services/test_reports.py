"""Reports: a known set of referrals gives exactly its counts, rates and
medians; the network-wide report withholds every count from 1 to 4 and
leaves nothing to work one out from."""

import datetime
import random
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from services.referrals import reports
from shared.contract.errors import InvalidInput
from shared.contract.reports import COUNTS, FIGURES, GROUPINGS
from tests.support import data

BAKU = ZoneInfo("Asia/Baku")
PERIOD = {"from": "2026-01-01", "to": "2026-03-31"}


def baku(day, hour=12, minute=0):
    return datetime.datetime.combine(datetime.date.fromisoformat(day), datetime.time(hour, minute), BAKU)


# The times the history's trigger copied onto the referral, copied again
# once the test has moved the history's times (test_times_are_kept_... shows
# the trigger copies them as they are written).
MOVE_TIMES = text("""
UPDATE referrals SET
    answered_at = (SELECT at FROM referral_history WHERE referral_id = :id AND event IN ('accept', 'decline')),
    completed_at = (SELECT at FROM referral_history WHERE referral_id = :id AND event = 'complete')
WHERE id = :id""")


class Made:
    """Referrals made through the service, then put back in time in the database."""

    def __init__(self, referrals, engines):
        self.referrals, self.engine = referrals, engines["REFERRALS_DATABASE_URL"]

    def __call__(self, sender, receiver, created, moves=(), overdue=False, **fields):
        """A referral created at `created` (Baku), then moved: `moves` are
        (move, hours after creation) by the right party."""
        made = self.referrals("create_referral", sender, data.referral(receiver, **fields))
        for move, _ in moves:
            party = sender if move == "cancel" else receiver
            body = {
                "decline": {"reason": "No room."},
                "cancel": {"reason": "Moved away."},
                "complete": {"outcome": "Housed."},
            }.get(move, {})
            self.referrals("move_referral", party, made["id"], move, body)
        with self.engine.begin() as conn:
            # the history is append-only (a trigger refuses changes): the test alone rewrites its times
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                text("UPDATE referrals SET created_at = :at, overdue_announced_at = :late WHERE id = :id"),
                {
                    "at": created,
                    "id": made["id"],
                    "late": created + datetime.timedelta(hours=72) if overdue else None,
                },
            )
            conn.execute(
                text("UPDATE referral_history SET at = :at WHERE referral_id = :id AND event = 'created'"),
                {"at": created, "id": made["id"]},
            )
            for move, hours in moves:
                conn.execute(
                    text("UPDATE referral_history SET at = :at WHERE referral_id = :id AND event = :move"),
                    {"at": created + datetime.timedelta(hours=hours), "id": made["id"], "move": move},
                )
            conn.execute(MOVE_TIMES, {"id": made["id"]})
        return made


@pytest.fixture
def known(referrals, pair, engines):
    """The sender's referrals of the first quarter of 2026, and some that
    must not count (before the period, between other agencies)."""
    sender, receiver, outsider = pair
    make = Made(referrals, engines)
    housing = {"service_type": "housing"}
    make(
        sender, receiver, baku("2026-01-10"), [("accept", 2), ("start", 3), ("complete", 10 * 24)], **housing
    )
    make(
        sender, receiver, baku("2026-01-20"), [("accept", 4), ("start", 5), ("complete", 20 * 24)], **housing
    )
    make(sender, receiver, baku("2026-02-03"), [("accept", 6), ("cancel", 50)], **housing)
    make(sender, receiver, baku("2026-02-14"), [("decline", 10)], **housing)
    make(sender, receiver, baku("2026-02-28"), [("decline", 30)], overdue=True, **housing)
    make(sender, receiver, baku("2026-03-05"), [], overdue=True, **housing)
    make(sender, receiver, baku("2026-03-31", 23, 59), [("cancel", 1)], **housing)
    make(
        sender, receiver, baku("2026-01-01", 0, 30), [], **housing
    )  # 2025-12-31 in UTC: still January in Baku
    make(sender, receiver, baku("2026-03-15"), [("accept", 1)], service_type="employment")
    make(sender, receiver, baku("2025-12-31", 23, 59), [("accept", 1)], **housing)  # before the period
    make(sender, receiver, baku("2026-04-01", 0, 1), [("accept", 1)], **housing)  # after it
    make(outsider, receiver, baku("2026-02-01"), [("decline", 1)], **housing)  # not the sender's
    return sender, receiver, outsider


def counts(row):
    return {name: row[name] for name in COUNTS + FIGURES}


def test_a_known_set_gives_exactly_its_counts_rates_and_medians(referrals, known):
    sender, receiver, _ = known
    report = referrals("referral_report", dict(PERIOD, group_by="service_type"), sender)
    assert (report["from"], report["to"], report["group_by"], report["network"]) == (
        "2026-01-01",
        "2026-03-31",
        "service_type",
        False,
    )
    assert [row["key"] for row in report["rows"]] == ["employment", "housing"]
    employment, housing = report["rows"]
    assert counts(housing) == {
        "sent": 8,
        "accepted": 3,
        "declined": 2,
        "cancelled": 2,
        "completed": 2,
        "overdue": 2,
        "acceptance_rate": 0.6,  # 3 of 5 answers
        "median_hours_to_answer": 6.0,  # 2, 4, 6, 10, 30
        "median_days_to_complete": 15.0,  # 10, 20
    }
    assert counts(employment) == {
        "sent": 1,
        "accepted": 1,
        "declined": 0,
        "cancelled": 0,
        "completed": 0,
        "overdue": 0,
        "acceptance_rate": 1.0,
        "median_hours_to_answer": 1.0,
        "median_days_to_complete": None,
    }
    assert counts(report["totals"]) == {
        "sent": 9,
        "accepted": 4,
        "declined": 2,
        "cancelled": 2,
        "completed": 2,
        "overdue": 2,
        "acceptance_rate": 0.667,
        "median_hours_to_answer": 5.0,  # 1, 2, 4, 6, 10, 30
        "median_days_to_complete": 15.0,
    }
    assert not any(row["suppressed"] for row in report["rows"] + [report["totals"]])  # its own: all shown

    # the receiver's report holds the same referrals and the outsider's too
    received = referrals("referral_report", dict(PERIOD, group_by="sending_agency"), receiver)
    assert {row["key"]: row["sent"] for row in received["rows"]} == {sender: 9, known[2]: 1}


def test_the_answer_s_and_completion_s_times_are_kept_on_the_referral(referrals, pair, engines):
    sender, receiver, _ = pair
    done, declined, waiting = (
        referrals("create_referral", sender, data.referral(receiver)) for _ in range(3)
    )
    for move, body in (("accept", {}), ("start", {}), ("complete", {"outcome": "Housed."})):
        referrals("move_referral", receiver, done["id"], move, body)
    referrals("move_referral", receiver, declined["id"], "decline", {"reason": "Full."})
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        kept = {
            str(row.id): (row.answered_at, row.completed_at)
            for row in conn.execute(text("SELECT id, answered_at, completed_at FROM referrals"))
        }
        moved = {
            (str(row.referral_id), row.event): row.at
            for row in conn.execute(text("SELECT referral_id, event, at FROM referral_history"))
        }
    assert kept[done["id"]] == (moved[done["id"], "accept"], moved[done["id"], "complete"])
    assert kept[declined["id"]] == (moved[declined["id"], "decline"], None)
    assert kept[waiting["id"]] == (None, None)


def test_months_are_baku_s_and_every_month_of_the_period_has_its_row(referrals, known):
    sender = known[0]
    report = referrals("referral_report", dict(PERIOD, group_by="month"), sender)
    shown = ("key", "sent", "accepted", "declined", "cancelled")
    assert [tuple(row[name] for name in shown) for row in report["rows"]] == [
        ("2026-01", 3, 2, 0, 0),
        ("2026-02", 3, 1, 2, 1),
        ("2026-03", 3, 1, 0, 1),
    ]
    april = referrals(
        "referral_report", {"from": "2026-04-01", "to": "2026-05-31", "group_by": "month"}, sender
    )
    assert [(row["key"], row["sent"]) for row in april["rows"]] == [("2026-04", 1), ("2026-05", 0)]
    by_region = referrals("referral_report", dict(PERIOD, group_by="region"), sender)
    assert [(row["key"], row["sent"]) for row in by_region["rows"]] == [("AZ-GA", 9)]


def test_an_erased_referral_still_counts_in_its_region(referrals, pair):
    """Erasure takes the returnee but keeps the region (in clear, apart):
    the referral counts in every grouping, in its own region."""
    sender, receiver, _ = pair
    _kept, erased = (referrals("create_referral", sender, data.referral(receiver)) for _ in range(2))
    referrals("erase_referral", sender, erased["id"], {"reason": "Consent withdrawn"})
    by_region = referrals("referral_report", {"group_by": "region"}, sender)
    assert [(row["key"], row["sent"]) for row in by_region["rows"]] == [("AZ-GA", 2)]
    for group_by in ("service_type", "month", "receiving_agency"):
        assert referrals("referral_report", {"group_by": group_by}, sender)["totals"]["sent"] == 2


def test_the_default_period_is_the_last_twelve_months(referrals, pair):
    report = referrals("referral_report", {}, pair[0])
    today = datetime.datetime.now(BAKU).date()
    start = datetime.date.fromisoformat(report["from"])
    assert report["to"] == today.isoformat() and start.day == 1
    assert (today.year * 12 + today.month) - (start.year * 12 + start.month) == 11
    assert report["group_by"] == "service_type" and report["rows"] == []
    assert report["totals"]["sent"] == 0


@pytest.mark.parametrize(
    "query, field",
    [
        ({"group_by": "returnee"}, "group_by"),
        ({"from": "2026-02-30"}, "from"),
        ({"from": "2026-03-01", "to": "2026-02-01"}, "from"),
        ({"from": "2999-01-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2000-01-01", "to": "2026-01-01"}, "from"),
        ({"from": "1990-01-01"}, "from"),  # to today: longer than a report may span
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_query_is_refused_naming_its_field(referrals, pair, query, field):
    with pytest.raises(InvalidInput) as refused:
        referrals("referral_report", query, pair[0])
    assert field in refused.value.errors


# --- network-wide: small cells withheld -----------------------------------


def generated(engines, seed):
    """Referrals written straight into the database, in groups of varied
    small and larger sizes (0 to 12 of each outcome) across services,
    regions, months and agencies: the whole network's, for the admin."""
    chance = random.Random(seed)
    agencies = [uuid.uuid4() for _ in range(5)]
    regions = ["AZ-BA", "AZ-GA", "AZ-SM", "AZ-LA"]
    services = ["housing", "employment", "health", "legal"]
    referrals, history = [], []
    for month in (1, 2, 3):
        for service in services:
            for outcome in ("accept", "decline", "complete", "cancel", "wait"):
                for _ in range(chance.choice([0, 0, 1, 2, 3, 4, 5, 7, 12])):
                    sender, receiver = chance.sample(agencies, 2)
                    created = baku(f"2026-{month:02d}-{chance.randint(1, 28):02d}", chance.randint(0, 23))
                    referral_id = uuid.uuid4()
                    status = {
                        "accept": "accepted",
                        "decline": "declined",
                        "complete": "completed",
                        "cancel": "cancelled",
                        "wait": "sent",
                    }[outcome]
                    referrals.append(
                        {
                            "id": referral_id,
                            "reference": f"REF-T-{referral_id.hex[:12]}",
                            "status": status,
                            "service": service,
                            "sender": sender,
                            "receiver": receiver,
                            "region": chance.choice(regions),
                            "created": created,
                            "late": created + datetime.timedelta(hours=72) if chance.random() < 0.3 else None,
                        }
                    )
                    moves = {
                        "accept": ["accept"],
                        "decline": ["decline"],
                        "complete": ["accept", "start", "complete"],
                        "cancel": ["cancel"],
                        "wait": [],
                    }[outcome]
                    for step, move in enumerate(moves, 1):  # the trigger copies their times onto the referral
                        history.append(
                            {
                                "id": uuid.uuid4(),
                                "referral": referral_id,
                                "event": move,
                                "at": created + datetime.timedelta(hours=step * chance.randint(1, 40)),
                            }
                        )
    with engines["REFERRALS_DATABASE_URL"].begin() as conn:
        conn.execute(
            text("""
            INSERT INTO referrals (id, reference, status, service_type, priority, sending_agency_id,
                receiving_agency_id, returnee_region, respond_by, overdue_announced_at, created_at, updated_at)
            VALUES (:id, :reference, :status, :service, 'normal', :sender, :receiver, :region,
                :created, :late, :created, :created)"""),
            referrals,
        )
        conn.execute(
            text(
                "INSERT INTO referral_history (id, referral_id, at, event) "
                "VALUES (:id, :referral, :at, :event)"
            ),
            history,
        )
    return agencies


def small_counts(answer):
    """Every count from 1 to 4 anywhere in an answer: [(row key, count name)]."""
    rows = answer["rows"] + [dict(answer["totals"], key="totals")]
    return [
        (row["key"], name)
        for row in rows
        for name in COUNTS
        if row[name] is not None and 0 < row[name] < reports.SMALLEST_SHOWN
    ]


def check_no_cell_can_be_worked_out(answer):
    """A row with a withheld count shows no rate or median; in a column
    whose total is shown, withheld cells are none or at least two (so the
    total less the shown cells is a sum, never one cell)."""
    for row in answer["rows"] + [answer["totals"]]:
        if any(row[name] is None for name in COUNTS):
            assert row["suppressed"] is True
            assert all(row[figure] is None for figure in FIGURES), row
        else:
            assert row["suppressed"] is False
    for name in COUNTS:
        withheld = [row for row in answer["rows"] if row[name] is None]
        if answer["totals"][name] is not None:
            assert len(withheld) != 1, (answer["group_by"], name)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_network_wide_answer_holds_a_count_from_1_to_4(referrals, engines, databases, seed):
    generated(engines, seed)
    withheld_somewhere = False
    for group_by in GROUPINGS:
        answer = referrals("referral_report", dict(PERIOD, group_by=group_by))
        assert answer["network"] is True
        assert small_counts(answer) == [], group_by
        check_no_cell_can_be_worked_out(answer)
        withheld_somewhere |= any(row["suppressed"] for row in answer["rows"])
    assert withheld_somewhere  # the set had small groups to withhold


def test_the_same_set_is_shown_whole_to_an_agency_and_withheld_to_the_network(referrals, engines, databases):
    agencies = generated(engines, 4)
    with engines["REFERRALS_DATABASE_URL"].connect() as conn:
        true_total = conn.execute(text("SELECT count(*) FROM referrals")).scalar()
    network = referrals("referral_report", dict(PERIOD, group_by="service_type"))
    assert network["totals"]["sent"] == true_total  # totals are the truth when not small
    own = [referrals("referral_report", dict(PERIOD, group_by="month"), str(agency)) for agency in agencies]
    assert any(small_counts(answer) for answer in own)  # an agency sees its own small counts
    assert all(not row["suppressed"] for answer in own for row in answer["rows"])


@pytest.mark.rules
def test_suppression_withholds_a_second_cell_against_differencing():
    answer = {
        "rows": [
            dict(reports.figures({"key": "a", "sent": 3, "accepted": 1}), key="a"),
            dict(reports.figures({"key": "b", "sent": 9, "accepted": 6}), key="b"),
            dict(reports.figures({"key": "c", "sent": 40, "accepted": 30}), key="c"),
        ],
        "totals": reports.figures({"sent": 52, "accepted": 37}),
    }
    reports.suppress(answer)
    a, b, c = answer["rows"]
    assert (a["sent"], b["sent"], c["sent"]) == (None, None, 40)  # 3 withheld, then the smallest of 5 or more
    assert (a["accepted"], b["accepted"], c["accepted"]) == (None, None, 30)
    assert a["suppressed"] and b["suppressed"] and not c["suppressed"]
    assert b["acceptance_rate"] is None and c["acceptance_rate"] == 1.0
    assert answer["totals"]["sent"] == 52 and not answer["totals"]["suppressed"]


@pytest.mark.rules
def test_a_column_of_small_cells_alone_withholds_its_total():
    answer = {
        "rows": [dict(reports.figures({"sent": 4}), key=key) for key in "ab"],
        "totals": reports.figures({"sent": 8}),
    }
    reports.suppress(answer)
    assert [row["sent"] for row in answer["rows"]] == [None, None]
    assert answer["totals"]["sent"] is None and answer["totals"]["suppressed"]
