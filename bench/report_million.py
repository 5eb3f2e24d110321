"""The report's query over a million referrals: `EXPLAIN ANALYZE` timings.

    .venv/bin/python -m bench.report_million [--referrals 1000000] [--keep]

Makes a scratch database (`referrals_report_bench`, migrated like the
service's own), fills it in SQL (generate_series) with referrals spread
over the last 24 months between 40 agencies, each with its history (sent,
then answered or not, started, completed, cancelled, announced overdue),
VACUUM ANALYZEs it, then runs the network-wide report (as the service
does: reports.statement under reports.SETTINGS) for the last 12
months grouped by month, and an agency's, and prints each plan's
execution time. The scratch database is dropped at the end unless --keep.
"""

import argparse
import datetime
import time

from sqlalchemy import text

from services.referrals import reports
from shared import config
from shared.storage import migrate
from shared.storage.db import make_engine

DATABASE = "referrals_report_bench"
AGENCIES = 40

FILL = """
SELECT setseed(0.14);
-- the referrals are written with their answer and completion times: the
-- history's trigger that keeps them (one UPDATE per move) is off for the fill
CREATE TEMP TABLE plan AS
SELECT gen_random_uuid() AS id, n,
    now() - interval '730 days' * random() AS created_at,
    (ARRAY['housing','employment','health','psychosocial','legal','education','documentation','financial'])
        [1 + (n % 8)] AS service_type,
    (ARRAY['AZ-BA','AZ-GA','AZ-SM','AZ-LA','AZ-MI','AZ-NX','AZ-SA','AZ-SR','AZ-YE','AZ-LAN','AZ-SUS','AZ-ABS'])
        [1 + (n * 7 % 12)] AS region,
    random() AS answer_roll, random() AS work_roll, random() AS late_roll,
    random() * 96 AS answer_hours, random() * 60 AS work_days,
    n % :agencies AS sender, (n * 13 + 1) % :agencies AS receiver
FROM generate_series(1, :count) AS n;
UPDATE plan SET receiver = (receiver + 1) % :agencies WHERE receiver = sender;
CREATE TEMP TABLE agency AS
SELECT number, gen_random_uuid() AS id FROM generate_series(0, :agencies - 1) AS number;
CREATE TEMP TABLE outcome AS
SELECT plan.*, sending.id AS sending_agency_id, receiving.id AS receiving_agency_id,
    CASE WHEN answer_roll < 0.60 THEN 'accept' WHEN answer_roll < 0.85 THEN 'decline' END AS answer,
    created_at + interval '1 hour' * answer_hours AS answered_at,
    created_at + interval '1 hour' * answer_hours + interval '1 day' * work_days AS done_at
FROM plan JOIN agency AS sending ON sending.number = plan.sender
JOIN agency AS receiving ON receiving.number = plan.receiver;
INSERT INTO referrals (id, reference, status, service_type, priority, sending_agency_id, receiving_agency_id,
    reason, returnee, returnee_region, consent, outcome, respond_by, overdue_announced_at, answered_at,
    completed_at, version, created_at, updated_at)
SELECT id, 'REF-BENCH-' || n,
    CASE WHEN answer = 'decline' THEN 'declined'
         WHEN answer = 'accept' AND work_roll < 0.70 THEN 'completed'
         WHEN answer = 'accept' AND work_roll < 0.80 THEN 'cancelled'
         WHEN answer = 'accept' AND work_roll < 0.90 THEN 'in_progress'
         WHEN answer = 'accept' THEN 'accepted'
         WHEN work_roll < 0.3 THEN 'cancelled'
         ELSE 'sent' END,
    service_type, 'normal', sending_agency_id, receiving_agency_id,
    decode(repeat('ab', 220), 'hex'),  -- sealed texts (shared.storage.sealing) are bytes of about these sizes
    decode(repeat('cd', 330), 'hex'), region,
    decode(repeat('ef', 90), 'hex'), NULL, created_at + interval '72 hours',
    CASE WHEN answer IS NULL OR answer_hours > 72 THEN created_at + interval '72 hours' END,
    CASE WHEN answer IS NOT NULL THEN answered_at END,
    CASE WHEN answer = 'accept' AND work_roll < 0.70 THEN done_at END,
    1, created_at, created_at
FROM outcome;
SET LOCAL session_replication_role = replica;
INSERT INTO referral_history (id, referral_id, at, event, from_status, to_status, agency_id, actor_type)
SELECT gen_random_uuid(), id, created_at, 'created', NULL, 'sent', sending_agency_id, 'api_key' FROM outcome
UNION ALL
SELECT gen_random_uuid(), id, created_at + interval '72 hours', 'overdue', 'sent', 'sent', NULL, 'system'
FROM outcome WHERE answer IS NULL OR answer_hours > 72
UNION ALL
SELECT gen_random_uuid(), id, answered_at, answer, 'sent', answer || 'd', receiving_agency_id, 'api_key'
FROM outcome WHERE answer IS NOT NULL
UNION ALL
SELECT gen_random_uuid(), id, answered_at + interval '1 hour', 'start', 'accepted', 'in_progress',
    receiving_agency_id, 'api_key' FROM outcome WHERE answer = 'accept' AND (work_roll < 0.70 OR work_roll >= 0.80)
    AND work_roll < 0.90
UNION ALL
SELECT gen_random_uuid(), id, done_at, 'complete', 'in_progress', 'completed', receiving_agency_id, 'api_key'
FROM outcome WHERE answer = 'accept' AND work_roll < 0.70
UNION ALL
SELECT gen_random_uuid(), id, done_at, 'cancel', 'accepted', 'cancelled', sending_agency_id, 'api_key'
FROM outcome WHERE (answer = 'accept' AND work_roll >= 0.70 AND work_roll < 0.80)
    OR (answer IS NULL AND work_roll < 0.3);
"""


