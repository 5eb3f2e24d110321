"""what reports read: each referral's answer and completion times, and an index

Revision ID: 0007
Revises: 0006

Reports (services/referrals/reports.py) count referrals by the day they were
created, with the time of their answer (accept or decline) and of their
completion. Those times are in the history; joining a million referrals to
their history took seconds, so each referral also carries them:
`answered_at` and `completed_at`, kept by a trigger on the history (so every
writer of moves, today's and tomorrow's, keeps them without knowing) and
filled here from the history for existing referrals. Neither is a change of
the referral: neither `version` nor `updated_at` moves.

`ix_referrals_created_at` serves the network-wide period and carries every
column the counts read, so that a period is read from the index alone (an
agency's report is served by the sender and receiver indexes).
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("referrals", sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("referrals", sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("""
        UPDATE referrals SET answered_at = moves.answered_at, completed_at = moves.completed_at
        FROM (SELECT referral_id,
                     min(at) FILTER (WHERE event IN ('accept', 'decline')) AS answered_at,
                     min(at) FILTER (WHERE event = 'complete') AS completed_at
              FROM referral_history WHERE event IN ('accept', 'decline', 'complete')
              GROUP BY referral_id) AS moves
        WHERE moves.referral_id = referrals.id
    """)
    op.execute("""
        CREATE FUNCTION note_report_times() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.event = 'complete' THEN
                UPDATE referrals SET completed_at = NEW.at WHERE id = NEW.referral_id AND completed_at IS NULL;
            ELSE
                UPDATE referrals SET answered_at = NEW.at WHERE id = NEW.referral_id AND answered_at IS NULL;
            END IF;
            RETURN NULL;
        END;
        $$
    """)
    op.execute("""
        CREATE TRIGGER referral_history_report_times AFTER INSERT ON referral_history
        FOR EACH ROW WHEN (NEW.event IN ('accept', 'decline', 'complete')) EXECUTE FUNCTION note_report_times()
    """)
    op.execute("CREATE INDEX ix_referrals_created_at ON referrals (created_at) INCLUDE (status, "
               "overdue_announced_at, answered_at, completed_at, service_type, returnee_region, sending_agency_id, "
               "receiving_agency_id)")


def downgrade() -> None:
    op.drop_index("ix_referrals_created_at", table_name="referrals")
    op.execute("DROP TRIGGER referral_history_report_times ON referral_history")
    op.execute("DROP FUNCTION note_report_times()")
    op.drop_column("referrals", "completed_at")
    op.drop_column("referrals", "answered_at")