def fill(engine, count):
    with engine.begin() as conn:
        for part in filter(str.strip, FILL.split(";\n")):
            conn.execute(text(part), {"count": count, "agencies": AGENCIES})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE referrals"))
        conn.execute(text("VACUUM ANALYZE referral_history"))


def explain(engine, group_by, agency_id=None, runs=3):
    """The plan of the report's statement and its best execution time (ms)."""
    start, end = reports.period({})
    first, after = reports.bounds(start, end)
    scope = "network" if agency_id is None else "agency"
    statement = reports.statement(group_by, scope)
    values = {"start": first, "end": after, **({"agency_id": agency_id} if agency_id else {})}
    explained = text("EXPLAIN (ANALYZE, BUFFERS) " + str(statement)).bindparams(
        *statement._bindparams.values()
    )
    best, plan = None, None
    with engine.connect() as conn:
        for _ in range(runs):
            with conn.begin():
                for setting in reports.SETTINGS:  # as the service runs it
                    conn.execute(text(setting))
                lines = [row[0] for row in conn.execute(explained, values)]
            took = float(next(line for line in lines if line.startswith("Execution Time")).split()[2])
            if best is None or took < best:
                best, plan = took, lines
    return best, plan


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--plans", action="store_true", help="print the whole plans")
    options = parser.parse_args()
    base = config.load()["REFERRALS_DATABASE_URL"]
    url = base.rsplit("/", 1)[0] + "/" + DATABASE
    migrate.drop_database(url)
    migrate.upgrade("referrals", url)
    engine = make_engine(url, pool_size=1)
    try:
        began = time.monotonic()
        fill(engine, options.referrals)
        with engine.connect() as conn:
            counted = conn.execute(
                text("SELECT (SELECT count(*) FROM referrals), (SELECT count(*) FROM referral_history)")
            ).one()
            agency_id = conn.execute(text("SELECT sending_agency_id FROM referrals LIMIT 1")).scalar()
        print(
            f"{counted[0]} referrals, {counted[1]} history entries, made in {time.monotonic() - began:.0f} s"
        )
        start, end = reports.period({})
        print(f"the report's period: {start} to {end} ({datetime.date.today()})")
        for label, group_by, scope in (
            ("network-wide, by month", "month", None),
            ("network-wide, by service type", "service_type", None),
            ("network-wide, by region", "region", None),
            ("one agency's, by month", "month", agency_id),
        ):
            took, plan = explain(engine, group_by, scope)
            print(f"{label}: {took:.1f} ms (best of 3 EXPLAIN ANALYZE)")
            if options.plans:
                print("\n".join("    " + line for line in plan))
    finally:
        engine.dispose()
        if not options.keep:
            migrate.drop_database(url)


if __name__ == "__main__":
    main()
